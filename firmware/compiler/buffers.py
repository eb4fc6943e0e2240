"""Pass 2, local buffers: where each layer's weights and thresholds live in the weight and
threshold buffers, which code bank holds each code map, and which residual-buffer region each int
map and the logits use (both by liveness)."""

from dataclasses import dataclass, field

from firmware.layout import ceil_div

from .errors import layer_error
from .limits import field_max
from .records import Allocation

__all__ = ["BufferPlan", "allocate_buffers"]


@dataclass
class BufferPlan:
    """The local-buffer allocation of a network.

    Members
    -------
    stream_weights : bool
        Every image streams each layer's weights into alternating halves of the weight buffer
        (they do not all fit, or streaming was asked for); otherwise they stay resident.
    weight_base : dict of str to int
        Per conv/head layer (in layer order): its first weight-buffer word (``w_base``).
    weight_offset : dict of str to int
        Its first word in the packed weight image (all layers back to back).
    weight_words : dict of str to int
        Its weight words.
    threshold_base : dict of str to int
        Per conv with a codes output: its first threshold entry (``thr_base``).
    total_weight_words, total_threshold_entries : int
        Sizes of the packed weight and threshold images.
    copies : dict of str to TensorPlacement
        Int map name -> the residual copied into its region first (a residual read again later).
    allocations : list of Allocation
        The local-buffer rows of the allocation map, in allocation order.
    """
    stream_weights: bool
    weight_base: dict = field(default_factory=dict)
    weight_offset: dict = field(default_factory=dict)
    weight_words: dict = field(default_factory=dict)
    threshold_base: dict = field(default_factory=dict)
    total_weight_words: int = 0
    total_threshold_entries: int = 0
    copies: dict = field(default_factory=dict)
    allocations: list = field(default_factory=list)


def allocate_buffers(network, stream_weights=False):
    """Allocate the local buffers of an analysed network.

    Parameters
    ----------
    network : NetworkPlan
        After :func:`analyse_network`; its code maps get their ``bank`` and its int maps and
        logits their ``res_base`` here.
    stream_weights : bool
        Stream the weights even when they all fit the weight buffer.

    Returns
    -------
    BufferPlan

    Raises
    ------
    CompileError
        A layer whose weights, thresholds or feature maps do not fit.
    """
    c = network.config
    weight_layers = [L for L in network.layers if L["kind"] in ("conv", "head")]
    sizes = {}
    for L in weight_layers:
        _, _, k, _, _, n_cig = network.mac_geometry(L)
        cout = int(L["cout"]) if L["kind"] == "conv" else int(L["classes"])
        sizes[L["name"]] = ceil_div(cout, c.p_o) * k * k * n_cig
    total = sum(sizes.values())
    # Weights stay resident in the weight buffer when they all fit (loaded once per model);
    # otherwise every image streams them, double-buffered: layer j's weights go to half j % 2,
    # loaded (async) while layer j - 1 computes.
    buffers = BufferPlan(stream_weights=stream_weights or total > c.wbuf_depth)
    _place_weights_and_thresholds(network, buffers, weight_layers, sizes, total)
    _allocate_code_banks(network, buffers)
    _allocate_residual(network, buffers)
    return buffers


def _place_weights_and_thresholds(network, buffers, weight_layers, sizes, total):
    c = network.config
    w_next = thr_next = 0
    half = c.wbuf_depth // 2
    for j, L in enumerate(weight_layers):
        words = sizes[L["name"]]
        if buffers.stream_weights:
            if words > half:
                raise layer_error(L, f"weights need {words} words; all layers need {total}, more than "
                                     f"wbuf_depth={c.wbuf_depth}, and streaming needs each layer within "
                                     f"half of it ({half})")
            base = (j % 2) * half
        else:
            base = w_next
        if base > field_max("w_base"):
            raise layer_error(L, f"weights start at word {base}, beyond the w_base field")
        buffers.weight_base[L["name"]] = base
        buffers.weight_offset[L["name"]] = w_next
        buffers.weight_words[L["name"]] = words
        buffers.allocations.append(Allocation(f"{L['name']}.weight", "weights", base, words))
        w_next += words
        if L["kind"] == "conv" and (L.get("outputs") or {}).get("codes"):
            entries = ceil_div(int(L["cout"]), c.p_o) * c.p_o
            if thr_next > field_max("thr_base"):
                raise layer_error(L, f"thresholds start at entry {thr_next}, beyond the thr_base field")
            if thr_next + entries > c.thr_depth:
                raise layer_error(L, f"thresholds end at entry {thr_next + entries}, thr_depth is {c.thr_depth}")
            buffers.threshold_base[L["name"]] = thr_next
            buffers.allocations.append(Allocation(f"{L['name']}.thresholds", "thresholds", thr_next, entries))
            thr_next += entries
    buffers.total_weight_words, buffers.total_threshold_entries = w_next, thr_next


def _allocate_code_banks(network, buffers):
    """Each code map takes the lowest bank no map live at its production holds."""
    c = network.config
    codes = [t for t in network.tensors.values() if t.kind == "codes"]
    for t in sorted(codes, key=lambda t: t.producer):
        busy = {u.bank for u in codes if u.bank is not None and u.producer < t.producer <= u.last_use}
        free = [b for b in range(c.n_code_banks) if b not in busy]
        if not free:
            live = ", ".join(sorted(u.name for u in codes if u.bank in busy))
            raise layer_error(network.layers[t.producer], f"no free code bank for {t.name!r}: "
                                                          f"{c.n_code_banks} banks hold live maps ({live})")
        t.bank = free[0]
        buffers.allocations.append(Allocation(t.name, f"bank{t.bank}", 0, network.code_words(t)))


def _allocate_residual(network, buffers):
    """Each int map and the logits take the first residual-buffer gap that fits (first fit among
    the regions live at its production), or their residual's region (see below)."""
    c = network.config
    ints = sorted((t for t in network.tensors.values() if t.kind in ("ints", "logits")),
                  key=lambda t: t.producer)
    for t in ints:
        L = network.layers[t.producer]
        size = network.residual_words(t)
        rname = L.get("residual") if L["kind"] == "conv" else None
        r = network.tensors[rname] if rname else None
        if r is not None and r.last_use == t.producer:
            # A CONV has one res_base for the residual read and the acc write, so the output
            # overwrites its residual in place (each pixel's word is read before v is written).
            t.res_base = r.res_base
        else:
            # A residual that is read again later is first copied (STORE + LOAD through a
            # main-memory scratch area) into the output's own region, which the CONV then
            # updates in place.
            live = sorted((u.res_base, u.res_base + network.residual_words(u)) for u in ints
                          if u.res_base is not None and u.producer < t.producer <= u.last_use)
            addr = 0
            for lo, hi in live:
                if addr + size <= lo:
                    break
                addr = max(addr, hi)
            t.res_base = addr
            if r is not None:
                buffers.copies[t.name] = r
        if t.res_base + size > c.res_depth:
            raise layer_error(L, f"int map {t.name!r} ({size} words) ends at residual word "
                                 f"{t.res_base + size}, res_depth is {c.res_depth}")
        if t.res_base > field_max("res_base"):
            raise layer_error(L, f"res_base {t.res_base} exceeds the res_base field")
        buffers.allocations.append(Allocation(t.name, "residual", t.res_base, size))
