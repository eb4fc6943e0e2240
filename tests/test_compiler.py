"""The compiler: compile + reference simulator == model.golden bit for bit, fit checks, program format."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from contract import isa
from contract.config import CONFIGS, TINY, SMALL, DEFAULT, BUF_RESIDUAL, BUF_CODE_BANK0
from model import golden
from model.deploy import validate, pack_bits, FORMAT, VERSION
from model.random_deploy import random_deploy
from firmware.compiler import compile_model, CompileError
from firmware.refsim import run_compiled, feature_maps


ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "model" / "shipped" / "default.npz"


# --- a small builder for hand-made deploy models ------------------------------------------------

def build(layers, C=1, H=8, W=8, classes=4, seed=0, q=2, d=4, first="embed"):
    """A validated DeployModel from a compact layer list.

    ``layers``: dicts with ``name``, ``input`` and ``cout, k, stride, pad, residual, q, pool, acc,
    codes`` for convs (``kind="head"`` for the head: ``name, input``). The first layer (``first``)
    writes tensor ``e0``.
    """
    rng = np.random.default_rng(seed)
    hl, arrays = [], {}
    shapes = {}                   # tensor -> (C, H, W, bits or None)
    if first == "embed":
        hl.append(dict(name="embed", kind="embed", input="image", d=d, q=q, outputs={"codes": "e0"}))
        arrays["embed.table"] = np.sort(rng.integers(0, 1 << q, size=(C, 256, d)), axis=1).astype(np.uint8)
        shapes["e0"] = (C * d, H, W, q)
    elif first == "raw_input":
        hl.append(dict(name="raw", kind="raw_input", input="image", outputs={"codes": "e0"}))
        shapes["e0"] = (C, H, W, 8)
    else:
        k, cout = 3, 6
        hl.append(dict(name="hconv", kind="host_conv", input="image", k=k, stride=1, pad=1, q=q,
                       outputs={"codes": "e0"}))
        arrays["hconv.weight"] = rng.normal(0, 1, (cout, C, k, k)).astype(np.float32)
        arrays["hconv.bias"] = rng.normal(0, 0.3, cout).astype(np.float32)
        arrays["hconv.thresholds"] = np.sort(rng.normal(0, 1, (cout, (1 << q) - 1)), axis=1).astype(np.float32)
        arrays["hconv.direction"] = rng.choice([-1, 1], cout).astype(np.int8)
        shapes["e0"] = (cout, H, W, q)
    for L in layers:
        name, src = L["name"], L["input"]
        cin, h, w, bits = shapes[src]
        if L.get("kind") == "head":
            hl.append(dict(name=name, kind="head", input=src, cin=cin, classes=classes, in_bits=bits,
                           outputs={"logits": "logits"}))
            arrays[f"{name}.weight"] = pack_bits(rng.integers(0, 2, (classes, cin, 1, 1)))
            arrays[f"{name}.scale"] = np.ones(classes, np.float32)
            arrays[f"{name}.bias"] = np.zeros(classes, np.float32)
            continue
        k, s = L.get("k", 3), L.get("stride", 1)
        p = L.get("pad", k // 2)
        cout = L["cout"]
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        qo = L.get("q", 2) if L.get("codes") else None
        hl.append(dict(name=name, kind="conv", input=src, cin=cin, cout=cout, k=k, stride=s, pad=p,
                       in_bits=bits, residual=L.get("residual"), q=qo, pool=L.get("pool"),
                       outputs={"acc": L.get("acc"), "codes": L.get("codes")}))
        arrays[f"{name}.weight"] = pack_bits(rng.integers(0, 2, (cout, cin, k, k)))
        if L.get("codes"):
            spread = max(2, int(math.sqrt(cin * k * k) * ((1 << bits) - 1)))
            thr = np.sort(rng.integers(-spread, spread + 1, (cout, (1 << qo) - 1)), axis=1)
            arrays[f"{name}.thresholds"] = thr.astype(np.int32)
            arrays[f"{name}.direction"] = rng.choice([-1, 1], cout).astype(np.int8)
            hp, wp = (ho // 2, wo // 2) if L.get("pool") else (ho, wo)
            shapes[L["codes"]] = (cout, hp, wp, qo)
        if L.get("acc"):
            shapes[L["acc"]] = (cout, ho, wo, None)
    header = {"format": FORMAT, "version": VERSION, "input": {"channels": C, "height": H, "width": W},
              "num_classes": classes, "variant": "test", "layers": hl, "training": {}}
    return validate(json.loads(json.dumps(header)), arrays)


def resnet_like(C=1, H=8, W=8, width=16, classes=4, first="embed", q=2, d=4, seed=0):
    """Stem conv producing the residual stream (ints + codes), a block, a downsampling block with
    a 1x1 stride-2 shortcut conv, a head: the ERN pattern."""
    return build([
        dict(name="stem", input="e0", cout=width, acc="x0", codes="c0"),
        dict(name="b1c1", input="c0", cout=width, codes="b1a"),
        dict(name="b1c2", input="b1a", cout=width, residual="x0", acc="x1", codes="c1"),
        dict(name="b2d", input="c1", cout=2 * width, k=1, stride=2, pad=0, acc="x1d"),
        dict(name="b2c1", input="c1", cout=2 * width, stride=2, codes="b2a"),
        dict(name="b2c2", input="b2a", cout=2 * width, residual="x1d", acc="x2", codes="c2"),
        dict(name="head", kind="head", input="c2"),
    ], C=C, H=H, W=W, classes=classes, first=first, q=q, d=d, seed=seed)


def check_against_golden(deploy, config, n_images=2, seed=0, im2col=True):
    """Compile, run every image on the reference simulator (first with the load program, then the
    image program only) and compare logits and every feature map with model.golden (a map the EMBED
    writes in window mode: all its windows, against the golden map's)."""
    cm = compile_model(deploy, config, im2col=im2col)
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, size=(n_images,) + tuple(deploy.input_shape), dtype=np.uint8)
    g = golden.run(deploy, imgs)
    logits, results, _ = run_compiled(cm, imgs, trace=True)
    np.testing.assert_array_equal(logits, g.logits_int)
    for n, res in enumerate(results):
        assert res.error == 0 and not res.overflows, (res.error_name, res.overflows)
        fm = feature_maps(cm, res)
        for name in cm.tensors:
            want = cm.as_stored(name, g.tensors[name][n]).reshape(fm[name].shape)
            np.testing.assert_array_equal(fm[name], want, err_msg=f"tensor {name}, image {n}")
            pad = fm.get(name + "#padding")
            assert pad is None or not pad.any(), f"padding channels of {name} are not 0"
    return cm


