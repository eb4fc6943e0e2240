"""Pass 4, program emission: the descriptor list of a compiled network for given main-memory
addresses, in two parts:

- the parameter load: LOAD the weights (when resident), thresholds and embedding table, then fall
  through into
- the per-image part: EMBED or LOAD of the input, one CONV per layer (with the streamed weights'
  LOADs, residual copies and optional dumps around it), STORE of the logits, END.
"""

from contract import isa
from contract.config import (BUF_CODE_BANK0, BUF_EMBED, BUF_RESIDUAL, BUF_THRESHOLDS, BUF_WEIGHTS,
                             LOCAL_LANE_BITS)
from firmware.layout import ceil_div

from .dumps import dump_stores
from .transfers import transfer_descriptors

__all__ = ["emit_program", "layer_descriptors"]


def emit_program(network, buffers, params, io, addr, dump_regions=None):
    """The program's descriptors; sets each ``LayerPlan.desc`` to its layer's own descriptor.

    The descriptor count does not depend on ``addr``, so a first call with dummy addresses sizes
    the program before the memory layout is known.

    Parameters
    ----------
    network : NetworkPlan
    buffers : BufferPlan
    params : ParameterImages
    io : InputOutput
    addr : dict of str to int
        Main-memory word address of each region: ``weights``, ``thresholds``, ``embed``, ``input``,
        ``output``, ``scratch``, ``dump``.
    dump_regions : list or None
        ``dumps.dump_regions`` of the network to STORE every feature map, None for no dumps.

    Returns
    -------
    load, image : list of (dict, str)
        ``(fields for isa.pack, note)`` of the parameter-load part and of the per-image part.
    """
    c = network.config
    load = []
    if not buffers.stream_weights:
        load += transfer_descriptors(addr["weights"], params.weights.size, BUF_WEIGHTS, 0, "weights")
    load += transfer_descriptors(addr["thresholds"], params.thresholds.size, BUF_THRESHOLDS, 0, "thresholds")
    load += transfer_descriptors(addr["embed"], params.embed.size, BUF_EMBED, 0, "embedding table")
    image = []
    weight_names = list(buffers.weight_base)
    if buffers.stream_weights and weight_names:
        image += _weight_loads(network, buffers, weight_names[0], addr)
    for L, plan in zip(network.layers, network.plans):
        descriptors = layer_descriptors(network, buffers, io, L, addr)
        note = f"{L['name']} ({L['kind']})"
        for fields in descriptors[:-1]:
            image.append((fields, note))
        if buffers.stream_weights and L["name"] in buffers.weight_base:
            j = weight_names.index(L["name"])
            if j + 1 < len(weight_names):
                # The next layer's weights move while this layer computes; the LOAD
                # itself first waits for this layer's weights (one DMA command at a time).
                image += _weight_loads(network, buffers, weight_names[j + 1], addr)
            else:
                # The last layer's weights may still be moving: wait for them.
                descriptors[-1]["wait_dma"] = 1
        plan.desc = descriptors[-1]
        image.append((descriptors[-1], note))
        if dump_regions is not None:
            image += dump_stores(network, L, addr["dump"], dump_regions)
    Lr = c.lanes(BUF_RESIDUAL)
    image.append((dict(op=isa.Op.STORE, mem_addr=addr["output"],
                       local_addr=(BUF_RESIDUAL << LOCAL_LANE_BITS) | (io.logits.res_base * Lr),
                       count=io.output_words, rows=1, mem_stride=io.output_words), "logits"))
    image.append((dict(op=isa.Op.END), "end"))
    return load, image


def _weight_loads(network, buffers, name, addr):
    """A streamed layer's weight LOADs (asynchronous: they overlap the running CONV)."""
    Lw = network.config.lanes(BUF_WEIGHTS)
    out = []
    for fields, _ in transfer_descriptors(addr["weights"] + buffers.weight_offset[name] * Lw,
                                          buffers.weight_words[name] * Lw, BUF_WEIGHTS,
                                          buffers.weight_base[name] * Lw, "weights"):
        fields["async_dma"] = 1
        out.append((fields, f"{name} weights (async)"))
    return out


