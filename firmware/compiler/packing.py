"""Pass 3, parameter images: the weights, thresholds and embedding table packed in the exact
local-buffer formats of ARCHITECTURE 3.1, as the main-memory words the program LOADs."""

from dataclasses import dataclass

import numpy as np

from contract.config import BUF_THRESHOLDS, BUF_WEIGHTS, THRESHOLDS_PER_CHANNEL
from firmware import layout
from firmware.layout import ceil_div

from .deploy_input import weight_bits
from .errors import layer_error
from .input_affine import folded_thresholds
from .limits import THR_MAX, THR_MIN

__all__ = ["ParameterImages", "pack_parameters", "pack_weights", "pack_thresholds",
           "pack_embedding_table"]


@dataclass
class ParameterImages:
    """uint32 main-memory words of the parameters.

    Members
    -------
    weights : numpy.ndarray
        All layers' weights back to back (``BufferPlan.weight_offset`` words apart, in lanes).
    thresholds : numpy.ndarray
        All threshold entries (``BufferPlan.threshold_base`` entries apart, in lanes).
    embed : numpy.ndarray
        The embedding table (empty without an embed layer).
    """
    weights: np.ndarray
    thresholds: np.ndarray
    embed: np.ndarray


def pack_parameters(network, buffers):
    """Pack every layer's parameters where :func:`allocate_buffers` placed them.

    Parameters
    ----------
    network : NetworkPlan
    buffers : BufferPlan

    Returns
    -------
    ParameterImages

    Raises
    ------
    CompileError
        An embedding table whose codes exceed ``q`` bits.
    """
    c = network.config
    Lw, Lt = c.lanes(BUF_WEIGHTS), c.lanes(BUF_THRESHOLDS)
    images = ParameterImages(weights=np.zeros(buffers.total_weight_words * Lw, np.uint32),
                             thresholds=np.zeros(buffers.total_threshold_entries * Lt, np.uint32),
                             embed=np.zeros(0, np.uint32))
    for L in network.layers:
        name = L["name"]
        if L["kind"] == "embed":
            if network.host_embed is None:          # else the host looks the table up
                images.embed = pack_embedding_table(network, L)
            continue
        if L["kind"] not in ("conv", "head"):
            continue
        cout = int(L["cout"]) if L["kind"] == "conv" else int(L["classes"])
        words = pack_weights(network, L, cout)
        base = buffers.weight_offset[name]
        images.weights[base * Lw:base * Lw + words.size] = words
        if name in buffers.threshold_base:
            words = pack_thresholds(network, L, cout)
            tb = buffers.threshold_base[name]
            images.thresholds[tb * Lt:tb * Lt + words.size] = words
    return images


def pack_embedding_table(network, layer):
    """An embed layer's table, one entry per (table channel, pixel value): ``d`` codes of ``q``
    bits, code ``j`` at bit ``j*q``; split over ``network.table_split`` table channels per image
    channel, channel ``c*s + i`` holding codes ``i*d/s .. (i+1)*d/s - 1``; in window mode the one
    table repeated for each window column."""
    table = np.asarray(network.arrays[f"{layer['name']}.table"], dtype=np.int64)   # (C, 256, d)
    q = int(layer["q"])
    C, _, d = table.shape
    if table.max(initial=0) >= (1 << q):
        raise layer_error(layer, f"table codes exceed q={q} bits")
    s = network.table_split
    table = table.reshape(C, 256, s, d // s).transpose(0, 2, 1, 3).reshape(C * s, 256, d // s)
    entries = (table << (np.arange(d // s, dtype=np.int64) * q)).sum(axis=-1)   # (C*s, 256)
    if network.window is not None:
        # window column kx looks its pixel up in table channel kx: the one table k times
        entries = np.repeat(entries, network.window["k"], axis=0)
    return entries.reshape(-1).astype(np.uint32)


def pack_weights(network, layer, cout):
    """A conv's or head's weights as weight-buffer words, flattened to lanes: word
    ``(cog*k*k + ky*k + kx)*n_cig + cig``, bit ``o*p_i + i``; the conv reading the EMBED's windows
    as the 1x1 conv over them; the layer reading a flattened map as a 1x1 conv of ``cin*k*k``
    input channels (channel ``ci*k*k + ky*k + kx``, the flattened map's order)."""
    c = network.config
    name = layer["name"]
    k = int(layer.get("k", 1))
    cin = int(layer["cin"])
    wb = weight_bits(network.arrays, name, cout, cin, k)
    if name == network.window_conv:
        wb = layout.window_weights(wb, c.p_i)          # the 1x1 conv over the windows
        _, cin, k, _ = wb.shape
    elif network.host_embed is not None and name == network.host_embed["reader"]:
        wb = wb.reshape(cout, cin * k * k, 1, 1)
        cin, k = cin * k * k, 1
    n_cig, n_cog = ceil_div(cin, c.p_i), ceil_div(cout, c.p_o)
    padded = np.zeros((n_cog * c.p_o, n_cig * c.p_i, k, k), np.uint8)
    padded[:cout, :cin] = wb
    words = padded.reshape(n_cog, c.p_o, n_cig, c.p_i, k, k).transpose(0, 4, 5, 2, 1, 3)
    words = words.reshape(n_cog * k * k * n_cig, c.p_o * c.p_i)
    return layout.bits_to_lanes(words, c.weight_word_bits).reshape(-1)


def pack_thresholds(network, layer, cout):
    """A conv's threshold entries as threshold-buffer lanes: per output channel (padded to
    ``p_o``) the thresholds sign-flipped for a descending channel, unused ones ``THR_MAX`` (never
    passed), two lanes ``t0 | t1 << 16`` and ``t2 | negative << 16``; an input affine folded in
    (:func:`~.input_affine.folded_thresholds`)."""
    c = network.config
    name = layer["name"]
    n_cog = ceil_div(cout, c.p_o)
    T = folded_thresholds(network.arrays, layer)
    direction = np.asarray(network.arrays[f"{name}.direction"], dtype=np.int64)
    entries = np.full((n_cog * c.p_o, THRESHOLDS_PER_CHANNEL), THR_MAX, np.int64)
    neg = np.zeros(n_cog * c.p_o, np.int64)
    t = np.where(direction[:, None] < 0, -T, T)
    entries[:cout, :T.shape[1]] = np.clip(t, THR_MIN, THR_MAX)
    neg[:cout] = direction < 0
    u = entries & 0xFFFF
    lo = u[:, 0] | (u[:, 1] << 16)
    hi = u[:, 2] | (neg << 16)
    return np.stack([lo, hi], axis=1).reshape(-1).astype(np.uint32)
