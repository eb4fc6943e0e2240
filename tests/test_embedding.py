# amaranth: UnusedElaboratable=no
"""EmbeddingUnit against the NumPy reference (table, raw and window modes), random stalls on both
streams; every word's bank address checked."""

import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from contract.config import TINY, AccelConfig
from accel.embedding import EmbeddingUnit
from amaranth.hdl import Cat

from reference import embed, pack_codes, pack_table, image_words, ceil_div, window_embed
from simutil import run, send, recv


def simulate(cfg, img, table, q, raw, nsub, seed, p_in, p_out, window=None, stats=None):
    """Run one EMBED; returns the words in bank order, checking that each address is written once
    (``window``: ``(k, stride, pad, h_out, w_out)``; ``stats["cycles"]``: start to ``busy`` low)."""
    c, h, w = img.shape
    k, stride, pad, h_out, w_out = window or (0, 0, 0, 0, 0)
    n_out = h_out * w_out * k if window else h * w * nsub
    d = table.shape[2] if table is not None else 0
    dut = EmbeddingUnit(cfg)
    words = image_words(img)
    entries = pack_table(table, q, cfg.emb_channels) if table is not None else None
    got = []

    async def bench(ctx):
        if entries is not None:
            for addr, e in enumerate(entries):
                if e or addr % 97 == 0:
                    ctx.set(dut.tw_addr, addr)
                    ctx.set(dut.tw_data, e)
                    ctx.set(dut.tw_en, 1)
                    await ctx.tick()
            ctx.set(dut.tw_en, 0)
        ctx.set(dut.n_pix, h * w)
        ctx.set(dut.n_words, len(words))
        ctx.set(dut.emb_c, c)
        ctx.set(dut.emb_d, d)
        ctx.set(dut.emb_q, q)
        ctx.set(dut.raw, raw)
        ctx.set(dut.nsub, nsub)
        for name, v in (("win_k", k), ("stride", stride), ("pad", pad), ("h_in", h), ("w_in", w),
                        ("h_out", h_out), ("w_out", w_out)):
            ctx.set(getattr(dut, name), v)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        if stats is not None:
            stats["start"] = stats["now"]
        await send(ctx, dut.pixels, words, random.Random(seed), p_in)

    async def clock(ctx):
        if stats is not None:
            stats["now"] = 0
            async for _ in ctx.tick():
                stats["now"] += 1

    async def sink(ctx):
        got.extend(await recv(ctx, dut.out, n_out, random.Random(seed + 1), p_out,
                              value=Cat(dut.out.payload, dut.out_addr)))
        # busy drops after the last word (window mode: once the walk over the padded image, which
        # may go on past the last window, has read every pixel); the unit consumed exactly the
        # image words
        tail = 4 + ((max(h + pad, (h_out - 1) * stride + k) + 1) *
                    (max(w + pad, (w_out - 1) * stride + k) + 1) if window else 0)
        for _ in range(tail):
            if not ctx.get(dut.busy):
                break
            await ctx.tick()
        assert not ctx.get(dut.busy)
        if stats is not None:
            stats["cycles"] = stats["now"] - stats["start"]

    run(dut, [bench, sink], "embedding", background=[clock])
    bits = cfg.code_word_bits
    addrs = [v >> bits for v in got]
    assert sorted(addrs) == list(range(n_out)), "every bank word written exactly once"
    if not window:
        assert addrs == list(range(n_out)), "plain mode writes in bank order"
    bank = dict((v >> bits, v & ((1 << bits) - 1)) for v in got)
    return [bank[a] for a in range(n_out)]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=st.integers(1, 3), d=st.integers(1, 2), q=st.integers(1, 2), h=st.integers(1, 4),
       w=st.integers(1, 4), nsub=st.integers(1, 2), seed=st.integers(0, 2**16),
       p_in=st.sampled_from([0.0, 0.5]), p_out=st.sampled_from([0.0, 0.5]))
def test_table_mode(c, d, q, h, w, nsub, seed, p_in, p_out):
    cfg = TINY  # p_i = 8, a_planes = 2, emb_channels = 3
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (c, h, w))
    table = rng.integers(0, 1 << q, (c, 256, d))
    got = simulate(cfg, img, table, q, 0, nsub, seed, p_in, p_out)
    want = pack_codes(embed(img, table), cfg.p_i, cfg.a_planes, nsub)
    assert got == want


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=st.integers(1, 3), h=st.integers(1, 3), w=st.integers(1, 4), seed=st.integers(0, 2**16),
       p_out=st.sampled_from([0.0, 0.5]))
def test_raw_mode(c, h, w, seed, p_out):
    cfg = TINY
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (c, h, w))
    nsub = ceil_div(8, cfg.a_planes)
    got = simulate(cfg, img, None, 1, 1, nsub, seed, 0.3, p_out)
    assert got == pack_codes(img, cfg.p_i, cfg.a_planes, nsub)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 3), stride=st.integers(1, 3), pad=st.integers(0, 3), d=st.integers(1, 2),
       q=st.integers(1, 2), h=st.integers(1, 6), w=st.integers(1, 6), extra=st.integers(0, 1),
       seed=st.integers(0, 2**16), p_in=st.sampled_from([0.0, 0.5]),
       p_out=st.sampled_from([0.0, 0.5]))
