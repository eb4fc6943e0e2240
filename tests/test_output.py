# amaranth: UnusedElaboratable=no
"""OutputUnit against a NumPy reference: residual add, residual write, sums, thresholds in both
directions, 2x2 max-pool, packing of partial code groups; random stalls on the input stream."""

import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib.memory import Memory

from contract.config import TINY
from accel.output import OutputUnit
from reference import (pack_res_word, unpack_res_word, pack_thresholds, threshold, wrap_signed,
                       ceil_div)
from simutil import run, send


class Harness(Elaboratable):
    def __init__(self, cfg, res_init, thr_init, code_depth):
        self.ou = OutputUnit(cfg)
        self.res = Memory(shape=cfg.res_word_bits, depth=len(res_init), init=res_init)
        self.thr = Memory(shape=64, depth=len(thr_init), init=thr_init)
        self.code = Memory(shape=cfg.code_word_bits, depth=code_depth, init=[])

    def elaborate(self, platform):
        m = Module()
        ou = m.submodules.ou = self.ou
        m.submodules.res, m.submodules.thr, m.submodules.code = self.res, self.thr, self.code
        rrp, rwp = self.res.read_port(), self.res.write_port()
        trp = self.thr.read_port()
        cwp = self.code.write_port()
        # the residual's read data registered, as the engine does (two cycles after res_raddr)
        res_q = Signal.like(rrp.data)
        m.d.sync += res_q.eq(rrp.data)
        m.d.comb += [rrp.addr.eq(ou.res_raddr), rrp.en.eq(ou.res_ren), ou.res_rdata.eq(res_q),
                     rwp.addr.eq(ou.res_waddr), rwp.data.eq(ou.res_wdata), rwp.en.eq(ou.res_wen),
                     trp.addr.eq(ou.thr_raddr), trp.en.eq(ou.thr_ren), ou.thr_rdata.eq(trp.data),
                     cwp.addr.eq(ou.code_waddr), cwp.data.eq(ou.code_wdata), cwp.en.eq(ou.code_wen)]
        return m


def check_layer(seed, n_cog, npix, res_in, res_out, thr_out, out_bits, pool, sum_, partial,
                p_stall, layers=1, cfg=TINY, acc_range=300):
    p_o, p_i, nb, rb, ab = cfg.p_o, cfg.p_i, cfg.a_planes, cfg.res_bits, cfg.acc_bits
    mm = cfg.m
    rng = np.random.default_rng(seed)
    res_base, thr_base = int(rng.integers(0, 5)), int(rng.integers(0, 9))
    n_cig_out = n_cog * mm - (1 if partial else 0)
    res_depth = res_base + npix * n_cog + 4
    acc = rng.integers(-acc_range, acc_range, (n_cog, npix, p_o))
    res_init_v = rng.integers(-300, 300, (res_depth, p_o))
    res_init = [pack_res_word(r, rb) for r in res_init_v]
    thr = np.sort(rng.integers(-400, 400, (n_cog * p_o, 3)), axis=1)
    neg = rng.integers(0, 2, n_cog * p_o)
    thr_init = [0] * thr_base + pack_thresholds(thr.tolist(), neg.tolist(), p_o, n_cog)
    n_written = npix // 4 if pool else npix
    dut = Harness(cfg, res_init, thr_init, n_written * n_cig_out + 8)
    ou = dut.ou

    # expected results
    v = acc.copy()
    raddr = lambda cog, pix: res_base + pix * n_cog + cog
    if res_in:
        for cog in range(n_cog):
            for pix in range(npix):
                v[cog, pix] += res_init_v[raddr(cog, pix)]
    res_want = [list(unpack_res_word(w, p_o, rb)) for w in res_init]
    if res_out:
        for cog in range(n_cog):
            for pix in range(npix):
                res_want[raddr(cog, pix)] = [wrap_signed(int(x), rb) for x in v[cog, pix]]
    if sum_:
        for cog in range(n_cog):
            res_want[res_base + cog] = [wrap_signed(int(x), rb) for x in v[cog].sum(axis=0)]
    code_want = {}
    if thr_out:
        for cog in range(n_cog):
            t = thr[cog * p_o:(cog + 1) * p_o]
            ng = neg[cog * p_o:(cog + 1) * p_o]
            codes = threshold(v[cog].T, t, ng, out_bits)      # (p_o, npix)
            if pool:
                codes = codes.reshape(p_o, npix // 4, 4).max(axis=2)
            for opix in range(codes.shape[1]):
                for j in range(mm):
                    if cog * mm + j >= n_cig_out:
                        continue
                    word = 0
                    for i in range(p_i):
                        c = int(codes[j * p_i + i, opix])
                        for b in range(nb):
                            word |= ((c >> b) & 1) << (b * p_i + i)
                    code_want[opix * n_cig_out + cog * mm + j] = word

    items = []
    for cog in range(n_cog):
        for pix in range(npix):
            a = 0
            for o in range(p_o):
                a |= (int(acc[cog, pix, o]) & ((1 << ab) - 1)) << (o * ab)
            last = int(pix == npix - 1)
            tag = raddr(cog, pix) | last << 16 | int(last and cog == n_cog - 1) << 17
            items.append(a | tag << (p_o * ab))
    finished = []

    async def bench(ctx):
        for name, val in (("res_in", res_in), ("res_out", res_out), ("thr_out", thr_out),
                          ("pool", pool), ("sum", sum_), ("out_bits", out_bits),
                          ("res_base", res_base), ("thr_base", thr_base), ("n_cig_out", n_cig_out)):
            ctx.set(getattr(ou, name), val)
        for _ in range(layers):
            ctx.set(ou.start, 1)
            await ctx.tick()
            ctx.set(ou.start, 0)
            await send(ctx, ou.inp, items, random.Random(seed), p_stall)
            n = 0
            while True:
                _, _, f = await ctx.tick().sample(ou.finished)
                n += 1
                if f:
                    finished.append(n)
                    break
                assert n < 200
            await ctx.tick()
            assert ctx.get(ou.idle) or thr_out     # idle, or reloading thresholds for a next group
        got_res = [unpack_res_word(ctx.get(dut.res.data[i]), p_o, rb) for i in range(res_depth)]
        assert got_res == res_want
        for addr, word in code_want.items():
            assert ctx.get(dut.code.data[addr]) == word, addr
        # nothing written beyond the expected words
        for addr in range(n_written * n_cig_out, n_written * n_cig_out + 8):
            assert ctx.get(dut.code.data[addr]) == 0

    run(dut, [bench], "output")
    assert len(finished) == layers


@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n_cog=st.integers(1, 3), npix=st.sampled_from([1, 4, 8]),
       mode=st.sampled_from(["codes", "res", "pool", "sum", "resonly"]), out_bits=st.integers(1, 2),
       partial=st.booleans(), res_in=st.booleans(), p_stall=st.sampled_from([0.0, 0.5]))