# --- bit-exact against the golden model ---------------------------------------------------------

@pytest.mark.parametrize("cfg", ["tiny", "small", "default"])
def test_random_models_match_golden(cfg):
    compiled = 0
    for seed in range(40):
        m = random_deploy(seed, channels=1 if cfg == "tiny" else None, chan_choices=(4, 8, 24, 40))
        try:
            check_against_golden(m, CONFIGS[cfg], seed=seed)
            compiled += 1
        except CompileError as e:
            assert str(e).startswith("layer "), e
    assert compiled >= 20


@pytest.mark.parametrize("cfg", ["tiny", "small", "default"])
def test_non_hardware_random_models_match_golden_or_are_rejected(cfg):
    """hardware=False models: host_conv first layers, k up to 5, odd paddings, q up to 4."""
    compiled = 0
    for seed in range(60):
        m = random_deploy(seed, hardware=False, channels=1, chan_choices=(4, 8, 24))
        try:
            check_against_golden(m, CONFIGS[cfg], seed=seed)
            compiled += 1
        except CompileError as e:
            assert str(e).startswith("layer "), e
    assert compiled >= 5


@pytest.mark.parametrize("cfg", ["tiny", "small", "default"])
@pytest.mark.parametrize("first", ["embed", "raw_input", "host_conv"])
def test_resnet_like_matches_golden(cfg, first):
    config = CONFIGS[cfg]
    d = 4 if config.p_i >= 16 else 2
    cm = check_against_golden(resnet_like(C=2 if first != "raw_input" else 3, first=first, d=d,
                                          width=16 if cfg == "tiny" else 24), config, n_images=3)
    assert cm.input_kind == {"embed": "image", "raw_input": "raw", "host_conv": "host_codes"}[first]


def test_multi_group_channels_and_pool_match_golden():
    # TINY: p_i=8, p_o=16 -> 5 input groups, 3 output groups, 3x3 stride 2, max-pool
    m = build([
        dict(name="c1", input="e0", cout=40, codes="a1", q=1),
        dict(name="c2", input="a1", cout=36, stride=2, acc="x2", codes="a2"),
        dict(name="c3", input="a2", cout=36, k=1, residual="x2", codes="a3", pool="max2"),
        dict(name="c4", input="a3", cout=20, k=1, codes="a4", q=2),
        dict(name="head", kind="head", input="a4"),
    ], C=2, H=12, W=12, d=4, q=2, classes=10)
    check_against_golden(m, TINY.replace(thr_depth=256), n_images=2)
    check_against_golden(m, SMALL, n_images=2)


def test_residual_read_twice_is_copied_through_memory():
    # x0 feeds c2 (which overwrites its residual in place) and later c3: the compiler copies x0
    # into x1's region with STORE + LOAD first
    m = build([
        dict(name="c1", input="e0", cout=16, acc="x0", codes="a1"),
        dict(name="c2", input="a1", cout=16, residual="x0", acc="x1", codes="a2"),
        dict(name="c3", input="a2", cout=16, residual="x0", codes="a3"),
        dict(name="head", kind="head", input="a3"),
    ], C=1, d=4)
    cm = check_against_golden(m, TINY, n_images=2)
    ops = [d["fields"]["op"] for d in cm.descriptors]
    assert ops.count(isa.Op.STORE) == 2 and any(a.name.startswith("scratch") for a in cm.allocations)
    assert cm.tensors["x0"].res_base != cm.tensors["x1"].res_base


