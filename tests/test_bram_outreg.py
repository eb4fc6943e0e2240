"""accel.bram_outreg: registers after ECP5 block RAMs become their output registers.

Small memories are synthesised by Yosys (``synth_ecp5``, from PyPI); the pass runs on the JSON
netlist. The structure it produces is checked, the cases it must leave alone are left alone, and
nextpnr and ecppack take the result (with the block RAM's 1 ns clock-to-output in nextpnr's
timing).
"""

import json
import subprocess

import pytest
from amaranth.hdl import Module, Signal
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from accel import build as B
from accel.synthesis import NO_COLLISIONS, YOSYS_SCRIPT_AFTER_READ
from accel.bram_outreg import merge_output_registers, main


class _ReadRegister(wiring.Component):
    """A memory and a register after its read port, in one of several forms (``kind``)."""

    def __init__(self, width, depth, kind):
        self.width, self.depth, self.kind = width, depth, kind
        super().__init__({"waddr": In(range(depth)), "wdata": In(width), "wen": In(1),
                          "raddr": In(range(depth)), "en": In(1), "q": Out(width),
                          "raw": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self.width, depth=self.depth, init=[],
                                        attrs=NO_COLLISIONS)
        wp, rp = mem.write_port(), mem.read_port()
        m.d.comb += [wp.addr.eq(self.waddr), wp.data.eq(self.wdata), wp.en.eq(self.wen),
                     rp.addr.eq(self.raddr)]
        q = Signal(self.width, reset_less=self.kind != "reset")
        if self.kind == "enable":
            with m.If(self.en):
                m.d.sync += q.eq(rp.data)
        elif self.kind == "logic":
            m.d.sync += q.eq(rp.data ^ self.wdata)
        else:
            m.d.sync += q.eq(rp.data)
        if self.kind == "fanout":
            m.d.comb += self.raw.eq(rp.data)
        m.d.comb += self.q.eq(q)
        return m


def _synth(tmp_path, width, depth, kind):
    (tmp_path / "top.il").write_text(rtlil.convert(_ReadRegister(width, depth, kind), name="top"))
    subprocess.run([B.resolve_tool("yosys"), "-q", "-p",
                    f"read_rtlil top.il; {YOSYS_SCRIPT_AFTER_READ.replace(chr(10), '; ')}; "
                    "synth_ecp5 -top top -json top.json"],
                   cwd=tmp_path, check=True)
    return json.loads((tmp_path / "top.json").read_text())


def _cells(netlist, kind):
    return {n: c for n, c in netlist["modules"]["top"]["cells"].items() if c["type"] == kind}


def _q_bits(netlist):
    return netlist["modules"]["top"]["ports"]["q"]["bits"]


@pytest.mark.parametrize("width,depth,ports", [(16, 1024, "B"), (36, 512, "AB")],
                         ids=["18-bit", "36-bit-pdp"])
@pytest.mark.parametrize("kind", ["plain", "enable"])
def test_register_becomes_output_register(tmp_path, width, depth, ports, kind):
    netlist = _synth(tmp_path, width, depth, kind)
    ffs_before = len(_cells(netlist, "TRELLIS_FF"))
    stats = merge_output_registers(netlist)
    assert stats["merged_ports"] == 1 and stats["merged_ffs"] == width
    assert len(_cells(netlist, "TRELLIS_FF")) == ffs_before - width
    (ram,) = _cells(netlist, "DP16KD").values()
    for p in "AB":
        assert ram["parameters"][f"REGMODE_{p}"] == ("OUTREG" if p in ports else "NOREG")
    # every bit of q is now driven by a read-data pin of the block RAM
    driven = {ram["connections"][pin][0] for pin in ram["connections"] if pin.startswith("DO")}
    assert set(_q_bits(netlist)) <= driven
    for p in ports:
        oce = ram["connections"][f"OCE{p}"][0]
        # a register with an enable gets it as the output clock enable
        assert (oce == "1") == (kind == "plain")


@pytest.mark.parametrize("kind,why", [("reset", "flip-flop with a set/reset"),
                                      ("logic", "read data into logic"),
                                      ("fanout", "read data with several loads")])
def test_other_registers_are_left_alone(tmp_path, kind, why):
    netlist = _synth(tmp_path, 16, 1024, kind)
    before = json.dumps(netlist, sort_keys=True)
    stats = merge_output_registers(netlist)
    assert stats["merged_ports"] == 0 and stats["rejected"] == {why: 1}
    assert json.dumps(netlist, sort_keys=True) == before


def test_nextpnr_and_ecppack_take_the_output_register(tmp_path):
    """Placed, routed and packed: the critical path starts at the block RAM's register."""
    _synth(tmp_path, 16, 1024, "plain")
    assert main([str(tmp_path / "top.json")]) == 0
    subprocess.run([B.resolve_tool("nextpnr-ecp5"), "--25k", "--package", "CABGA381",
                    "--json", "top.json", "--textcfg", "top.config", "--report", "rep.json",
                    "--freq", "100", "--quiet", "--log", "pnr.log"], cwd=tmp_path, check=True)
    subprocess.run([B.resolve_tool("ecppack"), "top.config", "top.bit"], cwd=tmp_path, check=True)
    assert (tmp_path / "top.bit").stat().st_size > 0
    report = json.loads((tmp_path / "rep.json").read_text())
    starts = [seg for path in report["critical_paths"] for seg in path["path"]
              if seg["type"] == "clk-to-q" and "mem" in seg["from"]["cell"]]
    assert starts and all(seg["delay"] < 2.0 for seg in starts)


def test_cli_error_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{}")
    assert main([str(tmp_path / "bad.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
