"""Full FPGA builds for several boards, written to the "Builds" section of docs/BENCHMARKS.md.

    python -m bench.builds --boards ulx3s-85f ulx3s-25f
    python -m bench.builds --boards icebreaker --top bridge
    python -m bench.builds --all --verilog-only          # every board elaborates with its SoC
    python -m bench.builds --reuse --boards ulx3s-12f    # take build/<board>/report.json as is

Each board goes through ``accel.build.build`` (Yosys, nextpnr, packer) one after the other. Results
are kept in ``build/bench-builds.json`` so that boards built in separate runs share one table.
"""

import argparse
import datetime
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from accel import build as B
from platforms import BOARDS, get_board, UnknownBoardError
from .report import write_section, machine, git_revision, table


RESULTS = Path("build") / "bench-builds.json"


def _tool_versions():
    out = {}
    for name in ("yosys", "nextpnr-ecp5"):
        try:
            exe = B.resolve_tool(name)
            proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=300)
            text = (proc.stdout + proc.stderr).strip().splitlines()
            line = text[-1] if text else "?"
            m = re.search(r"Version (\S+?)\)", line)
            out[name] = m.group(1) if m else line.split(" (")[0]
        except (B.BuildError, OSError, subprocess.SubprocessError):
            out[name] = "not installed"
    return out


def _row(r):
    if "error" in r:
        return [r["board"], r.get("device", ""), r.get("config_name", ""), r.get("top", ""),
                f"failed: {r['error']}", "", "", "", "", "", _t(r.get("total_s"))]
    u = r.get("utilization", {})

    def cell(row):
        if row not in u:
            return "-"
        v = u[row]
        pct = 100 * v["used"] / v["available"] if v["available"] else 0
        return f"{v['used']:,} / {v['available']:,} ({pct:.0f}%)"
    clocks = r.get("clocks", {})
    fmax = ", ".join(f"{v['achieved_mhz']:.1f} / {v['target_mhz']:.0f}" for v in clocks.values()) or "-"
    t = r["times_s"]
    steps = " + ".join(f"{_t(t[k])}" for k in ("elaborate", "verilog", "yosys", "nextpnr")
                       if k in t)
    return [r["board"], r["device"], r["config_name"], r["top"], cell("LUT4"), cell("FF"),
            cell("BRAM"), cell("MULT"), fmax,
            "pass" if r.get("timing_pass") else ("-" if not clocks else "FAIL"),
            f"{_t(t.get('total'))} ({steps})"]


def _t(seconds):
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def write_doc(results, tools):
    header = ["board", "device", "config", "top", "LUT4", "FF", "block RAM", "MULT18",
              "fmax / target (MHz)", "timing", "build time (elaborate + Verilog + Yosys + nextpnr)"]
    rows = [_row(results[name]) for name in sorted(results)]
    lines = [
        "Full builds of the board tops (`python -m bench.builds --boards ...`, one build at a time): "
        "clock/reset (ECP5 PLL when it raises the clock), the SoC with the board's configuration "
        "(`soc`; `bridge` = UART bridge + SRAM only, the flow's smoke test), the UART bridge and "
        "status LEDs. Tools from PyPI: "
        + ", ".join(f"{k} `{v}`" for k, v in tools.items())
        + f". Machine: {machine()}, shared with other jobs, so times are indicative. "
        f"Table written at revision {git_revision()}; a row taken with `--reuse` is from its "
        "own build's revision and date (see the notes).",
        "",
        *table(header, rows),
        "",
        "LUT4 = TRELLIS_COMB on ECP5 (LUT4s and carry halves) or ICESTORM_LC on iCE40; block RAM = "
        "DP16KD (18 Kbit) or SB_RAM40_4K (4 Kbit); MULT18 = MULT18X18D / SB_MAC16. fmax is "
        "nextpnr's estimate after routing for the design clock. Per-board details: "
        "`build/<board>/report.md`.",
    ]
    notes = [r for r in results.values() if r.get("note")]
    if notes:
        lines += ["", "Notes:", ""]
    for r in sorted(notes, key=lambda r: r["board"]):
        lines.append(f"- {r['board']}: {r['note']}")
    write_section("Builds", lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.builds", description=__doc__.split("\n")[0])
    parser.add_argument("--boards", nargs="+", default=[], help="boards to build")
    parser.add_argument("--all", action="store_true", help="every board")
    parser.add_argument("--top", choices=["soc", "bridge"], default="soc")
    parser.add_argument("--verilog-only", action="store_true",
                        help="elaborate and write Verilog only (no table update)")
    parser.add_argument("--reuse", action="store_true",
                        help="use build/<board>/report.json when it exists instead of building")
    parser.add_argument("--freq", type=B._parse_freq, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-doc", action="store_true", help="do not touch docs/BENCHMARKS.md")
    parser.add_argument("--note", default=None, help="a remark printed under the table for "
                                                     "the boards of this run")
    args = parser.parse_args(argv)

    try:
        boards = [get_board(n) for n in (sorted(BOARDS) if args.all else args.boards)]
    except UnknownBoardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not boards:
        print("error: name boards with --boards or use --all", file=sys.stderr)
        return 1

    failed = 0
    for board in boards:
        print(f"=== {board.name}", flush=True)
        start = time.monotonic()
        existing = Path("build") / board.name / "report.json"
        try:
            if args.reuse and existing.exists():
                report = json.loads(existing.read_text())
            else:
                report = B.build(board, verilog_only=args.verilog_only, top=args.top,
                                 target_hz=args.freq, seed=args.seed,
                                 log=lambda m: print(m, flush=True))
        except (B.BuildError, ValueError) as exc:
            failed += 1
            print(f"error: {board.name}: {exc}", file=sys.stderr, flush=True)
            report = {"board": board.name, "device": board.device, "config_name": board.config_name,
                      "top": args.top, "error": str(exc), "total_s": time.monotonic() - start}
        if args.verilog_only:
            continue
        report["date"] = datetime.datetime.now().isoformat(timespec="minutes")
        if args.note:
            report["note"] = args.note
        # Merge with what is on disk now (another run may have added boards meanwhile).
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results[board.name] = report
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    if not args.verilog_only and not args.no_doc:
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        write_doc(results, _tool_versions())
        print("wrote the Builds section of docs/BENCHMARKS.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
