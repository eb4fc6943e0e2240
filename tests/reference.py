"""NumPy reference functions for the engine's units and buffer layouts (docs/ARCHITECTURE.md 3.1).

Owned by the engine helper; used by tests/test_mac_array.py, test_embedding.py, test_output.py and
test_engine.py. Everything here is written from the contract, independently of the RTL.
"""

import numpy as np


def ceil_div(a, b):
    return -(-a // b)


# --- MAC array -----------------------------------------------------------------------------------

def mac_word_set(weights, acts, shift, p_o, p_i, a_planes):
    """Contribution of one word-set to the ``p_o`` accumulators (Python ints)."""
    out = []
    planes = [(acts >> (b * p_i)) & ((1 << p_i) - 1) for b in range(a_planes)]
    for o in range(p_o):
        wo = (weights >> (o * p_i)) & ((1 << p_i) - 1)
        total = 0
        for b, ab in enumerate(planes):
            s = 2 * bin(wo & ab).count("1") - bin(ab).count("1")
            total += s << (b + shift)
        out.append(total)
    return out


def wrap_signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


# --- code bank layout ----------------------------------------------------------------------------

def pack_codes(codes_chw, p_i, a_planes, nsub):
    """Code bank words of a code map ``(C, H, W)`` (unsigned codes): ``(pix*n_cig + g)*nsub + s``."""
    c, h, w = codes_chw.shape
    n_cig = ceil_div(c, p_i)
    words = []
    for pix in range(h * w):
        y, x = divmod(pix, w)
        for g in range(n_cig):
            for s in range(nsub):
                word = 0
                for i in range(p_i):
                    ch = g * p_i + i
                    if ch >= c:
                        continue
                    v = int(codes_chw[ch, y, x])
                    for b in range(a_planes):
                        bit = (v >> (s * a_planes + b)) & 1
                        word |= bit << (b * p_i + i)
                words.append(word)
    return words


def unpack_codes(words, c, h, w, p_i, a_planes, nsub):
    n_cig = ceil_div(c, p_i)
    out = np.zeros((c, h, w), dtype=np.int64)
    for pix in range(h * w):
        y, x = divmod(pix, w)
        for g in range(n_cig):
            for s in range(nsub):
                word = words[(pix * n_cig + g) * nsub + s]
                for i in range(p_i):
                    ch = g * p_i + i
                    if ch >= c:
                        continue
                    for b in range(a_planes):
                        out[ch, y, x] |= ((word >> (b * p_i + i)) & 1) << (s * a_planes + b)
    return out


# --- weights -------------------------------------------------------------------------------------

def pack_weights(wbits, p_o, p_i):
    """Weight buffer words of bits ``(Cout, Cin, k, k)``: ``(cog*k*k + ky*k + kx)*n_cig + cig``."""
    cout, cin, k, _ = wbits.shape
    n_cog, n_cig = ceil_div(cout, p_o), ceil_div(cin, p_i)
    words = []
    for cog in range(n_cog):
        for ky in range(k):
            for kx in range(k):
                for cig in range(n_cig):
                    word = 0
                    for o in range(p_o):
                        co = cog * p_o + o
                        if co >= cout:
                            continue
                        for i in range(p_i):
                            ci = cig * p_i + i
                            if ci < cin and wbits[co, ci, ky, kx]:
                                word |= 1 << (o * p_i + i)
                    words.append(word)
    return words


# --- thresholds ----------------------------------------------------------------------------------

def pack_thresholds(thr, negate, p_o, n_cog):
    """64-bit threshold entries: three signed 16-bit thresholds, negate at bit 48; padded with 32767."""
    entries = []
    for co in range(n_cog * p_o):
        if co < len(thr):
            ts = list(thr[co]) + [32767] * (3 - len(thr[co]))
            neg = int(negate[co])
        else:
            ts, neg = [32767] * 3, 0
        e = 0
        for k, t in enumerate(ts):
            e |= (int(t) & 0xFFFF) << (16 * k)
        e |= neg << 48
        entries.append(e)
    return entries


def threshold(v, thr, negate, out_bits):
    """Codes of ``v`` (ints, (C, ...)) with thresholds ``thr`` (C, 3) and negate flags (C,)."""
    u = np.where(np.asarray(negate).reshape((-1,) + (1,) * (v.ndim - 1)) != 0, -v, v)
    count = np.zeros(v.shape, dtype=np.int64)
    for k in range(3):
        count += (u >= np.asarray(thr)[:, k].reshape((-1,) + (1,) * (v.ndim - 1)))
    return np.minimum(count, (1 << out_bits) - 1)


# --- convolution ---------------------------------------------------------------------------------

def conv_acc(codes, wbits, stride, pad):
    """``acc[o, y, x] = sum w*a`` with weight bit 1 = +1, 0 = -1 and zero padding."""
    cin, h, w = codes.shape
    cout, _, k, _ = wbits.shape
    h_out = (h + 2 * pad - k) // stride + 1
    w_out = (w + 2 * pad - k) // stride + 1
    a = np.zeros((cin, h + 2 * pad, w + 2 * pad), dtype=np.int64)
    a[:, pad:pad + h, pad:pad + w] = codes
    ws = np.where(wbits != 0, 1, -1).astype(np.int64)
    acc = np.zeros((cout, h_out, w_out), dtype=np.int64)
    for ky in range(k):
        for kx in range(k):
            patch = a[:, ky:ky + stride * (h_out - 1) + 1:stride, kx:kx + stride * (w_out - 1) + 1:stride]
            acc += np.einsum("oi,ihw->ohw", ws[:, :, ky, kx], patch)
    return acc


def maxpool2(codes):
    c, h, w = codes.shape
    return codes.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))


