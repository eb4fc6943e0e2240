"""EmbeddingUnit against the NumPy reference (table and raw modes), random stalls on both streams."""

import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from accel.config import TINY, AccelConfig
from accel.embedding import EmbeddingUnit
from reference import embed, pack_codes, pack_table, image_words, ceil_div
from simutil import run, send, recv


def simulate(cfg, img, table, q, raw, nsub, seed, p_in, p_out):
    c, h, w = img.shape
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
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await send(ctx, dut.pixels, words, random.Random(seed), p_in)

    async def sink(ctx):
        got.extend(await recv(ctx, dut.out, h * w * nsub, random.Random(seed + 1), p_out))
        # busy drops after the last word; the unit consumed exactly the image words
        for _ in range(4):
            await ctx.tick()
        assert not ctx.get(dut.busy)

    run(dut, [bench, sink], "embedding")
    return got


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
            if valid:
                got.append(v)
                stamps.append(cycle)

    run(dut, [bench, sink], "embedding_rate")
    assert got == pack_codes(embed(img, table), 16, 2, 1)
    assert stamps[-1] - stamps[0] == 23  # back to back


def test_config_type():
    with pytest.raises(TypeError, match="config"):
        EmbeddingUnit("tiny")