def test_in_place_residual_shares_res_base():
    m = resnet_like()
    cm = compile_model(m, SMALL)
    t = cm.tensors
    assert t["x1"].res_base == t["x0"].res_base          # b1c2: x0 read, x1 written in place
    # x1d (shortcut) is written while x1 is still live (read later by no one, but c1 codes are)
    plans = {p.name: p for p in cm.layers}
    assert plans["b1c2"].desc["res_in"] == plans["b1c2"].desc["res_out"] == 1
    assert plans["b1c2"].desc["thr_out"] == 1
    assert plans["b2d"].desc["res_out"] == 1 and "thr_out" not in plans["b2d"].desc
    assert plans["head"].desc["sum"] == 1 and "res_out" not in plans["head"].desc


def test_banks_of_live_maps_never_collide():
    for seed in range(30):
        m = random_deploy(seed, chan_choices=(8, 16))
        try:
            cm = compile_model(m, SMALL)
        except CompileError:
            continue
        codes = [t for t in cm.tensors.values() if t.kind == "codes"]
        ints = [t for t in cm.tensors.values() if t.kind in ("ints", "logits")]
        for a in codes:
            for b in codes:
                if a is not b and a.producer < b.producer <= a.last_use:
                    assert a.bank != b.bank, (seed, a.name, b.name)
        words = lambda t: t.shape[1] * t.shape[2] * -(-t.shape[0] // SMALL.p_o)
        for a in ints:
            for b in ints:
                if a is not b and a.producer < b.producer <= a.last_use:
                    overlap = a.res_base < b.res_base + words(b) and b.res_base < a.res_base + words(a)
                    # only allowed in place: b overwrites a while reading it as its residual
                    assert not overlap or (a.last_use == b.producer and a.res_base == b.res_base), \
                        (seed, a.name, b.name)


def test_batch_reloads_only_the_image():
    m = resnet_like()
    cm = compile_model(m, TINY)
    load = [d for d in cm.descriptors if d["addr"] < cm.prog_image_addr]
    image = [d for d in cm.descriptors if d["addr"] >= cm.prog_image_addr]
    assert load and all(d["fields"]["op"] == isa.Op.LOAD for d in load)
    assert image[0]["fields"]["op"] == isa.Op.EMBED and image[0]["fields"]["mem_addr"] == cm.input_addr
    assert [d["fields"]["op"] for d in image[-2:]] == [isa.Op.STORE, isa.Op.END]
    assert image[-2]["fields"]["mem_addr"] == cm.output_addr
    # the image program alone, after a load run, gives the golden logits for a new image
    imgs = np.random.default_rng(5).integers(0, 256, (4,) + tuple(m.input_shape), dtype=np.uint8)
    logits, results, sim = run_compiled(cm, imgs)
    np.testing.assert_array_equal(logits, golden.run(m, imgs).logits_int)
    assert results[1].executed == len(image) < results[0].executed


# --- program format and memory image ------------------------------------------------------------

def test_descriptors_round_trip_and_sit_in_memory():
    cm = compile_model(resnet_like(), DEFAULT)
    assert cm.prog_load_addr == cm.window_base
    for i, d in enumerate(cm.descriptors):
        words = cm.program[i]
        assert d["addr"] == cm.prog_load_addr + 8 * i
        mem = cm.memory[d["addr"] - cm.window_base:d["addr"] - cm.window_base + 8]
        assert list(mem) == words
        out = isa.unpack(words)
        for f in isa.FIELDS:
            assert out[f.name] == d["fields"].get(f.name, 0), (i, f.name)
            # fields not used by the op are 0
            if isa.Op.NAMES[out["op"]] not in f.ops:
                assert out[f.name] == 0, (i, f.name)


def test_memory_image_layout_and_io_regions():
    for base in (0, 1000):
        cm = compile_model(resnet_like(), SMALL, base=base)
        assert cm.window_base == base and cm.window_limit == base + cm.memory.size
        assert base <= cm.input_addr < cm.input_addr + cm.input_words <= cm.output_addr
        assert cm.output_addr + cm.output_words <= cm.window_limit
        assert cm.output_words == cm.logits_groups * SMALL.lanes(BUF_RESIDUAL)
        mem = [a for a in cm.allocations if a.region == "memory"]
        for a, b in zip(mem, mem[1:]):
            assert a.addr + a.size <= b.addr, (a, b)
        table = cm.allocation_table()
        assert "stem.weight" in table and "residual" in table and "bank" in table
        img = np.random.default_rng(0).integers(0, 256, (1, 8, 8), dtype=np.uint8)
        logits, _, _ = run_compiled(cm, img[None])
        np.testing.assert_array_equal(logits, golden.run(resnet_like(), img[None]).logits_int)


def test_encode_image_and_decode_logits():
    cm = compile_model(resnet_like(C=3, d=2), TINY)
    img = np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8)
    words = cm.encode_image(img)
    assert words.dtype == np.uint32 and words.size == cm.input_words
    hwc = [int(x) for x in img.transpose(1, 2, 0).reshape(-1)]
    assert words[0] == hwc[0] | hwc[1] << 8 | hwc[2] << 16 | hwc[3] << 24
    # logits: res_bits-wide signed lanes
    rb = TINY.res_bits
    vals = [5, -3, 32767, -32768]
    word0 = sum((v & ((1 << rb) - 1)) << (i * rb) for i, v in enumerate(vals))
    lanes = [(word0 >> (32 * i)) & 0xFFFFFFFF for i in range(cm.output_words)]
    np.testing.assert_array_equal(cm.decode_logits(lanes), vals)
    with pytest.raises(ValueError):
        cm.encode_image(img[:2])


