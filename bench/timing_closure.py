"""A series of builds of one design, side by side: the "Timing closure" section of BENCHMARKS.md.

Each build is a ``python -m accel.build ... --detailed-timing --build-dir <dir>`` output directory
(``<dir>/<board>/report.json`` and ``top.report.json``); the table gives per build the fmax,
resources, the flip-flops moved into block-RAM output registers, how many timing endpoints
arrive later than the period of the goal (10 ns = 100 MHz) and the worst signal groups
(``bench.timing_endpoints``):

    python -m bench.timing_closure --board ulx3s-85f --goal-mhz 100 \\
        "build/s8_64a=eb797c7: before" "build/s8_64b=0889018: output registers" ...
"""

import argparse
import json
import re
import sys
from pathlib import Path

from accel.toolchain_reports import timing_endpoints, group_endpoints

from .report import write_section, machine, table

__all__ = ["summarise", "main"]


def summarise(build_dir, board, period_ns):
    """Figures of one build directory (a dict)."""
    out = Path(build_dir) / board
    if not (out / "report.json").exists() and (Path(build_dir) / "report.json").exists():
        out = Path(build_dir)      # a bench.seed_sweep result (build/<board>/seed<N>)
    report = json.loads((out / "report.json").read_text())
    (clock,) = report["clocks"].values()
    options = report.get("nextpnr_options", "")
    placer = re.search(r"--placer (\w+)", options)
    row = {"fmax": clock["achieved_mhz"], "target": clock.get("target_mhz"),
           # accel.build names the placer unless it is nextpnr's default, HeAP
           "placer": placer.group(1) if placer else "heap",
           "lut4": report["utilization"]["LUT4"]["used"],
           "ff": report["utilization"]["FF"]["used"],
           "outreg": report.get("outreg", {}).get("merged_ffs"),
           "seed": report.get("nextpnr_options", ""), "late": None, "worst": []}
    detailed = out / "top.report.json"
    if detailed.exists():
        try:
            eps = timing_endpoints(json.loads(detailed.read_text()))
        except ValueError:
            eps = None
        if eps is not None:
            row["late"] = sum(1 for e in eps if e[0] > period_ns)
            row["worst"] = group_endpoints(eps, period_ns)[:3]
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.timing_closure",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs="+", metavar="DIR=LABEL",
                        help="a build directory and its label (revision and what changed)")
    parser.add_argument("--board", default="ulx3s-85f")
    parser.add_argument("--goal-mhz", type=float, default=100.0)
    parser.add_argument("--note", default="", help="text after the table")
    args = parser.parse_args(argv)
    period = 1000.0 / args.goal_mhz
    rows = []
    for spec in args.builds:
        build_dir, _, label = spec.partition("=")
        try:
            s = summarise(build_dir, args.board, period)
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {build_dir}: {exc}", file=sys.stderr)
            return 1
        seed = s["seed"].split("--seed ")[1].split()[0] if "--seed " in s["seed"] else "-"
        worst = "; ".join(f"`{name}` {t:.1f} ns" for t, _, name in s["worst"]) or "-"
        target = "-" if s["target"] is None else f"{s['target']:g}"
        rows.append([label or build_dir, f"{s['fmax']:.1f}", target, s["placer"], seed,
                     f"{s['lut4']:,}",
                     f"{s['ff']:,}", "-" if s["outreg"] is None else f"{s['outreg']:,}",
                     "-" if s["late"] is None else f"{s['late']:,}", worst])
    lines = [
        f"Builds of one design along a series of changes, board {args.board} (`python -m "
        f"accel.build --board {args.board} ... --detailed-timing`), side by side. fmax: "
        f"nextpnr's estimate after routing; target: the clock constraint nextpnr placed and "
        f"routed for (its timing-driven placement and routing work towards it: a build for "
        f"the board's 40 MHz clock ends lower than the same netlist built for 100 MHz); "
        f"placer: nextpnr's placer; late: timing endpoints (flip-flop and block-RAM "
        f"inputs) whose arrival exceeds the {period:g} ns period of the {args.goal_mhz:g} MHz "
        f"goal, from nextpnr's per-endpoint report; worst: the latest signal groups "
        f"(`python -m bench.timing_endpoints`); output registers: flip-flops moved into block "
        f"RAMs (`accel/bram_outreg.py`). Placement alone moves fmax by about 10 % between "
        f"netlists and seeds. Machine: {machine()}.", "",
        *table(["build", "fmax (MHz)", "target (MHz)", "placer", "seed", "LUT4", "FF",
                "output registers", "late", "worst"], rows),
    ]
    if args.note:
        lines += ["", args.note]
    write_section("Timing closure", lines)
    print("wrote the Timing closure section of docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
