# amaranth: UnusedElaboratable=no
"""EngineBuffers: local-bus lane decoding and read-back against a Python model of the buffers,
the engine's ports (ownership of the read ports, writes, column groups) and the table writes."""

import random

import pytest
from amaranth.sim import Simulator

from contract.config import (TINY, BUF_WEIGHTS, BUF_THRESHOLDS, BUF_EMBED, BUF_RESIDUAL,
                             BUF_CODE_BANK0, LOCAL_LANE_BITS)
from accel.engine_buffers import EngineBuffers
from engine_harness import Bus


CFG = TINY
WEIGHT_GROUPS = 2


class BufferModel:
    """Buffer words as Python integers, written one 32-bit lane at a time."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.words = {}

    def write_lane(self, buffer, lane_index, value):
        lanes = self.cfg.lanes(buffer)
        word, lane = divmod(lane_index, lanes)
        old = self.words.get((buffer, word), 0)
        mask = 0xFFFF_FFFF << (32 * lane)
        self.words[(buffer, word)] = (old & ~mask) | (value << (32 * lane))

    def word(self, buffer, word):
        return self.words.get((buffer, word), 0) & ((1 << self.cfg.word_bits(buffer)) - 1)


def simulate(bench_body):
    dut = EngineBuffers(CFG, weight_groups=WEIGHT_GROUPS)
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        await bench_body(ctx, dut)

    sim.add_testbench(bench)
    sim.run()


def bank_port(dut, k):
    return getattr(dut, f"bank{k}")


def test_local_writes_and_reads_match_the_model():
    rng = random.Random(5)
    model = BufferModel(CFG)
    readable = [BUF_RESIDUAL] + [BUF_CODE_BANK0 + k for k in range(CFG.n_code_banks)]
    depths = {BUF_WEIGHTS: CFG.wbuf_depth, BUF_THRESHOLDS: CFG.thr_depth,
              BUF_RESIDUAL: CFG.res_depth,
              **{BUF_CODE_BANK0 + k: CFG.bank_depth for k in range(CFG.n_code_banks)}}

    async def bench(ctx, dut):
        bus = Bus(dut, CFG)
        for buffer, depth in depths.items():
            for word in rng.sample(range(depth), 6) + [0, depth - 1]:
                for lane in range(CFG.lanes(buffer)):
                    value = rng.getrandbits(32)
                    lane_index = word * CFG.lanes(buffer) + lane
                    ctx.set(dut.local.addr, (buffer << LOCAL_LANE_BITS) | lane_index)
                    ctx.set(dut.local.w_data, value)
                    ctx.set(dut.local.w_en, 1)
                    await ctx.tick()
                    model.write_lane(buffer, lane_index, value)
        ctx.set(dut.local.w_en, 0)
        # lanes beyond a buffer and unknown buffers are ignored
        await bus.write_words(ctx, BUF_RESIDUAL, CFG.res_depth, [0xFFFF_FFFF])
        await bus.write_words(ctx, 15, 0, [0xFFFF_FFFF])
        for _ in range(3):
            await ctx.tick()
        for buffer in readable:
            words = sorted(w for (b, w) in model.words if b == buffer)
            got = await bus.read_words(ctx, buffer, words[0], 3)
            assert got == [model.word(buffer, words[0] + i) for i in range(3)], buffer
            for word in words:
                got, = await bus.read_words(ctx, buffer, word, 1)
                assert got == model.word(buffer, word), (buffer, word)
        # write-only buffers and unknown ones read as 0
        for buffer in (BUF_WEIGHTS, BUF_THRESHOLDS, BUF_EMBED, 15):
            assert await bus.read_words(ctx, buffer, 0, 1) == [0]
        # the weights and thresholds through the engine's read ports
        for buffer, port in ((BUF_WEIGHTS, dut.weights), (BUF_THRESHOLDS, dut.thresholds)):
            for (b, word) in sorted(model.words):
                if b != buffer:
                    continue
                for group in range(len(port.r_addr)):
                    ctx.set(port.r_addr[group], word)
                ctx.set(port.r_en, 1)
                await ctx.tick()
                ctx.set(port.r_en, 0)
                assert ctx.get(port.r_data) == model.word(buffer, word), (buffer, word)

    simulate(bench)


def test_engine_ports_own_the_readable_buffers():
    async def bench(ctx, dut):
        bus = Bus(dut, CFG)
        await bus.write_words(ctx, BUF_CODE_BANK0 + 1, 10, [0x1234_5678_9ABC_DEF0])
        for _ in range(2):              # the local bus's write lands (it wins over the engine's)
            await ctx.tick()
        bank = bank_port(dut, 1)
        # the engine writes while the local bus is idle; it reads only while it owns the port
        ctx.set(bank.w_addr, 11)
        ctx.set(bank.w_data, 0x55)
        ctx.set(bank.w_en, 1)
        await ctx.tick()
        ctx.set(bank.w_en, 0)
        ctx.set(bank.own, 1)
        for address, want in ((10, 0x1234_5678_9ABC_DEF0 & ((1 << CFG.code_word_bits) - 1)),
                              (11, 0x55)):
            ctx.set(bank.r_addr[0], address)
            await ctx.tick()
            await ctx.tick()            # block RAM, then the registered read data
            assert ctx.get(bank.r_data) == want
        ctx.set(bank.own, 0)
        assert await bus.read_words(ctx, BUF_CODE_BANK0 + 1, 11, 1) == [0x55]

    simulate(bench)


def test_table_writes_leave_registered():
    async def bench(ctx, dut):
        writes = [(3, 0xBEEF), (CFG.emb_channels * 256 - 1, 0x1234), (CFG.emb_channels * 256, 7)]
        seen = []
        for lane_index, value in writes + [(0, 0)] * 3:
            ctx.set(dut.local.addr, (BUF_EMBED << LOCAL_LANE_BITS) | lane_index)
            ctx.set(dut.local.w_data, value | 0xABCD_0000)
            ctx.set(dut.local.w_en, (lane_index, value) != (0, 0))
            await ctx.tick()
            if ctx.get(dut.table.en):
                seen.append((ctx.get(dut.table.addr), ctx.get(dut.table.data)))
        assert seen == [(3, 0xBEEF), (CFG.emb_channels * 256 - 1, 0x1234)]

    simulate(bench)


def test_checks_parameters():
    with pytest.raises(TypeError):
        EngineBuffers(None)
    with pytest.raises(TypeError):
        EngineBuffers(CFG, weight_groups=2.0)
    with pytest.raises(ValueError):
        EngineBuffers(CFG, weight_groups=0)
    with pytest.raises(ValueError):
        EngineBuffers(CFG, weight_groups=3)       # 4 lanes do not split into 3 groups