def test_thresholds_and_weights_layout():
    """The parameter words in memory follow ARCHITECTURE 3.1 (checked by a scalar transcription)."""
    m = build([dict(name="c1", input="e0", cout=20, codes="a1", q=2),
               dict(name="head", kind="head", input="a1")], C=1, d=4, q=1, seed=3)
    cfg = TINY
    cm = compile_model(m, cfg)
    L = m.layers[1]
    wb, T, D = L["arrays"]["weight_bits"], L["arrays"]["thresholds"], L["arrays"]["direction"]
    mem = {a.name: a for a in cm.allocations if a.region == "memory"}
    wa = mem["c1.weight"].addr - cm.window_base
    Lw = cfg.lanes(0)
    k, n_cig, n_cog = 3, 1, 2
    for cog in range(n_cog):
        for ky in range(k):
            for kx in range(k):
                word = (cog * k * k + ky * k + kx) * n_cig
                lanes = cm.memory[wa + word * Lw:wa + (word + 1) * Lw]
                value = sum(int(x) << (32 * i) for i, x in enumerate(lanes))
                for o in range(cfg.p_o):
                    for i in range(cfg.p_i):
                        co, ci = cog * cfg.p_o + o, i
                        want = wb[co, ci, ky, kx] if co < 20 and ci < 4 else 0
                        assert (value >> (o * cfg.p_i + i)) & 1 == want
    ta = mem["c1.thresholds"].addr - cm.window_base
    for co in range(32):
        lo, hi = int(cm.memory[ta + 2 * co]), int(cm.memory[ta + 2 * co + 1])
        entry = lo | hi << 32
        t = [((entry >> (16 * j)) & 0xFFFF) for j in range(3)]
        t = [x - 65536 if x >= 32768 else x for x in t]
        neg = (entry >> 48) & 1
        if co < 20:
            want = [int(np.clip(-x if D[co] < 0 else x, -32768, 32767)) for x in T[co]]
            assert t == want and neg == (D[co] < 0)
        else:
            assert t == [32767] * 3 and neg == 0
        assert entry >> 49 == 0


# --- fit checks ---------------------------------------------------------------------------------

