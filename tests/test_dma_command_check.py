"""The DMA's command checks against the extents computed in Python."""

import random

from hypothesis import given, settings, strategies as st

from contract.config import TINY, LOCAL_LANE_BITS, WRITE_ONLY_BUFFERS
from accel.dma_command import DmaKind
from accel.dma_command_check import DmaCommandCheck, buffer_lanes
from simutil import run


def expected(cmd, base, limit):
    lanes = buffer_lanes(TINY)
    buffer, lane = cmd["local_addr"] >> LOCAL_LANE_BITS, cmd["local_addr"] & ((1 << LOCAL_LANE_BITS) - 1)
    size = lanes.get(buffer, 0)
    if cmd["kind"] == DmaKind.STORE.value and buffer in WRITE_ONLY_BUFFERS:
        size = 0
    total = (cmd["rows"] * cmd["count"]) & 0xFFFF_FFFF
    span = (((cmd["rows"] - 1) & 0xFFFF) * cmd["mem_stride"]) & 0xFFFF_FFFF
    mem_end = cmd["mem_addr"] + span + cmd["count"]
    return {
        "total": total,
        "count_minus_2": (cmd["count"] - 2) & 0xFFFF,
        "count_is_1": int(cmd["count"] == 1),
        "window_ok": int(cmd["mem_addr"] >= base and mem_end <= limit and mem_end <= 1 << 30),
        "local_ok": int(lane + total <= size),
    }


def random_command(rng):
    lanes = buffer_lanes(TINY)
    buffer = rng.choice(list(lanes) + [max(lanes) + 1, 15])
    lane = rng.choice([0, rng.randrange(1 << LOCAL_LANE_BITS), max(lanes.get(buffer, 1) - 3, 0)])
    small = rng.random() < 0.7
    return {
        "kind": rng.randrange(4),
        "mem_addr": rng.randrange(1 << 12) if small else rng.randrange(1 << 32),
        "local_addr": (buffer << LOCAL_LANE_BITS) | lane,
        "count": rng.randrange(6) if small else rng.randrange(1 << 16),
        "rows": rng.randrange(6) if small else rng.randrange(1 << 16),
        "mem_stride": rng.randrange(64) if small else rng.randrange(1 << 16),
    }


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_dma_command_check_matches_extents(seed):
    rng = random.Random(seed)
    dut = DmaCommandCheck(TINY)

    async def bench(ctx):
        for _ in range(12):
            cmd = random_command(rng)
            base = rng.randrange(1 << 11)
            limit = rng.choice([base + rng.randrange(1 << 12), 1 << 30, (1 << 32) - 1])
            for name, value in cmd.items():
                ctx.set(getattr(dut.command, name), value)
            ctx.set(dut.window_base, base)
            ctx.set(dut.window_limit, limit)
            for stage in (dut.products, dut.sums, dut.compare):
                ctx.set(stage, 1)
                await ctx.tick()
                ctx.set(stage, 0)
            got = {name: ctx.get(getattr(dut, name)) for name in expected(cmd, base, limit)}
            assert got == expected(cmd, base, limit), (cmd, base, limit)
            await ctx.tick().repeat(rng.randrange(1, 3))

    run(dut, [bench], "dma_command_check")
