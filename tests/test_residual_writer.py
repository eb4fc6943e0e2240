# amaranth: UnusedElaboratable=no
"""ResidualWriter against a Python model: ``res_out`` writes each pixel's values back to its
residual word, ``sum`` writes each group's per-row sums (wrapped to ``res_bits``) to consecutive
words from ``res_base``; pixels come with random gaps."""

import random

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from accel.residual_writer import ResidualWriter
from reference import wrap_signed
from simutil import run


def simulate(rows, res_bits, value_bits, mode, groups, seed, p_gap):
    rng = random.Random(seed)
    vmax = 1 << (value_bits - 1)
    res_base = rng.randrange(0, 50)
    layer = []          # (group, raddr, values, last)
    for g in range(groups):
        n = rng.randrange(1, 5)
        for p in range(n):
            layer.append((g, rng.randrange(1 << 16),
                          [rng.randrange(-vmax, vmax) for _ in range(rows)], p == n - 1))
    dut = ResidualWriter(rows, res_bits, value_bits)
    writes = []

    async def bench(ctx):
        ctx.set(dut.res_out, mode == "res_out")
        ctx.set(dut.sum, mode == "sum")
        ctx.set(dut.res_base, res_base)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await ctx.tick().repeat(2)
        # the stage in front (next_*) one cycle ahead of the pixel (valid, raddr, values, last)
        schedule = []
        for item in layer:
            schedule.append(item)
            schedule.extend([None] * (rng.random() < p_gap) * rng.randrange(1, 3))
        schedule.append(None)
        prev = None
        for item in schedule:
            ctx.set(dut.next_valid, item is not None)
            ctx.set(dut.next_last, item is not None and item[3])
            ctx.set(dut.valid, prev is not None)
            if prev is not None:
                _, raddr, values, last = prev
                ctx.set(dut.raddr, raddr)
                ctx.set(dut.last, last)
                for o, v in enumerate(values):
                    ctx.set(dut.values[o], v)
            await ctx.tick()
            prev = item
        ctx.set(dut.valid, 0)
        await ctx.tick().repeat(3)

    async def monitor(ctx):
        async for _, _, wen, addr, word in ctx.tick().sample(dut.res_wen, dut.res_waddr,
                                                             dut.res_wdata):
            if wen:
                writes.append((addr, [wrap_signed((word >> (o * res_bits)) & ((1 << res_bits) - 1),
                                                  res_bits) for o in range(rows)]))

    run(dut, [bench], "residual_writer", background=[monitor])
    want = []
    if mode == "res_out":
        want = [(raddr, [wrap_signed(v, res_bits) for v in values])
                for _, raddr, values, _ in layer]
    elif mode == "sum":
        for g in range(groups):
            sums = [sum(values[o] for gg, _, values, _ in layer if gg == g) for o in range(rows)]
            want.append((res_base + g, [wrap_signed(s, res_bits) for s in sums]))
    assert writes == want


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(1, 10), res_bits=st.integers(4, 12), value_bits=st.integers(4, 14),
       mode=st.sampled_from(["res_out", "sum", "none"]), groups=st.integers(1, 3),
       seed=st.integers(0, 2**16), p_gap=st.sampled_from([0.0, 0.5]))
def test_writes_match_model(rows, res_bits, value_bits, mode, groups, seed, p_gap):
    simulate(rows, res_bits, value_bits, mode, groups, seed, p_gap)


def test_parameters_checked():
    with pytest.raises(TypeError):
        ResidualWriter(4, 8.0, 12)
    with pytest.raises(ValueError):
        ResidualWriter(4, 0, 12)
