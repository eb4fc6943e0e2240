# amaranth: UnusedElaboratable=no
"""ThresholdLoader against the threshold buffer's contents: each group's entries land in their rows
as -T, ``loaded`` comes ``rows + 4`` cycles after a load starts, and nothing loads while pixels are
on their way or thresholds are off."""

import random

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from amaranth.hdl import Elaboratable, Module
from amaranth.lib.memory import Memory

from accel.threshold_loader import ThresholdLoader, LOAD_EXTRA_CYCLES
from reference import pack_thresholds
from simutil import run


class Harness(Elaboratable):
    def __init__(self, rows, entries):
        self.loader = ThresholdLoader(rows)
        self.buffer = Memory(shape=64, depth=len(entries), init=entries)

    def elaborate(self, platform):
        m = Module()
        m.submodules.loader, m.submodules.buffer = self.loader, self.buffer
        rp = self.buffer.read_port()
        m.d.comb += [rp.addr.eq(self.loader.read_addr), rp.en.eq(self.loader.read_en),
                     self.loader.read_data.eq(rp.data)]
        return m


def expected_rows(thr, neg, group, rows):
    """(-T per threshold, negate) of each row of ``group``."""
    out = []
    for o in range(rows):
        t, n = thr[group * rows + o], neg[group * rows + o]
        out.append(([-(1 - x) if n else -x for x in t], n))
    return out


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(1, 12), groups=st.integers(1, 3), thr_base=st.integers(0, 5),
       seed=st.integers(0, 2**16))
def test_groups_load_into_rows(rows, groups, thr_base, seed):
    rng = random.Random(seed)
    thr = [sorted(rng.randrange(-32768, 32768) for _ in range(3)) for _ in range(groups * rows)]
    neg = [rng.randrange(2) for _ in range(groups * rows)]
    entries = [rng.randrange(1 << 64) for _ in range(thr_base)] + \
        pack_thresholds(thr, neg, rows, groups)
    dut = Harness(rows, entries)
    ld = dut.loader

    async def bench(ctx):
        ctx.set(ld.enabled, 1)
        ctx.set(ld.thr_base, thr_base)
        ctx.set(ld.pipeline_empty, 1)
        ctx.set(ld.start, 1)
        await ctx.tick()
        ctx.set(ld.start, 0)
        for group in range(groups):
            # a load starts the cycle after the thresholds are seen missing
            assert not ctx.get(ld.loaded)
            await ctx.tick()
            for cycle in range(rows + LOAD_EXTRA_CYCLES):
                assert ctx.get(ld.loading) and not ctx.get(ld.loaded), (group, cycle)
                await ctx.tick()
            assert ctx.get(ld.loaded) and not ctx.get(ld.loading)
            got_t, got_n = ctx.get(ld.thresholds), ctx.get(ld.negate)
            for o, (t, n) in enumerate(expected_rows(thr, neg, group, rows)):
                assert [got_t[3 * o + k] for k in range(3)] == t, (group, o)
                assert (got_n >> o) & 1 == n, (group, o)
            # pixels of the group pass; the next group's load waits for them to be gone
            for _ in range(rng.randrange(0, 4)):
                await ctx.tick()
            ctx.set(ld.group_done, 1)
            ctx.set(ld.pipeline_empty, 0)
            await ctx.tick()
            ctx.set(ld.group_done, 0)
            for _ in range(rng.randrange(1, 4)):
                assert not ctx.get(ld.loaded) and not ctx.get(ld.loading)
                await ctx.tick()
            ctx.set(ld.pipeline_empty, 1)

    run(dut, [bench], "threshold_loader")


def test_disabled_needs_no_load():
    """Without thresholds (``enabled`` low) the loader reads nothing and reports them loaded."""
    dut = Harness(4, [0] * 8)
    ld = dut.loader

    async def bench(ctx):
        ctx.set(ld.pipeline_empty, 1)
        ctx.set(ld.start, 1)
        await ctx.tick()
        ctx.set(ld.start, 0)
        for _ in range(3):
            await ctx.tick()
            assert ctx.get(ld.loaded) and not ctx.get(ld.loading) and not ctx.get(ld.read_en)

    run(dut, [bench], "threshold_loader_disabled")


def test_parameters_checked():
    with pytest.raises(TypeError):
        ThresholdLoader(None)
    with pytest.raises(ValueError):
        ThresholdLoader(0)
