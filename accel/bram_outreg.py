"""Merge the flip-flops that register an ECP5 block RAM's read data into its output register.

An ECP5 block RAM (``DP16KD``) has an optional output register (``REGMODE_A``/``REGMODE_B`` =
``"OUTREG"``, enabled by ``OCEA``/``OCEB``). Without it the read data leaves the block 5.83 ns
after the clock (nextpnr's model for the -6 speed grade); with it, 0.96 ns. Yosys' ``synth_ecp5``
never uses the register: its block-RAM map (``brams_16kd.txt``) has no option for it, so a read
port followed by a register becomes a ``DP16KD`` with ``NOREG`` plus a row of ``TRELLIS_FF``\\ s,
and every path from a block RAM starts with the 5.83 ns. Gateware that wants the fast output
therefore registers the read data directly, with nothing between the read port and the register
(no multiplexer, reset or initial value: ``Signal(reset_less=True)``, assigned in ``sync``), and
the build runs :func:`merge_output_registers` on Yosys' JSON netlist before nextpnr: it moves
each such row of flip-flops into the block RAM that feeds it.

A port's flip-flops merge only when the merge keeps the netlist's behaviour cycle for cycle:

* every read-data pin of the port that drives anything drives exactly one load, the ``DI`` of a
  ``TRELLIS_FF``, and no top-level port;
* the flip-flops have the block RAM port's clock (``CLKMUX`` ``CLK``), no set/reset (``LSR``
  constant 0), ``GSR`` disabled and a 0 initial value (``REGSET`` ``RESET``: the output register
  also powers up as 0), and all the same clock enable (constant 1, or one net, not inverted),
  which becomes the port's ``OCE``;
* the port has no output register yet and its ``RST`` is constant 0.

In the 36-bit pseudo-dual-port mode Yosys uses for wide memories (``DATA_WIDTH_B`` 36, port B
reads, the 36 data bits come out on ``DOA0..17`` and ``DOB0..17``), both halves merge together
or not at all, and both ports get ``OUTREG`` and the same ``OCE``, as Lattice's ``PDPW16KD`` maps.
"""

import json
from collections import defaultdict
from pathlib import Path

__all__ = ["merge_output_registers", "main"]


def _width(param):
    """A Yosys JSON integer parameter (a binary string, or an int)."""
    return int(param, 2) if isinstance(param, str) else int(param)


def _const(bit):
    return isinstance(bit, str)


def merge_output_registers(netlist, top=None):
    """Merge block-RAM output registers in a Yosys JSON netlist (a dict), in place.

    Returns ``{"merged_ports": n, "merged_ffs": n, "block_rams": n, "rejected": {why: n}}``.
    """
    modules = netlist["modules"]
    if top is None:
        tops = [name for name, mod in modules.items()
                if _width(mod.get("attributes", {}).get("top", "0"))]
        if len(tops) != 1:
            raise ValueError(f"cannot tell the top module among {len(tops)} candidates")
        top = tops[0]
    mod = modules[top]
    cells = mod["cells"]

    loads = defaultdict(list)           # bit -> [(cell name, port)]
    for name, cell in cells.items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            if dirs.get(port, "input") != "output":
                for bit in bits:
                    if not _const(bit):
                        loads[bit].append((name, port))
    port_bits = set()                   # bits seen outside the module
    for port in mod.get("ports", {}).values():
        port_bits.update(b for b in port["bits"] if not _const(b))

    stats = {"merged_ports": 0, "merged_ffs": 0, "block_rams": 0, "rejected": defaultdict(int)}

    def ff_group(ram, pins, clock):
        """The (pin, flip-flop) pairs of ``pins`` and their clock enable, or a reason."""
        pairs, enables = [], set()
        for pin in pins:
            bit = ram["connections"][pin][0]
            if _const(bit) or (not loads[bit] and bit not in port_bits):
                continue                            # unused output
            if bit in port_bits or len(loads[bit]) != 1:
                return None, "read data with several loads"
            ff_name, ff_port = loads[bit][0]
            ff = cells[ff_name]
            if ff["type"] != "TRELLIS_FF" or ff_port != "DI":
                return None, "read data into logic"
            p, c = ff["parameters"], ff["connections"]
            if c["CLK"] != clock or p.get("CLKMUX", "CLK") != "CLK":
                return None, "flip-flop on another clock"
            if c.get("LSR", ["0"]) != ["0"]:
                return None, "flip-flop with a set/reset"
            if p.get("GSR", "ENABLED") != "DISABLED" or p.get("REGSET", "RESET") != "RESET":
                return None, "flip-flop with a non-zero initial value"
            cemux = p.get("CEMUX", "1").strip()
            if cemux == "1":
                enables.add("1")
            elif cemux == "CE":
                enables.add(c["CE"][0])
            else:
                return None, "flip-flop with an inverted enable"
            pairs.append((pin, ff_name))
        if len(enables) > 1:
            return None, "flip-flops with different enables"
        return (pairs, enables.pop() if enables else "1"), None

    for ram_name in [n for n, c in cells.items() if c["type"] == "DP16KD"]:
        ram = cells[ram_name]
        stats["block_rams"] += 1
        conn, params = ram["connections"], ram["parameters"]
        pdp = _width(params.get("DATA_WIDTH_B", 18)) == 36
        groups = [("A", "B")] if pdp else [("A",), ("B",)]
        for ports in groups:
            if pdp and conn["CLKA"] != conn["CLKB"]:
                stats["rejected"]["36-bit mode with two clocks"] += 1
                continue
            if any(params.get(f"REGMODE_{p}", "NOREG") != "NOREG" for p in ports):
                stats["rejected"]["output register already used"] += 1
                continue
            if any(conn[f"RST{p}"] != ["0"] for p in ports):
                stats["rejected"]["port with a reset"] += 1
                continue
            pins = [f"DO{p}{i}" for p in ports for i in range(18)]
            group, why = ff_group(ram, pins, conn[f"CLK{ports[-1]}"])
            if why is not None:
                stats["rejected"][why] += 1
                continue
            pairs, enable = group
            if not pairs:
                continue                            # a write-only port
            for pin, ff_name in pairs:
                conn[pin] = list(cells[ff_name]["connections"]["Q"])
                del cells[ff_name]
            for p in ports:
                params[f"REGMODE_{p}"] = "OUTREG"
                conn[f"OCE{p}"] = [enable]
            stats["merged_ports"] += 1
            stats["merged_ffs"] += len(pairs)
    stats["rejected"] = dict(stats["rejected"])
    return stats


def merge_file(path, log=print):
    """:func:`merge_output_registers` on a JSON file, rewritten in place; returns the stats."""
    path = Path(path)
    netlist = json.loads(path.read_text())
    stats = merge_output_registers(netlist)
    path.write_text(json.dumps(netlist))
    rejected = ", ".join(f"{n} {why}" for why, n in sorted(stats["rejected"].items()))
    log(f"[outreg] {stats['merged_ffs']} flip-flops merged into the output registers of "
        f"{stats['merged_ports']} block-RAM ports ({stats['block_rams']} block RAMs)"
        + (f"; left: {rejected}" if rejected else ""))
    return stats


def main(argv=None):
    import argparse
    import sys
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("netlist", help="Yosys JSON netlist (synth_ecp5 output), rewritten in place")
    args = parser.parse_args(argv)
    try:
        merge_file(args.netlist)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {args.netlist}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
