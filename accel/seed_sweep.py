"""Place and route one synthesised netlist with several nextpnr seeds, several at a time.

Synthesis does not depend on nextpnr's placement seed, and placement alone moves the fmax of a
large design by 10-15 % between seeds (docs/BENCHMARKS.md, "Timing closure"). So a seed sweep
runs Yosys once and nextpnr once per seed, each seed's outputs (``top.config`` or ``top.asc``,
``top.report.json``, ``top.tim``) in ``<build>/seed<N>/``, and keeps the fastest.

``python -m accel.build --seeds N`` sweeps inside a build (:func:`run_seeds`, then
:func:`adopt_seed` copies the fastest seed's files over the build's own, which the packer then
reads); ``python -m bench.seed_sweep`` re-runs seeds on a finished build's netlist
(:func:`sweep`).
"""

import concurrent.futures
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from .toolchain_reports import parse_nextpnr_report, timing_endpoints, group_endpoints


__all__ = ["parse_seeds", "seed_list", "seed_command", "run_seeds", "fastest", "adopt_seed",
           "sweep", "pack_seed"]

# nextpnr's output files, redirected per seed (``--textcfg`` on ECP5, ``--asc`` on iCE40)
_OUTPUTS = {"--report": "top.report.json", "--log": "top.tim", "--textcfg": "top.config",
            "--asc": "top.asc"}
# Seconds between "still running" lines while seeds are placed and routed.
_PROGRESS_PERIOD_S = 30


def parse_seeds(text, first=None):
    """The seeds ``--seeds`` names: ``"N"`` (a count, :func:`seed_list`) or a comma-separated
    list such as ``"3,7,11"``.

    Raises
    ------
    ValueError
        One line: not an integer, a count below 1, a negative or repeated seed.
    """
    if not isinstance(text, str):
        raise TypeError(f"seeds must be given as text, not {type(text).__name__}")
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--seeds takes a count or a comma-separated list of integers, not "
                         f"{text!r}") from None
    if len(numbers) == 1:
        if numbers[0] < 1:
            raise ValueError(f"--seeds: the number of seeds must be at least 1, not {numbers[0]}")
        return seed_list(numbers[0], first)
    if any(n < 0 for n in numbers):
        raise ValueError(f"--seeds: seeds are non-negative integers, not {text!r}")
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"--seeds: {text!r} repeats a seed")
    return numbers


def seed_list(count, first=None):
    """``count`` seeds: ``first`` (the board's seed, known to route) and then 1, 2, 3, ...
    (skipping ``first``), so that a sweep is never worse than the board's own build."""
    if not isinstance(count, int) or isinstance(count, bool):
        raise TypeError(f"count must be an integer, not {count!r}")
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    seeds = [] if first is None else [int(first)]
    candidate = 1
    while len(seeds) < count:
        if candidate not in seeds:
            seeds.append(candidate)
        candidate += 1
    return seeds


