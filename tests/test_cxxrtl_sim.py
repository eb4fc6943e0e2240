# amaranth: UnusedElaboratable=no
"""The compiled simulator (CXXRTL, and its Verilator variant) against Amaranth's simulator: the same
operations give the same results, the same memory contents and the same cycle counts."""

import asyncio

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from firmware.cxxrtl_sim import CxxrtlTransport, CxxrtlSim, mangle, build, CxxrtlError
from firmware.sim_transport import PySimTransport
from firmware.transport import TransportError

from standin_soc import StandInSoC, ID_VALUE, VERSION_VALUE


MEM_WORDS = 1024
CSR = 0x1000_0000


@pytest.fixture(scope="module", params=["cxxrtl", "verilator"])
def cxx(request):
    return CxxrtlTransport(StandInSoC(MEM_WORDS), backend=request.param, quiet=True)


def test_mangle():
    assert mangle("host__cyc") == "p_host____cyc"
    assert mangle("clk") == "p_clk"
    assert mangle("a.b") == "p_a_2e_b"


def test_build_is_cached(cxx):
    assert build(StandInSoC(MEM_WORDS), backend=cxx.backend, quiet=True) == cxx.lib_path
    assert build(StandInSoC(MEM_WORDS * 2), backend=cxx.backend, quiet=True) != cxx.lib_path


def test_missing_port_is_one_line():
    from amaranth.lib import wiring
    from amaranth.lib.wiring import Out
    from amaranth import Module

    class NoHost(wiring.Component):
        irq: Out(1)
        def elaborate(self, platform):
            return Module()

    with pytest.raises(TypeError, match="'host'"):
        CxxrtlTransport(NoHost())


def run(coro):
    return asyncio.run(coro)


def test_basic_transfers(cxx):
    cxx.sim.reset()
    assert run(cxx.read_words(CSR, 2)) == [ID_VALUE, VERSION_VALUE]
    run(cxx.write_words(10, [1, 2, 0xFFFF_FFFF]))
    assert run(cxx.read_words(10, 3)) == [1, 2, 0xFFFF_FFFF]
    with pytest.raises(TransportError, match="0x00000800"):
        run(cxx.read_words(2048, 1))
    with pytest.raises(TransportError, match="0x00000400"):
        run(cxx.write_words(1022, [1, 2, 3]))
    # The words before the failing one were written.
    assert run(cxx.read_words(1022, 2)) == [1, 2]


def _program(n_wait, err, index, src, dst, count):
    return [1 | (n_wait << 4) | (err << 16) | (index << 24), src, dst, count, 0, 0, 0, 0] + [0] * 8


# One operation on both simulators: (kind, arguments).
ops = st.one_of(
    st.tuples(st.just("write"), st.integers(0, MEM_WORDS - 8),
              st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6)),
    st.tuples(st.just("write_csr"), st.sampled_from([0x7, 0x8, 0x9, 0xC, 0xF]),
              st.integers(0, 2**32 - 1)),
    st.tuples(st.just("read"), st.one_of(st.integers(0, MEM_WORDS - 4),
                                         st.integers(CSR, CSR + 15),
                                         st.integers(MEM_WORDS, MEM_WORDS + 4)),
              st.integers(1, 4)),
    st.tuples(st.just("run"), st.integers(0, 30), st.sampled_from([0, 0, 3, 5]),
              st.integers(0, 7), st.integers(512, 600), st.integers(600, 700),
              st.integers(0, 8), st.booleans()),
    st.tuples(st.just("wait"), st.integers(0, 60)),
)


async def apply(t, op):
    kind = op[0]
    try:
        if kind == "write":
            await t.write_words(op[1], op[2])
            return None
        if kind == "write_csr":
            await t.write_words(CSR + op[1], [op[2]])
            return None
        if kind == "read":
            return await t.read_words(op[1], op[2])
        if kind == "run":
            _, n_wait, err, index, src, dst, count, in_window = op
            await t.write_words(256, _program(n_wait, err, index, src, dst, count))
            await t.write_words(CSR + 0x7, [256])
            await t.write_words(CSR + 0x8, [0 if in_window else 300, MEM_WORDS])
            await t.write_words(CSR + 0x4, [1])
            return None
        if kind == "wait":
            return await t.wait_irq_cycles(op[1])
    except TransportError as exc:
        return ("error", str(exc))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ops, min_size=1, max_size=12))
