"""Pass 1, analysis: every layer's shapes, its fit against the configuration and the descriptor
fields, the worst-case bounds of its sums, its MACs and ideal cycles, and the liveness of every
feature map. Each failure is one ``CompileError("layer <name>: <why>")``."""

import numpy as np

from contract import isa
from contract.config import (BUF_CODE_BANK0, EMB_ENTRY_BITS, LOCAL_LANE_BITS,
                             THRESHOLDS_PER_CHANNEL)
from firmware.layout import ceil_div
from firmware.refsim import ideal_cycles

from .errors import CompileError, layer_error
from .host_embed import plan_host_embed
from .input_affine import check_input_affine
from .limits import V_THR_LIMIT, field_max
from .network import NetworkPlan, layer_inputs
from .records import LayerPlan, TensorPlacement
from .table_split import table_split
from .window_mode import plan_window

__all__ = ["analyse_network"]


def analyse_network(header, arrays, config, im2col=True):
    """Check a deploy network against a configuration and describe its feature maps.

    Parameters
    ----------
    header : dict
        The deploy header (docs/ARCHITECTURE.md section 2).
    arrays : mapping of str to numpy.ndarray
    config : AccelConfig
    im2col : bool
        Allow EMBED window mode (see :func:`plan_window`).

    Returns
    -------
    NetworkPlan
        With ``tensors`` (shapes, bounds, liveness) and ``plans`` (MACs, cycles, bounds) filled in.

    Raises
    ------
    CompileError
        The first layer that does not fit.
    """
    network = NetworkPlan.from_header(header, arrays, config)
    layers = network.layers
    if not layers:
        raise CompileError("layer (none): the network has no layers")
    network.host_embed = plan_host_embed(network)
    if network.host_embed is None:
        network.window_conv, network.window = plan_window(network, im2col)
    for idx, L in enumerate(layers):
        plan = LayerPlan(name=L["name"], kind=L["kind"])
        network.plans.append(plan)
        _LAYER_CHECKS.get(L["kind"], _check_unknown)(network, idx, L, plan)
    if layers[-1]["kind"] != "head":
        raise layer_error(layers[-1], "the last layer must be a head (the program STOREs its logits)")
    for idx, L in enumerate(layers):
        for name in layer_inputs(L):
            network.tensors[name].last_use = max(network.tensors[name].last_use, idx)
    for t in network.tensors.values():
        if t.kind == "logits":
            t.last_use = len(layers)
        t.last_use = max(t.last_use, t.producer)
    return network


# --- helpers --------------------------------------------------------------------------------------

def _add_tensor(network, L, name, kind, shape, bits, bound):
    """Record a feature map produced by the layer being analysed (the last of ``plans``)."""
    if name in network.tensors or name == "image":
        raise layer_error(L, f"tensor {name!r} is defined twice")
    network.tensors[name] = TensorPlacement(name=name, kind=kind, shape=tuple(shape), bits=bits,
                                            producer=len(network.plans) - 1, bound=bound)


def _input_codes(network, L):
    name = L["input"]
    t = network.tensors.get(name)
    if t is None or t.kind != "codes":
        raise layer_error(L, f"input {name!r} is not an earlier code map")
    return t


def _check_first(idx, L):
    if idx != 0 or L["input"] != "image":
        raise layer_error(L, f"a {L['kind']} layer must be the first layer and read the image")


def _check_size(L, what, H, W):
    if H > field_max("h_in") or W > field_max("w_in"):
        raise layer_error(L, f"{what} {H}x{W} exceeds the {isa.FIELD_BY_NAME['h_in'].width}-bit "
                             f"height/width fields")


def _check_map(config, L, what, C, H, W, bits):
    """Check that a ``C x H x W`` code map of ``bits`` fits a code bank; returns its words."""
    n_cig, nsub = ceil_div(C, config.p_i), ceil_div(bits, config.a_planes)
    _check_size(L, what, H, W)
    words = H * W * n_cig * nsub
    if words > config.bank_depth:
        raise layer_error(L, f"{what} needs {words} code-bank words ({H}x{W} pixels x {n_cig} groups x "
                             f"{nsub} sub-words), bank_depth is {config.bank_depth}")
    return words


def _check_nsub(L, nsub):
    if nsub > field_max("nsub"):
        raise layer_error(L, f"nsub={nsub} exceeds the nsub field")


# --- first layers ---------------------------------------------------------------------------------

def _check_unknown(network, idx, L, plan):
    raise layer_error(L, f"unknown layer kind {L['kind']!r}")


