"""Rank a routed design's timing endpoints: which registers arrive late, grouped by signal.

nextpnr reports one critical path per clock; closing timing needs the whole tail. A build with
``python -m accel.build ... --detailed-timing`` writes every endpoint's arrival time (after
routing, nextpnr's delay model) into ``top.report.json``; this tool groups the endpoints by the
signal their cell implements (Yosys names a flip-flop after the wire it drives, plus a
``_TRELLIS_FF_Q_<n>`` suffix) and lists the groups by their worst arrival:

    python -m bench.timing_endpoints build/ulx3s-85f/top.report.json --period 10

Times are arrival at the endpoint's input (clock-to-output, logic and routing; the setup time,
~0-0.3 ns on ECP5, is not included).
"""

import argparse
import json
import re
import sys
from collections import defaultdict

__all__ = ["endpoints", "group_endpoints", "main"]

_SUFFIX = re.compile(r"(_TRELLIS_FF_Q|_TRELLIS_FF|_LUT4|_PFUMX|_L6MUX21|_CCU2C|\$)[\w$.\[\]]*$")


def endpoints(report):
    """``[(arrival_ns, cell, port, clock_event)]`` of the clocked endpoints of a report (a dict).

    Only clock-to-clock paths: a net launched by an input pin (``<async>``, such as the UART's
    receive line into its synchroniser) or captured by an output pin has no period to meet."""
    if "detailed_net_timings" not in report:
        raise ValueError("no per-endpoint timing in the report: build with --detailed-timing")
    out = []
    for net in report["detailed_net_timings"]:
        if net.get("event", "").startswith("<async>"):
            continue
        for ep in net["endpoints"]:
            if ep.get("event", "").startswith("<async>"):
                continue
            delay = ep["delay"]
            out.append((max(delay) if isinstance(delay, list) else delay, ep["cell"], ep["port"],
                        ep.get("event", "")))
    return out


def _group_name(cell):
    # soc.engine.mac.inp__payload_TRELLIS_FF_Q_1802 -> soc.engine.mac.inp__payload
    name = _SUFFIX.sub("", cell)
    return re.sub(r"\.\d+(\.\d+)*$", "", name)   # block RAM tiles: bank1.0.9 -> bank1


def group_endpoints(eps, over=0.0):
    """Endpoints later than ``over`` ns, grouped: ``[(worst, count, name)]``, worst first."""
    groups = defaultdict(list)
    for t, cell, port, _ in eps:
        if t > over:
            groups[_group_name(cell)].append(t)
    return sorted(((max(ts), len(ts), name) for name, ts in groups.items()), reverse=True)


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
            eps = endpoints(json.load(f))
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