def test_random(seed, n_cog, npix, mode, out_bits, partial, res_in, p_stall):
    thr_out = int(mode in ("codes", "res", "pool"))
    pool = int(mode == "pool" and npix % 4 == 0)
    res_out = int(mode in ("res", "resonly"))
    sum_ = int(mode == "sum")
    check_layer(seed, n_cog, npix, int(res_in), res_out, thr_out, out_bits, pool, sum_, partial,
                p_stall)


def test_back_to_back_layers():
    """Two runs on one unit: start resets the group counters and the sums."""
    check_layer(11, 2, 4, 1, 0, 1, 2, 1, 0, True, 0.2, layers=2)
    check_layer(12, 2, 3, 0, 0, 0, 2, 0, 1, False, 0.2, layers=2)


def test_wide_accumulators():
    """acc_bits 20: v beyond the 17-bit compare range still thresholds (and negates) exactly."""
    cfg = TINY.replace(acc_bits=20)
    check_layer(21, 2, 8, 1, 0, 1, 2, 0, 0, False, 0.3, cfg=cfg, acc_range=1 << 19)
    check_layer(22, 1, 8, 0, 0, 1, 2, 1, 0, True, 0.0, cfg=cfg, acc_range=70000)


def test_one_pixel_per_cycle():
    """m = 2 code words per pixel: without pool the unit writes 2 words per pixel, so it takes a
    pixel every other cycle; with pool (one write per 4 pixels) it takes one pixel per cycle."""
    cfg = TINY
    for pool, per_pixel in ((0, 2), (1, 1)):
        res_init = [0] * 16
        dut = Harness(cfg, res_init, [0] * 32, 64)
        ou = dut.ou
        taken = []

        async def bench(ctx):
            for name, val in (("thr_out", 1), ("pool", pool), ("out_bits", 2), ("n_cig_out", 2)):
                ctx.set(getattr(ou, name), val)
            ctx.set(ou.start, 1)
            await ctx.tick()
            ctx.set(ou.start, 0)
            ctx.set(ou.inp.valid, 1)
            ctx.set(ou.inp.payload.tag.raddr, 0)
            cycle = 0
            while len(taken) < 16:
                ctx.set(ou.inp.payload.tag.last, int(len(taken) == 15))
                _, _, r = await ctx.tick().sample(ou.inp.ready)
                cycle += 1
                if r:
                    taken.append(cycle)
            ctx.set(ou.inp.valid, 0)

        run(dut, [bench], "output_rate")
        assert taken[-1] - taken[0] <= 15 * per_pixel


def test_config_type():
    with pytest.raises(TypeError, match="config"):
        OutputUnit(3)