def seed_command(argv, seed, subdir, placer=None):
    """The build's nextpnr command line ``argv`` (without the executable) with ``--seed seed``,
    outputs in ``subdir`` and, if given, another placer (``heap`` is nextpnr's default: no
    ``--placer``)."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--seed" or (a == "--placer" and placer is not None):
            i += 2
            continue
        if a in _OUTPUTS:
            out += [a, f"{subdir}/{_OUTPUTS[a]}"]
            i += 2
            continue
        out.append(a)
        i += 1
    out += ["--seed", str(int(seed))]
    if placer is not None and placer != "heap":
        out += ["--placer", placer]
    return out


def _seed_row(report_json, family, period_ns):
    """fmax, pass/fail, utilisation and (with nextpnr's detailed timing) late endpoints of one
    seed's ``top.report.json``."""
    util, fmax = parse_nextpnr_report(report_json, family)
    clocks = {net: dict(v, passed=v["achieved_mhz"] >= v["target_mhz"]) for net, v in fmax.items()}
    # the design clock: the fastest target (a board top has one clock)
    design = max(clocks.values(), key=lambda c: c["target_mhz"]) if clocks else None
    row = {"fmax": design["achieved_mhz"] if design else None,
           "target": design["target_mhz"] if design else None,
           "passed": bool(clocks) and all(c["passed"] for c in clocks.values()),
           "clocks": clocks, "utilization": util, "late": None, "worst": []}
    if period_ns is not None:
        try:
            endpoints = timing_endpoints(json.loads(Path(report_json).read_text()))
        except ValueError:      # built without --detailed-timing-report
            endpoints = None
        if endpoints is not None:
            row["late"] = sum(1 for e in endpoints if e[0] > period_ns)
            row["worst"] = [(round(t, 2), n, name)
                            for t, n, name in group_endpoints(endpoints, period_ns)[:3]]
    return row


def _error_line(log_path, returncode):
    text = Path(log_path).read_text(errors="replace") if Path(log_path).exists() else ""
    errors = [ln.strip() for ln in text.splitlines() if ln.lstrip().startswith("ERROR")]
    return errors[-1] if errors else f"exit code {returncode}"


def run_seeds(directory, argv, seeds, *, family, jobs=1, env=None, placer=None, period_ns=None,
              log=print):
    """Run nextpnr (``argv``: its executable and the build's arguments) once per seed in
    ``directory``, ``jobs`` at a time.

    Parameters
    ----------
    directory : path
        The build directory (nextpnr's inputs are relative to it); seed N writes ``seed<N>/``.
    argv : list of str
        The build's nextpnr command, executable first.
    seeds : list of int
    family : str
        ``"ecp5"`` or ``"ice40"`` (names of the resources in nextpnr's report).
    jobs : int
        nextpnr processes at a time (each takes one core and the design's memory).
    env : dict, optional
        The tools' environment.
    placer : str, optional
        Another placer than the build's.
    period_ns : float, optional
        With nextpnr's detailed timing: count the endpoints later than this.
    log : callable
        Progress lines (one per finished seed, and every 30 s while seeds run).

    Returns
    -------
    list of dict
        In the order of ``seeds``: ``seed``, ``elapsed_s``, ``argv``, and either ``error`` (one
        line: nextpnr failed) or the figures of :func:`_seed_row` (``fmax``, ``target``,
        ``passed``, ...). A seed that misses timing is a result, not an error.
    """
    if not seeds:
        raise ValueError("run_seeds needs at least one seed")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, not {jobs!r}")
    directory = Path(directory)
    started = time.monotonic()
    running = set()
    lock = threading.Lock()

    def run(seed):
        subdir = f"seed{seed}"
        (directory / subdir).mkdir(exist_ok=True)
        for name in _OUTPUTS.values():
            (directory / subdir / name).unlink(missing_ok=True)
        command = [argv[0]] + seed_command(argv[1:], seed, subdir, placer)
        with lock:
            running.add(seed)
        start = time.monotonic()
        try:
            with open(directory / subdir / "nextpnr.log", "w") as out:
                rc = subprocess.call(command, cwd=directory, stdout=out, stderr=subprocess.STDOUT,
                                     env=env)
        finally:
            with lock:
                running.discard(seed)
        result = {"seed": seed, "elapsed_s": time.monotonic() - start, "argv": command}
        report_json = directory / subdir / "top.report.json"
        if rc != 0 or not report_json.exists():
            result["error"] = _error_line(directory / subdir / "top.tim", rc)
        else:
            result.update(_seed_row(report_json, family, period_ns))
        return result

    log(f"[nextpnr] {len(seeds)} seed(s) ({', '.join(map(str, seeds))}), {jobs} at a time")
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        pending = {pool.submit(run, seed) for seed in seeds}
        while pending:
            done, pending = concurrent.futures.wait(pending, timeout=_PROGRESS_PERIOD_S,
                                                    return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                r = future.result()
                results[r["seed"]] = r
                what = (f"failed: {r['error']}" if "error" in r else
                        f"{r['fmax']:.1f} MHz (target {r['target']:g}): "
                        f"{'PASS' if r['passed'] else 'FAIL'}")
                log(f"[nextpnr seed {r['seed']}] {what} in {r['elapsed_s'] / 60:.1f} min "
                    f"({len(results)}/{len(seeds)} done)")
            if pending:
                with lock:
                    now = sorted(running)
                log(f"[nextpnr] ... {(time.monotonic() - started) / 60:.1f} min, running seed(s) "
                    f"{', '.join(map(str, now)) or '-'}, {len(results)}/{len(seeds)} done")
    return [results[seed] for seed in seeds]


def fastest(results):
    """The result with the highest fmax among those that routed (None if none did); a tie goes
    to the seed listed first."""
    routed = [r for r in results if "error" not in r and r.get("fmax") is not None]
    return max(routed, key=lambda r: r["fmax"]) if routed else None


def adopt_seed(directory, seed):
    """Copy seed ``seed``'s nextpnr outputs over the build's own (``top.config``/``top.asc``,
    ``top.report.json``, ``top.tim``), so that the packer and the report use them."""
    directory = Path(directory)
    for name in _OUTPUTS.values():
        source = directory / f"seed{seed}" / name
        if source.exists():
            shutil.copyfile(source, directory / name)


def _build_files(build):
    """A finished build directory's report and nextpnr/packer commands; one-line errors."""
    from .build import BuildError
    build = Path(build)
    for name in ("build_top.json", "top.json"):
        if not (build / name).exists():
            raise BuildError(f"{build}: no {name} (give an `python -m accel.build` output "
                             f"directory whose synthesis has finished, such as build/ulx3s-85f)")
    if (build / "report.json").exists():
        report = json.loads((build / "report.json").read_text())
    else:
        # the build's own nextpnr is still running: the directory is named after the board
        report = {"board": build.name}
    if "family" not in report:
        from platforms import get_board
        report["family"] = get_board(report["board"]).family
    commands = json.loads((build / "build_top.json").read_text())["commands"]
    pnr = [c for c in commands if c[0].startswith("nextpnr-")]
    pack = [c for c in commands if c[0] in ("ecppack", "icepack")]
    if not pnr:
        raise BuildError(f"{build}: build_top.json has no nextpnr command")
    return build, report, pnr[0], pack[0] if pack else None


def sweep(build, seeds, *, jobs=2, placer=None, period_ns=10.0, pack_best=False, log=print):
    """Run ``seeds`` on the netlist of the finished build directory ``build`` (its own files stay
    as they are); returns ``[(seed, row)]``, fastest first (``row`` None for a failed run).

    Each seed also gets a ``seed<N>/report.json`` like accel.build's (``bench.timing_closure``
    reads it). ``pack_best`` packs the fastest seed's bitstream in its ``seed<N>/``.
    """
    from platforms import get_board
    from .build import resolve_tool
    build, report, pnr_argv, pack_argv = _build_files(build)
    board = get_board(report["board"])
    env = dict(os.environ)
    env.update(board.tool_env)
    results = run_seeds(build, [resolve_tool(pnr_argv[0])] + pnr_argv[1:], seeds,
                        family=report["family"], jobs=jobs, env=env, placer=placer,
                        period_ns=period_ns, log=log)
    rows = []
    for r in results:
        if "error" in r:
            rows.append((r["seed"], None))
            continue
        seed_report = dict(report, nextpnr_options=" ".join(r["argv"][1:]),
                           utilization=r["utilization"], clocks=r["clocks"],
                           timing_pass=r["passed"], times_s={"nextpnr": r["elapsed_s"]})
        (build / f"seed{r['seed']}" / "report.json").write_text(
            json.dumps(seed_report, indent=2) + "\n")
        rows.append((r["seed"], r))
    rows.sort(key=lambda row: -(row[1]["fmax"] if row[1] else -1))
    if pack_best and rows and rows[0][1] and pack_argv:
        pack_seed(build, rows[0][0], pack_argv, env)
        log(f"packed {build / f'seed{rows[0][0]}'}")
    return rows


def pack_seed(build, seed, pack_argv, env=None):
    """Pack seed ``seed``'s placement into a bitstream in ``build/seed<N>/`` with the build's
    packer command ``pack_argv``."""
    from .build import BuildError, resolve_tool
    argv = [resolve_tool(pack_argv[0])] + [
        f"seed{seed}/{a}" if a.startswith("top.") else a for a in pack_argv[1:]]
    if subprocess.call(argv, cwd=build, env=env, stdout=subprocess.DEVNULL) != 0:
        raise BuildError(f"{pack_argv[0]} failed for seed {seed}")
