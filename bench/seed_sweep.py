"""Place and route one synthesised netlist with several nextpnr seeds; keep the fastest.

Placement alone moves the 64x32 SoC's fmax by 10-15 % between seeds (docs/BENCHMARKS.md, "Timing
closure"), so closing timing on a big design means trying seeds. Synthesis does not depend on the
seed: this tool reuses the netlist of a ``python -m accel.build`` directory (``top.json``, block-RAM
output registers already merged; the build's own nextpnr may still be running) and runs only nextpnr, ``--jobs`` at a time, with the
build's own options except the seed (and, optionally, the placer):

    python -m bench.seed_sweep build/ulx3s-85f --seeds 1 2 3 4 --jobs 2 --pack-best

Each seed's results go to ``<build>/seed<N>/`` (``top.config``, ``top.report.json``, ``top.tim``,
and a ``report.json`` like accel.build's, which ``bench.timing_closure`` reads); the table lists
fmax, the endpoints later than ``--period`` and the worst signal groups. ``--pack-best`` packs the
fastest seed's bitstream (``seed<N>/top.bit``).
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

from accel.build import BuildError, resolve_tool
from accel.toolchain_reports import parse_nextpnr_report, timing_endpoints, group_endpoints
from platforms import get_board

__all__ = ["seed_command", "sweep", "main"]

# nextpnr's output files, redirected per seed
_OUTPUTS = {"--report": "top.report.json", "--log": "top.tim", "--textcfg": "top.config"}


def seed_command(argv, seed, subdir, placer=None):
    """The build's nextpnr command line ``argv`` with ``--seed seed``, outputs in ``subdir``
    and, if given, another placer (``heap`` is nextpnr's default: no ``--placer``)."""
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


def _build_files(build):
    """The build directory's report and nextpnr/ecppack commands; one-line errors."""
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
    report.setdefault("family", get_board(report["board"]).family)
    commands = json.loads((build / "build_top.json").read_text())["commands"]
    pnr = [c for c in commands if c[0].startswith("nextpnr-")]
    pack = [c for c in commands if c[0] in ("ecppack", "icepack")]
    if not pnr:
        raise BuildError(f"{build}: build_top.json has no nextpnr command")
    return build, report, pnr[0], pack[0] if pack else None


def _summary(report_json, period_ns, family):
    util, fmax = parse_nextpnr_report(report_json, family)
    (clock,) = fmax.values()
    row = {"fmax": clock["achieved_mhz"], "target": clock["target_mhz"], "utilization": util,
           "clocks": {net: dict(v, passed=v["achieved_mhz"] >= v["target_mhz"])
                      for net, v in fmax.items()},
           "late": None, "worst": []}
    try:
        eps = timing_endpoints(json.loads(Path(report_json).read_text()))
    except ValueError:      # built without --detailed-timing
        eps = None
    if eps is not None:
        row["late"] = sum(1 for e in eps if e[0] > period_ns)
        row["worst"] = [(round(t, 2), n, name) for t, n, name in group_endpoints(eps, period_ns)[:3]]
    return row


def sweep(build, seeds, *, jobs=2, placer=None, period_ns=10.0, pack_best=False, log=print):
    """Run the seeds; returns ``[(seed, row)]`` (``row`` None for a failed run), fastest first."""
    build, report, pnr_argv, pack_argv = _build_files(build)
    board = get_board(report["board"])
    exe = resolve_tool(pnr_argv[0])
    env = dict(os.environ)
    env.update(board.tool_env)

    def run(seed):
        subdir = f"seed{seed}"
        (build / subdir).mkdir(exist_ok=True)
        (build / subdir / "top.report.json").unlink(missing_ok=True)
        argv = [exe] + seed_command(pnr_argv[1:], seed, subdir, placer)
        start = time.monotonic()
        with open(build / subdir / "nextpnr.log", "w") as f:
            rc = subprocess.call(argv, cwd=build, stdout=f, stderr=subprocess.STDOUT, env=env)
        elapsed = time.monotonic() - start
        if rc != 0 or not (build / subdir / "top.report.json").exists():
            return seed, None, elapsed
        row = _summary(build / subdir / "top.report.json", period_ns, report["family"])
        options = " ".join(argv[1:])
        seed_report = dict(report, nextpnr_options=options, utilization=row["utilization"],
                           clocks=row["clocks"], times_s={"nextpnr": elapsed})
        (build / subdir / "report.json").write_text(json.dumps(seed_report, indent=2) + "\n")
        return seed, row, elapsed

    results = []
    log(f"{len(seeds)} seeds of {build}, {jobs} at a time (each as long as the build's nextpnr step)")
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run, s) for s in seeds]
        with tqdm(total=len(seeds), unit="seed", file=sys.stderr) as bar:
            for fut in concurrent.futures.as_completed(futures):
                seed, row, elapsed = fut.result()
                results.append((seed, row))
                bar.write(f"seed {seed}: " + (f"{row['fmax']:.1f} MHz" if row else "failed")
                          + f" ({elapsed / 60:.1f} min)", file=sys.stderr)
                bar.update()
    results.sort(key=lambda r: -(r[1]["fmax"] if r[1] else -1))
    if pack_best and results and results[0][1] and pack_argv:
        seed = results[0][0]
        argv = [resolve_tool(pack_argv[0])] + [
            f"seed{seed}/{a}" if a.startswith("top.") else a for a in pack_argv[1:]]
        if subprocess.call(argv, cwd=build, env=env, stdout=subprocess.DEVNULL) != 0:
            raise BuildError(f"{pack_argv[0]} failed for seed {seed}")
        log(f"packed {build / f'seed{seed}'}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.seed_sweep",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("build", help="an accel.build output directory (build/<board>) past synthesis")
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--jobs", type=int, default=2, help="nextpnr runs at a time (default 2)")
    parser.add_argument("--placer", choices=("heap", "static", "sa"), default=None,
                        help="override the build's placer")
    parser.add_argument("--period", type=float, default=10.0,
                        help="count endpoints later than this many ns (default 10)")
    parser.add_argument("--pack-best", action="store_true",
                        help="write the fastest seed's bitstream")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    try:
        results = sweep(args.build, args.seeds, jobs=args.jobs, placer=args.placer,
                        period_ns=args.period, pack_best=args.pack_best,
                        log=lambda msg: print(msg, file=sys.stderr))
    except (BuildError, OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"{'seed':>6} {'fmax (MHz)':>10} {'late':>6}  worst")
    for seed, row in results:
        if row is None:
            print(f"{seed:>6} {'failed':>10}")
            continue
        worst = "; ".join(f"{name} {t:.1f} ns" for t, _, name in row["worst"]) or "-"
        late = "-" if row["late"] is None else row["late"]
        print(f"{seed:>6} {row['fmax']:>10.1f} {late:>6}  {worst}")
    return 0 if any(r for _, r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
