"""Place and route a finished build's netlist with more nextpnr seeds; rank them, keep the fastest.

Placement alone moves the 64x32 SoC's fmax by 10-15 % between seeds (docs/BENCHMARKS.md, "Timing
closure"). ``python -m accel.build --seeds N`` sweeps seeds inside a build; this tool reuses the
netlist of a ``python -m accel.build`` directory (``top.json``, block-RAM output registers already
merged; the build's own nextpnr may still be running) and runs only nextpnr (``accel.seed_sweep``),
``--jobs`` at a time, with the build's own options except the seed (and, optionally, the placer):

    python -m bench.seed_sweep build/ulx3s-85f --seeds 1 2 3 4 --jobs 2 --pack-best

Each seed's results go to ``<build>/seed<N>/`` (``top.config``, ``top.report.json``, ``top.tim``,
and a ``report.json`` like accel.build's, which ``bench.timing_closure`` reads); the table lists
fmax, the endpoints later than ``--period`` and the worst signal groups. ``--pack-best`` packs the
fastest seed's bitstream (``seed<N>/top.bit``).
"""

import argparse
import sys

from accel.build import BuildError
from accel.seed_sweep import seed_command, sweep

__all__ = ["seed_command", "sweep", "main"]


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
        # progress: a line per finished seed and every 30 s (accel.seed_sweep.run_seeds)
        results = sweep(args.build, args.seeds, jobs=args.jobs, placer=args.placer,
                        period_ns=args.period, pack_best=args.pack_best,
                        log=lambda msg: print(msg, file=sys.stderr, flush=True))
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
