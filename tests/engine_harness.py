"""Test harness for LayerEngine: local-bus loads/reads, descriptors, NumPy layer references."""

import random

import numpy as np

from contract import isa
from accel.localbus import READ_LATENCY
from contract.config import (BUF_WEIGHTS, BUF_THRESHOLDS, BUF_EMBED, BUF_RESIDUAL, BUF_CODE_BANK0,
                          LOCAL_LANE_BITS)
from reference import (ceil_div, pack_codes, pack_weights, pack_thresholds, threshold, conv_acc,
                       maxpool2, pack_res_word, unpack_res_word, wrap_signed, embed, pack_table,
                       image_words)


def desc_value(**fields):
    words = isa.pack(**fields)
    return sum(w << (32 * k) for k, w in enumerate(words))


def raw_desc_value(**fields):
    """A descriptor value with ``fields`` (the rest 0), each masked to its width, unchecked (for
    descriptors that ``isa.pack`` refuses, and for fields of any opcode)."""
    return sum((value & ((1 << isa.FIELD_BY_NAME[name].width) - 1)) << isa.FIELD_BY_NAME[name].lsb
               for name, value in fields.items())


class Bus:
    """Local-bus driver (one lane per cycle)."""

    def __init__(self, dut, cfg):
        self.dut, self.cfg = dut, cfg

    def lanes(self, buf):
        try:
            return self.cfg.lanes(buf)
        except ValueError:      # unknown buffer id: address it as one lane per word
            return 1

    async def write_words(self, ctx, buf, base, words):
        lanes = self.lanes(buf)
        bus = self.dut.local
        for w, word in enumerate(words):
            for l in range(lanes):
                ctx.set(bus.addr, (buf << LOCAL_LANE_BITS) | ((base + w) * lanes + l))
                ctx.set(bus.w_data, (word >> (32 * l)) & 0xFFFF_FFFF)
                ctx.set(bus.w_en, 1)
                await ctx.tick()
        ctx.set(bus.w_en, 0)

    async def read_words(self, ctx, buf, base, n):
        lanes = self.lanes(buf)
        bus = self.dut.local
        out = []
        for w in range(n):
            word = 0
            for l in range(lanes):
                ctx.set(bus.addr, (buf << LOCAL_LANE_BITS) | ((base + w) * lanes + l))
                ctx.set(bus.r_en, 1)
                await ctx.tick()
                ctx.set(bus.r_en, 0)
                for _ in range(READ_LATENCY - 1):
                    await ctx.tick()
                word |= ctx.get(bus.r_data) << (32 * l)
            out.append(word)
        return out

    async def run_desc(self, ctx, value, pixels=None, rng=None, p_stall=0.0, stats=None):
        """Pulse start with descriptor ``value``; feed ``pixels`` words; return (error, cycles)."""
        dut = self.dut
        ctx.set(dut.desc.as_value(), value)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycles = 0
        busy = 0
        first_busy = last_busy = None
        pix = list(pixels or [])
        k = 0
        while True:
            if k < len(pix) and (rng is None or rng.random() >= p_stall):
                ctx.set(dut.pixels.valid, 1)
                ctx.set(dut.pixels.payload, pix[k])
            else:
                ctx.set(dut.pixels.valid, 0)
            _, _, done, err, mb, valid, ready = await ctx.tick().sample(
                dut.done, dut.error, dut.mac_busy, dut.pixels.valid, dut.pixels.ready)
            cycles += 1
            busy += mb
            if mb:
                first_busy = cycles if first_busy is None else first_busy
                last_busy = cycles
            if valid and ready:
                k += 1
            if done:
                ctx.set(dut.pixels.valid, 0)
                if stats is not None:
                    stats.update(cycles=cycles, mac_cycles=busy, words_taken=k,
                                 first_busy=first_busy, last_busy=last_busy)
                return err, cycles
            assert cycles < 200_000, "engine did not finish"


