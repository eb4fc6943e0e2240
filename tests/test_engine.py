# amaranth: UnusedElaboratable=no
"""LayerEngine end to end: buffers loaded through the local port, EMBED and CONV descriptors packed
with contract.isa.pack, results read back through the local port and compared bit for bit with NumPy."""

import random

import numpy as np
import pytest
from amaranth.hdl import Fragment
from hypothesis import given, settings, strategies as st, HealthCheck

from contract import isa
from contract.config import TINY, BUF_CODE_BANK0, BUF_EMBED
from accel.engine import LayerEngine
from reference import ceil_div, embed, pack_codes, pack_table, image_words, conv_acc
from simutil import run
from engine_harness import Bus, ConvCase, desc_value


CFG = TINY  # p_o 16, p_i 8, a_planes 2, acc_bits 16, res_bits 16, 3 code banks, 3 embedding channels


def run_cases(cases, seed, name, **engine_args):
    dut = LayerEngine(CFG, **engine_args)
    rng = np.random.default_rng(seed)
    results = []

    async def bench(ctx):
        bus = Bus(dut, CFG)
        for kw in cases:
            case = ConvCase(CFG, rng, **kw)
            stats = {}
            await case.load(ctx, bus)
            err, _ = await bus.run_desc(ctx, case.desc(), stats=stats)
            assert err == 0, kw
            assert stats["mac_cycles"] == case.word_sets, kw
            await case.check(ctx, bus)
            results.append(stats)

    run(dut, [bench], name)
    assert len(results) == len(cases)
    return results


CASES_A = [
    # Cin > p_i, Cout > p_o with padded channels, residual in and out, both threshold directions
    dict(cin=12, cout=20, h=5, w=5, k=3, stride=1, pad=1, in_bits=2, res_in=1, res_out=1),
    # 2x2 max-pool, 2-bit codes, residual in
    dict(cin=12, cout=20, h=6, w=4, k=3, stride=1, pad=1, in_bits=2, pool=1, res_in=1, src=1, dst=0),
    # stride 2, 1-bit codes, buffer bases not 0
    dict(cin=8, cout=16, h=5, w=7, k=3, stride=2, pad=1, in_bits=1, out_bits=1, src=1, dst=2,
         w_base=13, thr_base=7),
]
CASES_B = [
    # head: 1x1, 8-bit input codes (4 sub-words), sums per group, no codes
    dict(cin=5, cout=30, h=3, w=4, k=1, stride=1, pad=0, in_bits=8, thr_out=0, sum_=1, res_base=7,
         src=2, dst=0),
    # 3-bit input, stride 2 without padding, residual in, odd bases
    dict(cin=20, cout=9, h=5, w=5, k=3, stride=2, pad=0, in_bits=3, res_in=1, w_base=11,
         thr_base=5, res_base=3),
    # 1x1 with pool and several output groups (m = 2 code words per group, last group partial)
    dict(cin=3, cout=40, h=4, w=6, k=1, stride=1, pad=0, in_bits=2, pool=1, res_in=1),
    # acc only (res_out without codes), 5-bit input
    dict(cin=9, cout=17, h=3, w=3, k=3, stride=1, pad=1, in_bits=5, thr_out=0, res_out=1,
         res_base=2),
]


def test_conv_layers_a():
    run_cases(CASES_A, 1, "engine_conv_a")


def test_conv_layers_b():
    run_cases(CASES_B, 2, "engine_conv_b")


def test_conv_layers_split_weight_buffer():
    """The weight buffer in four column groups, each with its own address-register copies."""
    engine = LayerEngine(CFG, wbuf_group_lanes=1)
    assert engine.wbuf.groups == 4
    Fragment.get(engine, None)        # and it elaborates (which also leaves no part unused)
    run_cases(CASES_A, 3, "engine_conv_split", wbuf_group_lanes=1)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cin=st.integers(1, 17), cout=st.integers(1, 33), h=st.integers(2, 6), w=st.integers(2, 6),
       k=st.sampled_from([1, 3]), stride=st.integers(1, 2), in_bits=st.integers(1, 8),
       mode=st.sampled_from(["codes", "pool", "res", "sum"]), out_bits=st.integers(1, 2),
       seed=st.integers(0, 2**16))
