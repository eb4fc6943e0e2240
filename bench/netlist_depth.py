"""Rough static timing of a mapped ECP5 netlist: which paths are deep, without place and route.

    python -m bench.netlist_depth build/ulx3s-85f/top.json               # summary + worst paths
    python -m bench.netlist_depth build/ulx3s-85f/top.json --paths 20 --only soc.engine.out_unit

nextpnr reports one critical path per clock, after a placement and routing that take the best
part of an hour for the 85F default. This reads the netlist Yosys writes before them
(``top.json`` in the build directory) and estimates arrival times with a coarse delay model: a
LUT4 0.4 ns, a carry cell 0.5 ns in and 0.05 ns along the chain, the slice multiplexers 0.3 ns,
block-RAM clock-to-output 4.5 ns, and per net 0.7 ns plus 0.35 ns per doubling of its fan-out
(dedicated carry nets are free). The absolute numbers are not nextpnr's; the ranking of paths and
the groups of registers behind them are what it is for: it found the paths the timing commits
of this project cut (descriptor checks -> start strobe, fetch address -> bus decoder -> ack).
"""

import argparse
import collections
import json
import math
import sys


SOURCES = {"TRELLIS_FF": 0.5, "DP16KD": 4.5, "PDPW16KD": 4.5}
ENDPOINT_CELLS = ("TRELLIS_FF", "DP16KD", "PDPW16KD", "TRELLIS_DPR16X4")
CLOCK_PORTS = {"CLK", "CLKA", "CLKB", "CLKR", "CLKW", "WCK"}


def _arc(cell_type, port_in, port_out):
    """Delay of a combinational arc of a cell (ns), or None if there is none."""
    if cell_type == "LUT4":
        return 0.4
    if cell_type == "CCU2C":
        if port_in == "CIN":
            return 0.05 if port_out == "COUT" else 0.4
        return 0.5 if port_out == "COUT" else 0.45
    if cell_type in ("PFUMX", "L6MUX21"):
        return 0.3
    if cell_type == "TRELLIS_DPR16X4":        # LUT RAM: asynchronous read
        return 1.0 if port_in.startswith("RAD") else None
    if cell_type in ("MULT18X18D", "ALU54B"):  # unregistered DSP
        return 5.0
    return None


class Netlist:
    def __init__(self, path):
        with open(path) as f:
            design = json.load(f)
        tops = [m for m in design["modules"].values() if m.get("attributes", {}).get("top")]
        mod = tops[0] if tops else design["modules"]["top"]
        self.cells = mod["cells"]
        self.names = {}
        for name, net in mod["netnames"].items():
            for b in net["bits"]:
                if isinstance(b, int) and (b not in self.names or len(name) < len(self.names[b])):
                    self.names[b] = name
        self.driver = {}
        self.fanout = collections.Counter()
        for cname, c in self.cells.items():
            for port, bits in c["connections"].items():
                out = c["port_directions"].get(port) == "output"
                for b in bits:
                    if isinstance(b, int):
                        if out:
                            self.driver[b] = (cname, port)
                        else:
                            self.fanout[b] += 1
        self.arrival, self.pred = {}, {}

    def net_delay(self, bit, port_in):
        if port_in == "CIN":
            return 0.0
        return 0.7 + 0.35 * math.log2(max(1, self.fanout[bit]))

    def _inputs(self, cname, port_out):
        c = self.cells[cname]
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) == "output":
                continue
            d = _arc(c["type"], port, port_out)
            if d is None:
                continue
            for b in bits:
                if isinstance(b, int):
                    yield b, port, d

    def arrival_of(self, bit):
        """Arrival time at ``bit`` (iterative depth-first, so deep carry chains do not recurse)."""
        stack = [(bit, False)]
        visiting = set()
        while stack:
            x, expanded = stack.pop()
            if x in self.arrival:
                continue
            drv = self.driver.get(x)
            if drv is None:
                self.arrival[x], self.pred[x] = 0.0, None
                continue
            cname, port_out = drv
            ctype = self.cells[cname]["type"]
            ins = list(self._inputs(cname, port_out))
            if ctype in SOURCES or not ins:     # a register, a RAM output, an I/O or a constant
                self.arrival[x], self.pred[x] = SOURCES.get(ctype, 0.5), None
                continue
            if not expanded:
                visiting.add(x)
                stack.append((x, True))
                stack.extend((b, False) for b, _, _ in ins
                             if b not in self.arrival and b not in visiting)
                continue
            best, via = 0.0, None
            for b, port, d in ins:
                a = self.arrival.get(b, 0.0) + self.net_delay(b, port) + d
                if a > best:
                    best, via = a, b
            self.arrival[x], self.pred[x] = best, via
        return self.arrival[bit]

    def endpoints(self):
        """``(arrival ns, cell, port, bit)`` of every register and RAM input, latest first."""
        out = []
        for cname, c in self.cells.items():
            if c["type"] not in ENDPOINT_CELLS:
                continue
            for port, bits in c["connections"].items():
                if c["port_directions"].get(port) == "output" or port in CLOCK_PORTS:
                    continue
                if c["type"] == "TRELLIS_DPR16X4" and port.startswith("RAD"):
                    continue
                for b in bits:
                    if isinstance(b, int):
                        out.append((self.arrival_of(b) + self.net_delay(b, port), cname, port, b))
        out.sort(reverse=True)
        return out

    def path(self, bit):
        steps = []
        while bit is not None:
            drv = self.driver.get(bit)
            steps.append((self.arrival[bit], self.names.get(bit, str(bit)),
                          self.cells[drv[0]]["type"] if drv else "input"))
            bit = self.pred.get(bit)
        return steps[::-1]


def group_of(cell_name):
    """The register a mapped cell belongs to (Yosys names cells after the net they drive)."""
    for cut in ("_TRELLIS", "_DP16KD", "_PDPW16KD"):
        cell_name = cell_name.split(cut)[0]
    return cell_name.rstrip("0123456789")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.netlist_depth", description=__doc__.split("\n")[0])
    ap.add_argument("netlist", help="Yosys JSON of the mapped design (build/<board>/top.json)")
    ap.add_argument("--period", type=float, default=20.0, help="clock period to count against (ns)")
    ap.add_argument("--paths", type=int, default=8, help="worst paths to print (one per register group)")
    ap.add_argument("--only", default=None, help="comma-separated register-name prefixes")
    args = ap.parse_args(argv)
    try:
        net = Netlist(args.netlist)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {args.netlist}: cannot read a Yosys JSON netlist ({exc})", file=sys.stderr)
        return 1
    ends = net.endpoints()
    late = [e for e in ends if e[0] > args.period]
    print(f"{len(ends):,} endpoints; {len(late):,} estimated beyond {args.period:g} ns; "
          f"latest {ends[0][0]:.1f} ns" if ends else "no endpoints")
    groups = collections.Counter(group_of(cell) for _, cell, _, _ in late)
    for name, n in groups.most_common(25):
        print(f"  {n:6,}  {name}")
    only = args.only.split(",") if args.only else None
    seen = set()
    for t, cell, port, bit in ends:
        if len(seen) >= args.paths:
            break
        g = group_of(cell)
        if g in seen or (only and not any(cell.startswith(p) for p in only)):
            continue
        seen.add(g)
        print(f"\n{t:.1f} ns -> {cell}.{port}")
        steps = net.path(bit)
        if len(steps) > 14:
            steps = steps[:4] + [None] + steps[-9:]
        for s in steps:
            print("     ..." if s is None else f"  {s[0]:6.1f}  {s[1][:100]}  [{s[2]}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
