"""The sequencer against hand-built programs, with the DMA and the layer engine modelled in the
testbench (random acceptance and completion delays), in Amaranth's simulator."""

import random

import pytest
from amaranth import *
from amaranth.lib import wiring
from amaranth.sim import Simulator

from contract import isa
from contract.config import TINY
from accel.dma import DmaKind
from contract.errors import ErrorCode
from accel.sequencer import Sequencer
from accel.wishbone import SRAM

MEM_WORDS = 1024


class Harness(Elaboratable):
    def __init__(self, program, prog_addr=64, watchdog=4096):
        image = [0] * MEM_WORDS
        for i, desc in enumerate(program):
            image[prog_addr + i * 8: prog_addr + i * 8 + 8] = desc
        self.sram = SRAM(MEM_WORDS, init=image)
        self.seq = Sequencer(TINY, watchdog_cycles=watchdog)

    def elaborate(self, platform):
        m = Module()
        m.submodules.sram = sram = self.sram
        m.submodules.seq = seq = self.seq
        m.d.comb += [
            sram.bus.cyc.eq(seq.bus.cyc & (seq.bus.adr < MEM_WORDS)),
            sram.bus.stb.eq(seq.bus.stb),
            sram.bus.we.eq(seq.bus.we),
            sram.bus.sel.eq(seq.bus.sel),
            sram.bus.adr.eq(seq.bus.adr),
            sram.bus.dat_w.eq(seq.bus.dat_w),
            seq.bus.dat_r.eq(sram.bus.dat_r),
            seq.bus.ack.eq(sram.bus.ack),
        ]
        return m


def run(program, *, dma_errors=None, engine_errors=None, abort_at=None, engine_hang=False,
        window=(0, MEM_WORDS), seed=0, max_cycles=20000, dma_delay=None, engine_cycles=None,
        events=None, window_during_run=None, requests=None):
    """Run ``program``; returns (status dict, DMA commands seen, engine descriptors seen).

    With ``window_during_run``, the host writes that window in the cycle after the start. With
    ``requests`` (a list), the word address of every cycle's fetch request is appended to it."""
    rng = random.Random(seed)
    dut = Harness(program)
    seq = dut.seq
    dma_cmds, engine_descs = [], []
    dma_errors = dma_errors or {}
    engine_errors = engine_errors or {}
    status = {}
    now = [0]
    events = [] if events is None else events

    async def clock(ctx):
        while True:
            await ctx.tick()
            now[0] += 1

    async def dma_model(ctx):
        while True:
            ready = rng.random() < 0.5
            ctx.set(seq.dma_cmd.ready, ready)
            _, _, valid, p = await ctx.tick().sample(seq.dma_cmd.valid, seq.dma_cmd.payload)
            if valid and ready:
                cmd = dict(kind=DmaKind(p.kind), mem_addr=p.mem_addr, local_addr=p.local_addr,
                           count=p.count, rows=p.rows, mem_stride=p.mem_stride)
                dma_cmds.append(cmd)
                events.append(("dma_start", len(dma_cmds) - 1, now[0]))
                ctx.set(seq.dma_cmd.ready, 0)
                await ctx.tick().repeat(dma_delay if dma_delay else rng.randrange(1, 8))
                events.append(("dma_done", len(dma_cmds) - 1, now[0]))
                ctx.set(seq.dma_error, dma_errors.get(len(dma_cmds) - 1, 0))
                ctx.set(seq.dma_done, 1)
                await ctx.tick()
                ctx.set(seq.dma_done, 0)

    async def bus_monitor(ctx):
        while True:
            _, _, stb, adr = await ctx.tick().sample(seq.bus.stb, seq.bus.adr)
            if stb and requests is not None:
                requests.append(adr)

    async def engine_model(ctx):
        while True:
            _, _, start, desc = await ctx.tick().sample(seq.engine_start, seq.desc)
            if start:
                engine_descs.append({f.name: int(getattr(desc, f.name)) for f in isa.FIELDS})
                events.append(("engine_start", len(engine_descs) - 1, now[0]))
                if engine_hang:
                    continue
                busy = engine_cycles if engine_cycles else rng.randrange(1, 12)
                for _ in range(busy):
                    ctx.set(seq.mac_busy, 1)
                    await ctx.tick()
                ctx.set(seq.mac_busy, 0)
                ctx.set(seq.engine_error, engine_errors.get(len(engine_descs) - 1, 0))
                ctx.set(seq.engine_done, 1)
                events.append(("engine_done", len(engine_descs) - 1, now[0]))
                await ctx.tick()
                ctx.set(seq.engine_done, 0)

    async def host(ctx):
        ctx.set(seq.prog_addr, 64)
        ctx.set(seq.window_base, window[0])
        ctx.set(seq.window_limit, window[1])
        await ctx.tick()
        ctx.set(seq.start, 1)
        await ctx.tick()
        ctx.set(seq.start, 0)
        if window_during_run is not None:
            ctx.set(seq.window_base, window_during_run[0])
            ctx.set(seq.window_limit, window_during_run[1])
        for cycle in range(max_cycles):
            if abort_at is not None and cycle == abort_at:
                ctx.set(seq.abort, 1)
                await ctx.tick()
                ctx.set(seq.abort, 0)
            if ctx.get(seq.done):
                break
            await ctx.tick()
        else:
            raise AssertionError("sequencer did not finish")
        for name in ("busy", "done", "error", "error_code", "error_pc", "pc", "cycles", "mac_busy_cycles",
                     "run_window_base", "run_window_limit"):
            status[name] = ctx.get(getattr(seq, name))
        status["layer_cycles"] = []
        for i in range(len(program)):
            ctx.set(seq.layer_sel, i)
            await ctx.tick().repeat(2)      # layer_cycles: valid two cycles after layer_sel
            status["layer_cycles"].append(ctx.get(seq.layer_cycles))
        status["units_reset"] = ctx.get(seq.units_reset)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(clock, background=True)
    sim.add_testbench(dma_model, background=True)
    sim.add_testbench(engine_model, background=True)
    sim.add_testbench(bus_monitor, background=True)
    sim.add_testbench(host)
    sim.run()
    return status, dma_cmds, engine_descs


