# amaranth: UnusedElaboratable=no
"""AddressGenerator against a Python model of the CONV walk: every word-set's addresses and side band."""

import random

import pytest
from amaranth.hdl import Shape
from amaranth.sim import Simulator
from hypothesis import given, settings, assume, strategies as st, HealthCheck

from contract import isa
from contract.config import TINY
from accel.address_generator import AddressGenerator, ISSUE_LATENCY
from engine_harness import raw_desc_value


CFG = TINY


def output_pixels(h_out, w_out, pool):
    """The walk's order of output pixels: row-major, or 2x2 window by window when pooling."""
    if not pool:
        return [(oy, ox) for oy in range(h_out) for ox in range(w_out)]
    return [(2 * wy + dy, 2 * wx + dx) for wy in range(h_out // 2) for wx in range(w_out // 2)
            for dy in (0, 1) for dx in (0, 1)]


def model_walk(shape, code_bits, weight_bits, tag_bits):
    """The word-sets of a layer: ``[(code address, weight address, side band dict)]``."""
    s = shape
    words_per_pixel = s["n_cig"] * s["nsub"]
    pixels = output_pixels(s["h_out"], s["w_out"], s["pool"])
    out = []
    for cog in range(s["n_cog"]):
        for index, (oy, ox) in enumerate(pixels):
            group_last = index == len(pixels) - 1
            for ky in range(s["k"]):
                for kx in range(s["k"]):
                    iy = oy * s["stride"] - s["pad"] + ky
                    ix = ox * s["stride"] - s["pad"] + kx
                    inside = 0 <= iy < s["h_in"] and 0 <= ix < s["w_in"]
                    for cig in range(s["n_cig"]):
                        for sub in range(s["nsub"]):
                            word = cig * s["nsub"] + sub
                            code = (iy * s["w_in"] + ix) * words_per_pixel + word
                            weight = s["w_base"] + ((cog * s["k"] + ky) * s["k"] + kx) * s["n_cig"] + cig
                            side = dict(
                                zero=int(not inside), shift=sub * CFG.a_planes,
                                first=int(word == 0 and kx == 0 and ky == 0),
                                last=int(word == words_per_pixel - 1 and kx == s["k"] - 1 and
                                         ky == s["k"] - 1),
                                raddr=(s["res_base"] + (oy * s["w_out"] + ox) * s["n_cog"] + cog)
                                % (1 << tag_bits),
                                tag_last=int(group_last),
                                final=int(group_last and cog == s["n_cog"] - 1))
                            out.append((code % (1 << code_bits), weight % (1 << weight_bits), side))
    return out


def products(s):
    """The set-up multiplier's products the generator uses."""
    words_per_pixel = s["n_cig"] * s["nsub"]
    words_per_row = s["w_in"] * words_per_pixel
    return dict(words_per_pixel=words_per_pixel, words_per_row=words_per_row,
                group_weight_words=s["k"] * s["k"] * s["n_cig"],
                residual_row_words=s["w_out"] * s["n_cog"],
                stride_words=s["stride"] * words_per_pixel,
                stride_row_words=s["stride"] * words_per_row,
                pad_offset=s["pad"] * (words_per_row + words_per_pixel))


def run_walk(shape, advance_pattern):
    """Simulate one layer; returns (word-sets seen, cycle of each relative to ``begin``)."""
    dut = AddressGenerator(CFG, weight_groups=2)
    expected_count = (shape["n_cog"] * shape["h_out"] * shape["w_out"] * shape["k"] ** 2 *
                      shape["n_cig"] * shape["nsub"])
    seen, cycles = [], []

    async def bench(ctx):
        ctx.set(dut.desc.as_value(), raw_desc_value(op=int(isa.Op.CONV), **shape))
        for name, value in products(shape).items():
            ctx.set(getattr(dut, name), value)
        ctx.set(dut.latch, 1)
        await ctx.tick()
        ctx.set(dut.latch, 0)
        await ctx.tick()
        ctx.set(dut.begin, 1)
        await ctx.tick()
        ctx.set(dut.begin, 0)
        history = []
        cycle = 0
        while len(seen) < expected_count and cycle < 8 * expected_count + 50:
            ctx.set(dut.advance, advance_pattern[cycle % len(advance_pattern)])
            await ctx.tick()
            cycle += 1
            word_set = dut.word_set
            sample = dict(code=[ctx.get(dut.code_addr[b]) for b in range(CFG.n_code_banks)],
                          weight=[ctx.get(dut.weight_addr[g]) for g in range(2)],
                          valid=ctx.get(word_set.valid),
                          side=dict(zero=ctx.get(word_set.zero), shift=ctx.get(word_set.shift),
                                    first=ctx.get(word_set.first), last=ctx.get(word_set.last),
                                    raddr=ctx.get(word_set.tag.raddr),
                                    tag_last=ctx.get(word_set.tag.last),
                                    final=ctx.get(word_set.tag.final)))
            history.append(sample)
            if sample["valid"]:
                code_sample, weight_sample = history[-3], history[-2]
                assert len(set(code_sample["code"])) == 1, "code-bank address copies differ"
                assert len(set(weight_sample["weight"])) == 1, "weight address copies differ"
                seen.append((code_sample["code"][0], weight_sample["weight"][0], sample["side"]))
                cycles.append(cycle)
        # nothing after the last word-set
        for _ in range(ISSUE_LATENCY + 2):
            ctx.set(dut.advance, 1)
            await ctx.tick()
            assert not ctx.get(dut.word_set.valid), "a word-set after the layer's last"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen, cycles


@st.composite
def layer_shapes(draw):
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    pad = draw(st.integers(0, k - 1))
    pool = draw(st.booleans())
    h_in = draw(st.integers(max(1, k - 2 * pad), 6))
    w_in = draw(st.integers(max(1, k - 2 * pad), 6))
    h_out = (h_in + 2 * pad - k) // stride + 1
    w_out = (w_in + 2 * pad - k) // stride + 1
    if pool:
        h_out -= h_out % 2
        w_out -= w_out % 2
        if h_out == 0 or w_out == 0:
            pool = False
            h_out = (h_in + 2 * pad - k) // stride + 1
            w_out = (w_in + 2 * pad - k) // stride + 1
    max_nsub = -(-8 // CFG.a_planes)
    shape = dict(k=k, stride=stride, pad=pad, pool=int(pool), h_in=h_in, w_in=w_in, h_out=h_out,
                w_out=w_out, n_cig=draw(st.integers(1, 2)), nsub=draw(st.integers(1, max_nsub)),
                n_cog=draw(st.integers(1, 3)), w_base=draw(st.integers(0, 40)),
                res_base=draw(st.integers(0, 60)))
    assume(shape["n_cog"] * h_out * w_out * k * k * shape["n_cig"] * shape["nsub"] <= 700)
    return shape


def check_walk(shape, advance_pattern):
    expected = model_walk(shape, Shape.cast(range(CFG.bank_depth)).width,
                          Shape.cast(range(CFG.wbuf_depth)).width, 16)
    seen, cycles = run_walk(shape, advance_pattern)
    assert len(seen) == len(expected)
    for index, (got, want) in enumerate(zip(seen, expected)):
        assert got == want, f"word-set {index} of {len(expected)}: {got} != {want} ({shape})"
    return cycles


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=layer_shapes(), seed=st.integers(0, 2**16))
def test_walk_with_stalls_matches_the_model(shape, seed):
    rng = random.Random(seed)
    check_walk(shape, [int(rng.random() < 0.7) for _ in range(97)])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=layer_shapes())
def test_walk_issues_one_word_set_per_cycle(shape):
    """Without stalls: a word-set every cycle, except the cycle after each pixel of one word
    (``single``: the pixel transition is prepared anew)."""
    cycles = check_walk(shape, [1])
    single = shape["k"] == 1 and shape["n_cig"] * shape["nsub"] == 1
    gaps = [b - a for a, b in zip(cycles, cycles[1:])]
    assert gaps == [2 if single else 1] * len(gaps)


def test_one_pixel_layer():
    shape = dict(k=1, stride=1, pad=0, pool=0, h_in=1, w_in=1, h_out=1, w_out=1, n_cig=1, nsub=1,
                 n_cog=1, w_base=5, res_base=7)
    assert len(check_walk(shape, [1])) == 1


def test_checks_parameters():
    with pytest.raises(TypeError):
        AddressGenerator(None)
    with pytest.raises(TypeError):
        AddressGenerator(CFG, weight_groups=True)
    with pytest.raises(ValueError):
        AddressGenerator(CFG, weight_groups=0)
