# amaranth: UnusedElaboratable=no
"""CodeWriter against a Python model: 2x2 max-pool over 4 consecutive pixels, packing into
plane-major code words, partial last groups, write addresses, and the ``finished`` pulse."""

import random

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from accel.code_writer import CodeWriter
from simutil import run


def model(pixels, rows, lanes, planes, code_bits, n_cig_out, thr_out, pool):
    """Writes ``{addr: word}`` of a layer's ``pixels`` (``[group][pixel] -> codes``)."""
    m = rows // lanes
    writes = {}
    for group, group_pixels in enumerate(pixels):
        opix = 0
        per = 4 if pool else 1
        for p in range(0, len(group_pixels) - per + 1, per):
            codes = [max(px[o] for px in group_pixels[p:p + per]) for o in range(rows)]
            if not thr_out:
                continue
            for j in range(m):
                if group * m + j >= n_cig_out:
                    break
                word = 0
                for b in range(min(planes, code_bits)):
                    for i in range(lanes):
                        word |= ((codes[j * lanes + i] >> b) & 1) << (b * lanes + i)
                writes[opix * n_cig_out + group * m + j] = word
            opix += 1
    return writes


def simulate(rows, lanes, planes, code_bits, groups, pixels_per_group, partial, thr_out, pool,
             seed, p_gap):
    m = rows // lanes
    n_cig_out = max(1, groups * m - partial)
    rng = random.Random(seed)
    pixels = [[[rng.randrange(1 << code_bits) for _ in range(rows)]
               for _ in range(pixels_per_group)] for _ in range(groups)]
    dut = CodeWriter(rows, lanes, planes, code_bits)
    writes, events = {}, {}

    async def bench(ctx):
        for name, v in (("thr_out", thr_out), ("pool", pool), ("n_cig_out", n_cig_out)):
            ctx.set(getattr(dut, name), v)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for group, group_pixels in enumerate(pixels):
            for p, codes in enumerate(group_pixels):
                for o, c in enumerate(codes):
                    ctx.set(dut.codes[o], c)
                ctx.set(dut.valid, 1)
                ctx.set(dut.last, p == len(group_pixels) - 1)
                final = group == groups - 1 and p == len(group_pixels) - 1
                ctx.set(dut.final, final)
                await ctx.tick()
                ctx.set(dut.valid, 0)
                # writing pixels at least m cycles apart (the output unit's input side)
                for _ in range(m - 1 + (rng.random() < p_gap) * rng.randrange(1, 4)):
                    await ctx.tick()
        for _ in range(m + 6):
            await ctx.tick()

    async def monitor(ctx):
        events["now"] = 0
        async for _, _, wen, addr, word, fin, valid, final in ctx.tick().sample(
                dut.code_wen, dut.code_waddr, dut.code_wdata, dut.finished, dut.valid, dut.final):
            if valid and final:
                events["final_in"] = events["now"]
            if wen:
                assert addr not in writes, f"address {addr} written twice"
                writes[addr] = word
                events["last_write"] = events["now"]
            if fin:
                assert "finished" not in events, "finished twice"
                events["finished"] = events["now"]
            events["now"] += 1

    run(dut, [bench], "code_writer", background=[monitor])
    assert writes == model(pixels, rows, lanes, planes, code_bits, n_cig_out, thr_out, pool)
    final_writes = thr_out and (groups - 1) * m < n_cig_out   # its group has code words
    if final_writes:
        assert events["finished"] == events["last_write"]
    else:
        assert events["finished"] == events["final_in"] + 2


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lanes=st.sampled_from([2, 4]), m=st.integers(1, 3), planes=st.integers(1, 3),
       code_bits=st.integers(1, 2), groups=st.integers(1, 3), quads=st.integers(1, 3),
       partial=st.integers(0, 1), thr_out=st.booleans(), pool=st.booleans(),
       seed=st.integers(0, 2**16), p_gap=st.sampled_from([0.0, 0.5]))
def test_writes_match_model(lanes, m, planes, code_bits, groups, quads, partial, thr_out, pool,
                            seed, p_gap):
    simulate(lanes * m, lanes, planes, code_bits, groups, 4 * quads, partial, thr_out, pool,
             seed, p_gap)


def test_parameters_checked():
    with pytest.raises(TypeError):
        CodeWriter(8, 4, 2, "2")
    with pytest.raises(ValueError):
        CodeWriter(6, 4, 2, 2)