def _err(m, config):
    with pytest.raises(CompileError) as e:
        compile_model(m, config)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_fit_checks_name_the_layer():
    # channel fields: n_cig has 6 bits -> at most 63 groups of p_i=8
    m = build([dict(name="wide", input="e0", cout=520, k=1, codes="a"),
               dict(name="next", input="a", cout=4, k=1, codes="b"),
               dict(name="head", kind="head", input="b")], C=1, H=2, W=2, d=2, q=1)
    assert _err(m, TINY.replace(wbuf_depth=4096, thr_depth=4096, bank_depth=4096, mem_words=65536)) \
        .startswith("layer wide: cout=520 needs 65 code groups, the n_cig_out field holds 63")
    # weight buffer depth
    m = build([dict(name="big", input="e0", cout=64, codes="a"),
               dict(name="big2", input="a", cout=64, codes="b"),
               dict(name="head", kind="head", input="b")], C=1, d=4, q=1)
    # (all layers do not fit, so weights would be streamed; one layer alone exceeds half the buffer)
    assert _err(m, TINY.replace(wbuf_depth=64)).startswith(
        "layer big: weights need 36 words; all layers need 332, more than wbuf_depth=64, "
        "and streaming needs each layer within half of it (32)")
    # threshold buffer
    assert _err(m, TINY.replace(thr_depth=100, wbuf_depth=1024)).startswith("layer big2: thresholds end at entry 128")
    # code bank depth
    m = build([dict(name="c", input="e0", cout=4, codes="a"), dict(name="head", kind="head", input="a")],
              H=40, W=40, d=2, q=1)
    assert _err(m, TINY).startswith("layer embed: embedded map needs 1600 code-bank words")
    m = build([dict(name="c", input="e0", cout=12, codes="a"), dict(name="head", kind="head", input="a")],
              H=30, W=30, d=2, q=1)
    assert _err(m, TINY).startswith("layer c: output map needs 1800 code-bank words")
    # residual depth
    m = build([dict(name="c", input="e0", cout=4, acc="x", codes="a"),
               dict(name="c2", input="a", cout=4, residual="x", codes="b"),
               dict(name="head", kind="head", input="b")], H=20, W=20, d=2, q=1)
    assert _err(m, TINY).startswith("layer c: int map 'x' (400 words) ends at residual word 400")
    # main memory
    m = build([dict(name="c1", input="e0", cout=64, codes="a"), dict(name="c2", input="a", cout=64, codes="b"),
               dict(name="head", kind="head", input="b")], d=4, q=1)
    msg = _err(m, DEFAULT.replace(mem_words=1024))
    assert msg.startswith("layer c2: the memory image needs")   # c2.weight crosses the end
    # activation width: q <= max_out_bits
    m = build([dict(name="c", input="e0", cout=4, codes="a", q=3), dict(name="head", kind="head", input="a")],
              d=2, q=1)
    assert _err(m, TINY).startswith("layer c: q=3 outside 1..2")
    # embedding: C*d <= p_i, d*q <= 16, channels <= emb_channels
    m = build([dict(name="c", input="e0", cout=4, codes="a"), dict(name="head", kind="head", input="a")],
              C=3, d=3, q=2)
    assert _err(m, TINY).startswith("layer embed: C*d=9 embedded channels exceed p_i=8")
    # an embedding wider than a table entry is split over table channels while there are enough
    m = build([dict(name="c", input="e0", cout=4, codes="a"), dict(name="head", kind="head", input="a")],
              C=1, d=9, q=2)
    assert _err(m, SMALL.replace(emb_channels=2)) == (
        "layer embed: d=9 codes of 2 bits need 3 table channels per image channel (an entry holds "
        "16 bits, 15 codes), 3 in all, the embedding table holds 2")
    assert compile_model(m, SMALL).image_repeat == 3
    m = build([dict(name="c", input="e0", cout=4, codes="a"), dict(name="head", kind="head", input="a")],
              C=4, d=2, q=1)
    assert _err(m, TINY).startswith("layer embed: 4 image channels, the embedding table holds 3")
    # raw 8-bit codes only from the embedding: a later conv cannot read 8-bit codes, and k/pad ranges
    m = build([dict(name="c", input="e0", cout=4, k=9, pad=4, codes="a"),
               dict(name="head", kind="head", input="a")], d=2, q=1, H=9, W=9)
    assert _err(m, TINY).startswith("layer c: pad=4 outside 0..3")
    # stride 4 exceeds the 2-bit stride field
    m = build([dict(name="c", input="e0", cout=4, k=3, stride=4, codes="a"),
               dict(name="head", kind="head", input="a")], d=2, q=1)
    assert _err(m, TINY).startswith("layer c: stride=4 outside 1..3")


def test_value_bounds_are_checked():
    # acc_bits: TINY has 16-bit accumulators; raw 8-bit input, 3x3, 3 channels: 27*255 = 6885 fits,
    # 130 input channels of 2-bit codes with 3x3 and acc_bits=12: 130*9*3 = 3510 > 2047
    m = build([dict(name="c1", input="e0", cout=130, k=1, codes="a"),
               dict(name="c2", input="a", cout=8, codes="b"), dict(name="head", kind="head", input="b")],
              H=4, W=4, d=4, q=2)
    msg = _err(m, SMALL.replace(acc_bits=11))
    assert msg == ("layer c2: worst-case |acc| = cin*k*k*(2^in_bits-1) = 130*3*3*3 = 3510 exceeds "
                   "1023 (acc_bits=11)")
    # |acc + residual| against 16-bit thresholds: a chain of residual adds grows the bound
    layers = [dict(name="c0", input="e0", cout=300, k=3, acc="x0", codes="a0")]
    for i in range(1, 6):
        layers.append(dict(name=f"c{i}", input=f"a{i - 1}", cout=300, k=3, residual=f"x{i - 1}",
                           acc=f"x{i}", codes=f"a{i}"))
    layers.append(dict(name="head", kind="head", input="a5"))
    m = build(layers, H=2, W=2, d=4, q=2)
    msg = _err(m, DEFAULT.replace(acc_bits=32, res_bits=32, wbuf_depth=4096, thr_depth=4096,
                                  mem_words=1 << 20))
    # c0: 4*9*3 = 108, then 300*9*3 = 8100 per conv: x4 = 32508, c5 reaches 40608 > 32766
    assert msg == ("layer c5: worst-case |acc+residual| = 8100 + 32508 = 40608 exceeds 32766 "
                   "(16-bit thresholds, 32767 = never passed)")
    # logits against res_bits
    m = build([dict(name="c", input="e0", cout=64, k=1, codes="a"), dict(name="head", kind="head", input="a")],
              H=16, W=16, d=4, q=2)
    assert _err(m, DEFAULT) == ("layer head: worst-case |logit| = H*W*cin*(2^in_bits-1) = 16*16*64*3 = "
                                "49152 exceeds 32767 (res_bits=16)")