# --- embedding -----------------------------------------------------------------------------------

def embed(img_chw, table):
    """``out[c*d + j, y, x] = table[c, img[c, y, x], j]``; table (C, 256, d)."""
    c, h, w = img_chw.shape
    d = table.shape[2]
    out = np.zeros((c * d, h, w), dtype=np.int64)
    for ch in range(c):
        for j in range(d):
            out[ch * d + j] = table[ch, img_chw[ch], j]
    return out


def window_embed(img_chw, table, k, stride, pad, h_out, w_out, p_i):
    """EMBED window mode (ARCHITECTURE 3.3), written straight from the spec: a ``(k*p_i, h_out,
    w_out)`` map whose channel ``ky*p_i + kx*d + j`` at ``(oy, ox)`` is ``table[kx, img[0, y, x], j]``
    with ``y = oy*stride - pad + ky``, ``x = ox*stride - pad + kx``, 0 outside the image."""
    _, h, w = img_chw.shape
    d = table.shape[2]
    out = np.zeros((k * p_i, h_out, w_out), dtype=np.int64)
    for oy in range(h_out):
        for ox in range(w_out):
            for ky in range(k):
                for kx in range(k):
                    y, x = oy * stride - pad + ky, ox * stride - pad + kx
                    if 0 <= y < h and 0 <= x < w:
                        for j in range(d):
                            out[ky * p_i + kx * d + j, oy, ox] = table[kx, img_chw[0, y, x], j]
    return out


def pack_table(table, q, emb_channels):
    """Embedding-table entries (16 bits at ``c*256 + pixel``): code ``j`` at bits ``[j*q, (j+1)*q)``."""
    c, _, d = table.shape
    entries = [0] * (emb_channels * 256)
    for ch in range(c):
        for p in range(256):
            e = 0
            for j in range(d):
                e |= int(table[ch, p, j]) << (j * q)
            entries[ch * 256 + p] = e
    return entries


def image_words(img_chw):
    """HWC bytes of an image, four per 32-bit word little-endian, last word zero-padded."""
    b = np.ascontiguousarray(np.transpose(img_chw, (1, 2, 0))).astype(np.uint8).ravel().tolist()
    b += [0] * (-len(b) % 4)
    return [b[k] | b[k + 1] << 8 | b[k + 2] << 16 | b[k + 3] << 24 for k in range(0, len(b), 4)]


# --- residual buffer -----------------------------------------------------------------------------

def pack_res_word(values, res_bits):
    word = 0
    for o, v in enumerate(values):
        word |= (int(v) & ((1 << res_bits) - 1)) << (o * res_bits)
    return word


def unpack_res_word(word, p_o, res_bits):
    return [wrap_signed(word >> (o * res_bits), res_bits) for o in range(p_o)]