def layer_descriptors(network, buffers, io, layer, addr):
    """Descriptor fields of one layer; the last one is the layer's own (EMBED, CONV or LOAD)."""
    kind = layer["kind"]
    if kind in ("embed", "raw_input", "host_conv"):
        return _input_layer_descriptors(network, io, layer, addr)
    return _mac_layer_descriptors(network, buffers, layer, addr)


def _input_layer_descriptors(network, io, layer, addr):
    """The first layer: EMBED of the image (embed, raw_input) or LOAD of the host's codes."""
    c = network.config
    t = network.tensors[layer["outputs"]["codes"]]
    if network.host_embed is not None:        # the host writes the codes (see .host_embed)
        return [f for f, _ in transfer_descriptors(addr["input"], io.input_words, BUF_CODE_BANK0 + t.bank, 0, "")]
    if layer["kind"] == "embed":
        return [dict(network.embed_fields(layer), mem_addr=addr["input"], dst_bank=t.bank)]
    if layer["kind"] == "raw_input":
        C, H, W = network.input_shape
        return [dict(op=isa.Op.EMBED, raw=1, mem_addr=addr["input"], dst_bank=t.bank,
                     nsub=ceil_div(8, c.a_planes), h_in=H, w_in=W, emb_c=C)]
    return [f for f, _ in transfer_descriptors(addr["input"], io.input_words, BUF_CODE_BANK0 + t.bank, 0, "")]


def _mac_layer_descriptors(network, buffers, layer, addr):
    """A conv's or head's CONV, after the copy of a residual that is read again later."""
    c = network.config
    t_in = network.tensors[layer["input"]]
    H, W, k, s, p, n_cig = network.mac_geometry(layer)
    nsub = ceil_div(int(layer["in_bits"]), c.a_planes)
    if layer["kind"] == "head":
        logits = network.tensors[layer["outputs"]["logits"]]
        return [dict(op=isa.Op.CONV, sum=1, k=k, stride=1, pad=0, nsub=nsub,
                     src_bank=t_in.bank, res_base=logits.res_base, h_in=H, w_in=W,
                     h_out=H - k + 1, w_out=W - k + 1,
                     n_cig=n_cig, n_cog=ceil_div(int(layer["classes"]), c.p_o),
                     w_base=buffers.weight_base[layer["name"]])]
    cout = int(layer["cout"])
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    outs = layer.get("outputs") or {}
    f = dict(op=isa.Op.CONV, k=k, stride=s, pad=p, nsub=nsub, src_bank=t_in.bank,
             h_in=H, w_in=W, h_out=Ho, w_out=Wo, n_cig=n_cig, n_cog=ceil_div(cout, c.p_o),
             w_base=buffers.weight_base[layer["name"]])
    res_base = None
    copy = []
    Lr = c.lanes(BUF_RESIDUAL)
    if outs.get("acc") in buffers.copies:
        r, a = buffers.copies[outs["acc"]], network.tensors[outs["acc"]]
        n = network.residual_words(r) * Lr
        copy += [d for d, _ in transfer_descriptors(addr["scratch"], n, BUF_RESIDUAL, r.res_base * Lr, "",
                                                    op=isa.Op.STORE)]
        copy += [d for d, _ in transfer_descriptors(addr["scratch"], n, BUF_RESIDUAL, a.res_base * Lr, "")]
    if layer.get("residual"):
        f["res_in"] = 1
        res_base = network.tensors[layer["residual"]].res_base
        if outs.get("acc") in buffers.copies:
            res_base = network.tensors[outs["acc"]].res_base
    if outs.get("acc"):
        f["res_out"] = 1
        a = network.tensors[outs["acc"]].res_base
        assert res_base is None or res_base == a      # in place, see buffers._allocate_residual
        res_base = a
    if res_base is not None:
        f["res_base"] = res_base
    if outs.get("codes"):
        t = network.tensors[outs["codes"]]
        f.update(thr_out=1, out_bits=int(layer["q"]), dst_bank=t.bank,
                 thr_base=buffers.threshold_base[layer["name"]],
                 n_cig_out=ceil_div(cout, c.p_i), pool=1 if layer.get("pool") == "max2" else 0)
    return copy + [f]