def test_not_enough_code_banks():
    # a1 is read by c2 and c3, a2 by c3's sibling: three maps live at once
    m = build([dict(name="c1", input="e0", cout=8, codes="a1"),
               dict(name="c2", input="a1", cout=8, codes="a2"),
               dict(name="c3", input="a1", cout=8, codes="a3"),
               dict(name="c4", input="a2", cout=8, codes="a4"),
               dict(name="head", kind="head", input="a4")], d=4, q=1)
    check_against_golden(m, SMALL)
    msg = _err(m, SMALL.replace(n_code_banks=2))
    assert msg.startswith("layer c2: no free code bank for 'a2'") or msg.startswith("layer c3: no free code bank")


# --- EMBED window mode (im2col of the first conv) -----------------------------------------------

def _window(cm):
    """The window geometry of the compiled model's EMBED, or None (plain EMBED)."""
    ws = [t.window for t in cm.tensors.values() if t.window]
    assert len(ws) <= 1
    return ws[0] if ws else None


def _stem(k=3, stride=2, pad=1, **kw):
    return build([dict(name="c1", input="e0", cout=20, k=k, stride=stride, pad=pad, acc="x1", codes="a1"),
                  dict(name="c2", input="a1", cout=20, residual="x1", codes="a2"),
                  dict(name="head", kind="head", input="a2")], **kw)


def test_window_mode_descriptors_and_plans():
    m = _stem(C=1, H=9, W=8, d=4, q=2)
    cm = check_against_golden(m, SMALL, n_images=2)
    off = check_against_golden(m, SMALL, n_images=2, im2col=False)
    assert _window(cm) == dict(k=3, stride=2, pad=1, h_out=5, w_out=4) and _window(off) is None
    plans = {p.name: p for p in cm.layers}
    emb, c1 = plans["embed"].desc, plans["c1"].desc
    assert (emb["k"], emb["stride"], emb["pad"], emb["h_out"], emb["w_out"]) == (3, 2, 1, 5, 4)
    assert (emb["h_in"], emb["w_in"], emb["emb_c"], emb["emb_d"], emb["nsub"]) == (9, 8, 1, 4, 1)
    assert {f: c1[f] for f in ("k", "stride", "pad", "h_in", "w_in", "h_out", "w_out", "n_cig", "nsub")} == \
        dict(k=1, stride=1, pad=0, h_in=5, w_in=4, h_out=5, w_out=4, n_cig=3, nsub=1)
    offp = {p.name: p for p in off.layers}
    assert plans["c1"].macs == offp["c1"].macs == 5 * 4 * 9 * 4 * 20
    assert plans["c1"].ideal_cycles == 5 * 4 * 3 * 2 and offp["c1"].ideal_cycles == 5 * 4 * 9 * 2
    # the windows span rows -1..9 and columns -1..7
    assert plans["embed"].ideal_cycles == 11 * 9 and offp["embed"].ideal_cycles == 9 * 8
    assert plans["c2"].desc == {**offp["c2"].desc, "w_base": plans["c2"].desc["w_base"]}
    # buffers: the windows' words in the bank, 3 copies of the table, 1x1 weights with 3 groups
    alloc = {(a.name, a.region): a.size for a in cm.allocations}
    assert alloc[("e0", f"bank{cm.tensors['e0'].bank}")] == 5 * 4 * 3
    assert alloc[("embed.table", "embed")] == 3 * 256
    assert alloc[("c1.weight", "weights")] == 2 * 3                     # n_cog * n_cig words
    tab = cm.memory[[a for a in cm.allocations if a.name == "embed.table" and a.region == "memory"][0].addr
                    - cm.window_base:][:768].reshape(3, 256)
    assert (tab == tab[0]).all() and tab.any()
    assert "4x9x8/2b as 3x3 windows" in cm.layer_table()


def test_window_mode_only_when_the_network_allows_it():
    """Every condition of the window mode; when one fails (or im2col=False) the program and memory
    image are those of the plain mode."""
    def check(m, config, used):
        cm = compile_model(m, config)
        plain = compile_model(m, config, im2col=False)
        assert (_window(cm) is not None) == used
        if not used:
            np.testing.assert_array_equal(cm.memory, plain.memory)
        return cm

    check(_stem(C=1, d=4), SMALL, True)                                  # k*d = 12 of 16 lanes
    check(_stem(C=1, d=4, k=1, pad=0), SMALL, True)                      # 1x1 stride 2: every other pixel
    check(_stem(C=2, d=4), SMALL, False)                                 # two image channels
    check(_stem(C=1, d=5, q=1), SMALL, True)                             # k*d = 15 of 16 lanes
    check(_stem(C=1, d=6, q=1), SMALL, False)                            # k*d = 18 > p_i = 16
    check(_stem(C=1, d=4), SMALL.replace(emb_channels=2), False)         # k > emb_channels
    check(_stem(C=1, d=4, k=3, stride=1, H=8, W=8), SMALL.replace(bank_depth=128), False)  # 192 words
    # the embedding read by two layers, or by a head
    two = build([dict(name="c1", input="e0", cout=8, codes="a1"),
                 dict(name="c2", input="e0", cout=8, k=1, pad=0, acc="x2"),
                 dict(name="c3", input="a1", cout=8, residual="x2", codes="a3"),
                 dict(name="head", kind="head", input="a3")], C=1, d=4)
    check(two, SMALL, False)
    check(build([dict(name="head", kind="head", input="e0")], C=1, d=4), SMALL, False)
    check(_stem(C=1, d=2), TINY, True)                                   # 6 of 8 lanes