def _check_embed(network, idx, L, plan):
    c = network.config
    _check_first(idx, L)
    C, H, W = network.input_shape
    d, q = int(L["d"]), int(L["q"])
    if network.host_embed is not None:
        _add_host_codes(network, L, (C * d, H, W), q)
        return
    if C > c.emb_channels or C > field_max("emb_c"):
        raise layer_error(L, f"{C} image channels, the embedding table holds {c.emb_channels}")
    if d < 1:
        raise layer_error(L, f"d={d} outside 1..{c.p_i} (p_i)")
    if not 1 <= q <= min(c.a_planes, field_max("emb_q")):
        raise layer_error(L, f"q={q} outside 1..{min(c.a_planes, field_max('emb_q'))} (a_planes)")
    if C * d > c.p_i:
        raise layer_error(L, f"C*d={C * d} embedded channels exceed p_i={c.p_i}")
    split = table_split(d, q)         # not None: q <= a_planes fits an entry
    table_channels = min(c.emb_channels, field_max("emb_c"))
    if C * split > table_channels:
        raise layer_error(L, f"d={d} codes of {q} bits need {split} table channels per image "
                             f"channel (an entry holds {EMB_ENTRY_BITS} bits, {field_max('emb_d')} "
                             f"codes), {C * split} in all, the embedding table holds {table_channels}")
    network.table_split = split
    name = L["outputs"]["codes"]
    _add_tensor(network, L, name, "codes", (C * d, H, W), q, (1 << q) - 1)
    if network.window is None:
        _check_map(c, L, "embedded map", C * d, H, W, q)
    else:
        # the bank holds the windows, not the map (plan_window made sure they fit)
        network.tensors[name].window = dict(network.window)
        _check_size(L, "image", H, W)
    plan.macs = 0
    plan.ideal_cycles = ideal_cycles(network.embed_fields(L))


def _check_raw_input(network, idx, L, plan):
    c = network.config
    _check_first(idx, L)
    C, H, W = network.input_shape
    if network.host_embed is not None:
        _add_host_codes(network, L, (C, H, W), 8)
        return
    if C > c.p_i or C > c.emb_channels:
        raise layer_error(L, f"{C} raw channels exceed min(p_i={c.p_i}, emb_channels={c.emb_channels})")
    nsub = ceil_div(8, c.a_planes)
    _check_nsub(L, nsub)
    _check_map(c, L, "raw map", C, H, W, 8)
    _add_tensor(network, L, L["outputs"]["codes"], "codes", (C, H, W), 8, 255)
    plan.ideal_cycles = H * W * nsub


def _add_host_codes(network, L, shape, bits):
    """The first layer's codes as the host writes them (:mod:`.host_embed`): flattened for a fully
    connected reader, else as the map itself; the program LOADs them."""
    c = network.config
    flat = network.host_embed["flat"]
    _check_nsub(L, ceil_div(bits, c.a_planes))
    name = L["outputs"]["codes"]
    _add_tensor(network, L, name, "codes", shape, bits, (1 << bits) - 1)
    network.tensors[name].flat = flat
    Cb, Hb, Wb = network.tensors[name].bank_shape(c.p_i)
    words = _check_map(c, L, "flattened map" if flat else "host-written map", Cb, Hb, Wb, bits)
    if words * c.lanes(BUF_CODE_BANK0) > (1 << LOCAL_LANE_BITS):
        raise layer_error(L, "host-written map exceeds the local lane address")
    network.plans[-1].macs = 0


def _check_host_conv(network, idx, L, plan):
    c = network.config
    _check_first(idx, L)
    C, H, W = network.input_shape
    w = np.asarray(network.arrays[f"{L['name']}.weight"])
    cout, k, s, p, q = w.shape[0], int(L["k"]), int(L["stride"]), int(L["pad"]), int(L["q"])
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    if not 1 <= q <= 8:
        raise layer_error(L, f"q={q} outside 1..8")
    _check_nsub(L, ceil_div(q, c.a_planes))
    words = _check_map(c, L, "host-computed map", cout, Ho, Wo, q)
    if words * c.lanes(BUF_CODE_BANK0) > (1 << LOCAL_LANE_BITS):
        raise layer_error(L, "host-computed map exceeds the local lane address")
    _add_tensor(network, L, L["outputs"]["codes"], "codes", (cout, Ho, Wo), q, (1 << q) - 1)
    plan.macs = 0


# --- conv and head --------------------------------------------------------------------------------

