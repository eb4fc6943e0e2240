# amaranth: UnusedElaboratable=no
"""PixelAdmission in a model of the output unit's pipeline: pixels are taken only with the group's
thresholds loaded and no load running, one group at a time, writing pixels at least m cycles apart,
and every pixel is taken in the end; random gaps on the input stream."""

import random

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from accel.output_admission import PixelAdmission
from simutil import run

PIPELINE = 3     # cycles from a take to its pixel leaving stage B (group_done)
LOAD = 5         # cycles a threshold load takes in this model


def simulate(m, groups, per_group, n_cig_out, thr_out, pool, seed, p_idle):
    rng = random.Random(seed)
    dut = PixelAdmission(m)
    pixels = [(g, p == per_group - 1) for g in range(groups) for p in range(per_group)]
    taken = []      # (cycle, group, index in group)

    async def bench(ctx):
        for name, v in (("thr_out", thr_out), ("pool", pool), ("n_cig_out", n_cig_out)):
            ctx.set(getattr(dut, name), v)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        loaded, load_end, done_at = False, 2 + LOAD, None
        nxt, index = 0, 0
        for cycle in range(2000):
            if nxt == len(pixels) and done_at is None:
                break
            ctx.set(dut.thresholds_loaded, loaded)
            ctx.set(dut.loading, load_end is not None)
            ctx.set(dut.group_done, done_at == cycle)
            offer = nxt < len(pixels) and rng.random() >= p_idle
            ctx.set(dut.valid, offer)
            if offer:
                ctx.set(dut.last, pixels[nxt][1])
            take = offer and ctx.get(dut.ready)
            if take:
                assert loaded and load_end is None, cycle
                group, last = pixels[nxt]
                taken.append((cycle, group, index))
                index = 0 if last else index + 1
                nxt += 1
                if last:
                    done_at = cycle + PIPELINE
            if done_at == cycle:                 # the loader starts on the next group
                loaded, load_end, done_at = False, cycle + 2 + LOAD, None
            if load_end == cycle:
                loaded, load_end = True, None
            await ctx.tick()
        ctx.set(dut.valid, 0)

    run(dut, [bench], "output_admission")
    assert len(taken) == len(pixels), "not every pixel was taken"
    # one group at a time: a group's first pixel comes after the previous group has drained
    for (c0, g0, _), (c1, g1, _) in zip(taken, taken[1:]):
        if g1 != g0:
            assert c1 > c0 + PIPELINE + LOAD, (c0, c1)
    writing = [c for c, g, i in taken
               if thr_out and g * m < n_cig_out and (not pool or i % 4 == 3)]
    for a, b in zip(writing, writing[1:]):
        assert b - a >= m, (a, b)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 4), groups=st.integers(1, 3), quads=st.integers(1, 3),
       partial=st.integers(0, 2), thr_out=st.booleans(), pool=st.booleans(),
       seed=st.integers(0, 2**16), p_idle=st.sampled_from([0.0, 0.5]))
def test_admission_rules(m, groups, quads, partial, thr_out, pool, seed, p_idle):
    n_cig_out = max(1, groups * m - partial)
    simulate(m, groups, 4 * quads, n_cig_out, thr_out, pool, seed, p_idle)


def test_writing_pixels_back_to_back_when_m_is_one():
    """m = 1 and no pool: a pixel every cycle once the thresholds are in."""
    dut = PixelAdmission(1)
    stamps = []

    async def bench(ctx):
        ctx.set(dut.thr_out, 1)
        ctx.set(dut.n_cig_out, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.thresholds_loaded, 1)
        ctx.set(dut.valid, 1)
        for cycle in range(12):
            if ctx.get(dut.ready):
                stamps.append(cycle)
            await ctx.tick()

    run(dut, [bench], "output_admission_rate")
    assert stamps == list(range(stamps[0], 12)) and stamps[0] <= 2


def test_parameters_checked():
    with pytest.raises(TypeError):
        PixelAdmission(True)
    with pytest.raises(ValueError):
        PixelAdmission(0)