def test_window_mode_random_geometries_match_golden():
    """First convs of random kernel, stride, padding and size on every configuration: window mode
    whenever it fits, logits and every feature map equal to the golden model's."""
    rng = np.random.default_rng(7)
    used = 0
    for n in range(30):
        cfg = CONFIGS[["tiny", "small", "default"][n % 3]]
        k = int(rng.integers(1, 4))
        stride, pad = int(rng.integers(1, 4)), int(rng.integers(0, k))
        q = int(rng.integers(1, 3))
        d = int(rng.integers(1, min(cfg.p_i, 8) + 1))
        H, W = (int(x) for x in rng.integers(max(k, 3), 11, 2))
        m = build([dict(name="c1", input="e0", cout=int(rng.choice([8, 20, 40])), k=k, stride=stride,
                        pad=pad, codes="a1", q=int(rng.integers(1, 3))),
                   dict(name="head", kind="head", input="a1")], C=1, H=H, W=W, d=d, q=q, seed=n)
        try:
            cm = check_against_golden(m, cfg, n_images=2, seed=n)
        except CompileError as e:
            assert str(e).startswith("layer "), e
            continue
        fits = k <= cfg.emb_channels and k * d <= cfg.p_i
        assert (_window(cm) is not None) == fits, (n, k, d)
        used += fits
    assert used >= 15


@pytest.mark.parametrize("im2col", [True, False])
def test_shipped_model_dumps_match_golden(im2col):
    """Compiled with dumps, every feature map the program STOREs equals the golden one; with window
    mode the embedding's dump is its windows, compared with the golden map's windows."""
    from model.deploy import load
    from model.data import load_fixture
    m = load(SHIPPED)
    big = DEFAULT.replace(mem_words=1 << 16)        # the dumps of every map need 21k words
    dumped = compile_model(m, big, dump=True, im2col=im2col)
    assert (_window(dumped) is not None) == im2col
    few = load_fixture()[0][:2]
    gt = golden.run(m, few)
    for n, img in enumerate(few):
        logits, _, sim = run_compiled(dumped, img[None])
        np.testing.assert_array_equal(logits[0], gt.logits_int[n])
        assert {d[0] for d in dumped.dumps} == set(gt.tensors) - {"image", "logits"}
        for name, addr, words in dumped.dumps:
            got = dumped.decode_dump(name, sim.read(addr, words))
            np.testing.assert_array_equal(got, dumped.as_stored(name, gt.tensors[name][n]), err_msg=name)
    name, addr, words = next(x for x in dumped.dumps if x[0] == m.layers[0]["outputs"]["codes"])
    shape = (3 * big.p_i, 14, 14) if im2col else (8, 28, 28)
    assert words == shape[1] * shape[2] * (3 if im2col else 1) * big.lanes(BUF_CODE_BANK0)
    assert dumped.decode_dump(name, sim.read(addr, words)).shape == shape


@pytest.mark.parametrize("cfg", ["small25", "default85"])
def test_shipped_model_fits_the_board_configurations(cfg):
    """The shipped model's weights, thresholds and table still fit the 25F and 85F configurations."""
    from model.deploy import load
    from contract.config import CONFIGS as BOARD_CONFIGS
    config = BOARD_CONFIGS[cfg]
    m = load(SHIPPED)
    cm = check_against_golden(m, config, n_images=1)
    assert cm.window_limit - cm.window_base <= config.mem_words
    sizes = {a.region: 0 for a in cm.allocations}
    for a in cm.allocations:
        sizes[a.region] = max(sizes[a.region], a.addr + a.size)
    assert sizes["weights"] <= config.wbuf_depth and sizes["thresholds"] <= config.thr_depth
    assert sizes["embed"] <= config.emb_channels * 256
    # the 32-lane array of the 85F takes the windows (3 x 8 of 32 lanes); SMALL's 16 lanes do not
    assert (_window(cm) is not None) == (config.p_i >= 24)


# --- command line -------------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "firmware.compiler", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cli_prints_map_and_summary(tmp_path):
    path = tmp_path / "m.npz"
    resnet_like().save(path)
    r = _cli(str(path), "--config", "tiny", "--map")
    assert r.returncode == 0, r.stderr
    assert "stem.weight" in r.stdout and "descriptors:" in r.stdout and "ideal cycles" in r.stdout
    assert "|acc|<=" in r.stdout and "b2c2" in r.stdout
    r = _cli(str(path), "--config", "default")
    assert r.returncode == 0 and "name" not in r.stdout.splitlines()[0]


