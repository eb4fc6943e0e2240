"""Bit layouts of the accelerator's local buffers (docs/ARCHITECTURE.md, 3.1 and 3.2, and the windows
of an EMBED in window mode, 3.3), in numpy.

Every local buffer is seen through the DMA as an array of 32-bit lanes: buffer word ``w`` is lanes
``[w*L, (w+1)*L)`` with ``L = config.lanes(buffer)``, lane 0 holding bits ``[0, 32)`` of the word.
The helpers here convert between feature maps / parameters and such lane arrays. They are shared by
the compiler (which encodes) and the reference simulator (which decodes); ``tests/test_refsim.py``
checks them against scalar transcriptions of the layout formulas.
"""

import numpy as np

from contract.config import BUF_CODE_BANK0, BUF_RESIDUAL


__all__ = ["bits_to_lanes", "lanes_to_bits", "signed", "encode_codes", "decode_codes",
           "encode_ints", "decode_ints", "decode_sums", "encode_image", "window_codes",
           "window_weights", "ceil_div"]


def ceil_div(a, b):
    return -(-a // b)


def bits_to_lanes(bits, word_bits):
    """Pack ``bits`` (uint8 0/1, shape ``(..., word_bits)``, bit 0 first) into uint32 lanes
    of shape ``(..., ceil(word_bits / 32))``."""
    bits = np.asarray(bits, dtype=np.uint8)
    assert bits.shape[-1] == word_bits
    lanes = ceil_div(word_bits, 32)
    pad = lanes * 32 - word_bits
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), np.uint8)], axis=-1)
    packed = np.packbits(bits, axis=-1, bitorder="little")          # (..., lanes*4) bytes
    return np.ascontiguousarray(packed).view("<u4").astype(np.uint32).reshape(bits.shape[:-1] + (lanes,))


def lanes_to_bits(lanes, word_bits):
    """Inverse of :func:`bits_to_lanes`: uint32 ``(..., L)`` to uint8 bits ``(..., word_bits)``;
    bits of the last lane above the word are dropped."""
    lanes = np.ascontiguousarray(np.asarray(lanes, dtype="<u4"))
    by = lanes.view(np.uint8).reshape(lanes.shape[:-1] + (lanes.shape[-1] * 4,))
    return np.unpackbits(by, axis=-1, bitorder="little")[..., :word_bits]


def signed(values, width):
    """Interpret unsigned ``width``-bit integers as two's complement (int64)."""
    v = np.asarray(values, dtype=np.int64) & ((1 << width) - 1)
    return np.where(v >= (1 << (width - 1)), v - (1 << width), v)


def _int_bits(values, width):
    """Two's-complement bits (uint8, LSB first) of int64 ``values``, shape ``values.shape + (width,)``."""
    v = np.asarray(values, dtype=np.int64) & ((1 << width) - 1)
    return ((v[..., None] >> np.arange(width, dtype=np.int64)) & 1).astype(np.uint8)


# --- code banks ---------------------------------------------------------------------------------

