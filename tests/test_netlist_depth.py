"""bench.netlist_depth ranks paths of a mapped ECP5 netlist: a chain of adders before a register
comes out deeper than a register-to-register wire, and the path names the registers."""

import json
import os
import subprocess

import pytest

from amaranth.hdl import Module, Signal
from amaranth.back import rtlil

from accel.build import resolve_tool
from bench import netlist_depth as ND


def _design():
    m = Module()
    a, b, c = Signal(16, name="src_a"), Signal(16, name="src_b"), Signal(16, name="src_c")
    deep, shallow = Signal(16, name="deep_q"), Signal(16, name="shallow_q")
    x = Signal(16, name="in_x")
    m.d.sync += [a.eq(x), b.eq(a), c.eq(b), shallow.eq(a), deep.eq(((a + b) ^ c) + (a * 3) + c)]
    return m, [x, deep, shallow]


@pytest.fixture(scope="module")
def netlist(tmp_path_factory):
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    tmp = tmp_path_factory.mktemp("depth")
    m, ports = _design()
    (tmp / "top.il").write_text(rtlil.convert(m, ports=ports, name="top"))
    subprocess.run([resolve_tool("yosys"), "-q", "-p", "read_rtlil top.il; synth_ecp5 -top top -nowidelut "
                    "-json top.json"], cwd=tmp, check=True, capture_output=True)
    return tmp / "top.json"


def test_ranks_the_adder_chain_first(netlist, capsys):
    net = ND.Netlist(netlist)
    ends = net.endpoints()
    t_deep = max(t for t, cell, port, _ in ends if ND.group_of(cell).startswith("deep_q"))
    t_shallow = max(t for t, cell, port, _ in ends if ND.group_of(cell).startswith("shallow_q"))
    assert t_deep > t_shallow + 2.0
    assert ND.group_of(ends[0][1]).startswith("deep_q")
    steps = net.path(ends[0][3])
    assert steps[0][2] == "TRELLIS_FF" and len(steps) > 3
    assert ND.main([str(netlist), "--period", "1", "--paths", "1"]) == 0
    out = capsys.readouterr().out
    assert "deep_q" in out and "endpoints" in out


def test_bad_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    assert ND.main([str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read" in err