def test_cli_errors_are_one_line(tmp_path):
    r = _cli(str(tmp_path / "missing.npz"))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "no such file" in r.stderr
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    r = _cli(str(bad))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    path = tmp_path / "m.npz"
    build([dict(name="c", input="e0", cout=4, codes="a", q=2), dict(name="head", kind="head", input="a")],
          C=3, d=3, q=2).save(path)
    r = _cli(str(path), "--config", "tiny")
    assert r.returncode != 0 and r.stderr.strip() == \
        "error: layer embed: C*d=9 embedded channels exceed p_i=8"


# --- the shipped model --------------------------------------------------------------------------

@pytest.mark.parametrize("im2col", [True, False])
def test_shipped_model_matches_golden_on_default(im2col):
    """model/shipped/default.npz on DEFAULT, with and without EMBED window mode: the logits of the
    256 Fashion-MNIST fixture images and every feature map of the first three bit for bit; with
    window mode stem1 runs as a 1x1 conv with 3 input groups over the EMBED's windows."""
    from model.deploy import load
    from model.data import load_fixture
    m = load(SHIPPED)
    images = load_fixture()[0]
    cm = compile_model(m, DEFAULT, im2col=im2col)
    assert cm.window_limit - cm.window_base <= DEFAULT.mem_words
    g = golden.run(m, images, keep_tensors=False)
    logits, results, _ = run_compiled(cm, images)
    np.testing.assert_array_equal(logits, g.logits_int)
    assert all(r.error == 0 and not r.overflows for r in results)
    g = golden.run(m, images[:3])
    _, results, _ = run_compiled(cm, images[:3], trace=True)
    for n, res in enumerate(results):
        fm = feature_maps(cm, res)
        for name in cm.tensors:
            want = cm.as_stored(name, g.tensors[name][n]).reshape(fm[name].shape)
            np.testing.assert_array_equal(fm[name], want, err_msg=name)
    emb, stem = cm.layers[0].desc, next(p for p in cm.layers if p.name == "stem1")
    if im2col:
        assert (emb["k"], emb["stride"], emb["pad"], emb["h_out"], emb["w_out"]) == (3, 2, 1, 14, 14)
        assert {f: stem.desc[f] for f in ("k", "stride", "pad", "h_in", "w_in", "n_cig")} == \
            dict(k=1, stride=1, pad=0, h_in=14, w_in=14, n_cig=3)
        assert stem.ideal_cycles == 14 * 14 * 3 and cm.layers[0].ideal_cycles == 29 * 29
    else:
        assert "k" not in emb and (stem.desc["k"], stem.desc["n_cig"]) == (3, 1)
        assert stem.ideal_cycles == 14 * 14 * 9 and cm.layers[0].ideal_cycles == 28 * 28


@pytest.mark.parametrize("cfg", ["small", "tiny"])
def test_shipped_model_on_small_configs_matches_or_names_the_layer(cfg):
    from model.deploy import load
    m = load(SHIPPED)
    names = {L["name"] for L in m.header["layers"]}
    try:
        check_against_golden(m, CONFIGS[cfg], n_images=1)
    except CompileError as e:
        assert str(e).split(":")[0].removeprefix("layer ") in names, e


# --- embeddings wider than a table entry (firmware/compiler/table_split.py) ---------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(1, 64), st.integers(1, 8))
def test_table_split_is_the_fewest_channels_that_fit(d, q):
    from firmware.compiler.table_split import table_split
    fits = lambda s: d % s == 0 and d // s <= 15 and (d // s) * q <= 16
    s = table_split(d, q)
    assert s is not None and fits(s) and not any(fits(r) for r in range(1, s))


@settings(max_examples=12, deadline=None)
@given(st.data())
def test_split_embedding_matches_golden(data):
    """d x q wider than a 16-bit entry or d > 15 codes: the EMBED reads each pixel once per table
    channel and fills the same lanes; logits and every feature map equal golden's. One image
    channel on SMALL (p_i = 16), two on DEFAULT (p_i = 32; both hold four table channels); a d
    whose split needs more table channels is refused (``test_fit_checks_name_the_layer``)."""
    from firmware.compiler.table_split import table_split
    C = data.draw(st.sampled_from([1, 2]), label="C")
    config = SMALL if C == 1 else DEFAULT
    d, q = data.draw(st.sampled_from([(d, q) for q in (1, 2) for d in range(2, 17)
                                      if C * d <= config.p_i and (d * q > 16 or d > 15)
                                      and C * table_split(d, q) <= config.emb_channels]),
                     label="d, q")
    H, W = data.draw(st.integers(3, 9), label="H"), data.draw(st.integers(3, 9), label="W")
    m = resnet_like(C=C, H=H, W=W, width=16, q=q, d=d, seed=data.draw(st.integers(0, 99), label="seed"))
    cm = check_against_golden(m, config, seed=d)
    s = table_split(d, q)
    embed = next(x["fields"] for x in cm.descriptors if x["fields"]["op"] == isa.Op.EMBED)
    assert s > 1 and cm.image_repeat == s
    assert (embed["emb_c"], embed["emb_d"], embed["emb_q"]) == (C * s, d // s, q)
    assert cm.input_words == -(-C * s * H * W // 4)