class ConvCase:
    """A random CONV layer, its buffer images and its expected results."""

    def __init__(self, cfg, rng, *, cin, cout, h, w, k, stride, pad, in_bits, res_in=0, res_out=0,
                 thr_out=1, out_bits=2, pool=0, sum_=0, src=0, dst=1, w_base=0, thr_base=0,
                 res_base=0):
        p_o, p_i, nb = cfg.p_o, cfg.p_i, cfg.a_planes
        self.cfg = cfg
        self.n_cig, self.n_cog = ceil_div(cin, p_i), ceil_div(cout, p_o)
        self.nsub = ceil_div(in_bits, nb)
        self.h_out = (h + 2 * pad - k) // stride + 1
        self.w_out = (w + 2 * pad - k) // stride + 1
        self.n_cig_out = ceil_div(cout, p_i)
        self.codes = rng.integers(0, 1 << in_bits, (cin, h, w))
        wbits = rng.integers(0, 2, (cout, cin, k, k))
        self.in_words = pack_codes(self.codes, p_i, nb, self.nsub)
        self.w_words = pack_weights(wbits, p_o, p_i)
        # padded reference: padded output channels have all-zero (= -1) weights
        cpo = self.n_cog * p_o
        wpad = np.zeros((cpo, self.n_cig * p_i, k, k), dtype=np.int64)
        wpad[:cout, :cin] = wbits
        cpad = np.zeros((self.n_cig * p_i, h, w), dtype=np.int64)
        cpad[:cin] = self.codes
        acc = conv_acc(cpad, wpad, stride, pad)
        acc = np.vectorize(lambda x: wrap_signed(int(x), cfg.acc_bits))(acc) if acc.size else acc
        npix = self.h_out * self.w_out
        self.res_init = [rng.integers(-200, 200, p_o).tolist() for _ in range(npix * self.n_cog)]
        v = acc.copy()
        if res_in:
            for pix in range(npix):
                y, x = divmod(pix, self.w_out)
                for cog in range(self.n_cog):
                    v[cog * p_o:(cog + 1) * p_o, y, x] += self.res_init[pix * self.n_cog + cog]
        self.v = v
        # thresholds: sorted around the spread of v, random directions; padded channels never pass
        spread = max(4, int(np.abs(v).max()) if v.size else 4)
        thr = np.sort(rng.integers(-spread, spread + 1, (cout, 3)), axis=1)
        if out_bits == 1:
            thr[:, 1:] = 32767
        neg = rng.integers(0, 2, cout)
        self.thr_words = pack_thresholds(thr.tolist(), neg.tolist(), p_o, self.n_cog)
        thr_full = np.full((cpo, 3), 32767)
        thr_full[:cout] = thr
        neg_full = np.zeros(cpo, dtype=np.int64)
        neg_full[:cout] = neg
        codes_out = threshold(v, thr_full, neg_full, out_bits)[:cout]
        if pool:
            codes_out = maxpool2(codes_out)
        self.out_words = pack_codes(codes_out, p_i, nb, 1) if thr_out else None
        self.out_shape = codes_out.shape
        # residual expectations (words res_base + ...)
        self.res_expect = None
        if res_out:
            self.res_expect = []
            for pix in range(npix):
                y, x = divmod(pix, self.w_out)
                for cog in range(self.n_cog):
                    self.res_expect.append([wrap_signed(int(t), cfg.res_bits)
                                            for t in v[cog * p_o:(cog + 1) * p_o, y, x]])
        self.sum_expect = None
        if sum_:
            sums = v.reshape(cpo, -1).sum(axis=1)
            self.sum_expect = [[wrap_signed(int(t), cfg.res_bits) for t in sums[c * p_o:(c + 1) * p_o]]
                               for c in range(self.n_cog)]
        self.fields = dict(op=isa.Op.CONV, res_in=res_in, res_out=res_out, thr_out=thr_out,
                           pool=pool, sum=sum_, k=k, stride=stride, pad=pad,
                           out_bits=out_bits if thr_out else 0, nsub=self.nsub, src_bank=src,
                           dst_bank=dst, res_base=res_base, h_in=h, w_in=w, h_out=self.h_out,
                           w_out=self.w_out, n_cig=self.n_cig, n_cog=self.n_cog,
                           w_base=w_base, thr_base=thr_base, n_cig_out=self.n_cig_out if thr_out else 0)
        self.src, self.dst = src, dst
        self.w_base, self.thr_base, self.res_base = w_base, thr_base, res_base
        self.res_in, self.res_out, self.sum = res_in, res_out, sum_
        self.word_sets = self.n_cog * npix * k * k * self.n_cig * self.nsub

    def desc(self, **override):
        f = dict(self.fields)
        f.update(override)
        return desc_value(**f)

    async def load(self, ctx, bus):
        cfg = self.cfg
        await bus.write_words(ctx, BUF_CODE_BANK0 + self.src, 0, self.in_words)
        await bus.write_words(ctx, BUF_WEIGHTS, self.w_base, self.w_words)
        await bus.write_words(ctx, BUF_THRESHOLDS, self.thr_base, self.thr_words)
        if self.res_in or self.res_out:
            await bus.write_words(ctx, BUF_RESIDUAL, self.res_base,
                                  [pack_res_word(r, cfg.res_bits) for r in self.res_init])

    async def check(self, ctx, bus):
        cfg = self.cfg
        if self.out_words is not None:
            got = await bus.read_words(ctx, BUF_CODE_BANK0 + self.dst, 0, len(self.out_words))
            assert got == self.out_words, "code bank contents differ"
        if self.res_expect is not None:
            got = await bus.read_words(ctx, BUF_RESIDUAL, self.res_base, len(self.res_expect))
            got = [unpack_res_word(g, cfg.p_o, cfg.res_bits) for g in got]
            assert got == self.res_expect, "residual buffer contents differ"
        if self.sum_expect is not None:
            got = await bus.read_words(ctx, BUF_RESIDUAL, self.res_base, len(self.sum_expect))
            got = [unpack_res_word(g, cfg.p_o, cfg.res_bits) for g in got]
            assert got == self.sum_expect, "sums differ"
