# amaranth: UnusedElaboratable=no
"""EmbeddingLanes against a Python model: lane c*d + j gets entry c's bits [j*q, (j+1)*q) (0 for a
channel switched off or a lane past c*d), raw mode lane c the pixel's byte c."""

import random

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from accel.embedding_lanes import EmbeddingLanes
from contract.config import EMB_ENTRY_BITS
from amaranth.sim import Simulator


def model(lanes, channels, entries, pixel, channel_on, raw, emb_c, d, q):
    out = [0] * lanes
    for lane in range(lanes):
        if raw:
            if lane < min(channels, emb_c):
                out[lane] = (pixel >> 8 * lane) & 0xFF
        else:
            c, j = divmod(lane, d)
            if c < channels and (channel_on >> c) & 1:
                out[lane] = (entries[c] >> j * q) & ((1 << q) - 1)
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lanes=st.integers(1, 16), channels=st.integers(1, 4), max_code_bits=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_lanes_match_model(lanes, channels, max_code_bits, seed):
    dut = EmbeddingLanes(lanes, channels, max_code_bits)
    rng = random.Random(seed)
    cases = []
    for _ in range(30):
        q = rng.randrange(1, min(max_code_bits, 8) + 1)
        d = rng.randrange(1, min(15, EMB_ENTRY_BITS // q) + 1)
        cases.append(([rng.randrange(1 << EMB_ENTRY_BITS) for _ in range(channels)],
                      rng.randrange(1 << 8 * channels), rng.randrange(1 << channels),
                      rng.randrange(2), rng.randrange(0, channels + 1), d, q))
    got = []

    async def bench(ctx):
        for entries, pixel, channel_on, raw, emb_c, d, q in cases:
            for c, e in enumerate(entries):
                ctx.set(dut.entries[c], e)
            for name, v in (("pixel", pixel), ("channel_on", channel_on), ("raw", raw),
                            ("emb_c", emb_c), ("emb_d", d), ("emb_q", q)):
                ctx.set(getattr(dut, name), v)
            await ctx.delay(1e-9)
            codes = ctx.get(dut.codes)
            got.append([codes[lane] for lane in range(lanes)])

    sim = Simulator(dut)       # combinational: no clock
    sim.add_testbench(bench)
    sim.run()
    for case, codes in zip(cases, got):
        assert codes == model(lanes, channels, *case), case


def test_parameters_checked():
    with pytest.raises(TypeError):
        EmbeddingLanes(8, "3", 2)
    with pytest.raises(ValueError):
        EmbeddingLanes(8, 3, 0)