def test_conv_random(cin, cout, h, w, k, stride, in_bits, mode, out_bits, seed):
    pad = k // 2
    h_out = (h + 2 * pad - k) // stride + 1
    w_out = (w + 2 * pad - k) // stride + 1
    kw = dict(cin=cin, cout=cout, h=h, w=w, k=k, stride=stride, pad=pad, in_bits=in_bits,
              out_bits=out_bits)
    if mode == "pool" and h_out % 2 == 0 and w_out % 2 == 0:
        kw.update(pool=1, res_in=seed % 2)
    elif mode == "res":
        kw.update(res_in=1, res_out=1)
    elif mode == "sum":
        kw.update(thr_out=0, sum_=1)
    run_cases([kw], seed, "engine_conv_random")


def test_mac_utilization():
    """The MAC array accepts a word-set in every cycle except at group boundaries (threshold reload)."""
    kw = dict(cin=16, cout=32, h=8, w=8, k=3, stride=1, pad=1, in_bits=2)
    case_words = 2 * 64 * 9 * 2  # n_cog * pixels * taps * n_cig * nsub
    (stats,) = run_cases([kw], 3, "engine_util")
    assert stats["mac_cycles"] == case_words
    n_cog = 2
    span = stats["last_busy"] - stats["first_busy"] + 1
    # steady state: only the threshold reload between the two groups may stall (p_o + a few cycles)
    assert span - case_words <= (n_cog - 1) * (CFG.p_o + 8)
    # whole layer: setup (shift-add products) + first threshold load + pipeline drain
    assert stats["cycles"] <= case_words + 350 + n_cog * (CFG.p_o + 8)
    assert stats["mac_cycles"] / stats["cycles"] >= 0.85


def test_embed_then_conv():
    dut = LayerEngine(CFG)
    rng = np.random.default_rng(4)
    c, h, w, d, q = 3, 4, 5, 2, 2
    img = rng.integers(0, 256, (c, h, w))
    table = rng.integers(0, 1 << q, (c, 256, d))
    codes = embed(img, table)                    # (6, 4, 5), 2-bit
    raw_img = rng.integers(0, 256, (2, 3, 3))
    wbits = rng.integers(0, 2, (16, c * d, 3, 3))

    async def bench(ctx):
        bus = Bus(dut, CFG)
        entries = pack_table(table, q, CFG.emb_channels)
        await bus.write_words(ctx, BUF_EMBED, 0, entries)
        assert await bus.read_words(ctx, BUF_EMBED, 250, 3) == [0, 0, 0]      # write-only
        # table EMBED into bank 0, with stalls on the pixel stream
        err, _ = await bus.run_desc(ctx, desc_value(op=isa.Op.EMBED, nsub=1, dst_bank=0, h_in=h,
                                                    w_in=w, emb_c=c, emb_d=d, emb_q=q),
                                    pixels=image_words(img), rng=random.Random(1), p_stall=0.3)
        assert err == 0
        assert await bus.read_words(ctx, BUF_CODE_BANK0, 0, h * w) == pack_codes(codes, 8, 2, 1)
        # raw EMBED into bank 2: 8-bit pixels, 4 sub-words
        stats = {}
        err, _ = await bus.run_desc(ctx, desc_value(op=isa.Op.EMBED, raw=1, nsub=4, dst_bank=2,
                                                    h_in=3, w_in=3, emb_c=2),
                                    pixels=image_words(raw_img), stats=stats)
        assert err == 0 and stats["words_taken"] == ceil_div(3 * 3 * 2, 4)
        assert await bus.read_words(ctx, BUF_CODE_BANK0 + 2, 0, 36) == pack_codes(raw_img, 8, 2, 4)
        # CONV on the embedded map: 3x3, pad 1, 16 outputs, residual out
        from reference import pack_weights, unpack_res_word
        from contract.config import BUF_WEIGHTS, BUF_RESIDUAL
        await bus.write_words(ctx, BUF_WEIGHTS, 0, pack_weights(wbits, 16, 8))
        err, _ = await bus.run_desc(ctx, desc_value(
            op=isa.Op.CONV, res_out=1, k=3, stride=1, pad=1, nsub=1, src_bank=0, dst_bank=1,
            h_in=h, w_in=w, h_out=h, w_out=w, n_cig=1, n_cog=1))
        assert err == 0
        want = conv_acc(codes, wbits, 1, 1)
        got = [unpack_res_word(x, 16, 16) for x in await bus.read_words(ctx, BUF_RESIDUAL, 0, h * w)]
        assert np.array_equal(np.array(got).T.reshape(16, h, w), want)

    run(dut, [bench], "engine_embed_conv")


