"""Compile a deploy file (docs/ARCHITECTURE.md, sections 1-2) into a program and a memory image.

``compile_model(deploy, config)`` checks that every layer fits the accelerator configuration before
anything runs (each failure is one ``CompileError("layer <name>: <why>")``), lays out the weights,
thresholds and embedding table in the exact local-buffer formats of ARCHITECTURE 3.1, allocates code
banks and residual-buffer regions by liveness, and emits two entry points into one descriptor list:

- ``prog_load_addr``: LOAD the weights, thresholds and embedding table, then fall through into
- ``prog_image_addr``: the per-image part (EMBED or LOAD of the input, one CONV per layer, STORE of
  the logits, END), so a batch reloads only the image.

Memory image (word addresses, from ``base``): program, weights, thresholds, embedding table, input
region, output region. ``window_base``/``window_limit`` span exactly that image.

When a one-channel image's embedding feeds only the next conv (and the conditions of ARCHITECTURE
3.3, "EMBED window mode", hold), the EMBED writes that conv's ``k x k`` windows and the conv runs as
a 1x1 conv with ``k`` input groups (``im2col=False`` turns this off).

Command line: ``python -m firmware.compiler MODEL.npz [--config default|small|tiny] [--map]
[--no-im2col]``.
"""

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from contract import isa
from contract.config import (AccelConfig, CONFIGS, BUF_WEIGHTS, BUF_THRESHOLDS, BUF_EMBED,
                          BUF_RESIDUAL, BUF_CODE_BANK0, THRESHOLDS_PER_CHANNEL, THR_BITS,
                          EMB_ENTRY_BITS, LOCAL_LANE_BITS)
from firmware import layout
from firmware.layout import ceil_div
from firmware.refsim import ideal_cycles as _ideal_cycles


__all__ = ["CompileError", "CompiledModel", "Allocation", "LayerPlan", "TensorInfo",
           "compile_model", "main"]


THR_MAX = (1 << (THR_BITS - 1)) - 1        # 32767: a threshold that is never passed
THR_MIN = -(1 << (THR_BITS - 1))
V_THR_LIMIT = THR_MAX - 1                 # |v| <= 32766 keeps 32767 unreachable
MAX_LOAD_COUNT = 1 << 15                  # lanes per LOAD descriptor (count is 16 bits)


class CompileError(Exception):
    """A network that does not fit the configuration; the message is one line naming the layer."""


def _fmax(name):
    return (1 << isa.FIELD_BY_NAME[name].width) - 1


# --------------------------------------------------------------------------------------------------
# Records

@dataclass
class Allocation:
    """One row of the allocation map.

    Members
    -------
    name : str
        What is stored (``"<layer>.weight"``, a tensor name, ``"program.image"``, ...).
    region : str
        ``"memory"``, ``"weights"``, ``"thresholds"``, ``"embed"``, ``"residual"`` or ``"bank<N>"``.
    addr : int
        Word address in that region (main-memory word address for ``"memory"``).
    size : int
        Words in that region (32-bit words for memory, buffer words otherwise).
    """
    name: str
    region: str
    addr: int
    size: int


@dataclass
class TensorInfo:
    """A feature map of the network and where it lives.

    Members
    -------
    name, kind : str
        Tensor name; ``"codes"``, ``"ints"`` or ``"logits"``.
    shape : tuple
        ``(C, H, W)`` (``(classes, 1, 1)`` for logits).
    bits : int or None
        Code width (codes only).
    producer : int
        Index of the producing layer.
    last_use : int
        Index of the last layer reading it (``len(layers)`` for the logits, read by the STORE).
    bound : int
        Worst-case ``max |value|`` (codes: ``2**bits - 1``).
    bank : int or None
        Code bank holding it (codes).
    res_base : int or None
        Residual buffer word address (ints, logits).
    window : dict or None
        ``k, stride, pad, h_out, w_out`` when the EMBED writes the map in window mode (ARCHITECTURE
        3.3): its bank holds the ``layout.window_codes`` map of ``shape``, see :meth:`bank_shape`.
    """
    name: str
    kind: str
    shape: tuple
    bits: int
    producer: int
    last_use: int = -1
    bound: int = 0
    bank: int = None
    res_base: int = None
    window: dict = None

    def bank_shape(self, p_i):
        """``(C, H, W)`` of the code map as its bank holds it: ``shape``, or for a window-mode map
        the ``(k*p_i, h_out, w_out)`` windows (``k`` groups, one word per window row)."""
        if self.window is None:
            return self.shape
        w = self.window
        return (w["k"] * p_i, w["h_out"], w["w_out"])


@dataclass
class LayerPlan:
    """One deploy layer as compiled.

    Members
    -------
    name, kind : str
    desc : dict or None
        Descriptor fields of its EMBED/CONV/LOAD in the per-image program (``None`` for a layer with
        no descriptor).
    desc_index : int or None
        Index of that descriptor in ``CompiledModel.descriptors``.
    macs : int
        Network multiply-accumulates (real channels).
    ideal_cycles : int
        ``pixels * k * k * n_cig * n_cog * nsub`` of the CONV descriptor (one word-set per cycle; a
        conv reading an EMBED's windows runs as a 1x1 conv with ``n_cig = k``:
        ``h_out*w_out*k*n_cog``); for EMBED ``refsim.ideal_cycles`` of its descriptor (pixels; in
        window mode the grid of positions its windows span).
    acc_bound, v_bound : int
        Worst-case ``|acc|`` and ``|acc + residual|`` used by the fit check.
    """
    name: str
    kind: str
    desc: dict = None
    desc_index: int = None
    macs: int = 0
    ideal_cycles: int = 0
    acc_bound: int = 0
    v_bound: int = 0