LOAD = isa.pack(op=isa.Op.LOAD, mem_addr=300, local_addr=(1 << 20) | 5, count=7, rows=3, mem_stride=9)
STORE = isa.pack(op=isa.Op.STORE, mem_addr=500, local_addr=(3 << 20) | 2, count=4, rows=1, mem_stride=0)
EMBED = isa.pack(op=isa.Op.EMBED, mem_addr=700, h_in=5, w_in=3, emb_c=3, emb_d=2, emb_q=2, nsub=1, dst_bank=1)
CONV = isa.pack(op=isa.Op.CONV, k=3, stride=1, pad=1, src_bank=1, dst_bank=2, h_in=5, w_in=3, h_out=5,
                w_out=3, n_cig=1, n_cog=1, thr_out=1, out_bits=2, nsub=1, n_cig_out=2, w_base=17)
END = isa.pack(op=isa.Op.END)


@pytest.mark.parametrize("seed", range(3))
def test_program_runs_in_order(seed):
    status, dma, engine = run([LOAD, EMBED, CONV, STORE, END], seed=seed)
    assert status["done"] == 1 and status["error"] == 0 and status["busy"] == 0
    assert status["pc"] == 4
    assert [c["kind"] for c in dma] == [DmaKind.LOAD, DmaKind.STREAM, DmaKind.STORE]
    assert dma[0] == dict(kind=DmaKind.LOAD, mem_addr=300, local_addr=(1 << 20) | 5, count=7, rows=3, mem_stride=9)
    # EMBED streams ceil(5*3*3 / 4) words of pixels.
    assert dma[1]["mem_addr"] == 700 and dma[1]["count"] == 12 and dma[1]["rows"] == 1
    assert dma[2] == dict(kind=DmaKind.STORE, mem_addr=500, local_addr=(3 << 20) | 2, count=4, rows=1, mem_stride=0)
    assert [d["op"] for d in engine] == [isa.Op.EMBED, isa.Op.CONV]
    assert engine[1] == isa.unpack(CONV)
    # Every descriptor's cycles are recorded and add up to no more than the run's total.
    assert all(c > 0 for c in status["layer_cycles"])
    assert sum(status["layer_cycles"]) <= status["cycles"]
    assert 0 < status["mac_busy_cycles"] < status["cycles"]
    assert status["units_reset"] == 1