def _check_mac_layer(network, L, plan, cin, cout, k, stride, pad, in_bits, t_in):
    """The checks a conv and a head share; sets ``plan.acc_bound``.

    Returns ``(n_cig, n_cog, nsub, H, W, Ho, Wo)``."""
    c = network.config
    if t_in.shape[0] != cin:
        raise layer_error(L, f"cin={cin} but input {t_in.name!r} has {t_in.shape[0]} channels")
    if t_in.bits != in_bits:
        raise layer_error(L, f"in_bits={in_bits} but input {t_in.name!r} has {t_in.bits}-bit codes")
    if in_bits == 8 and network.tensors[t_in.name].producer != 0:
        raise layer_error(L, "8-bit input codes only come from the raw embedding")
    check_input_affine(L, in_bits)
    flat = network.host_embed is not None and network.host_embed["reader"] == L["name"]
    if not flat and not 1 <= k <= field_max("k"):
        raise layer_error(L, f"k={k} outside 1..{field_max('k')} (a fully connected layer runs "
                             f"as a 1x1 conv only right after the image or on a 1x1 map)")
    if not 1 <= stride <= field_max("stride"):
        raise layer_error(L, f"stride={stride} outside 1..{field_max('stride')}")
    if not 0 <= pad <= field_max("pad"):
        raise layer_error(L, f"pad={pad} outside 0..{field_max('pad')}")
    n_cig, n_cog = ceil_div(cin, c.p_i), ceil_div(cout, c.p_o)
    if flat:
        n_cig = ceil_div(cin * k * k, c.p_i)
        if n_cig > field_max("n_cig"):
            raise layer_error(L, f"the flattened input's cin*k*k={cin}*{k}*{k} channels need {n_cig} "
                                 f"input groups, the n_cig field holds {field_max('n_cig')}")
    if n_cig > field_max("n_cig"):
        raise layer_error(L, f"cin={cin} needs {n_cig} input groups, the n_cig field holds "
                             f"{field_max('n_cig')}")
    if n_cog > field_max("n_cog"):
        raise layer_error(L, f"cout={cout} needs {n_cog} output groups, the n_cog field holds "
                             f"{field_max('n_cog')}")
    nsub = ceil_div(in_bits, c.a_planes)
    _check_nsub(L, nsub)
    _, H, W = t_in.shape
    Ho, Wo = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    if Ho < 1 or Wo < 1:
        raise layer_error(L, f"k={k} larger than the padded {H}x{W} input")
    acc_bound = cin * k * k * ((1 << in_bits) - 1)
    acc_max = (1 << (c.acc_bits - 1)) - 1
    if acc_bound > acc_max:
        raise layer_error(L, f"worst-case |acc| = cin*k*k*(2^in_bits-1) = {cin}*{k}*{k}*{(1 << in_bits) - 1} = "
                             f"{acc_bound} exceeds {acc_max} (acc_bits={c.acc_bits})")
    plan.acc_bound = acc_bound
    return n_cig, n_cog, nsub, H, W, Ho, Wo


def _check_conv(network, idx, L, plan):
    c = network.config
    t_in = _input_codes(network, L)
    cin, cout, k = int(L["cin"]), int(L["cout"]), int(L["k"])
    stride, pad, in_bits = int(L["stride"]), int(L["pad"]), int(L["in_bits"])
    n_cig, n_cog, nsub, H, W, Ho, Wo = _check_mac_layer(
        network, L, plan, cin, cout, k, stride, pad, in_bits, t_in)
    outs = L.get("outputs") or {}
    acc_name, codes_name = outs.get("acc"), outs.get("codes")
    if not acc_name and not codes_name:
        raise layer_error(L, "a conv must produce acc and/or codes")
    if Ho > field_max("h_out") or Wo > field_max("w_out"):
        raise layer_error(L, f"output {Ho}x{Wo} exceeds the h_out/w_out fields")
    res_bound = 0
    rname = L.get("residual")
    if rname:
        r = network.tensors.get(rname)
        if r is None or r.kind != "ints":
            raise layer_error(L, f"residual {rname!r} is not an earlier int map")
        if r.shape != (cout, Ho, Wo):
            raise layer_error(L, f"residual {rname!r} has shape {r.shape}, the output is {(cout, Ho, Wo)}")
        res_bound = r.bound
    v_bound = plan.acc_bound + res_bound
    plan.v_bound = v_bound
    res_max = (1 << (c.res_bits - 1)) - 1
    how = (f"worst-case |acc+residual| = {plan.acc_bound} + {res_bound} = {v_bound}" if rname
           else f"worst-case |acc| = {v_bound}")
    if (acc_name or rname) and v_bound > res_max:
        raise layer_error(L, f"{how} exceeds {res_max} (res_bits={c.res_bits})")
    pool = L.get("pool")
    if pool not in (None, "max2"):
        raise layer_error(L, f"unknown pool {pool!r}")
    if codes_name:
        _check_conv_codes(network, L, cout, Ho, Wo, v_bound, how, codes_name)
    elif pool:
        raise layer_error(L, "pool without a codes output")
    if acc_name:
        if pool:
            raise layer_error(L, "pool with an acc output")
        _add_tensor(network, L, acc_name, "ints", (cout, Ho, Wo), None, v_bound)
    plan.macs = Ho * Wo * k * k * cin * cout
    _, _, kk, _, _, n_cig = network.mac_geometry(L)
    plan.ideal_cycles = Ho * Wo * kk * kk * n_cig * n_cog * nsub