def test_window_mode(k, stride, pad, d, q, h, w, extra, seed, p_in, p_out):
    """The windows of a k x k conv (its output size, or one more row and column: windows in the
    padding), from an image whose table is loaded into channels 0..k-1 (different tables per
    channel here, so that a tap read through the wrong table shows)."""
    cfg = TINY  # p_i = 8, emb_channels = 3
    h_out = max(1, (h + 2 * pad - k) // stride + 1) + extra
    w_out = max(1, (w + 2 * pad - k) // stride + 1) + extra
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (1, h, w))
    table = rng.integers(0, 1 << q, (k, 256, d))
    got = simulate(cfg, img, table, q, 0, 1, seed, p_in, p_out, (k, stride, pad, h_out, w_out))
    want = window_embed(img, table, k, stride, pad, h_out, w_out, cfg.p_i)
    assert got == pack_codes(want, cfg.p_i, cfg.a_planes, 1)


def test_window_mode_wide_windows_past_the_image():
    """1023 windows of stride 3 over a 4-pixel row: the walk spans (w_out-1)*stride + k = 3,067
    columns (more than 11 bits) and every window past the image is zero."""
    cfg = TINY.replace(bank_depth=1024)
    rng = np.random.default_rng(9)
    img = rng.integers(0, 256, (1, 1, 4))
    table = rng.integers(0, 4, (1, 256, 2))
    got = simulate(cfg, img, table, 2, 0, 1, 9, 0.0, 0.0, (1, 3, 0, 1, 1023))
    assert got == pack_codes(window_embed(img, table, 1, 3, 0, 1, 1023, cfg.p_i), cfg.p_i, 2, 1)


def test_window_mode_stem_shape():
    """The default net's first layer: 28x28, 3x3 stride 2 pad 1, d=8, q=2 on 32 lanes. The walk
    over the padded 29x29 image takes one cycle per pixel: a row feeding two windows (two words
    per window row, one every second pixel) never stalls it."""
    cfg = AccelConfig(p_o=32, p_i=32, a_planes=2, acc_bits=16, emb_channels=4, wbuf_depth=64,
                      thr_depth=64, res_depth=64, bank_depth=1024, mem_words=1024)
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (1, 28, 28))
    table = np.repeat(rng.integers(0, 4, (1, 256, 8)), 3, axis=0)
    stats = {}
    got = simulate(cfg, img, table, 2, 0, 1, 3, 0.0, 0.0, (3, 2, 1, 14, 14), stats)
    assert got == pack_codes(window_embed(img, table, 3, 2, 1, 14, 14, cfg.p_i), cfg.p_i, 2, 1)
    assert stats["cycles"] <= 29 * 29 + 8


def test_wide_config_one_pixel_per_cycle():
    """p_i 16, 4 channels x d 4 x q 1: one pixel per cycle once the pipeline is full."""
    cfg = AccelConfig(p_o=16, p_i=16, a_planes=2, acc_bits=16, emb_channels=4, wbuf_depth=64,
                      thr_depth=64, res_depth=64, bank_depth=256, mem_words=1024)
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (4, 3, 8))
    table = rng.integers(0, 2, (4, 256, 4))
    dut = EmbeddingUnit(cfg)
    words = image_words(img)
    entries = pack_table(table, 1, 4)
    got, stamps = [], []

    async def bench(ctx):
        for addr, e in enumerate(entries):
            ctx.set(dut.tw_addr, addr)
            ctx.set(dut.tw_data, e)
            ctx.set(dut.tw_en, 1)
            await ctx.tick()
        ctx.set(dut.tw_en, 0)
        for name, v in (("n_pix", 24), ("n_words", len(words)), ("emb_c", 4), ("emb_d", 4),
                        ("emb_q", 1), ("raw", 0), ("nsub", 1)):
            ctx.set(getattr(dut, name), v)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await send(ctx, dut.pixels, words, random.Random(1), 0.0)

    async def sink(ctx):
        ctx.set(dut.out.ready, 1)
        cycle = 0
        while len(got) < 24:
            _, _, valid, v = await ctx.tick().sample(dut.out.valid, dut.out.payload)
            cycle += 1
            assert cycle < 10_000, f"only {len(got)} of 24 words"  # table load + 24 pixels
            if valid:
                got.append(v)
                stamps.append(cycle)

    run(dut, [bench, sink], "embedding_rate")
    assert got == pack_codes(embed(img, table), 16, 2, 1)
    assert stamps[-1] - stamps[0] == 23  # back to back


def test_config_type():
    with pytest.raises(TypeError, match="config"):
        EmbeddingUnit("tiny")