@dataclass
class CompiledModel:
    """A compiled network: memory image, program, allocation map and I/O conventions.

    Members
    -------
    config : AccelConfig
    memory : numpy.ndarray
        uint32 words of the memory image; ``memory[i]`` is main-memory word ``window_base + i``.
    program : list of list of int
        The packed descriptors (8 words each) in memory order, starting at ``prog_load_addr``.
    descriptors : list of dict
        Per descriptor: ``addr`` (word address), ``fields`` (dict for ``isa.pack``), ``note``.
    prog_load_addr, prog_image_addr : int
        Entry points: load parameters then run an image; run an image only.
    input_addr, input_words : int
        Where the host writes each input (``prepare_input(image)`` words).
    input_kind : str
        ``"image"`` (EMBED of HWC bytes), ``"raw"`` (EMBED raw) or ``"host_codes"`` (the first layer is
        ``host_conv``; the host writes its code map in code-bank layout and the program LOADs it).
    input_shape : tuple
        ``(C, H, W)`` of the uint8 image.
    output_addr, output_words : int
        Where the program STOREs the logits: ``n_cog`` residual words, ``res_bits``-wide signed lanes,
        as 32-bit lanes; ``decode_logits`` turns them into int64 ``logits_int``.
    window_base, window_limit : int
        The image's extent (limit exclusive), to program WINDOW_BASE/WINDOW_LIMIT.
    num_classes : int
    logits_res_base, logits_groups : int
        Residual buffer words holding the logits sums.
    allocations : list of Allocation
    layers : list of LayerPlan
    tensors : dict of str to TensorInfo
    """
    config: AccelConfig
    memory: np.ndarray
    program: list
    descriptors: list
    prog_load_addr: int
    prog_image_addr: int
    input_addr: int
    input_words: int
    input_kind: str
    input_shape: tuple
    output_addr: int
    output_words: int
    window_base: int
    window_limit: int
    num_classes: int
    logits_res_base: int
    logits_groups: int
    allocations: list
    layers: list
    tensors: dict
    host_layer: dict = None
    host_arrays: dict = field(default=None, repr=False)
    logits_name: str = None
    dumps: list = field(default_factory=list)

    # ---- I/O ---------------------------------------------------------------------------------
    def encode_image(self, image):
        """uint8 ``(C, H, W)`` image as main-memory words (HWC, 4 bytes per word, little-endian)."""
        image = np.asarray(image)
        if image.shape != tuple(self.input_shape) or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 {tuple(self.input_shape)}, not {image.dtype} {image.shape}")
        return layout.encode_image(image)

    def host_prepare(self, image):
        """For a ``host_conv`` first layer: compute it on the host (model.golden's function) and
        return its code map in code-bank layout, ready for ``input_addr``."""
        if self.host_layer is None:
            raise ValueError("this model has no host_conv layer; use encode_image")
        image = np.asarray(image)
        if image.shape != tuple(self.input_shape) or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 {tuple(self.input_shape)}, not {image.dtype} {image.shape}")
        codes = _host_conv(self.host_layer, self.host_arrays, image)
        return layout.encode_codes(codes, self.host_layer["q"], self.config)

    def prepare_input(self, image):
        """The words to write at ``input_addr`` for one image (whatever the input kind)."""
        if self.input_kind == "host_codes":
            return self.host_prepare(image)
        return self.encode_image(image)

    def decode_logits(self, words):
        """``output_words`` words read from ``output_addr`` to int64 ``logits_int`` ``(classes,)``."""
        words = np.asarray(words, dtype=np.uint32).reshape(-1)
        if words.size != self.output_words:
            raise ValueError(f"expected {self.output_words} logits words, got {words.size}")
        return layout.decode_sums(words, self.num_classes, self.config)

    def decode_dump(self, name, words):
        """Words read from a dump region (``dumps``: name, address, words; compiled with
        ``dump=True``) to the feature map as int64, as the program stores it: ``(C, H, W)`` as
        ``model.golden`` names it, except a map the EMBED wrote in window mode
        (``tensors[name].window``), which decodes to its ``(k*p_i, h_out, w_out)`` windows, padding
        lanes included. Compare with ``as_stored(name, golden_map)``."""
        t = self.tensors[name]
        words = np.asarray(words, dtype=np.uint32).reshape(-1)
        if t.kind == "codes":
            C, H, W = t.bank_shape(self.config.p_i)
            return layout.decode_codes(words, C, H, W, t.bits, self.config)[:C].astype(np.int64)
        C, H, W = t.shape
        return layout.decode_ints(words, C, H, W, self.config)[:C].astype(np.int64)

    def as_stored(self, name, fmap):
        """A feature map of tensor ``name`` (``model.golden``'s, ``(C, H, W)`` or any shape of as
        many values) as :meth:`decode_dump` and ``refsim.feature_maps`` return it: ``shape``, or
        ``layout.window_codes`` of it for a window-mode map (every window position, zero padding
        and padding lane, so the comparison covers all the words the EMBED wrote)."""
        t = self.tensors[name]
        fmap = np.asarray(fmap, dtype=np.int64).reshape(t.shape)
        if t.window is None:
            return fmap
        return layout.window_codes(fmap, p_i=self.config.p_i, **t.window)

    def memory_dict(self):
        """The memory image as ``{word address: word}``."""
        return {self.window_base + i: int(w) for i, w in enumerate(self.memory)}

    # ---- reports -----------------------------------------------------------------------------
    def allocation_table(self):
        rows = [("name", "region", "addr", "size")]
        for a in self.allocations:
            rows.append((a.name, a.region, str(a.addr), str(a.size)))
        w = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = []
        for n, r in enumerate(rows):
            lines.append(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}")
            if n == 0:
                lines.append("  ".join("-" * x for x in w))
        return "\n".join(lines)

    @property
    def total_macs(self):
        return sum(l.macs for l in self.layers)

    @property
    def ideal_cycles(self):
        return sum(l.ideal_cycles for l in self.layers if l.kind in ("conv", "head"))

    def layer_table(self):
        """Per layer: descriptor, output shape, MACs, ideal cycles and the worst-case bounds used."""
        rows = [("layer", "kind", "desc", "output", "MACs", "cycles", "|acc|<=", "|v|<=")]
        for p in self.layers:
            outs = [t for t in self.tensors.values() if self.layers[t.producer] is p]
            shape = " ".join("x".join(map(str, t.shape)) + (f"/{t.bits}b" if t.bits else "")
                             + (f" as {t.window['k']}x{t.window['k']} windows" if t.window else "")
                             for t in outs)
            rows.append((p.name, p.kind, "" if p.desc_index is None else str(p.desc_index), shape,
                         str(p.macs), str(p.ideal_cycles), str(p.acc_bound or ""), str(p.v_bound or "")))
        w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(f"{x:<{w[i]}}" if i < 4 else f"{x:>{w[i]}}" for i, x in enumerate(r))
                         .rstrip() for r in rows)

    def summary(self):
        n_image = sum(1 for d in self.descriptors if d["addr"] >= self.prog_image_addr)
        words = self.window_limit - self.window_base
        c = self.config
        return "\n".join([
            f"config: p_o={c.p_o} p_i={c.p_i} a_planes={c.a_planes} acc_bits={c.acc_bits} "
            f"res_bits={c.res_bits} mem_words={c.mem_words}",
            f"descriptors: {len(self.descriptors)} ({len(self.descriptors) - n_image} load, "
            f"{n_image} per image)",
            f"memory image: {words} words ({4 * words} bytes) at [{self.window_base}, {self.window_limit})",
            f"entry points: prog_load_addr={self.prog_load_addr} prog_image_addr={self.prog_image_addr}",
            f"input: {self.input_kind} {tuple(self.input_shape)} at {self.input_addr} ({self.input_words} words); "
            f"logits: {self.num_classes} classes at {self.output_addr} ({self.output_words} words)",
            f"MACs per image: {self.total_macs}",
            f"ideal cycles per image (conv layers): {self.ideal_cycles}",
        ])


# --------------------------------------------------------------------------------------------------
# Deploy access

