"""Writing benchmark results: one section of ``docs/BENCHMARKS.md`` per benchmark, plots beside it.

Each benchmark owns a ``## <title>`` section and rewrites only that section, so the benchmarks can
run separately and in any order.
"""

import os
import platform
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
PLOTS = ROOT / "docs" / "plots"


def log(msg):
    """A progress line on stderr (stdout carries the results)."""
    print(msg, file=sys.stderr, flush=True)


def machine():
    """One line describing where a measurement ran."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu})"


def git_revision():
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                       stderr=subprocess.DEVNULL, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(header, rows):
    """A Markdown table from a header list and rows of cells."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return out


def write_section(title, lines, doc=DOC):
    """Replace (or append) the ``## title`` section of the benchmarks document."""
    heading = f"## {title}"
    body = "\n".join([heading, "", *lines]).rstrip("\n") + "\n"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\nWritten by `python -m bench`; each section says how it was measured.\n"
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + body + (text[end:] if end >= 0 else "")
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def plot_path(name):
    PLOTS.mkdir(parents=True, exist_ok=True)
    return PLOTS / name


def run_cli(work):
    """Exit status of a benchmark command: ``work()``'s own, or 1 with one line on stderr when it
    raises (no traceback dump: the CLI rule), or 130 when interrupted."""
    try:
        return work()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else ""
        print(f"error: {type(exc).__name__}: {text}", file=sys.stderr, flush=True)
        return 1