def encode_codes(codes, bits, config):
    """Codes ``(C, H, W)`` (unsigned, ``bits`` wide) as code-bank lanes (a flat uint32 array).

    Word ``(pix*n_cig + g)*nsub + s`` holds sub-word ``s`` (code bits ``[s*a_planes, (s+1)*a_planes)``)
    of group ``g``; plane ``b`` is word bits ``[b*p_i, (b+1)*p_i)``, lane ``i`` channel ``g*p_i + i``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    C, H, W = codes.shape
    p_i, ap = config.p_i, config.a_planes
    n_cig, nsub = ceil_div(C, p_i), ceil_div(bits, ap)
    padded = np.zeros((n_cig * p_i, H, W), np.int64)
    padded[:C] = codes
    # (pix, g, lane) codes
    pix = padded.reshape(n_cig, p_i, H * W).transpose(2, 0, 1)
    shifts = np.arange(nsub * ap, dtype=np.int64).reshape(nsub, ap)           # code bit s*ap + b
    wordbits = (pix[:, :, None, None, :] >> shifts[None, None, :, :, None]) & 1  # (pix, g, s, b, lane)
    wb = config.code_word_bits
    wordbits = wordbits.reshape(H * W * n_cig * nsub, wb).astype(np.uint8)
    return bits_to_lanes(wordbits, wb).reshape(-1)


def decode_codes(lanes, C, H, W, bits, config):
    """Read a ``(C, H, W)`` code map of ``bits``-bit codes from code-bank lanes starting at word 0.
    Returns all ``n_cig*p_i`` channels (padding channels included) as int64 ``(n_cig*p_i, H, W)``;
    slice ``[:C]`` for the map itself."""
    p_i, ap = config.p_i, config.a_planes
    n_cig, nsub = ceil_div(C, p_i), ceil_div(bits, ap)
    L = config.lanes(BUF_CODE_BANK0)
    n_words = H * W * n_cig * nsub
    wb = config.code_word_bits
    wbits = lanes_to_bits(np.asarray(lanes)[:n_words * L].reshape(n_words, L), wb)
    wbits = wbits.reshape(H * W, n_cig, nsub * ap, p_i).astype(np.int64)
    weights = (np.int64(1) << np.arange(nsub * ap, dtype=np.int64))
    codes = np.einsum("pgbi,b->pgi", wbits, weights)                       # (pix, g, lane)
    return codes.reshape(H * W, n_cig * p_i).T.reshape(n_cig * p_i, H, W)


# --- residual buffer ----------------------------------------------------------------------------

def encode_ints(values, config):
    """Ints ``(C, H, W)`` as residual-buffer lanes: pixel ``pix``, group ``cog`` at word
    ``pix*n_cog + cog``, lane ``o`` (bits ``[o*res_bits, (o+1)*res_bits)``) channel ``cog*p_o + o``."""
    values = np.asarray(values, dtype=np.int64)
    C, H, W = values.shape
    p_o, rb = config.p_o, config.res_bits
    n_cog = ceil_div(C, p_o)
    padded = np.zeros((n_cog * p_o, H, W), np.int64)
    padded[:C] = values
    words = padded.reshape(n_cog, p_o, H * W).transpose(2, 0, 1).reshape(H * W * n_cog, p_o)
    bits = _int_bits(words, rb).reshape(H * W * n_cog, p_o * rb)
    return bits_to_lanes(bits, p_o * rb).reshape(-1)


def decode_ints(lanes, C, H, W, config):
    """Inverse of :func:`encode_ints` (lanes starting at the map's first word); all ``n_cog*p_o``
    channels, int64 ``(n_cog*p_o, H, W)``."""
    p_o, rb = config.p_o, config.res_bits
    n_cog = ceil_div(C, p_o)
    L = config.lanes(BUF_RESIDUAL)
    n_words = H * W * n_cog
    bits = lanes_to_bits(np.asarray(lanes)[:n_words * L].reshape(n_words, L), p_o * rb)
    vals = _bits_to_signed(bits.reshape(n_words, p_o, rb))
    return vals.reshape(H * W, n_cog * p_o).T.reshape(n_cog * p_o, H, W)


def decode_sums(lanes, C, config):
    """Sums written by a ``sum`` CONV (``n_cog`` residual words from ``res_base``) as int64 ``(C,)``."""
    return decode_ints(lanes, C, 1, 1, config)[:C, 0, 0]


def _bits_to_signed(bits):
    width = bits.shape[-1]
    u = (bits.astype(np.int64) << np.arange(width, dtype=np.int64)).sum(axis=-1)
    return signed(u, width)


# --- images -------------------------------------------------------------------------------------

def encode_image(image):
    """uint8 image ``(C, H, W)`` as main-memory words: HWC byte order, 4 bytes per word,
    little-endian, the last word zero-padded."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"image must be uint8 (C, H, W), not {image.dtype} {image.shape}")
    flat = np.ascontiguousarray(image.transpose(1, 2, 0)).reshape(-1)
    pad = (-flat.size) % 4
    if pad:
        flat = np.concatenate([flat, np.zeros(pad, np.uint8)])
    return flat.view("<u4").astype(np.uint32)


# --- EMBED window mode (im2col of the first conv) -----------------------------------------------

def window_codes(codes, k, stride, pad, h_out, w_out, p_i):
    """The ``k x k`` windows an EMBED in window mode writes (docs/ARCHITECTURE.md 3.3), as the code
    map ``(k*p_i, h_out, w_out)`` that the next layer reads as a 1x1 conv with ``k`` input groups.

    Channel ``ky*p_i + kx*d + j`` of window ``(oy, ox)`` is ``codes[j, y, x]`` with
    ``y = oy*stride - pad + ky``, ``x = ox*stride - pad + kx``, or 0 when ``(y, x)`` lies outside the
    map; channels ``ky*p_i + k*d ..`` of each group are 0. Stored with :func:`encode_codes`, window row
    ``ky`` of window ``(oy, ox)`` is code-bank word ``(oy*w_out + ox)*k + ky``.

    Parameters
    ----------
    codes : array_like
        The embedded map ``(d, H, W)``, or ``(k, d, H, W)``: the map seen through table channel
        ``kx`` for window column ``kx`` (what the hardware computes; the compiler loads the same
        table into all ``k`` channels, so the ``(d, H, W)`` form is the network's view).
    k, stride, pad, h_out, w_out : int
        Window geometry (the next conv's kernel, stride, padding and output size; ``h_out``,
        ``w_out`` may exceed what covers the map, the extra windows read zeros).
    p_i : int
        Lanes of a code-bank word; ``k*d <= p_i``.

    Returns
    -------
    numpy.ndarray
        int64 ``(k*p_i, h_out, w_out)``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim == 3:
        codes = np.broadcast_to(codes, (k,) + codes.shape)
    kc, d, H, W = codes.shape
    if kc != k or k * d > p_i:
        raise ValueError(f"window_codes: {codes.shape} maps for k={k} windows of p_i={p_i} lanes")
    # one zero row and column after the map stand for every position outside it
    padded = np.zeros((k, d, H + 1, W + 1), np.int64)
    padded[:, :, :H, :W] = codes
    ys = np.arange(h_out)[None, :] * stride - pad + np.arange(k)[:, None]        # (ky, oy)
    xs = np.arange(w_out)[None, :] * stride - pad + np.arange(k)[:, None]        # (kx, ox)
    ys = np.where((ys >= 0) & (ys < H), ys, H)
    xs = np.where((xs >= 0) & (xs < W), xs, W)
    kx = np.arange(k)
    # (ky, kx, j, oy, ox) = padded[kx, j, ys[ky, oy], xs[kx, ox]]
    win = padded[kx[None, :, None, None, None], np.arange(d)[None, None, :, None, None],
                 ys[:, None, None, :, None], xs[None, :, None, None, :]]
    out = np.zeros((k, p_i, h_out, w_out), np.int64)
    out[:, :k * d] = win.reshape(k, k * d, h_out, w_out)
    return out.reshape(k * p_i, h_out, w_out)


def window_weights(wbits, p_i):
    """Weights ``(Cout, d, k, k)`` of a conv reading an EMBED's windows, as the 1x1 conv over the
    :func:`window_codes` map: ``(Cout, k*p_i, 1, 1)`` with input channel ``ky*p_i + kx*d + j`` =
    ``wbits[:, j, ky, kx]`` and 0 on the channels no window lane feeds."""
    wbits = np.asarray(wbits)
    cout, d, k, _ = wbits.shape
    if k * d > p_i:
        raise ValueError(f"window_weights: k*d={k * d} exceeds p_i={p_i}")
    out = np.zeros((cout, k, p_i), wbits.dtype)
    out[:, :, :k * d] = wbits.transpose(0, 2, 3, 1).reshape(cout, k, k * d)     # (o, ky, kx*d + j)
    return out.reshape(cout, k * p_i, 1, 1)