def test_window_embed_then_1x1_conv():
    """EMBED window mode writes a 3x3 stride-2 conv's windows; the conv then runs as a 1x1 over 3
    channel groups and gives the 3x3 conv's accumulators (docs/ARCHITECTURE.md 3.3)."""
    from reference import pack_weights, unpack_res_word, window_embed
    from contract.config import BUF_WEIGHTS, BUF_RESIDUAL
    dut = LayerEngine(CFG)
    rng = np.random.default_rng(7)
    h, w, d, q, k, s, p = 7, 6, 2, 2, 3, 2, 1
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    img = rng.integers(0, 256, (1, h, w))
    table = rng.integers(0, 1 << q, (1, 256, d))
    wbits = rng.integers(0, 2, (16, d, k, k))
    # virtual input channel ky*p_i + kx*d + j <- weight [o, j, ky, kx]; padding lanes any bit
    wwin = rng.integers(0, 2, (16, k * CFG.p_i, 1, 1))
    for ky in range(k):
        for kx in range(k):
            for j in range(d):
                wwin[:, ky * CFG.p_i + kx * d + j, 0, 0] = wbits[:, j, ky, kx]

    async def bench(ctx):
        bus = Bus(dut, CFG)
        await bus.write_words(ctx, BUF_EMBED, 0, pack_table(np.repeat(table, k, axis=0), q,
                                                            CFG.emb_channels))
        err, _ = await bus.run_desc(ctx, desc_value(
            op=isa.Op.EMBED, nsub=1, dst_bank=0, h_in=h, w_in=w, emb_c=1, emb_d=d, emb_q=q,
            k=k, stride=s, pad=p, h_out=ho, w_out=wo),
            pixels=image_words(img), rng=random.Random(2), p_stall=0.3)
        assert err == 0
        want_win = window_embed(img, np.repeat(table, k, axis=0), k, s, p, ho, wo, CFG.p_i)
        assert await bus.read_words(ctx, BUF_CODE_BANK0, 0, ho * wo * k) == \
            pack_codes(want_win, CFG.p_i, 2, 1)
        await bus.write_words(ctx, BUF_WEIGHTS, 0, pack_weights(wwin, 16, CFG.p_i))
        err, _ = await bus.run_desc(ctx, desc_value(
            op=isa.Op.CONV, res_out=1, k=1, stride=1, pad=0, nsub=1, src_bank=0, dst_bank=1,
            h_in=ho, w_in=wo, h_out=ho, w_out=wo, n_cig=k, n_cog=1))
        assert err == 0
        want = conv_acc(embed(img, table), wbits, s, p)
        got = [unpack_res_word(x, 16, 16) for x in await bus.read_words(ctx, BUF_RESIDUAL, 0, ho * wo)]
        assert np.array_equal(np.array(got).T.reshape(16, ho, wo), want)

    run(dut, [bench], "engine_window_embed")


GOOD = dict(op=isa.Op.CONV, thr_out=1, k=3, stride=1, pad=1, out_bits=2, nsub=1, src_bank=0,
            dst_bank=1, h_in=4, w_in=4, h_out=4, w_out=4, n_cig=1, n_cog=1, n_cig_out=2)
WIN = dict(op=isa.Op.EMBED, nsub=1, dst_bank=0, h_in=4, w_in=4, emb_c=1, emb_d=2, emb_q=2, k=3,
           stride=2, pad=1, h_out=2, w_out=2)
BAD = [
    dict(src_bank=3), dict(dst_bank=0), dict(dst_bank=3), dict(k=0), dict(stride=0), dict(pad=3),
    dict(nsub=0), dict(nsub=5), dict(n_cig=0), dict(n_cog=0), dict(h_out=5), dict(w_out=0),
    dict(out_bits=0), dict(out_bits=3), dict(pool=1, h_out=3, h_in=3), dict(pool=1, res_out=1),
    dict(sum=1, res_out=1), dict(n_cig_out=3), dict(n_cig_out=0), dict(thr_base=127),
    dict(w_base=250), dict(res_in=1, res_base=250), dict(sum=1, res_base=256),
    dict(h_in=40, w_in=40, h_out=40, w_out=40), dict(pool=1, thr_out=0, out_bits=0, n_cig_out=0),
    # EMBED
    dict(op=isa.Op.EMBED, dst_bank=3, emb_c=1, emb_d=1, emb_q=1),
    dict(op=isa.Op.EMBED, dst_bank=0, emb_c=4, emb_d=1, emb_q=1),
    dict(op=isa.Op.EMBED, dst_bank=0, emb_c=3, emb_d=3, emb_q=1),      # 9 lanes > p_i
    dict(op=isa.Op.EMBED, dst_bank=0, emb_c=1, emb_d=1, emb_q=3),      # q > a_planes
    dict(op=isa.Op.EMBED, dst_bank=0, emb_c=1, emb_d=0, emb_q=1),
    dict(op=isa.Op.EMBED, dst_bank=0, emb_c=1, emb_d=1, emb_q=1, h_in=40, w_in=40, nsub=1),
    # EMBED window mode (the good one: WIN below)
    dict(WIN, emb_c=2), dict(WIN, raw=1), dict(WIN, nsub=2), dict(WIN, k=4),
    dict(WIN, emb_d=3),                                                 # 3 taps x 3 > p_i
    dict(WIN, stride=0), dict(WIN, h_out=0), dict(WIN, w_out=0),
    dict(WIN, h_out=32, w_out=32),                                      # 3,072 words > bank
]