def test_bad_opcode_reports_its_descriptor():
    status, dma, engine = run([LOAD, isa.pack(op=9), CONV, END])
    assert status["error"] == 1 and status["error_code"] == ErrorCode.BAD_OPCODE
    assert status["error_pc"] == 1
    assert engine == []


def test_fetch_outside_window_is_refused():
    # The program sits at word 64: a window that starts after it refuses the first fetch.
    status, dma, engine = run([LOAD, END], window=(100, MEM_WORDS))
    assert status["error_code"] == ErrorCode.WINDOW and status["error_pc"] == 0
    assert dma == [] and engine == []
    # A window that ends inside the second descriptor stops there.
    status, dma, engine = run([LOAD, LOAD, END], window=(0, 64 + 12))
    assert status["error_code"] == ErrorCode.WINDOW and status["error_pc"] == 1
    assert len(dma) == 1


@pytest.mark.parametrize("code", [ErrorCode.WINDOW, ErrorCode.BUS_ERROR, ErrorCode.LOCAL_RANGE])
def test_dma_error_stops_the_run(code):
    status, dma, engine = run([LOAD, LOAD, CONV, END], dma_errors={1: code})
    assert status["error_code"] == code and status["error_pc"] == 1
    assert len(dma) == 2 and engine == []


def test_dma_error_during_embed_does_not_wait_for_the_engine():
    status, dma, engine = run([EMBED, CONV, END], dma_errors={0: ErrorCode.BUS_ERROR}, engine_hang=True)
    assert status["error_code"] == ErrorCode.BUS_ERROR and status["error_pc"] == 0


def test_engine_error_stops_the_run():
    status, dma, engine = run([CONV, CONV, END], engine_errors={0: ErrorCode.BAD_DESCRIPTOR})
    assert status["error_code"] == ErrorCode.BAD_DESCRIPTOR and status["error_pc"] == 0
    assert len(engine) == 1


def test_hung_engine_times_out():
    status, dma, engine = run([CONV, END], engine_hang=True)
    assert status["error_code"] == ErrorCode.TIMEOUT and status["error_pc"] == 0


def test_abort():
    status, dma, engine = run([CONV, END], engine_hang=True, abort_at=200)
    assert status["error_code"] == ErrorCode.ABORTED and status["done"] == 1 and status["busy"] == 0


ASYNC_LOAD = isa.pack(op=isa.Op.LOAD, async_dma=1, mem_addr=300, local_addr=5, count=7, rows=1, mem_stride=7)


def _time(events, kind, index):
    return next(t for k, i, t in events if k == kind and i == index)


def test_async_load_overlaps_the_next_conv():
    events = []
    status, dma, engine = run([ASYNC_LOAD, CONV, LOAD, END], dma_delay=200, events=events)
    assert status["error"] == 0 and len(dma) == 2 and len(engine) == 1
    # The CONV started while the async LOAD was still moving ...
    assert _time(events, "engine_start", 0) < _time(events, "dma_done", 0)
    # ... and the next LOAD waited for it (one DMA command at a time).
    assert _time(events, "dma_start", 1) > _time(events, "dma_done", 0)


def test_wait_dma_conv_waits_for_the_async_load():
    events = []
    conv_wait = isa.pack(**{**isa.unpack(CONV), "wait_dma": 1})
    status, dma, engine = run([ASYNC_LOAD, conv_wait, END], dma_delay=200, events=events)
    assert status["error"] == 0
    assert _time(events, "engine_start", 0) > _time(events, "dma_done", 0)


