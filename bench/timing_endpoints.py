"""Rank a routed design's timing endpoints: which registers arrive late, grouped by signal.

nextpnr reports one critical path per clock; closing timing needs the whole tail. A build with
``python -m accel.build ... --detailed-timing`` writes every endpoint's arrival time (after
routing, nextpnr's delay model) into ``top.report.json``; this tool groups the endpoints by the
signal their cell implements (Yosys names a flip-flop after the wire it drives, plus a
``_TRELLIS_FF_Q_<n>`` suffix; ``accel.toolchain_reports.group_endpoints``) and lists the groups by
their worst arrival:

    python -m bench.timing_endpoints build/ulx3s-85f/top.report.json --period 10

Times are arrival at the endpoint's input (clock-to-output, logic and routing; the setup time,
~0-0.3 ns on ECP5, is not included).
"""

import argparse
import json
import sys

from accel.toolchain_reports import timing_endpoints, group_endpoints

__all__ = ["main"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.timing_endpoints",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("report", help="nextpnr --report JSON of a --detailed-timing build")
    parser.add_argument("--period", type=float, default=10.0,
                        help="list endpoints arriving later than this many ns (default 10)")
    parser.add_argument("--top", type=int, default=40, help="groups to list (default 40)")
    args = parser.parse_args(argv)
    try:
        with open(args.report) as f:
            eps = timing_endpoints(json.load(f))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {args.report}: {exc}", file=sys.stderr)
        return 1
    late = [e for e in eps if e[0] > args.period]
    worst = max((e[0] for e in eps), default=0.0)
    print(f"{len(eps):,} endpoints, worst arrival {worst:.2f} ns; {len(late):,} later than "
          f"{args.period:g} ns")
    groups = group_endpoints(eps, args.period)
    for t, n, name in groups[:args.top]:
        print(f"{t:7.2f} ns {n:6,}  {name}")
    if len(groups) > args.top:
        print(f"... {len(groups) - args.top} more groups")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