def test_bad_descriptors():
    dut = LayerEngine(CFG)

    async def bench(ctx):
        bus = Bus(dut, CFG)
        await bus.write_words(ctx, BUF_CODE_BANK0 + 1, 0, [0x1234, 0x5678])
        # the good descriptor passes (sanity: the bad ones differ only in the named fields)
        err, _ = await bus.run_desc(ctx, desc_value(**GOOD))
        assert err == 0
        err, _ = await bus.run_desc(ctx, desc_value(**WIN), pixels=[0] * 4)
        assert err == 0
        await bus.write_words(ctx, BUF_CODE_BANK0 + 1, 0, [0x1234, 0x5678])
        for bad in BAD:
            f = dict(GOOD)
            if bad.get("op") == isa.Op.EMBED:
                f = dict(op=isa.Op.EMBED, nsub=1, h_in=4, w_in=4)
            f.update(bad)
            err, cycles = await bus.run_desc(ctx, desc_value(**f))
            assert err == 5, bad
            assert cycles < 400, bad
            assert not ctx.get(dut.busy)
        # nothing was written
        assert await bus.read_words(ctx, BUF_CODE_BANK0 + 1, 0, 2) == [0x1234, 0x5678]
        err, _ = await bus.run_desc(ctx, desc_value(op=isa.Op.LOAD))
        assert err == 1
        assert ctx.get(dut.error) == 1   # held after done

    run(dut, [bench], "engine_bad")


def test_local_bus_unknown_and_out_of_range():
    dut = LayerEngine(CFG)

    async def bench(ctx):
        bus = Bus(dut, CFG)
        await bus.write_words(ctx, BUF_CODE_BANK0, CFG.bank_depth - 1, [0xBEEF])
        assert await bus.read_words(ctx, BUF_CODE_BANK0, CFG.bank_depth - 1, 1) == [0xBEEF]
        # lanes beyond the buffer and unknown buffers read as 0 and ignore writes
        await bus.write_words(ctx, BUF_CODE_BANK0, CFG.bank_depth, [0xFFFF])
        assert await bus.read_words(ctx, BUF_CODE_BANK0, CFG.bank_depth, 1) == [0]
        await bus.write_words(ctx, 9, 0, [0xFFFF])
        assert await bus.read_words(ctx, 9, 0, 1) == [0]
        # 16-bit code words keep their low bits; lanes of wide words are independent
        await bus.write_words(ctx, BUF_CODE_BANK0 + 1, 5, [0xABCD1234])
        assert await bus.read_words(ctx, BUF_CODE_BANK0 + 1, 5, 1) == [0x1234]
        from contract.config import BUF_WEIGHTS, BUF_RESIDUAL, BUF_THRESHOLDS
        word = random.Random(3).getrandbits(32 * CFG.lanes(BUF_RESIDUAL))
        await bus.write_words(ctx, BUF_RESIDUAL, 3, [word])
        assert await bus.read_words(ctx, BUF_RESIDUAL, 3, 1) == [word]
        # the parameter buffers are write-only: they read as 0
        for buf in (BUF_WEIGHTS, BUF_THRESHOLDS):
            await bus.write_words(ctx, buf, 3, [(1 << 32 * CFG.lanes(buf)) - 1])
            assert await bus.read_words(ctx, buf, 3, 1) == [0]

    run(dut, [bench], "engine_local")


def test_config_checks():
    with pytest.raises(TypeError, match="config"):
        LayerEngine(None)
    with pytest.raises(ValueError, match="wbuf_group_lanes"):
        LayerEngine(CFG, wbuf_group_lanes=0)
    with pytest.raises(TypeError, match="wbuf_group_lanes"):
        LayerEngine(CFG, wbuf_group_lanes=2.0)
