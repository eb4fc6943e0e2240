# amaranth: UnusedElaboratable=no
"""PixelByteRing against a Python model: the image's bytes come out ``c`` per pixel in order, with
random stalls on the word stream and random delays in taking pixels; the counters end the run."""

import random

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from accel.pixel_byte_ring import PixelByteRing
from simutil import run, send


def image_words(data):
    """Little-endian 32-bit words of ``data`` (bytes), the last one zero-padded."""
    padded = list(data) + [0] * (-len(data) % 4)
    return [int.from_bytes(bytes(padded[i:i + 4]), "little") for i in range(0, len(padded), 4)]


def simulate(max_c, c, n_pix, seed, p_word, p_take):
    dut = PixelByteRing(max_c)
    rng = random.Random(seed)
    data = [rng.randrange(256) for _ in range(n_pix * c)]
    words = image_words(data)
    got = []

    async def producer(ctx):
        ctx.set(dut.n_words, len(words))
        ctx.set(dut.n_pix, n_pix)
        ctx.set(dut.bytes_per_pixel, c)
        ctx.set(dut.bytes_per_pixel_held, c)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        ctx.set(dut.active, 1)
        await send(ctx, dut.words, words, random.Random(seed + 1), p_word)

    async def consumer(ctx):
        await ctx.tick()                 # the load
        idle = 0
        while len(got) < n_pix:
            present = ctx.get(dut.pixel_present)
            take = present and rng.random() >= p_take
            ctx.set(dut.take_pixel, take)
            if take:
                assert ctx.get(dut.pixels_left)
                got.append(ctx.get(dut.pixel) & ((1 << 8 * c) - 1))
            await ctx.tick()
            idle = 0 if take else idle + 1
            assert idle < 200, f"no pixel for 200 cycles after {len(got)} of {n_pix}"
        ctx.set(dut.take_pixel, 0)
        for _ in range(4):               # nothing more: the words are all taken, no pixel left
            await ctx.tick()
            assert not ctx.get(dut.pixel_present)
            assert not ctx.get(dut.pixels_left)
            assert not ctx.get(dut.words_left)
            assert not ctx.get(dut.words.ready)

    run(dut, [producer, consumer], "pixel_byte_ring")
    want = [int.from_bytes(bytes(data[p * c:(p + 1) * c]), "little") for p in range(n_pix)]
    assert got == want


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(max_c=st.integers(1, 4), c_pick=st.integers(0, 3), n_pix=st.integers(1, 24),
       seed=st.integers(0, 2**16), p_word=st.sampled_from([0.0, 0.5]),
       p_take=st.sampled_from([0.0, 0.5, 0.9]))
def test_pixels_in_order(max_c, c_pick, n_pix, seed, p_word, p_take):
    simulate(max_c, 1 + c_pick % max_c, n_pix, seed, p_word, p_take)


def test_one_pixel_per_cycle():
    """Three bytes per pixel, words always offered, pixels always taken: after the first pixel
    one leaves every cycle (the ring has room for a word while a pixel leaves)."""
    c, n_pix = 3, 16
    dut = PixelByteRing(4)
    words = image_words(list(range(n_pix * c)))
    stamps = []

    async def bench(ctx):
        ctx.set(dut.n_words, len(words))
        ctx.set(dut.n_pix, n_pix)
        ctx.set(dut.bytes_per_pixel, c)
        ctx.set(dut.bytes_per_pixel_held, c)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        ctx.set(dut.active, 1)
        sent = 0
        for cycle in range(60):
            ctx.set(dut.words.valid, sent < len(words))
            if sent < len(words):
                ctx.set(dut.words.payload, words[sent])
            present = ctx.get(dut.pixel_present)
            ctx.set(dut.take_pixel, present)
            if present:
                stamps.append(cycle)
            if ctx.get(dut.words.ready) and sent < len(words):
                sent += 1
            await ctx.tick()

    run(dut, [bench], "pixel_byte_ring_rate")
    assert len(stamps) == n_pix
    assert stamps[-1] - stamps[0] == n_pix - 1


def test_parameters_checked():
    with pytest.raises(TypeError):
        PixelByteRing(2.0)
    with pytest.raises(ValueError):
        PixelByteRing(0)