def test_same_as_pysim(cxx, sequence):
    cxx.sim.reset()
    py = PySimTransport(StandInSoC(MEM_WORDS), backdoor=False)

    async def both():
        for op in sequence:
            a = await apply(py, op)
            b = await apply(cxx, op)
            assert a == b, op
            assert py.cycles == cxx.cycles, op
        # The whole memory ends up the same (read through the bus on both).
        assert await py.read_words(512, 200) == await cxx.read_words(512, 200)
    run(both())


def test_copy_and_counters(cxx):
    """A run of the stand-in engine, checked against its specification (so that agreement above is
    not agreement on nothing)."""
    cxx.sim.reset()

    async def go():
        await cxx.write_words(600, [5, 6, 7])
        await cxx.write_words(256, _program(10, 0, 0, 600, 700, 3))
        await cxx.write_words(CSR + 0x7, [256])
        await cxx.write_words(CSR + 0x8, [0, MEM_WORDS])
        await cxx.write_words(CSR + 0x4, [1])
        fired, n = await cxx.wait_irq_cycles(1000)
        assert fired and 10 < n < 40
        assert await cxx.read_words(700, 3) == [6, 7, 8]
        status, error = await cxx.read_words(CSR + 0x5, 2)
        assert status == 0b010 and error == 0
        assert not (await cxx.wait_irq_cycles(0) == (False, 0))
    run(go())


def test_timeout_returns(cxx):
    cxx.sim.reset()
    # No run started: irq never rises, wait_irq returns after exactly the budget.
    assert run(cxx.wait_irq_cycles(500)) == (False, 500)
    c = cxx.cycles
    assert run(cxx.wait_irq(100)) is False
    assert cxx.cycles == c + 101       # the idle cycle that begins every operation + 100


def test_closed_transport_raises():
    t = CxxrtlTransport(StandInSoC(MEM_WORDS), quiet=True)
    run(t.close())
    with pytest.raises(TransportError, match="closed"):
        run(t.read_words(0, 1))


# The real SoC (accel/soc.py) on the TINY configuration ------------------------------------------

def _tiny_workload():
    import numpy as np
    from contract.config import TINY
    from firmware.compiler import compile_model
    from model.random_deploy import random_deploy
    d = random_deploy(1, channels=1, height=8, width=8, num_classes=4, max_convs=2,
                       chan_choices=(8, 16))
    images = np.random.default_rng(0).integers(0, 256, size=(2, 1, 8, 8), dtype=np.uint8)
    return d, compile_model(d, TINY), images


@pytest.fixture(scope="module", params=["cxxrtl", "verilator"])
def soc_tiny(request):
    from contract.config import TINY
    from accel.soc import SoC
    t = CxxrtlTransport(SoC(TINY), backend=request.param, quiet=True)
    from firmware.fast_models import mac_array_fingerprint, VALIDATED_MAC_ARRAY
    if mac_array_fingerprint() == VALIDATED_MAC_ARRAY:
        assert t.fast_models == ["engine.mac"]   # so the check below covers FastMACArray too
    return t


def test_soc_same_as_pysim(soc_tiny):
    """A parameter load and two images through the driver: identical results, counters, cycle
    counts and memory contents in Amaranth's simulator (real MACArray) and the compiled one
    (FastMACArray)."""
    from contract.config import TINY
    from accel.soc import SoC
    from firmware.driver import Accelerator
    from model import golden

    deploy, compiled, images = _tiny_workload()
    soc_tiny.sim.reset()
    py = PySimTransport(SoC(TINY), backdoor=False)     # bus transfers only, as the compiled sim

    async def session(t):
        acc = Accelerator(t)
        trace = [await acc.identify()]
        await acc.load(compiled)
        trace.append(t.cycles)
        for img in images:
            trace.append(await acc.run_image(img, compiled))
            trace.append(t.cycles)
        trace.append(await t.read_words(compiled.window_base,
                                        compiled.window_limit - compiled.window_base))
        return trace

    a = run(session(py))
    b = run(session(soc_tiny))
    assert a == b
    ref = golden.run(deploy, images, keep_tensors=False).logits_int
    assert [r.logits_int for r in a[2:-1:2]] == ref.tolist()


# The simulation model of the MAC array ------------------------------------------------------------

@settings(max_examples=12, deadline=None)
@given(st.sampled_from([(4, 8, 2, 16, 0, 2), (3, 16, 1, 14, 3, 1), (2, 24, 3, 20, 2, 2),
                        (2, 32, 2, 18, 5, 2), (2, 72, 2, 20, 0, 3)]),
       st.integers(0, 2**32 - 1))