def _deploy_parts(deploy):
    """(header dict, arrays mapping) of a deploy model given as a path, a model.deploy object, or a
    dict with ``header`` and ``arrays``."""
    if isinstance(deploy, (str, Path)):
        try:
            from model import deploy as mdeploy
            deploy = mdeploy.load(deploy)
        except ImportError:
            with np.load(deploy, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            header = json.loads(bytes(arrays.pop("header")).decode("utf-8"))
            return header, arrays
    if isinstance(deploy, tuple):
        return deploy
    if isinstance(deploy, dict):
        return deploy["header"], deploy["arrays"]
    header = getattr(deploy, "header", None)
    arrays = getattr(deploy, "arrays", None)
    if header is None or arrays is None:
        raise TypeError(f"cannot read a deploy model from {type(deploy).__name__}")
    return header, arrays


def _host_conv(layer, arrays, image):
    """The host_conv layer on the host, computed by model.golden's executor (a one-layer run)."""
    from types import SimpleNamespace
    from model import golden
    name = layer["name"]
    la = {p: arrays[f"{name}.{p}"] for p in ("weight", "bias", "thresholds", "direction")}
    one = SimpleNamespace(layers=[dict(layer, arrays=la)])
    _, _, tensors = golden._run_batch(one, np.asarray(image, np.uint8)[None], True)
    return np.asarray(tensors[layer["outputs"]["codes"]][0], dtype=np.int64)


def _weight_bits(arrays, name, cout, cin, k):
    packed = np.asarray(arrays[f"{name}.weight"], dtype=np.uint8)
    n = cout * cin * k * k
    return np.unpackbits(packed, bitorder="little")[:n].reshape(cout, cin, k, k)


# --------------------------------------------------------------------------------------------------
# The compiler

class _Compiler:
    def __init__(self, deploy, config, base, dump=False, stream_weights=False, im2col=True):
        self.header, self.arrays = _deploy_parts(deploy)
        self.c = config
        self.base = base
        self.dump = dump
        self.force_stream = stream_weights
        self.im2col = im2col
        self.window = self.window_conv = None     # EMBED window mode, see _plan_window
        self.dump_regions = []    # (tensor name, offset in the dump area, words)
        self.layers = list(self.header["layers"])
        inp = self.header["input"]
        self.input_shape = (int(inp["channels"]), int(inp["height"]), int(inp["width"]))
        self.num_classes = int(self.header["num_classes"])
        self.tensors = {}
        self.copies = {}          # int map name -> residual TensorInfo copied into its region first
        self.plans = []
        self.allocs = []

    def err(self, layer, why):
        raise CompileError(f"layer {layer['name']}: {why}")

    # ---- pass 1: shapes, fit checks, bounds ----------------------------------------------------
    def analyse(self):
        if not self.layers:
            raise CompileError("layer (none): the network has no layers")
        self.window_conv, self.window = self._plan_window()
        for idx, L in enumerate(self.layers):
            kind = L["kind"]
            plan = LayerPlan(name=L["name"], kind=kind)
            self.plans.append(plan)
            getattr(self, f"_analyse_{kind}", self._analyse_unknown)(idx, L, plan)
        if self.layers[-1]["kind"] != "head":
            self.err(self.layers[-1], "the last layer must be a head (the program STOREs its logits)")
        # last uses
        for idx, L in enumerate(self.layers):
            for t in self._inputs(L):
                self.tensors[t].last_use = max(self.tensors[t].last_use, idx)
        for t in self.tensors.values():
            if t.kind == "logits":
                t.last_use = len(self.layers)
            t.last_use = max(t.last_use, t.producer)

    def _inputs(self, L):
        ins = [] if L["input"] == "image" else [L["input"]]
        if L["kind"] == "conv" and L.get("residual"):
            ins.append(L["residual"])
        return ins

    def _plan_window(self):
        """EMBED window mode (ARCHITECTURE 3.3), when the network allows it: a one-channel image's
        embedding read only by the next layer, a conv whose ``k x k`` windows of ``d`` channels fit
        one code-bank word per window row, the embedding table's channels and a code bank.

        Returns ``(conv name, dict of k, stride, pad, h_out, w_out)``, or ``(None, None)``: the
        network then compiles as without ``im2col``. Decided from the header before the analysis,
        which checks the layers as usual."""
        c = self.c
        if not self.im2col or len(self.layers) < 2:
            return None, None
        emb, conv = self.layers[0], self.layers[1]
        if emb["kind"] != "embed" or emb["input"] != "image" or conv["kind"] != "conv":
            return None, None
        C, H, W = self.input_shape
        name = (emb.get("outputs") or {}).get("codes")
        readers = [L for L in self.layers if name in self._inputs(L)]
        if C != 1 or len(readers) != 1 or readers[0] is not conv or conv["input"] != name:
            return None, None
        d, q = int(emb["d"]), int(emb["q"])
        k, s, p = int(conv["k"]), int(conv["stride"]), int(conv["pad"])
        if int(conv["cin"]) != d or int(conv["in_bits"]) != q or ceil_div(q, c.a_planes) != 1:
            return None, None
        if not (1 <= k <= min(c.emb_channels, _fmax("k")) and 1 <= s <= _fmax("stride")
                and 0 <= p <= _fmax("pad") and 1 <= d and k * d <= c.p_i):
            return None, None
        Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
        if not (1 <= Ho <= _fmax("h_out") and 1 <= Wo <= _fmax("w_out")) or Ho * Wo * k > c.bank_depth:
            return None, None
        return conv["name"], dict(k=k, stride=s, pad=p, h_out=Ho, w_out=Wo)

    def _mac_geometry(self, L):
        """``(h_in, w_in, k, stride, pad, n_cig)`` of a conv or head as its CONV descriptor runs
        it: the conv reading the EMBED's windows is a 1x1 conv over the ``h_out x w_out`` windows
        with ``k`` input groups."""
        c = self.c
        if L["name"] == self.window_conv:
            w = self.window
            return w["h_out"], w["w_out"], 1, 1, 0, w["k"]
        _, H, W = self.tensors[L["input"]].shape
        n_cig = ceil_div(int(L["cin"]), c.p_i)
        if L["kind"] == "head":
            return H, W, 1, 1, 0, n_cig
        return H, W, int(L["k"]), int(L["stride"]), int(L["pad"]), n_cig

    def _embed_fields(self, L):
        """The EMBED descriptor's geometry fields (window mode included)."""
        C, H, W = self.input_shape
        f = dict(op=isa.Op.EMBED, nsub=1, h_in=H, w_in=W, emb_c=C, emb_d=int(L["d"]), emb_q=int(L["q"]))
        if self.window is not None:
            f.update(self.window)
        return f

    def _analyse_unknown(self, idx, L, plan):
        self.err(L, f"unknown layer kind {L['kind']!r}")

    def _add(self, L, name, kind, shape, bits, bound):
        if name in self.tensors or name == "image":
            self.err(L, f"tensor {name!r} is defined twice")
        self.tensors[name] = TensorInfo(name=name, kind=kind, shape=tuple(shape), bits=bits,
                                        producer=len(self.plans) - 1, bound=bound)

    def _input_codes(self, L):
        name = L["input"]
        t = self.tensors.get(name)
        if t is None or t.kind != "codes":
            self.err(L, f"input {name!r} is not an earlier code map")
        return t

    def _check_first(self, idx, L):
        if idx != 0 or L["input"] != "image":
            self.err(L, f"a {L['kind']} layer must be the first layer and read the image")

    def _check_size(self, L, what, H, W):
        if H > _fmax("h_in") or W > _fmax("w_in"):
            self.err(L, f"{what} {H}x{W} exceeds the {isa.FIELD_BY_NAME['h_in'].width}-bit height/width fields")

    def _check_map(self, L, what, C, H, W, bits):
        c = self.c
        n_cig, nsub = ceil_div(C, c.p_i), ceil_div(bits, c.a_planes)
        self._check_size(L, what, H, W)
        words = H * W * n_cig * nsub
        if words > c.bank_depth:
            self.err(L, f"{what} needs {words} code-bank words ({H}x{W} pixels x {n_cig} groups x "
                        f"{nsub} sub-words), bank_depth is {c.bank_depth}")
        return words

    def _analyse_embed(self, idx, L, plan):
        c = self.c
        self._check_first(idx, L)
        C, H, W = self.input_shape
        d, q = int(L["d"]), int(L["q"])
        if C > c.emb_channels or C > _fmax("emb_c"):
            self.err(L, f"{C} image channels, the embedding table holds {c.emb_channels}")
        if not 1 <= d <= _fmax("emb_d"):
            self.err(L, f"d={d} outside 1..{_fmax('emb_d')}")
        if not 1 <= q <= min(c.a_planes, _fmax("emb_q")):
            self.err(L, f"q={q} outside 1..{min(c.a_planes, _fmax('emb_q'))} (a_planes)")
        if d * q > EMB_ENTRY_BITS:
            self.err(L, f"d*q={d * q} bits exceeds the {EMB_ENTRY_BITS}-bit table entry")
        if C * d > c.p_i:
            self.err(L, f"C*d={C * d} embedded channels exceed p_i={c.p_i}")
        name = L["outputs"]["codes"]
        self._add(L, name, "codes", (C * d, H, W), q, (1 << q) - 1)
        if self.window is None:
            self._check_map(L, "embedded map", C * d, H, W, q)
        else:
            # the bank holds the windows, not the map (_plan_window made sure they fit)
            self.tensors[name].window = dict(self.window)
            self._check_size(L, "image", H, W)
        plan.macs = 0
        plan.ideal_cycles = _ideal_cycles(self._embed_fields(L))

    def _analyse_raw_input(self, idx, L, plan):
        c = self.c
        self._check_first(idx, L)
        C, H, W = self.input_shape
        if C > c.p_i or C > c.emb_channels:
            self.err(L, f"{C} raw channels exceed min(p_i={c.p_i}, emb_channels={c.emb_channels})")
        nsub = ceil_div(8, c.a_planes)
        if nsub > _fmax("nsub"):
            self.err(L, f"nsub={nsub} exceeds the nsub field")
        self._check_map(L, "raw map", C, H, W, 8)
        self._add(L, L["outputs"]["codes"], "codes", (C, H, W), 8, 255)
        plan.ideal_cycles = H * W * nsub

    def _analyse_host_conv(self, idx, L, plan):
        self._check_first(idx, L)
        C, H, W = self.input_shape
        w = np.asarray(self.arrays[f"{L['name']}.weight"])
        cout, k, s, p, q = w.shape[0], int(L["k"]), int(L["stride"]), int(L["pad"]), int(L["q"])
        Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
        if not 1 <= q <= 8:
            self.err(L, f"q={q} outside 1..8")
        nsub = ceil_div(q, self.c.a_planes)
        if nsub > _fmax("nsub"):
            self.err(L, f"nsub={nsub} exceeds the nsub field")
        words = self._check_map(L, "host-computed map", cout, Ho, Wo, q)
        if words * self.c.lanes(BUF_CODE_BANK0) > (1 << LOCAL_LANE_BITS):
            self.err(L, "host-computed map exceeds the local lane address")
        self._add(L, L["outputs"]["codes"], "codes", (cout, Ho, Wo), q, (1 << q) - 1)
        plan.macs = 0

    def _conv_common(self, L, plan, cin, cout, k, stride, pad, in_bits, t_in):
        c = self.c
        if t_in.shape[0] != cin:
            self.err(L, f"cin={cin} but input {t_in.name!r} has {t_in.shape[0]} channels")
        if t_in.bits != in_bits:
            self.err(L, f"in_bits={in_bits} but input {t_in.name!r} has {t_in.bits}-bit codes")
        if in_bits == 8 and self.tensors[t_in.name].producer != 0:
            self.err(L, "8-bit input codes only come from the raw embedding")
        if not 1 <= k <= _fmax("k"):
            self.err(L, f"k={k} outside 1..{_fmax('k')}")
        if not 1 <= stride <= _fmax("stride"):
            self.err(L, f"stride={stride} outside 1..{_fmax('stride')}")
        if not 0 <= pad <= _fmax("pad"):
            self.err(L, f"pad={pad} outside 0..{_fmax('pad')}")
        n_cig, n_cog = ceil_div(cin, c.p_i), ceil_div(cout, c.p_o)
        if n_cig > _fmax("n_cig"):
            self.err(L, f"cin={cin} needs {n_cig} input groups, the n_cig field holds {_fmax('n_cig')}")
        if n_cog > _fmax("n_cog"):
            self.err(L, f"cout={cout} needs {n_cog} output groups, the n_cog field holds {_fmax('n_cog')}")
        nsub = ceil_div(in_bits, c.a_planes)
        if nsub > _fmax("nsub"):
            self.err(L, f"nsub={nsub} exceeds the nsub field")
        _, H, W = t_in.shape
        Ho, Wo = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
        if Ho < 1 or Wo < 1:
            self.err(L, f"k={k} larger than the padded {H}x{W} input")
        acc_bound = cin * k * k * ((1 << in_bits) - 1)
        acc_max = (1 << (c.acc_bits - 1)) - 1
        if acc_bound > acc_max:
            self.err(L, f"worst-case |acc| = cin*k*k*(2^in_bits-1) = {cin}*{k}*{k}*{(1 << in_bits) - 1} = "
                        f"{acc_bound} exceeds {acc_max} (acc_bits={c.acc_bits})")
        wwords = n_cog * k * k * n_cig
        plan.acc_bound = acc_bound
        return n_cig, n_cog, nsub, H, W, Ho, Wo, wwords

    def _analyse_conv(self, idx, L, plan):
        c = self.c
        t_in = self._input_codes(L)
        cin, cout, k = int(L["cin"]), int(L["cout"]), int(L["k"])
        stride, pad, in_bits = int(L["stride"]), int(L["pad"]), int(L["in_bits"])
        n_cig, n_cog, nsub, H, W, Ho, Wo, wwords = self._conv_common(
            L, plan, cin, cout, k, stride, pad, in_bits, t_in)
        outs = L.get("outputs") or {}
        acc_name, codes_name = outs.get("acc"), outs.get("codes")
        if not acc_name and not codes_name:
            self.err(L, "a conv must produce acc and/or codes")
        if Ho > _fmax("h_out") or Wo > _fmax("w_out"):
            self.err(L, f"output {Ho}x{Wo} exceeds the h_out/w_out fields")
        res_bound = 0
        rname = L.get("residual")
        if rname:
            r = self.tensors.get(rname)
            if r is None or r.kind != "ints":
                self.err(L, f"residual {rname!r} is not an earlier int map")
            if r.shape != (cout, Ho, Wo):
                self.err(L, f"residual {rname!r} has shape {r.shape}, the output is {(cout, Ho, Wo)}")
            res_bound = r.bound
        v_bound = plan.acc_bound + res_bound
        plan.v_bound = v_bound
        res_max = (1 << (c.res_bits - 1)) - 1
        how = (f"worst-case |acc+residual| = {plan.acc_bound} + {res_bound} = {v_bound}" if rname
               else f"worst-case |acc| = {v_bound}")
        if (acc_name or rname) and v_bound > res_max:
            self.err(L, f"{how} exceeds {res_max} (res_bits={c.res_bits})")
        pool = L.get("pool")
        if pool not in (None, "max2"):
            self.err(L, f"unknown pool {pool!r}")
        if codes_name:
            q = L.get("q")
            if q is None:
                self.err(L, "codes output without q")
            q = int(q)
            if not 1 <= q <= c.max_out_bits:
                self.err(L, f"q={q} outside 1..{c.max_out_bits} (max_out_bits)")
            if (1 << q) - 1 > THRESHOLDS_PER_CHANNEL:
                self.err(L, f"q={q} needs {(1 << q) - 1} thresholds, an entry holds {THRESHOLDS_PER_CHANNEL}")
            if v_bound > V_THR_LIMIT:
                self.err(L, f"{how} exceeds {V_THR_LIMIT} (16-bit thresholds, 32767 = never passed)")
            n_cig_out = ceil_div(cout, c.p_i)
            if n_cig_out > _fmax("n_cig_out"):
                self.err(L, f"cout={cout} needs {n_cig_out} code groups, the n_cig_out field holds "
                            f"{_fmax('n_cig_out')}")
            Hp, Wp = Ho, Wo
            if pool == "max2":
                if Ho % 2 or Wo % 2:
                    self.err(L, f"max2 pool on an odd {Ho}x{Wo} output")
                Hp, Wp = Ho // 2, Wo // 2
            self._check_map(L, "output map", cout, Hp, Wp, q)
            self._add(L, codes_name, "codes", (cout, Hp, Wp), q, (1 << q) - 1)
        elif pool:
            self.err(L, "pool without a codes output")
        if acc_name:
            if pool:
                self.err(L, "pool with an acc output")
            self._add(L, acc_name, "ints", (cout, Ho, Wo), None, v_bound)
        plan.macs = Ho * Wo * k * k * cin * cout
        _, _, kk, _, _, n_cig = self._mac_geometry(L)
        plan.ideal_cycles = Ho * Wo * kk * kk * n_cig * n_cog * nsub

    def _analyse_head(self, idx, L, plan):
        c = self.c
        t_in = self._input_codes(L)
        cin, classes, in_bits = int(L["cin"]), int(L["classes"]), int(L["in_bits"])
        if classes != self.num_classes:
            self.err(L, f"classes={classes} but the model has num_classes={self.num_classes}")
        n_cig, n_cog, nsub, H, W, Ho, Wo, wwords = self._conv_common(
            L, plan, cin, classes, 1, 1, 0, in_bits, t_in)
        res_max = (1 << (c.res_bits - 1)) - 1
        v_bound = plan.acc_bound * H * W
        plan.v_bound = v_bound
        if v_bound > res_max:
            self.err(L, f"worst-case |logit| = H*W*cin*(2^in_bits-1) = {H}*{W}*{cin}*{(1 << in_bits) - 1} = "
                        f"{v_bound} exceeds {res_max} (res_bits={c.res_bits})")
        self._add(L, L["outputs"]["logits"], "logits", (classes, 1, 1), None, v_bound)
        plan.macs = H * W * cin * classes
        plan.ideal_cycles = H * W * n_cig * n_cog * nsub

    # ---- pass 2: local buffers -----------------------------------------------------------------
    def allocate_local(self):
        c = self.c
        # weights and thresholds, in layer order
        self.w_base, self.w_mem, self.w_count, self.thr_base = {}, {}, {}, {}
        w_next = thr_next = 0
        weight_layers = [L for L in self.layers if L["kind"] in ("conv", "head")]
        sizes = {}
        for L in weight_layers:
            _, _, k, _, _, n_cig = self._mac_geometry(L)
            cout = int(L["cout"]) if L["kind"] == "conv" else int(L["classes"])
            sizes[L["name"]] = ceil_div(cout, c.p_o) * k * k * n_cig
        total = sum(sizes.values())
        # Weights stay resident in the weight buffer when they all fit (loaded once per model);
        # otherwise every image streams them, double-buffered: layer j's weights go to half j % 2,
        # loaded (async) while layer j - 1 computes.
        self.stream_weights = self.force_stream or total > c.wbuf_depth
        half = c.wbuf_depth // 2
        for j, L in enumerate(weight_layers):
            words = sizes[L["name"]]
            if self.stream_weights:
                if words > half:
                    self.err(L, f"weights need {words} words; all layers need {total}, more than "
                                f"wbuf_depth={c.wbuf_depth}, and streaming needs each layer within "
                                f"half of it ({half})")
                base = (j % 2) * half
            else:
                base = w_next
            if base > _fmax("w_base"):
                self.err(L, f"weights start at word {base}, beyond the w_base field")
            self.w_base[L["name"]] = base
            self.w_mem[L["name"]] = w_next
            self.w_count[L["name"]] = words
            self.allocs.append(Allocation(f"{L['name']}.weight", "weights", base, words))
            w_next += words
            if L["kind"] == "conv" and (L.get("outputs") or {}).get("codes"):
                entries = ceil_div(int(L["cout"]), c.p_o) * c.p_o
                if thr_next > _fmax("thr_base"):
                    self.err(L, f"thresholds start at entry {thr_next}, beyond the thr_base field")
                if thr_next + entries > c.thr_depth:
                    self.err(L, f"thresholds end at entry {thr_next + entries}, thr_depth is {c.thr_depth}")
                self.thr_base[L["name"]] = thr_next
                self.allocs.append(Allocation(f"{L['name']}.thresholds", "thresholds", thr_next, entries))
                thr_next += entries
        self.w_words, self.thr_entries = w_next, thr_next
        self._allocate_banks()
        self._allocate_residual()

    def _allocate_banks(self):
        c = self.c
        codes = [t for t in self.tensors.values() if t.kind == "codes"]
        for t in sorted(codes, key=lambda t: t.producer):
            busy = {u.bank for u in codes if u.bank is not None and u.producer < t.producer <= u.last_use}
            free = [b for b in range(c.n_code_banks) if b not in busy]
            if not free:
                live = ", ".join(sorted(u.name for u in codes if u.bank in busy))
                self.err(self.layers[t.producer], f"no free code bank for {t.name!r}: "
                                                  f"{c.n_code_banks} banks hold live maps ({live})")
            t.bank = free[0]
            C, H, W = t.bank_shape(c.p_i)
            words = H * W * ceil_div(C, c.p_i) * ceil_div(t.bits, c.a_planes)
            self.allocs.append(Allocation(t.name, f"bank{t.bank}", 0, words))

    def _res_words(self, t):
        C, H, W = t.shape
        n = ceil_div(C, self.c.p_o)
        return n if t.kind == "logits" else H * W * n

    def _allocate_residual(self):
        c = self.c
        ints = sorted((t for t in self.tensors.values() if t.kind in ("ints", "logits")),
                      key=lambda t: t.producer)
        for t in ints:
            L = self.layers[t.producer]
            size = self._res_words(t)
            rname = L.get("residual") if L["kind"] == "conv" else None
            r = self.tensors[rname] if rname else None
            if r is not None and r.last_use == t.producer:
                # A CONV has one res_base for the residual read and the acc write, so the output
                # overwrites its residual in place (each pixel's word is read before v is written).
                t.res_base = r.res_base
            else:
                # A residual that is read again later is first copied (STORE + LOAD through a
                # main-memory scratch area) into the output's own region, which the CONV then
                # updates in place.
                live = sorted((u.res_base, u.res_base + self._res_words(u)) for u in ints
                              if u.res_base is not None and u.producer < t.producer <= u.last_use)
                addr = 0
                for lo, hi in live:
                    if addr + size <= lo:
                        break
                    addr = max(addr, hi)
                t.res_base = addr
                if r is not None:
                    self.copies[t.name] = r
            if t.res_base + size > c.res_depth:
                self.err(L, f"int map {t.name!r} ({size} words) ends at residual word "
                            f"{t.res_base + size}, res_depth is {c.res_depth}")
            if t.res_base > _fmax("res_base"):
                self.err(L, f"res_base {t.res_base} exceeds the res_base field")
            self.allocs.append(Allocation(t.name, "residual", t.res_base, size))

    # ---- pass 3: parameter images --------------------------------------------------------------
    def build_params(self):
        c = self.c
        Lw, Lt = c.lanes(BUF_WEIGHTS), c.lanes(BUF_THRESHOLDS)
        self.wmem = np.zeros(self.w_words * Lw, np.uint32)
        self.tmem = np.zeros(self.thr_entries * Lt, np.uint32)
        self.emem = np.zeros(0, np.uint32)
        for L in self.layers:
            name = L["name"]
            if L["kind"] == "embed":
                table = np.asarray(self.arrays[f"{name}.table"], dtype=np.int64)   # (C, 256, d)
                q = int(L["q"])
                Cimg, _, d = table.shape
                if table.max(initial=0) >= (1 << q):
                    self.err(L, f"table codes exceed q={q} bits")
                entries = (table << (np.arange(d, dtype=np.int64) * q)).sum(axis=-1)   # (C, 256)
                if self.window is not None:
                    # window column kx looks its pixel up in table channel kx: the one table k times
                    entries = np.repeat(entries, self.window["k"], axis=0)
                self.emem = entries.reshape(-1).astype(np.uint32)
                continue
            if L["kind"] not in ("conv", "head"):
                continue
            k = int(L.get("k", 1))
            cin = int(L["cin"])
            cout = int(L["cout"]) if L["kind"] == "conv" else int(L["classes"])
            wb = _weight_bits(self.arrays, name, cout, cin, k)
            if name == self.window_conv:
                wb = layout.window_weights(wb, c.p_i)          # the 1x1 conv over the windows
                _, cin, k, _ = wb.shape
            n_cig, n_cog = ceil_div(cin, c.p_i), ceil_div(cout, c.p_o)
            padded = np.zeros((n_cog * c.p_o, n_cig * c.p_i, k, k), np.uint8)
            padded[:cout, :cin] = wb
            # word (cog*k*k + ky*k + kx)*n_cig + cig, bit o*p_i + i
            words = padded.reshape(n_cog, c.p_o, n_cig, c.p_i, k, k).transpose(0, 4, 5, 2, 1, 3)
            words = words.reshape(n_cog * k * k * n_cig, c.p_o * c.p_i)
            base = self.w_mem[name]
            self.wmem[base * Lw:(base + words.shape[0]) * Lw] = \
                layout.bits_to_lanes(words, c.weight_word_bits).reshape(-1)
            if name in self.thr_base:
                T = np.asarray(self.arrays[f"{name}.thresholds"], dtype=np.int64)
                direction = np.asarray(self.arrays[f"{name}.direction"], dtype=np.int64)
                entries = np.full((n_cog * c.p_o, THRESHOLDS_PER_CHANNEL), THR_MAX, np.int64)
                neg = np.zeros(n_cog * c.p_o, np.int64)
                t = np.where(direction[:, None] < 0, -T, T)
                entries[:cout, :T.shape[1]] = np.clip(t, THR_MIN, THR_MAX)
                neg[:cout] = direction < 0
                u = entries & 0xFFFF
                lo = u[:, 0] | (u[:, 1] << 16)
                hi = u[:, 2] | (neg << 16)
                tb = self.thr_base[name]
                self.tmem[tb * Lt:(tb + entries.shape[0]) * Lt] = \
                    np.stack([lo, hi], axis=1).reshape(-1).astype(np.uint32)

    # ---- pass 4: program and memory image ------------------------------------------------------
    def _loads(self, data_addr, n_lanes, buf, local_lane, note, op=isa.Op.LOAD):
        out = []
        for off in range(0, n_lanes, MAX_LOAD_COUNT):
            n = min(MAX_LOAD_COUNT, n_lanes - off)
            out.append((dict(op=op, mem_addr=data_addr + off,
                             local_addr=(buf << LOCAL_LANE_BITS) | (local_lane + off),
                             count=n, rows=1, mem_stride=n), note))
        return out

    def build(self):
        c = self.c
        first = self.layers[0]
        head = self.layers[-1]
        self.host_layer = first if first["kind"] == "host_conv" else None
        in_t = self.tensors[first["outputs"]["codes"]]
        logits = self.tensors[head["outputs"]["logits"]]
        Lc, Lr = c.lanes(BUF_CODE_BANK0), c.lanes(BUF_RESIDUAL)
        C, H, W = self.input_shape
        if first["kind"] == "host_conv":
            input_kind = "host_codes"
            Ci, Hi, Wi = in_t.shape
            input_words = Hi * Wi * ceil_div(Ci, c.p_i) * ceil_div(in_t.bits, c.a_planes) * Lc
        else:
            input_kind = "raw" if first["kind"] == "raw_input" else "image"
            input_words = ceil_div(C * H * W, 4)
        output_words = ceil_div(logits.shape[0], c.p_o) * Lr
        self.input_kind, self.input_words, self.output_words = input_kind, input_words, output_words

        # memory layout (addresses depend only on sizes; the descriptor count does not depend on
        # addresses, so count first with dummy addresses)
        def program(addr):
            pre = []
            if not self.stream_weights:
                pre += self._loads(addr["weights"], self.wmem.size, BUF_WEIGHTS, 0, "weights")
            pre += self._loads(addr["thresholds"], self.tmem.size, BUF_THRESHOLDS, 0, "thresholds")
            pre += self._loads(addr["embed"], self.emem.size, BUF_EMBED, 0, "embedding table")
            img = []
            wnames = list(self.w_base)
            if self.stream_weights and wnames:
                img += self._weight_loads(wnames[0], addr)
            for idx, (L, plan) in enumerate(zip(self.layers, self.plans)):
                d = self._layer_desc(idx, L, addr)
                if d is None:
                    continue
                for fields in d[:-1]:
                    img.append((fields, f"{L['name']} ({L['kind']})"))
                if self.stream_weights and L["name"] in self.w_base:
                    j = wnames.index(L["name"])
                    if j + 1 < len(wnames):
                        # The next layer's weights move while this layer computes; the LOAD
                        # itself first waits for this layer's weights (one DMA command at a time).
                        img += self._weight_loads(wnames[j + 1], addr)
                    else:
                        # The last layer's weights may still be moving: wait for them.
                        d[-1]["wait_dma"] = 1
                plan.desc = d[-1]
                img.append((d[-1], f"{L['name']} ({L['kind']})"))
                if self.dump:
                    img += self._dump_stores(L, addr)
            img.append((dict(op=isa.Op.STORE, mem_addr=addr["output"],
                             local_addr=(BUF_RESIDUAL << LOCAL_LANE_BITS) | (logits.res_base * Lr),
                             count=output_words, rows=1, mem_stride=output_words), "logits"))
            img.append((dict(op=isa.Op.END), "end"))
            return pre, img

        dummy = dict.fromkeys(("weights", "thresholds", "embed", "input", "output", "scratch", "dump"), 0)
        pre, img = program(dummy)
        n_desc = len(pre) + len(img)
        a = self.base
        addr = {}
        sizes = [("program", n_desc * isa.DESCRIPTOR_WORDS), ("weights", self.wmem.size),
                 ("thresholds", self.tmem.size), ("embed", self.emem.size),
                 ("input", input_words), ("output", output_words), ("scratch", self._scratch_words()),
                 ("dump", self._dump_words())]
        for key, size in sizes:
            addr[key] = a
            a += size
        self.limit = a
        if self.limit > c.mem_words:
            # name the layer whose data first crosses the end of memory
            culprit = self._memory_culprit(addr)
            raise CompileError(f"layer {culprit}: the memory image needs {self.limit - self.base} words "
                               f"from word {self.base}, main memory has {c.mem_words} words")
        pre, img = program(addr)
        self.addr = addr
        descs = []
        for i, (fields, note) in enumerate(pre + img):
            descs.append(dict(addr=addr["program"] + i * isa.DESCRIPTOR_WORDS, fields=fields, note=note))
        self.descs = descs
        self.prog_image_addr = addr["program"] + len(pre) * isa.DESCRIPTOR_WORDS
        for plan in self.plans:
            if plan.desc is not None:
                plan.desc_index = next(i for i, d in enumerate(descs) if d["fields"] is plan.desc)
        self.program = [isa.pack(**d["fields"]) for d in descs]

        mem = np.zeros(self.limit - self.base, np.uint32)
        prog = np.asarray(self.program, np.uint32).reshape(-1)
        mem[addr["program"] - self.base:addr["program"] - self.base + prog.size] = prog
        for key, arr in (("weights", self.wmem), ("thresholds", self.tmem), ("embed", self.emem)):
            mem[addr[key] - self.base:addr[key] - self.base + arr.size] = arr
        self.mem = mem
        self.logits = logits

        al = [Allocation("program.load", "memory", addr["program"], len(pre) * isa.DESCRIPTOR_WORDS),
              Allocation("program.image", "memory", self.prog_image_addr, len(img) * isa.DESCRIPTOR_WORDS)]
        Lw, Lt = c.lanes(BUF_WEIGHTS), c.lanes(BUF_THRESHOLDS)
        for x in self.allocs:
            if x.region == "weights":
                al.append(Allocation(x.name, "memory", addr["weights"] + x.addr * Lw, x.size * Lw))
            elif x.region == "thresholds":
                al.append(Allocation(x.name, "memory", addr["thresholds"] + x.addr * Lt, x.size * Lt))
        if self.emem.size:
            al.append(Allocation(f"{first['name']}.table", "memory", addr["embed"], self.emem.size))
            self.allocs.append(Allocation(f"{first['name']}.table", "embed", 0, self.emem.size))
        al.append(Allocation("input", "memory", addr["input"], input_words))
        al.append(Allocation(f"output ({logits.name})", "memory", addr["output"], output_words))
        if self._scratch_words():
            al.append(Allocation("scratch (residual copies)", "memory", addr["scratch"], self._scratch_words()))
        for name, off, words in self.dump_regions:
            al.append(Allocation(f"dump {name}", "memory", addr["dump"] + off, words))
        order = {"memory": 0, "weights": 1, "thresholds": 2, "embed": 3, "residual": 5}
        al.sort(key=lambda x: x.addr)
        self.allocations = al + sorted(self.allocs, key=lambda x: (order.get(x.region, 4), x.region, x.addr))

    def _weight_loads(self, name, addr):
        Lw = self.c.lanes(BUF_WEIGHTS)
        out = []
        for fields, _ in self._loads(addr["weights"] + self.w_mem[name] * Lw, self.w_count[name] * Lw,
                                     BUF_WEIGHTS, self.w_base[name] * Lw, "weights"):
            fields["async_dma"] = 1
            out.append((fields, f"{name} weights (async)"))
        return out

    # ---- optional dumps of every feature map (debugging and per-layer checks) ------------------
    def _dumped_tensors(self, L):
        outs = L.get("outputs") or {}
        return [self.tensors[n] for key, n in outs.items()
                if n and key != "logits" and self.tensors[n].kind in ("codes", "ints")]

    def _tensor_lanes(self, t):
        """(local lane address, lanes) of a feature map in its bank or the residual buffer."""
        c = self.c
        C, H, W = t.shape
        if t.kind == "codes":
            C, H, W = t.bank_shape(c.p_i)
            words = H * W * ceil_div(C, c.p_i) * ceil_div(t.bits, c.a_planes)
            Lc = c.lanes(BUF_CODE_BANK0)
            return ((BUF_CODE_BANK0 + t.bank) << LOCAL_LANE_BITS), words * Lc
        Lr = c.lanes(BUF_RESIDUAL)
        return ((BUF_RESIDUAL << LOCAL_LANE_BITS) | (t.res_base * Lr)), self._res_words(t) * Lr

    def _dump_words(self):
        if not self.dump:
            return 0
        self.dump_regions = []
        off = 0
        for L in self.layers:
            for t in self._dumped_tensors(L):
                lanes = self._tensor_lanes(t)[1]
                self.dump_regions.append((t.name, off, lanes))
                off += lanes
        return off

    def _dump_stores(self, L, addr):
        out = []
        offsets = {name: off for name, off, _ in self.dump_regions}
        for t in self._dumped_tensors(L):
            local, lanes = self._tensor_lanes(t)
            buf, lane = local >> LOCAL_LANE_BITS, local & ((1 << LOCAL_LANE_BITS) - 1)
            for fields, _ in self._loads(addr["dump"] + offsets.get(t.name, 0), lanes, buf, lane,
                                         "dump", op=isa.Op.STORE):
                out.append((fields, f"dump {t.name}"))
        return out

    def _scratch_words(self):
        Lr = self.c.lanes(BUF_RESIDUAL)
        return max((self._res_words(r) * Lr for r in self.copies.values()), default=0)

    def _memory_culprit(self, addr):
        c = self.c
        Lw, Lt = c.lanes(BUF_WEIGHTS), c.lanes(BUF_THRESHOLDS)
        for x in self.allocs:
            if x.region == "weights" and addr["weights"] + (x.addr + x.size) * Lw > c.mem_words:
                return x.name.rsplit(".", 1)[0]
        for x in self.allocs:
            if x.region == "thresholds" and addr["thresholds"] + (x.addr + x.size) * Lt > c.mem_words:
                return x.name.rsplit(".", 1)[0]
        if addr["embed"] + self.emem.size > c.mem_words:
            return self.layers[0]["name"]
        if addr["output"] > c.mem_words:
            return self.layers[0]["name"]
        return self.layers[-1]["name"]

    def _layer_desc(self, idx, L, addr):
        """Descriptors of one layer (the last one is the layer's own)."""
        c = self.c
        kind = L["kind"]
        if kind == "embed":
            t = self.tensors[L["outputs"]["codes"]]
            return [dict(self._embed_fields(L), mem_addr=addr["input"], dst_bank=t.bank)]
        if kind == "raw_input":
            t = self.tensors[L["outputs"]["codes"]]
            C, H, W = self.input_shape
            return [dict(op=isa.Op.EMBED, raw=1, mem_addr=addr["input"], dst_bank=t.bank,
                         nsub=ceil_div(8, c.a_planes), h_in=H, w_in=W, emb_c=C)]
        if kind == "host_conv":
            t = self.tensors[L["outputs"]["codes"]]
            return [f for f, _ in self._loads(addr["input"], self.input_words, BUF_CODE_BANK0 + t.bank, 0, "")]
        t_in = self.tensors[L["input"]]
        H, W, k, s, p, n_cig = self._mac_geometry(L)
        in_bits = int(L["in_bits"])
        nsub = ceil_div(in_bits, c.a_planes)
        if kind == "head":
            lg = self.tensors[L["outputs"]["logits"]]
            return [dict(op=isa.Op.CONV, sum=1, k=1, stride=1, pad=0, nsub=nsub,
                         src_bank=t_in.bank, res_base=lg.res_base, h_in=H, w_in=W, h_out=H, w_out=W,
                         n_cig=n_cig, n_cog=ceil_div(int(L["classes"]), c.p_o),
                         w_base=self.w_base[L["name"]])]
        cout = int(L["cout"])
        Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
        outs = L.get("outputs") or {}
        f = dict(op=isa.Op.CONV, k=k, stride=s, pad=p, nsub=nsub, src_bank=t_in.bank,
                 h_in=H, w_in=W, h_out=Ho, w_out=Wo, n_cig=n_cig, n_cog=ceil_div(cout, c.p_o),
                 w_base=self.w_base[L["name"]])
        res_base = None
        pre = []
        if outs.get("acc") in self.copies:
            r, a = self.copies[outs["acc"]], self.tensors[outs["acc"]]
            n = self._res_words(r) * c.lanes(BUF_RESIDUAL)
            pre += [d for d, _ in self._loads(addr["scratch"], n, BUF_RESIDUAL,
                                                r.res_base * c.lanes(BUF_RESIDUAL), "", op=isa.Op.STORE)]
            pre += [d for d, _ in self._loads(addr["scratch"], n, BUF_RESIDUAL,
                                                a.res_base * c.lanes(BUF_RESIDUAL), "")]
        if L.get("residual"):
            f["res_in"] = 1
            res_base = self.tensors[L["residual"]].res_base
            if outs.get("acc") in self.copies:
                res_base = self.tensors[outs["acc"]].res_base
        if outs.get("acc"):
            f["res_out"] = 1
            a = self.tensors[outs["acc"]].res_base
            assert res_base is None or res_base == a      # in place, see _allocate_residual
            res_base = a
        if res_base is not None:
            f["res_base"] = res_base
        if outs.get("codes"):
            t = self.tensors[outs["codes"]]
            f.update(thr_out=1, out_bits=int(L["q"]), dst_bank=t.bank, thr_base=self.thr_base[L["name"]],
                     n_cig_out=ceil_div(cout, c.p_i), pool=1 if L.get("pool") == "max2" else 0)
        return pre + [f]

    def result(self):
        return CompiledModel(
            config=self.c, memory=self.mem, program=self.program, descriptors=self.descs,
            prog_load_addr=self.addr["program"], prog_image_addr=self.prog_image_addr,
            input_addr=self.addr["input"], input_words=self.input_words, input_kind=self.input_kind,
            input_shape=self.input_shape, output_addr=self.addr["output"], output_words=self.output_words,
            window_base=self.base, window_limit=self.limit, num_classes=self.num_classes,
            logits_res_base=self.logits.res_base, logits_groups=ceil_div(self.num_classes, self.c.p_o),
            allocations=self.allocations, layers=self.plans, tensors=self.tensors,
            host_layer=self.host_layer, host_arrays=self.arrays if self.host_layer else None,
            logits_name=self.logits.name,
            dumps=[(name, self.addr["dump"] + off, words) for name, off, words in self.dump_regions])


def compile_model(deploy, config="default", base=0, *, dump=False, stream_weights=False, im2col=True):
    """Compile a deploy model for an accelerator configuration.

    Parameters
    ----------
    deploy : model.deploy object, path, or dict with ``header`` and ``arrays``
        The network (docs/ARCHITECTURE.md section 2).
    config : AccelConfig or str
        The configuration or its name in ``contract.config.CONFIGS``.
    base : int
        Main-memory word address where the image (and the window) starts.
    dump : bool
        After every layer, STORE each feature map it produced (codes or ints) to its own region
        of main memory (``CompiledModel.dumps``; decode with ``decode_dump``), so that a run on
        the hardware can be compared with the golden model layer by layer.
    stream_weights : bool
        Stream every layer's weights per image (double-buffered, overlapped with the previous
        layer's compute) even when they would all fit the weight buffer. Done anyway when they do
        not fit.
    im2col : bool
        Let the EMBED write the first conv's ``k x k`` windows (ARCHITECTURE 3.3, EMBED window
        mode) when the network allows it: a one-channel image whose embedding only the next conv
        reads, ``k <= emb_channels``, ``k*d <= p_i``, the windows within a code bank. The conv then
        runs as a 1x1 conv with ``k`` input groups (``k*d`` of ``p_i`` lanes busy instead of ``d``).
        False compiles every network without it.

    Returns
    -------
    CompiledModel

    Raises
    ------
    CompileError
        One line, ``"layer <name>: <why>"``, when the network does not fit.
    """
    if isinstance(config, str):
        if config not in CONFIGS:
            raise ValueError(f"unknown configuration {config!r} (one of {', '.join(CONFIGS)})")
        config = CONFIGS[config]
    if not isinstance(config, AccelConfig):
        raise TypeError(f"config must be an AccelConfig or a name, not {type(config).__name__}")
    if not isinstance(base, int) or base < 0:
        raise ValueError(f"base must be a non-negative integer, not {base!r}")
    comp = _Compiler(deploy, config, base, dump=dump, stream_weights=stream_weights, im2col=im2col)
    comp.analyse()
    comp.allocate_local()
    comp.build_params()
    comp.build()
    return comp.result()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m firmware.compiler",
                                 description="Compile a deploy file; print the allocation map and a summary.")
    ap.add_argument("model", help="deploy file (.npz)")
    ap.add_argument("--config", default="default", choices=sorted(CONFIGS))
    ap.add_argument("--map", action="store_true", help="print the allocation table")
    ap.add_argument("--no-im2col", action="store_true",
                    help="do not let the EMBED write the first conv's windows (EMBED window mode)")
    args = ap.parse_args(argv)
    try:
        deploy = _load_deploy(args.model)
        cm = compile_model(deploy, CONFIGS[args.config], im2col=not args.no_im2col)
    except CompileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except _LoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.map:
        print(cm.allocation_table())
        print()
        print(cm.layer_table())
        print()
    print(cm.summary())
    return 0


class _LoadError(Exception):
    pass


def _load_deploy(path):
    if not Path(path).is_file():
        raise _LoadError(f"{path}: no such file")
    try:
        from model import deploy as mdeploy
    except ImportError:
        mdeploy = None
    if mdeploy is not None:
        try:
            return mdeploy.load(path)
        except mdeploy.DeployError as e:
            raise _LoadError(str(e)) from None
    try:
        return _deploy_parts(str(path))
    except Exception as e:      # the fallback loader; model.deploy validates properly
        raise _LoadError(f"{path}: cannot read deploy file ({type(e).__name__}: {e})") from None


if __name__ == "__main__":
    sys.exit(main())