def _check_conv_codes(network, L, cout, Ho, Wo, v_bound, how, codes_name):
    """A conv's thresholded (and pooled) code output."""
    c = network.config
    q = L.get("q")
    if q is None:
        raise layer_error(L, "codes output without q")
    q = int(q)
    if not 1 <= q <= c.max_out_bits:
        raise layer_error(L, f"q={q} outside 1..{c.max_out_bits} (max_out_bits)")
    if (1 << q) - 1 > THRESHOLDS_PER_CHANNEL:
        raise layer_error(L, f"q={q} needs {(1 << q) - 1} thresholds, an entry holds {THRESHOLDS_PER_CHANNEL}")
    if v_bound > V_THR_LIMIT:
        raise layer_error(L, f"{how} exceeds {V_THR_LIMIT} (16-bit thresholds, 32767 = never passed)")
    n_cig_out = ceil_div(cout, c.p_i)
    if n_cig_out > field_max("n_cig_out"):
        raise layer_error(L, f"cout={cout} needs {n_cig_out} code groups, the n_cig_out field holds "
                             f"{field_max('n_cig_out')}")
    Hp, Wp = Ho, Wo
    if L.get("pool") == "max2":
        if Ho % 2 or Wo % 2:
            raise layer_error(L, f"max2 pool on an odd {Ho}x{Wo} output")
        Hp, Wp = Ho // 2, Wo // 2
    _check_map(c, L, "output map", cout, Hp, Wp, q)
    _add_tensor(network, L, codes_name, "codes", (cout, Hp, Wp), q, (1 << q) - 1)


def _check_head(network, idx, L, plan):
    c = network.config
    t_in = _input_codes(network, L)
    cin, classes, in_bits = int(L["cin"]), int(L["classes"]), int(L["in_bits"])
    if classes != network.num_classes:
        raise layer_error(L, f"classes={classes} but the model has num_classes={network.num_classes}")
    k = int(L.get("k", 1))
    n_cig, n_cog, nsub, H, W, Ho, Wo = _check_mac_layer(
        network, L, plan, cin, classes, k, 1, 0, in_bits, t_in)
    if k != 1 and (Ho, Wo) != (1, 1):
        raise layer_error(L, f"head k={k} on a {H}x{W} map: the accelerator runs a head as k=1 or as "
                             f"a fully connected layer (k = H = W)")
    res_max = (1 << (c.res_bits - 1)) - 1
    v_bound = plan.acc_bound * Ho * Wo
    plan.v_bound = v_bound
    if v_bound > res_max:
        how = (f"H*W*cin*(2^in_bits-1) = {H}*{W}*{cin}" if k == 1
               else f"cin*k*k*(2^in_bits-1) = {cin}*{k}*{k}")
        raise layer_error(L, f"worst-case |logit| = {how}*{(1 << in_bits) - 1} = {v_bound} exceeds "
                             f"{res_max} (res_bits={c.res_bits})")
    _add_tensor(network, L, L["outputs"]["logits"], "logits", (classes, 1, 1), None, v_bound)
    plan.macs = Ho * Wo * k * k * cin * classes
    _, _, kk, _, _, n_cig = network.mac_geometry(L)
    plan.ideal_cycles = Ho * Wo * kk * kk * n_cig * n_cog * nsub


_LAYER_CHECKS = {"embed": _check_embed, "raw_input": _check_raw_input, "host_conv": _check_host_conv,
                 "conv": _check_conv, "head": _check_head}