def test_fast_mac_array_is_cycle_exact(params, seed):
    """FastMACArray against MACArray in one simulation: same inputs, random valid and ready
    stalls; every output compared in every cycle."""
    import random
    from amaranth.hdl import Module
    from amaranth.sim import Simulator
    from accel.mac_array import MACArray
    from firmware.fast_models import FastMACArray

    p_o, p_i, nb, acc_bits, tag_bits, lps = params
    rng = random.Random(seed)
    m = Module()
    m.submodules.ref = ref = MACArray(p_o, p_i, nb, acc_bits, tag_bits=tag_bits, levels_per_stage=lps,
                                      act_fanout=1 + seed % 2)   # a copy per output, or per two
    m.submodules.fast = fast = FastMACArray(p_o, p_i, nb, acc_bits, tag_bits=tag_bits,
                                            levels_per_stage=lps)
    assert fast.latency == ref.latency
    sim = Simulator(m)
    sim.add_clock(1e-6)
    width = len(ref.inp.payload.as_value())

    async def bench(ctx):
        outputs = 0
        for cycle in range(300):
            valid = rng.random() < 0.7
            payload = rng.getrandbits(width)
            ready = rng.random() < 0.6
            for dut in (ref, fast):
                ctx.set(dut.inp.valid, valid)
                ctx.set(dut.inp.payload.as_value(), payload)
                ctx.set(dut.out.ready, ready)
            assert ctx.get(fast.inp.ready) == ctx.get(ref.inp.ready), cycle
            assert ctx.get(fast.out.valid) == ctx.get(ref.out.valid), cycle
            if ctx.get(ref.out.valid):
                outputs += 1
                assert (ctx.get(fast.out.payload.as_value()) ==
                        ctx.get(ref.out.payload.as_value())), cycle
            await ctx.tick()
        assert outputs > 5
    sim.add_testbench(bench)
    sim.run()


# The cache key of the SoC's simulator ---------------------------------------------------------------

def test_design_key_follows_configuration_and_sources(tmp_path):
    """``design_key`` (what a run with a built simulator computes instead of elaborating the SoC)
    changes with the configuration, the MAC-array model, the backend and any design source."""
    from contract.config import TINY, SMALL
    from firmware.cxxrtl_sim import design_key, DESIGN_SOURCES, REPO_ROOT
    for pattern in DESIGN_SOURCES:
        for path in REPO_ROOT.glob(pattern):
            copy = tmp_path / path.relative_to(REPO_ROOT)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(path.read_bytes())
    key = design_key(TINY, backend="cxxrtl", root=tmp_path)
    assert key == design_key(TINY, backend="cxxrtl")          # the same files as the repository's
    assert design_key(SMALL, backend="cxxrtl", root=tmp_path) != key
    assert design_key(TINY.replace(acc_bits=TINY.acc_bits + 1), backend="cxxrtl", root=tmp_path) != key
    assert design_key(TINY, backend="cxxrtl", fast_models=False, root=tmp_path) != key
    assert design_key(TINY, backend="verilator", root=tmp_path) != key
    for source in ("accel/engine.py", "contract/isa.py", "firmware/fast_models.py",
                   "firmware/cxxrtl/harness.cc"):
        edited = tmp_path / source
        original = edited.read_bytes()
        edited.write_bytes(original + b"\n// edited\n" if source.endswith(".cc") else
                           original + b"\n# edited\n")
        assert design_key(TINY, backend="cxxrtl", root=tmp_path) != key, source
        edited.write_bytes(original)
    assert design_key(TINY, backend="cxxrtl", root=tmp_path) == key
    (tmp_path / "accel" / "new_unit.py").write_text("X = 1\n")
    assert design_key(TINY, backend="cxxrtl", root=tmp_path) != key
    with pytest.raises(TypeError, match="AccelConfig"):
        design_key("tiny")


def test_built_soc_loads_without_elaborating(monkeypatch):
    """A transport for a configuration whose simulator is built does not elaborate the SoC."""
    import accel.soc
    from contract.config import TINY
    from firmware.driver import Accelerator
    first = CxxrtlTransport(TINY, backend="cxxrtl", quiet=True)
    run(first.close())

    def no_elaboration(*args, **kwargs):
        raise AssertionError("the SoC was elaborated although its simulator is built")
    monkeypatch.setattr(accel.soc, "SoC", no_elaboration)
    again = CxxrtlTransport(TINY, backend="cxxrtl", quiet=True)
    assert again.lib_path == first.lib_path and again.fast_models == first.fast_models
    info = run(Accelerator(again).identify())
    assert info.config["p_o"] == TINY.p_o and info.config["p_i"] == TINY.p_i
    run(again.close())
