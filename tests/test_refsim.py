"""The reference simulator: buffer layouts against scalar transcriptions of ARCHITECTURE 3.1,
LOAD/STORE/EMBED/CONV semantics, window and range checks with their error codes."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from contract import isa
from accel.localbus import READ_LATENCY
from contract.config import (TINY, SMALL, CONFIGS, BUF_WEIGHTS, BUF_THRESHOLDS, BUF_EMBED,
                          BUF_RESIDUAL, BUF_CODE_BANK0)
from contract.errors import ErrorCode
from model import golden
from model.random_deploy import random_deploy
from firmware import layout
from reference import pack_codes, pack_table, window_embed
from firmware.compiler import compile_model
from firmware.refsim import RefSim, ideal_cycles, run_compiled, feature_maps


def local(buf, lane=0):
    return (buf << 20) | lane


def desc(**f):
    return isa.pack(**f)


def program(sim, addr, descs):
    sim.write(addr, np.asarray([w for d in descs for w in d], np.uint32))


# --- layouts: scalar transcriptions of the formulas ---------------------------------------------

def scalar_code_word(codes, cfg, bits, word):
    """Bit value of code-bank word ``word`` built directly from ARCHITECTURE 3.1."""
    C, H, W = codes.shape
    n_cig, nsub = -(-C // cfg.p_i), -(-bits // cfg.a_planes)
    s = word % nsub
    g = (word // nsub) % n_cig
    pix = word // (nsub * n_cig)
    y, x = divmod(pix, W)
    value = 0
    for b in range(cfg.a_planes):
        for i in range(cfg.p_i):
            ch = g * cfg.p_i + i
            code = int(codes[ch, y, x]) if ch < C else 0
            bit = (code >> (s * cfg.a_planes + b)) & 1
            value |= bit << (b * cfg.p_i + i)
    return value


def lanes_value(lanes, word, L):
    return sum(int(x) << (32 * i) for i, x in enumerate(lanes[word * L:(word + 1) * L]))


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["tiny", "small", "default"]), st.integers(1, 70), st.integers(1, 3),
       st.integers(1, 3), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_code_bank_layout(cfg_name, C, H, W, bits, seed):
    cfg = CONFIGS[cfg_name]
    codes = np.random.default_rng(seed).integers(0, 1 << bits, (C, H, W))
    lanes = layout.encode_codes(codes, bits, cfg)
    L = cfg.lanes(BUF_CODE_BANK0)
    n_words = H * W * -(-C // cfg.p_i) * -(-bits // cfg.a_planes)
    assert lanes.size == n_words * L
    for w in range(n_words):
        assert lanes_value(lanes, w, L) == scalar_code_word(codes, cfg, bits, w)
    back = layout.decode_codes(lanes, C, H, W, bits, cfg)
    np.testing.assert_array_equal(back[:C], codes)
    assert not back[C:].any()


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["tiny", "small", "default"]), st.integers(1, 140), st.integers(1, 3),
       st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_residual_layout(cfg_name, C, H, W, seed):
    cfg = CONFIGS[cfg_name]
    rb = cfg.res_bits
    vals = np.random.default_rng(seed).integers(-(1 << (rb - 1)), 1 << (rb - 1), (C, H, W))
    lanes = layout.encode_ints(vals, cfg)
    L = cfg.lanes(BUF_RESIDUAL)
    n_cog = -(-C // cfg.p_o)
    for y in range(H):
        for x in range(W):
            for cog in range(n_cog):
                word = lanes_value(lanes, (y * W + x) * n_cog + cog, L)
                for o in range(cfg.p_o):
                    ch = cog * cfg.p_o + o
                    want = int(vals[ch, y, x]) if ch < C else 0
                    assert (word >> (o * rb)) & ((1 << rb) - 1) == want & ((1 << rb) - 1)
    np.testing.assert_array_equal(layout.decode_ints(lanes, C, H, W, cfg)[:C], vals)


def test_lanes_of_narrow_words():
    # 16-bit code words (TINY) take one lane each, upper half unused; 64-bit threshold entries 2
    assert TINY.lanes(BUF_CODE_BANK0) == 1 and TINY.code_word_bits == 16
    bits = np.random.default_rng(0).integers(0, 2, (5, 16)).astype(np.uint8)
    lanes = layout.bits_to_lanes(bits, 16)
    assert lanes.shape == (5, 1) and (lanes < 65536).all()
    np.testing.assert_array_equal(layout.lanes_to_bits(lanes, 16), bits)


# --- LOAD / STORE ------------------------------------------------------------------------------

def test_load_store_round_trip_with_rows_and_stride():
    sim = RefSim(SMALL)
    data = np.arange(1, 1 + 4 * 10, dtype=np.uint32)
    sim.write(1000, data)
    # 4 rows of 6 words every 10 words -> residual buffer lanes 8.., then back with a different stride
    program(sim, 0, [desc(op=isa.Op.LOAD, mem_addr=1000, local_addr=local(BUF_RESIDUAL, 8), count=6,
                          rows=4, mem_stride=10),
                     desc(op=isa.Op.STORE, mem_addr=2000, local_addr=local(BUF_RESIDUAL, 8), count=6,
                          rows=4, mem_stride=7),
                     desc(op=isa.Op.END)])
    r = sim.run(0, 0, 4096)
    assert r.error == 0 and r.executed == 3
    want = np.concatenate([data[i * 10:i * 10 + 6] for i in range(4)])
    np.testing.assert_array_equal(sim.local[BUF_RESIDUAL][8:32], want)
    for i in range(4):
        np.testing.assert_array_equal(sim.mem[2000 + 7 * i:2000 + 7 * i + 6], want[6 * i:6 * i + 6])
    assert r.cycles == 48 and ideal_cycles(isa.unpack(desc(op=isa.Op.LOAD, count=6, rows=4))) == 24


def test_load_keeps_only_the_bits_of_narrow_words():
    sim = RefSim(TINY)      # 16-bit code words, 16-bit embedding entries
    sim.write(100, [0xDEADBEEF, 0x12345678])
    program(sim, 0, [desc(op=isa.Op.LOAD, mem_addr=100, local_addr=local(BUF_CODE_BANK0 + 1), count=2, rows=1),
                     desc(op=isa.Op.LOAD, mem_addr=100, local_addr=local(BUF_EMBED, 5), count=2, rows=1),
                     desc(op=isa.Op.END)])
    assert sim.run(0, 0, 200).error == 0
    assert list(sim.bank(1)[:2]) == [0xBEEF, 0x5678]
    assert list(sim.local[BUF_EMBED][5:7]) == [0xBEEF, 0x5678]


# --- errors ------------------------------------------------------------------------------------

def run_one(d, window=(0, 512), cfg=SMALL, setup=None):
    sim = RefSim(cfg)
    if setup:
        setup(sim)
    program(sim, 64, [d, desc(op=isa.Op.END)])
    before = {b: v.copy() for b, v in sim.local.items()}
    mem_before = sim.mem.copy()
    r = sim.run(64, *window)
    if r.error:
        # the failing descriptor changed nothing
        for b in before:
            np.testing.assert_array_equal(before[b], sim.local[b])
        np.testing.assert_array_equal(mem_before, sim.mem)
        assert r.pc == 64
    return r


@pytest.mark.parametrize("d, window, code", [
    (desc(op=isa.Op.LOAD, mem_addr=500, local_addr=local(BUF_WEIGHTS), count=20, rows=1), (0, 512),
     ErrorCode.WINDOW),
    (desc(op=isa.Op.LOAD, mem_addr=10, local_addr=local(BUF_WEIGHTS), count=2, rows=1), (20, 512),
     ErrorCode.WINDOW),
    (desc(op=isa.Op.LOAD, mem_addr=100, local_addr=local(BUF_WEIGHTS), count=10, rows=3, mem_stride=250),
     (0, 512), ErrorCode.WINDOW),
    (desc(op=isa.Op.STORE, mem_addr=510, local_addr=local(BUF_RESIDUAL), count=4, rows=1), (0, 512),
     ErrorCode.WINDOW),
    (desc(op=isa.Op.EMBED, mem_addr=500, dst_bank=0, nsub=1, h_in=8, w_in=8, emb_c=1, emb_d=1, emb_q=1),
     (0, 512), ErrorCode.WINDOW),
    (desc(op=isa.Op.LOAD, mem_addr=100, local_addr=local(9), count=1, rows=1), (0, 512),
     ErrorCode.LOCAL_RANGE),
    (desc(op=isa.Op.LOAD, mem_addr=100, local_addr=local(BUF_THRESHOLDS, 1023), count=2, rows=1), (0, 512),
     ErrorCode.LOCAL_RANGE),
    (desc(op=isa.Op.STORE, mem_addr=100, local_addr=local(BUF_WEIGHTS), count=1, rows=1), (0, 512),
     ErrorCode.LOCAL_RANGE),
    (desc(op=isa.Op.STORE, mem_addr=100, local_addr=local(BUF_EMBED), count=1, rows=1), (0, 512),
     ErrorCode.LOCAL_RANGE),
    (desc(op=7), (0, 512), ErrorCode.BAD_OPCODE),
    (desc(op=isa.Op.LOAD, mem_addr=20000, local_addr=local(BUF_WEIGHTS), count=1, rows=1), (0, 1 << 20),
     ErrorCode.BUS_ERROR),
    (desc(op=isa.Op.CONV, k=3, stride=1, nsub=1, src_bank=0, h_in=8, w_in=8, h_out=8, w_out=8, n_cig=1,
          n_cog=1, w_base=510), (0, 512), ErrorCode.BAD_DESCRIPTOR),
    (desc(op=isa.Op.CONV, k=1, stride=1, nsub=1, src_bank=0, dst_bank=0, thr_out=1, out_bits=1,
          h_in=2, w_in=2, h_out=2, w_out=2, n_cig=1, n_cog=1, n_cig_out=1), (0, 512),
     ErrorCode.BAD_DESCRIPTOR),
    (desc(op=isa.Op.CONV, k=1, stride=1, nsub=1, src_bank=0, dst_bank=1, thr_out=1, out_bits=3,
          h_in=2, w_in=2, h_out=2, w_out=2, n_cig=1, n_cog=1, n_cig_out=1), (0, 512),
     ErrorCode.BAD_DESCRIPTOR),
    (desc(op=isa.Op.EMBED, mem_addr=0, dst_bank=3, nsub=1, h_in=2, w_in=2, emb_c=1, emb_d=1, emb_q=1),
     (0, 512), ErrorCode.BAD_DESCRIPTOR),
    (desc(op=isa.Op.EMBED, raw=1, mem_addr=0, dst_bank=0, nsub=4, h_in=2, w_in=2, emb_c=5),
     (0, 512), ErrorCode.BAD_DESCRIPTOR),                        # emb_c > emb_channels, raw too
    (desc(op=isa.Op.EMBED, raw=1, mem_addr=0, dst_bank=0, nsub=5, h_in=2, w_in=2, emb_c=1),
     (0, 512), ErrorCode.BAD_DESCRIPTOR),                        # nsub > ceil(8/a_planes)
    (desc(op=isa.Op.CONV, k=1, pad=1, stride=1, nsub=1, src_bank=0, res_out=1, h_in=2, w_in=2, h_out=4,
          w_out=4, n_cig=1, n_cog=1), (0, 512), ErrorCode.BAD_DESCRIPTOR),         # pad >= k
    (desc(op=isa.Op.CONV, k=3, pad=1, stride=1, nsub=1, src_bank=0, res_out=1, h_in=2, w_in=2, h_out=3,
          w_out=2, n_cig=1, n_cog=1), (0, 512), ErrorCode.BAD_DESCRIPTOR),         # beyond the input
    (desc(op=isa.Op.CONV, k=1, stride=1, nsub=1, src_bank=0, sum=1, res_out=1, h_in=2, w_in=2, h_out=2,
          w_out=2, n_cig=1, n_cog=1), (0, 512), ErrorCode.BAD_DESCRIPTOR),         # sum with res_out
    (desc(op=isa.Op.CONV, k=1, stride=1, nsub=1, src_bank=0, dst_bank=1, thr_out=1, out_bits=1,
          h_in=2, w_in=2, h_out=2, w_out=2, n_cig=1, n_cog=2, n_cig_out=1), (0, 512),
     ErrorCode.BAD_DESCRIPTOR),                                  # n_cig_out does not match n_cog
    (desc(op=isa.Op.LOAD, mem_addr=5000, local_addr=local(9, 99999), count=0, rows=3), (0, 512),
     ErrorCode.OK),                                              # nothing to move: no checks
])
def test_errors_stop_before_any_access(d, window, code):
    r = run_one(d, window)
    assert r.error == code, (r.error_name, r.message)
    if code:
        assert r.index == 0 and r.executed == 1
    assert r.error_name == code.name


def test_descriptor_fetch_outside_window():
    sim = RefSim(TINY)
    program(sim, 0, [desc(op=isa.Op.END)])
    assert sim.run(0, 8, 100).error == ErrorCode.WINDOW
    # a program running off the end of its window
    program(sim, 8, [desc(op=isa.Op.LOAD, mem_addr=8, local_addr=local(0), count=0, rows=0)])
    r = sim.run(8, 8, 16)
    assert r.error == ErrorCode.WINDOW and r.pc == 16 and r.executed == 2


def test_timeout_without_end():
    sim = RefSim(TINY)
    loop = desc(op=isa.Op.LOAD, mem_addr=0, local_addr=local(0), count=0, rows=1)
    program(sim, 0, [loop] * 64)
    r = sim.run(0, 0, 8192, max_descriptors=10)
    assert r.error == ErrorCode.TIMEOUT and r.executed == 10


def test_compiled_program_outside_window_is_refused():
    m = random_deploy(0)
    cm = compile_model(m, SMALL)
    sim = RefSim(SMALL)
    sim.load_image(cm)
    sim.write(cm.input_addr, cm.prepare_input(np.zeros(m.input_shape, np.uint8)))
    # a window that ends before the logits region: the STORE is refused, memory untouched there
    r = sim.run(cm.prog_load_addr, cm.window_base, cm.output_addr)
    assert r.error == ErrorCode.WINDOW
    assert isa.unpack(cm.memory[r.pc - cm.window_base:r.pc - cm.window_base + 8].tolist())["op"] == isa.Op.STORE
    assert not sim.mem[cm.output_addr:cm.output_addr + cm.output_words].any()
    # a window starting after the program
    assert sim.run(cm.prog_load_addr, cm.prog_load_addr + 8, cm.window_limit).error == ErrorCode.WINDOW


# --- engine ops against direct computations ----------------------------------------------------

def test_embed_table_and_raw():
    cfg = SMALL
    rng = np.random.default_rng(1)
    C, H, W, d, q = 3, 5, 7, 4, 2
    img = rng.integers(0, 256, (C, H, W), dtype=np.uint8)
    table = rng.integers(0, 1 << q, (C, 256, d))
    entries = (table << (np.arange(d) * q)).sum(-1).reshape(-1).astype(np.uint32)
    sim = RefSim(cfg)
    words = layout.encode_image(img)
    sim.write(1000, words)
    sim.write(2000, entries)
    program(sim, 0, [desc(op=isa.Op.LOAD, mem_addr=2000, local_addr=local(BUF_EMBED), count=entries.size, rows=1),
                     desc(op=isa.Op.EMBED, mem_addr=1000, dst_bank=2, nsub=1, h_in=H, w_in=W, emb_c=C,
                          emb_d=d, emb_q=q),
                     desc(op=isa.Op.EMBED, raw=1, mem_addr=1000, dst_bank=0, nsub=4, h_in=H, w_in=W, emb_c=C),
                     desc(op=isa.Op.END)])
    r = sim.run(0, 0, 4096)
    assert r.error == 0
    want = golden.embed(img[None], table.astype(np.uint8))[0]
    got = layout.decode_codes(sim.bank(2), C * d, H, W, q, cfg)
    np.testing.assert_array_equal(got[:C * d], want)
    assert not got[C * d:].any()
    got = layout.decode_codes(sim.bank(0), C, H, W, 8, cfg)
    np.testing.assert_array_equal(got[:C], img)
    assert not got[C:].any()


# --- EMBED window mode -------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["tiny", "small", "default"]), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 2), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2), st.integers(0, 2),
       st.integers(0, 2**32 - 1), st.data())
def test_window_embed_writes_the_windows(cfg_name, k, stride, pad, H, W, more_h, more_w, seed, data):
    """A window EMBED against layout.window_codes of the golden embedding (the same table in
    channels 0..k-1) and, with a different table per channel, against a scalar transcription of
    ARCHITECTURE 3.3 word by word; windows reaching past the image (``more_h``, ``more_w``) read 0."""
    cfg = CONFIGS[cfg_name]
    k = min(k, cfg.emb_channels)
    pad = min(pad, k - 1)
    q = data.draw(st.integers(1, cfg.a_planes), label="q")
    d = data.draw(st.integers(1, min(cfg.p_i // k, 16 // q, 15)), label="d")
    Ho = max(1, (H + 2 * pad - k) // stride + 1) + more_h
    Wo = max(1, (W + 2 * pad - k) // stride + 1) + more_w
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (1, H, W), dtype=np.uint8)
    tables = rng.integers(0, 1 << q, (k, 256, d))
    f = dict(op=isa.Op.EMBED, mem_addr=1000, dst_bank=1, nsub=1, h_in=H, w_in=W, emb_c=1, emb_d=d,
             emb_q=q, k=k, stride=stride, pad=pad, h_out=Ho, w_out=Wo)
    for same in (True, False):
        tab = np.repeat(tables[:1], k, axis=0) if same else tables
        entries = np.array(pack_table(tab, q, k), np.int64)
        sim = RefSim(cfg)
        sim.bank(1)[:] = 0xFFFFFFFF          # every lane of the windows is written, 0s included
        sim.write(1000, layout.encode_image(img))
        sim.write(2000, entries.reshape(-1).astype(np.uint32))
        program(sim, 0, [desc(op=isa.Op.LOAD, mem_addr=2000, local_addr=local(BUF_EMBED), count=entries.size,
                              rows=1),
                         desc(**f), desc(op=isa.Op.END)])
        r = sim.run(0, 0, 4096)
        assert r.error == 0, r.message
        assert r.trace[1].cycles == ideal_cycles(f) >= H * W
        n = Ho * Wo * k
        L = cfg.lanes(BUF_CODE_BANK0)
        mask = (1 << cfg.code_word_bits) - 1
        if same:
            want = layout.window_codes(golden.embed(img[None], tab[:1].astype(np.uint8))[0], k, stride, pad,
                                       Ho, Wo, cfg.p_i)
            np.testing.assert_array_equal(layout.decode_codes(sim.bank(1), k * cfg.p_i, Ho, Wo, q, cfg), want)
        # tests/reference.py's transcription of ARCHITECTURE 3.3, table channel kx for column kx
        words = pack_codes(window_embed(img, tab, k, stride, pad, Ho, Wo, cfg.p_i), cfg.p_i,
                           cfg.a_planes, 1)
        for w in range(n):
            assert lanes_value(sim.bank(1), w, L) & mask == words[w], w
        assert (sim.bank(1)[n * L:] == 0xFFFFFFFF).all()          # nothing beyond the windows


def test_window_codes_and_weights_against_scalar_formulas():
    rng = np.random.default_rng(3)
    d, H, W, k, s, p, Ho, Wo, p_i = 3, 5, 6, 3, 2, 1, 4, 3, 16
    codes = rng.integers(0, 4, (d, H, W))
    got = layout.window_codes(codes, k, s, p, Ho, Wo, p_i)
    assert got.shape == (k * p_i, Ho, Wo)
    for ky in range(k):
        for lane in range(p_i):
            for oy in range(Ho):
                for ox in range(Wo):
                    kx, j = divmod(lane, d)
                    y, x = oy * s - p + ky, ox * s - p + kx
                    inside = lane < k * d and 0 <= y < H and 0 <= x < W
                    assert got[ky * p_i + lane, oy, ox] == (codes[j, y, x] if inside else 0)
    wbits = rng.integers(0, 2, (5, d, k, k))
    ww = layout.window_weights(wbits, p_i)
    assert ww.shape == (5, k * p_i, 1, 1)
    for ky in range(k):
        for lane in range(p_i):
            kx, j = divmod(lane, d)
            want = wbits[:, j, ky, kx] if lane < k * d else 0
            np.testing.assert_array_equal(ww[:, ky * p_i + lane, 0, 0], want)
    # the 1x1 conv over the windows is the conv (padding channels: weight bit 0 = -1, code 0); the
    # 4th window row lies below the image (the conv has 3 output rows) and reads zeros only
    acc = np.einsum("oc,chw->ohw", ww[:, :, 0, 0].astype(np.int64) * 2 - 1, got)
    np.testing.assert_array_equal(acc[:, :3], golden.conv_int(codes[None], wbits, s, p, 2)[0])
    assert not acc[:, 3].any()
    with pytest.raises(ValueError):
        layout.window_codes(codes, 3, 1, 0, 2, 2, 8)            # 3*3 lanes > 8


def wdesc(**over):
    """A valid window EMBED on SMALL (p_i 16, 4 table channels, 2048-word banks), with changes."""
    f = dict(op=isa.Op.EMBED, mem_addr=0, dst_bank=0, nsub=1, h_in=2, w_in=2, emb_c=1, emb_d=4,
             emb_q=2, k=3, stride=1, pad=1, h_out=2, w_out=2)
    f.update(over)
    return desc(**f)


@pytest.mark.parametrize("d, code", [
    (wdesc(), ErrorCode.OK),
    (wdesc(emb_c=2), ErrorCode.BAD_DESCRIPTOR),
    (wdesc(raw=1), ErrorCode.BAD_DESCRIPTOR),
    (wdesc(nsub=2), ErrorCode.BAD_DESCRIPTOR),
    (wdesc(k=5, emb_d=3), ErrorCode.BAD_DESCRIPTOR),                 # k > emb_channels (4)
    (wdesc(k=4, emb_d=4), ErrorCode.OK),
    (wdesc(emb_d=6), ErrorCode.BAD_DESCRIPTOR),                      # k*d = 18 > p_i
    (wdesc(stride=0), ErrorCode.BAD_DESCRIPTOR),
    (wdesc(h_out=0), ErrorCode.BAD_DESCRIPTOR),
    (wdesc(w_out=0), ErrorCode.BAD_DESCRIPTOR),
    (wdesc(h_out=32, w_out=21), ErrorCode.OK),                       # 2016 words, windows mostly empty
    (wdesc(h_out=32, w_out=22), ErrorCode.BAD_DESCRIPTOR),           # 2112 words > bank_depth
    (wdesc(h_in=50, w_in=50, k=1, pad=0, stride=2, h_out=25, w_out=25, mem_addr=1000),
     ErrorCode.OK),                                                  # the map would not fit, the windows do
    # the plain-mode checks still apply
    (wdesc(dst_bank=3), ErrorCode.BAD_DESCRIPTOR),
    (wdesc(emb_d=0), ErrorCode.BAD_DESCRIPTOR),
    (wdesc(emb_q=0), ErrorCode.BAD_DESCRIPTOR),
    (wdesc(emb_q=3), ErrorCode.BAD_DESCRIPTOR),                      # > a_planes
    (wdesc(k=1, emb_d=9, emb_q=2), ErrorCode.BAD_DESCRIPTOR),        # d*q = 18 > 16
    (wdesc(h_in=0), ErrorCode.BAD_DESCRIPTOR),
    (wdesc(mem_addr=4094, h_in=4, w_in=4), ErrorCode.WINDOW),        # 4 image words from 4094
])
def test_window_embed_checks(d, code):
    r = run_one(d, (0, 4096))
    assert r.error == code, (r.error_name, r.message)
    if code:
        assert r.index == 0 and r.executed == 1


def test_window_embed_cycles():
    """The window EMBED walks the positions its windows and the image span."""
    f = dict(op=isa.Op.EMBED, nsub=1, h_in=28, w_in=28, emb_c=1, emb_d=8, emb_q=2, k=3, stride=2,
             pad=1, h_out=14, w_out=14)
    assert ideal_cycles(f) == 29 * 29                                # rows and columns -1..27
    assert ideal_cycles(dict(f, k=0)) == 28 * 28
    # 5x6 image, 3x3 windows stride 1 pad 1, 7 x 4 of them: rows -1..7, columns -1..5
    assert ideal_cycles(dict(f, h_in=5, w_in=6, stride=1, h_out=7, w_out=4)) == 9 * 7


def put_weights(sim, cfg, wbits, w_base):
    """Weight buffer words per ARCHITECTURE 3.1, built by a scalar loop."""
    cout, cin, k, _ = wbits.shape
    n_cig, n_cog = -(-cin // cfg.p_i), -(-cout // cfg.p_o)
    L = cfg.lanes(BUF_WEIGHTS)
    for cog in range(n_cog):
        for ky in range(k):
            for kx in range(k):
                for cig in range(n_cig):
                    word = w_base + (cog * k * k + ky * k + kx) * n_cig + cig
                    value = 0
                    for o in range(cfg.p_o):
                        for i in range(cfg.p_i):
                            co, ci = cog * cfg.p_o + o, cig * cfg.p_i + i
                            if co < cout and ci < cin and wbits[co, ci, ky, kx]:
                                value |= 1 << (o * cfg.p_i + i)
                    for l in range(L):
                        sim.local[BUF_WEIGHTS][word * L + l] = (value >> (32 * l)) & 0xFFFFFFFF


def test_conv_residual_in_place_and_sum():
    """One CONV with res_in + res_out at the same res_base and thresholds, then a sum CONV,
    against direct numpy computations."""
    cfg = TINY
    rng = np.random.default_rng(2)
    cin, cout, H, W, k = 12, 20, 4, 5, 3
    n_cig, n_cog, n_cig_out = 2, 2, 3
    codes = rng.integers(0, 4, (cin, H, W))
    wbits = rng.integers(0, 2, (cout, cin, k, k))
    w1 = rng.integers(0, 2, (cout, cin, 1, 1))
    res = rng.integers(-300, 300, (cout, H, W))
    T = np.sort(rng.integers(-40, 40, (cout, 3)), axis=1)
    neg = rng.integers(0, 2, cout)
    sim = RefSim(cfg)
    lanes = layout.encode_codes(codes, 2, cfg)
    sim.bank(1)[:lanes.size] = lanes
    put_weights(sim, cfg, wbits, 4)
    put_weights(sim, cfg, w1, 200)
    rl = layout.encode_ints(res, cfg)
    sim.local[BUF_RESIDUAL][10 * 8:10 * 8 + rl.size] = rl
    t = np.full((32, 3), 32767)
    t[:cout] = T
    ng = np.zeros(32, np.int64)
    ng[:cout] = neg
    u = t & 0xFFFF
    sim.local[BUF_THRESHOLDS][6:6 + 64] = np.stack([u[:, 0] | u[:, 1] << 16, u[:, 2] | ng << 16], 1).reshape(-1)
    program(sim, 0, [desc(op=isa.Op.CONV, res_in=1, res_out=1, thr_out=1, k=3, stride=1, pad=1, out_bits=2,
                          nsub=1, src_bank=1, dst_bank=0, res_base=10, h_in=H, w_in=W, h_out=H, w_out=W,
                          n_cig=n_cig, n_cog=n_cog, w_base=4, thr_base=3, n_cig_out=n_cig_out),
                     desc(op=isa.Op.CONV, sum=1, k=1, stride=1, nsub=1, src_bank=1, res_base=100,
                          h_in=H, w_in=W, h_out=H, w_out=W, n_cig=n_cig, n_cog=n_cog, w_base=200),
                     desc(op=isa.Op.END)])
    r = sim.run(0, 0, 64)
    assert r.error == 0 and not r.overflows
    assert r.trace[-1].banks is None and r.cycles == H * W * 9 * 2 * 2 + H * W * 2 * 2
    v = golden.conv_int(codes[None], wbits, 1, 1, 2)[0] + res
    np.testing.assert_array_equal(layout.decode_ints(sim.local[BUF_RESIDUAL][80:], cout, H, W, cfg)[:cout], v)
    uu = np.where(neg[:, None, None] == 1, -v, v)
    want = np.minimum((uu[:, None] >= T[:, :, None, None]).sum(1), 3)
    got = layout.decode_codes(sim.bank(0), 24, H, W, 2, cfg)
    np.testing.assert_array_equal(got[:cout], want)
    assert not got[cout:].any()
    sums = layout.decode_sums(sim.local[BUF_RESIDUAL][800:], cout, cfg)
    np.testing.assert_array_equal(sums, golden.conv_int(codes[None], w1, 1, 0, 2)[0].sum((1, 2)))


def test_acc_overflow_is_reported():
    cfg = TINY.replace(acc_bits=8)
    sim = RefSim(cfg)
    lanes = layout.encode_codes(np.full((8, 3, 3), 3), 2, cfg)
    sim.bank(0)[:lanes.size] = lanes
    sim.local[BUF_WEIGHTS][:] = 0xFFFFFFFF            # all +1: centre acc = 8*9*3 = 216 > 127
    program(sim, 0, [desc(op=isa.Op.CONV, res_out=1, k=3, stride=1, pad=1, nsub=1, src_bank=0, h_in=3, w_in=3,
                          h_out=3, w_out=3, n_cig=1, n_cog=1), desc(op=isa.Op.END)])
    r = sim.run(0, 0, 64)
    assert r.error == 0 and r.overflows and "acc_bits=8" in r.overflows[0]


def test_corrupted_image_is_caught_by_the_comparison():
    """The golden comparison can fail: one flipped weight bit changes an int feature map."""
    seed = next(s for s in range(100) if random_deploy(s).layers[1]["outputs"]["acc"]
                and random_deploy(s).layers[0]["kind"] == "raw_input")
    m = random_deploy(seed)
    cm = compile_model(m, SMALL)
    conv = m.layers[1]
    a = next(a for a in cm.allocations if a.region == "memory" and a.name == f"{conv['name']}.weight")
    img = np.random.default_rng(0).integers(0, 256, (1,) + tuple(m.input_shape), dtype=np.uint8)
    g = golden.run(m, img)
    _, results, _ = run_compiled(cm, img, trace=True)
    name = conv["outputs"]["acc"]
    np.testing.assert_array_equal(feature_maps(cm, results[0])[name], g.tensors[name][0])
    # flip every weight bit of output channel 0 (bits o*p_i + i of each word, o = 0): acc changes
    # by 2*sum of the inputs, which are not all zero
    L = SMALL.lanes(BUF_WEIGHTS)
    for w in range(a.size // L):
        cm.memory[a.addr - cm.window_base + w * L] ^= (1 << SMALL.p_i) - 1
    _, results, _ = run_compiled(cm, img, trace=True)
    assert not np.array_equal(feature_maps(cm, results[0])[name][0], g.tensors[name][0][0])


# --- the RTL layer engine against this model ---------------------------------------------------

@pytest.mark.parametrize("d", [3, 2])
def test_layer_engine_rtl_matches_refsim_on_a_compiled_program(d):
    """Every EMBED/CONV of a compiled TINY program, run on accel.engine.LayerEngine (Amaranth
    simulator) from the buffer state the reference simulator had before it: the code banks and the
    residual buffer afterwards equal the reference simulator's, lane for lane. With ``d=2`` the
    EMBED writes c1's 3x3 windows (4x4x3 words), ``d=3`` needs 9 of 8 lanes and stays plain."""
    from amaranth.sim import Simulator
    from accel.engine import LayerEngine
    from test_compiler import build

    cfg = TINY
    m = build([dict(name="c1", input="e0", cout=20, stride=2, acc="x1", codes="a1"),
               dict(name="c2", input="a1", cout=20, residual="x1", codes="a2", pool="max2", q=1),
               dict(name="head", kind="head", input="a2")], C=1, H=7, W=7, d=d, q=2, seed=4)
    cm = compile_model(m, cfg)
    assert (cm.tensors["e0"].window is not None) == (d == 2)
    img = np.random.default_rng(1).integers(0, 256, tuple(m.input_shape), dtype=np.uint8)
    ref = RefSim(cfg)
    ref.load_image(cm)
    ref.write(cm.input_addr, cm.prepare_input(img))
    res = ref.run(cm.prog_load_addr, cm.window_base, cm.window_limit, trace=True)
    assert res.error == 0
    steps = [e for e in res.trace if e.fields["op"] in (isa.Op.EMBED, isa.Op.CONV)]
    assert [e.fields["op"] for e in steps] == [isa.Op.EMBED] + [isa.Op.CONV] * 3
    dut = LayerEngine(cfg)
    mismatches = []

    async def bench(ctx):
        bus = dut.local

        async def write(buf, lanes):
            for i, v in enumerate(lanes):
                ctx.set(bus.addr, (buf << 20) | i)
                ctx.set(bus.w_data, int(v))
                ctx.set(bus.w_en, 1)
                await ctx.tick()
            ctx.set(bus.w_en, 0)

        async def read(buf, n):
            out = []
            for i in range(n):
                ctx.set(bus.addr, (buf << 20) | i)
                ctx.set(bus.r_en, 1)
                await ctx.tick()
                ctx.set(bus.r_en, 0)
                for _ in range(READ_LATENCY - 1):
                    await ctx.tick()
                out.append(ctx.get(bus.r_data))
            return np.array(out, np.uint32)

        # parameters as the load program left them (the per-image part never changes them)
        for b in (BUF_WEIGHTS, BUF_THRESHOLDS, BUF_EMBED):
            nz = np.nonzero(ref.local[b])[0]
            await write(b, ref.local[b][:nz.max() + 1])
        for e in steps:
            f = e.fields
            words = isa.pack(**f)
            ctx.set(dut.desc.as_value(), sum(w << (32 * i) for i, w in enumerate(words)))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            pixels = []
            if f["op"] == isa.Op.EMBED:
                n = -(-f["h_in"] * f["w_in"] * f["emb_c"] // 4)
                pixels = [int(x) for x in ref.mem[f["mem_addr"]:f["mem_addr"] + n]]
            k = cycles = 0
            while True:
                ctx.set(dut.pixels.valid, int(k < len(pixels)))
                ctx.set(dut.pixels.payload, pixels[k] if k < len(pixels) else 0)
                _, _, done, err, valid, ready = await ctx.tick().sample(
                    dut.done, dut.error, dut.pixels.valid, dut.pixels.ready)
                cycles += 1
                k += valid and ready
                if done:
                    break
                assert cycles < 20_000, "engine did not finish"
            ctx.set(dut.pixels.valid, 0)
            assert err == 0, f"engine error {err} on {f}"
            for b in range(cfg.n_code_banks):
                got = await read(BUF_CODE_BANK0 + b, 49)             # the largest map: 7x7 x 1
                if not np.array_equal(got, e.banks[b][:49]):
                    mismatches.append((isa.Op.NAMES[f["op"]], f"bank{b}"))
            n_res = (cm.tensors["x1"].res_base + 16 * 2) * cfg.lanes(BUF_RESIDUAL)   # 4x4 pixels, 2 groups
            got = await read(BUF_RESIDUAL, n_res)
            if not np.array_equal(got, e.residual[:n_res]):
                mismatches.append((isa.Op.NAMES[f["op"]], "residual"))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert mismatches == []