def test_end_waits_for_an_async_store():
    events = []
    async_store = isa.pack(**{**isa.unpack(STORE), "async_dma": 1})
    status, dma, engine = run([async_store, END], dma_delay=300, events=events)
    assert status["error"] == 0 and status["cycles"] > 300


def test_async_load_error_names_its_descriptor():
    status, dma, engine = run([CONV, ASYNC_LOAD, CONV, CONV, END], dma_errors={0: ErrorCode.BUS_ERROR},
                              dma_delay=50)
    assert status["error_code"] == ErrorCode.BUS_ERROR and status["error_pc"] == 1


def test_no_prefetch_after_a_dma_error():
    # The async LOAD fails while the CONV after it runs: the run ends with the LOAD's error and
    # the CONV's wait does not start to prefetch the next descriptor (words 80..87), whose request
    # would be left unanswered.
    requests = []
    status, dma, engine = run([ASYNC_LOAD, CONV, CONV, END], dma_errors={0: ErrorCode.BUS_ERROR},
                              dma_delay=30, engine_cycles=200, requests=requests)
    assert status["error_code"] == ErrorCode.BUS_ERROR and status["error_pc"] == 0
    assert len(engine) == 1 and requests and not any(80 <= a < 88 for a in requests)
    # Without the error, the same program prefetches it.
    requests = []
    status, dma, engine = run([ASYNC_LOAD, CONV, CONV, END], dma_delay=30, engine_cycles=200,
                              requests=requests)
    assert status["error"] == 0 and any(80 <= a < 88 for a in requests)


def test_next_descriptor_is_fetched_while_a_conv_runs():
    events = []
    status, dma, engine = run([CONV, CONV, CONV, END], engine_cycles=40, events=events)
    assert status["error"] == 0 and len(engine) == 3 and all(d == isa.unpack(CONV) for d in engine)
    # The 8-word fetch overlapped the 40-cycle CONV: the next one starts at once (4 cycles: done
    # seen, the registered decision (ADVANCE), DISPATCH, start).
    for i in (1, 2):
        assert _time(events, "engine_start", i) - _time(events, "engine_done", i - 1) <= 4
    # A CONV shorter than the fetch waits for it, then runs the descriptor fetched.
    status, dma, engine = run([CONV, LOAD, CONV, END], engine_cycles=2)
    assert status["error"] == 0 and [d["op"] for d in engine] == [isa.Op.CONV] * 2
    assert dma[0]["mem_addr"] == 300 and dma[0]["count"] == 7


def test_no_prefetch_outside_the_window():
    # The window ends after the first descriptor: the next one is refused with its own pc.
    status, dma, engine = run([CONV, CONV, END], window=(0, 64 + 8), engine_cycles=40)
    assert status["error_code"] == ErrorCode.WINDOW and status["error_pc"] == 1
    assert len(engine) == 1


def test_window_written_during_a_run_changes_nothing():
    # The run keeps the window it started with: descriptors and prefetches outside the window
    # written meanwhile still run, and the DMA is given the start window.
    status, dma, engine = run([CONV, CONV, LOAD, END], window=(0, MEM_WORDS),
                              window_during_run=(0, 64 + 8), engine_cycles=40)
    assert status["error"] == 0 and status["pc"] == 3
    assert [d["op"] for d in engine] == [isa.Op.CONV] * 2 and len(dma) == 1
    assert (status["run_window_base"], status["run_window_limit"]) == (0, MEM_WORDS)
    # A window widened during the run does not admit a descriptor outside the start window.
    status, dma, engine = run([CONV, CONV, END], window=(0, 64 + 8),
                              window_during_run=(0, MEM_WORDS), engine_cycles=40)
    assert status["error_code"] == ErrorCode.WINDOW and status["error_pc"] == 1
    assert (status["run_window_base"], status["run_window_limit"]) == (0, 64 + 8)
