# amaranth: UnusedElaboratable=no
"""CodeWordOutput against a Python model: ``nsub`` plane-major sub-words per pixel at consecutive
addresses, or one word per window destination walking up through the windows above; random
stalls on both sides."""

import random

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from amaranth.hdl import Cat

from accel.code_word_output import CodeWordOutput
from simutil import run, recv


def sub_word(codes, s, planes):
    word = 0
    for b in range(planes):
        for lane, code in enumerate(codes):
            word |= ((code >> (s * planes + b)) & 1) << (b * len(codes) + lane)
    return word


def destinations(addr, ky, oy, stride, k, row_words_minus_stride):
    """The first destination and the windows above it while their tap row stays below k."""
    out = [addr]
    while oy > 0 and ky + stride < k:
        addr, ky, oy = addr - row_words_minus_stride, ky + stride, oy - 1
        out.append(addr)
    return out


def simulate(lanes, planes, window, nsub, items, stride, k, wks, seed, p_in, p_out):
    dut = CodeWordOutput(lanes, planes)
    rng = random.Random(seed)
    n_out = sum(len(destinations(a, ky, oy, stride, k, wks)) for _, a, ky, oy in items) \
        if window else len(items) * nsub
    got = []

    async def producer(ctx):
        ctx.set(dut.window, window)
        ctx.set(dut.nsub_minus_1, nsub - 1)
        ctx.set(dut.stride, stride)
        ctx.set(dut.win_k, k)
        ctx.set(dut.row_words_minus_stride, wks)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        for codes, addr, ky, oy in items:
            while rng.random() < p_in:
                ctx.set(dut.in_valid, 0)
                await ctx.tick()
            for lane, code in enumerate(codes):
                ctx.set(dut.codes[lane], code)
            ctx.set(dut.in_addr, addr)
            ctx.set(dut.in_tap_row, ky)
            ctx.set(dut.in_window_y, oy)
            ctx.set(dut.in_valid, 1)
            while True:
                _, _, accept = await ctx.tick().sample(dut.accept)
                if accept:
                    break
        ctx.set(dut.in_valid, 0)

    async def consumer(ctx):
        await ctx.tick()
        got.extend(await recv(ctx, dut.out, n_out, random.Random(seed + 1), p_out,
                              value=Cat(dut.out.payload, dut.out_addr)))

    run(dut, [producer, consumer], "code_word_output")
    want = []
    for p, (codes, addr, ky, oy) in enumerate(items):
        if window:
            want += [(a, sub_word(codes, 0, planes))
                     for a in destinations(addr, ky, oy, stride, k, wks)]
        else:
            want += [(p * nsub + s, sub_word(codes, s, planes)) for s in range(nsub)]
    mask = (1 << lanes * planes) - 1
    assert [(v >> lanes * planes, v & mask) for v in got] == want


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lanes=st.integers(1, 6), planes=st.integers(1, 3), nsub_pick=st.integers(1, 8),
       n=st.integers(1, 8), seed=st.integers(0, 2**16), p_in=st.sampled_from([0.0, 0.5]),
       p_out=st.sampled_from([0.0, 0.5]))
def test_pixel_mode(lanes, planes, nsub_pick, n, seed, p_in, p_out):
    nsub = min(nsub_pick, 8 // planes)         # sub-words cover at most a code's 8 bits
    rng = random.Random(seed)
    items = [([rng.randrange(256) for _ in range(lanes)], 0, 0, 0) for _ in range(n)]
    simulate(lanes, planes, False, nsub, items, 0, 0, 0, seed, p_in, p_out)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lanes=st.integers(1, 6), planes=st.integers(1, 3), k=st.integers(1, 4),
       stride=st.integers(1, 3), w_out=st.integers(1, 4), n=st.integers(1, 8),
       seed=st.integers(0, 2**16), p_in=st.sampled_from([0.0, 0.5]),
       p_out=st.sampled_from([0.0, 0.5]))
def test_window_mode(lanes, planes, k, stride, w_out, n, seed, p_in, p_out):
    rng = random.Random(seed)
    wks = w_out * k - stride
    items = []
    for _ in range(n):
        oy, ox, ky = rng.randrange(4), rng.randrange(w_out), rng.randrange(k)
        items.append(([rng.randrange(256) for _ in range(lanes)], 500 + (oy * w_out + ox) * k + ky,
                      ky, oy))
    simulate(lanes, planes, True, 1, items, stride, k, wks, seed, p_in, p_out)


def test_parameters_checked():
    with pytest.raises(TypeError):
        CodeWordOutput("8", 2)
    with pytest.raises(ValueError):
        CodeWordOutput(8, 0)
