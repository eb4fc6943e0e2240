"""ERN-style fully quantized network (W1A2) with a choice of first layer, and its export.

Default network for 28x28x1 (Fashion-MNIST), width ``W`` = 64::

    embed(d=4, q=2)                                   1x28x28 -> 4 codes (2-bit)
    stem1  conv3x3 s2  4->W   BN+act -> codes s1      14x14
    stem2  conv3x3 s1  W->W   -> x0 (ints) and codes a0 = act(bn0_1(x0))
    block1 (14x14, identity): conv1 3x3 on a0 -> codes; conv2 3x3 + x0 -> x1, codes a1
    block2 (downsample):      conv1 3x3 s2 on a1 -> codes; down 1x1 s2 on a1 -> sc (ints);
                              conv2 3x3 + sc -> x2, codes a2                           7x7
    block3 (7x7, identity):   conv1 3x3 on a2; conv2 3x3 + x2 -> x3, codes a3 = act(bn_f(x3))
    head   1x1 W->10 on a3, sum over the 49 pixels, per-class affine (scale > 0)

First-layer variants (:data:`VARIANTS`): ``pixel_embedding`` (trainable table, default),
``float_first`` (float 3x3 s2 conv on float pixels + BN + act, run on the host: the papers'
baseline; replaces embed+stem1), ``naive`` (pixels quantized straight to ``q`` bits,
``p >> (8-q)``, then stem1) and ``uint8_bitserial`` (8-bit pixels x binary weights in stem1).

Training runs :meth:`ERNet.forward` in train mode (float simulation with STEs; the integer
quantities are exact anyway). In eval mode ``forward`` runs :meth:`ERNet.int_forward`, which computes
the very integers of the deploy file (binary convs in float64 on codes, thresholds folded from
BN + quantizer), so PyTorch eval predictions and :mod:`model.golden` agree bit for bit.
"""

import json
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import deploy as dp
from .float_teacher import KIND as FLOAT_TEACHER_KIND, FloatERNet
from .layers import (RESIDUAL_SCALE, THR_LIMIT, ActQuant, BinaryConv2d, FixedEmbedding,
                     PixelEmbedding, bn_affine, fold_float_thresholds, fold_thresholds)


__all__ = ["VARIANTS", "ERNBlock", "ERNet", "build_net", "net_from_config"]

VARIANTS = ("pixel_embedding", "float_first", "naive", "uint8_bitserial")
# initial quantizer step after a batch norm (unit variance): codes 1..3 start at 0.25, 0.75, 1.25
ACT_STEP = 0.5


def _bn(c):
    return nn.BatchNorm2d(c, momentum=0.1)


class ERNBlock(nn.Module):
    """Pre-activation ERN block: ``x' + conv2(act1(bn1(conv1(act0(bn0(x))))))``.

    ``x' = x`` (identity) or ``down(act0(bn0(x)))`` (1x1 binary conv, stride ``stride``) when the
    shape changes. ``conv2`` and ``down`` use the shared constant scale, so the block output is
    ``RESIDUAL_SCALE * integer``.

    Parameters
    ----------
    cin, cout, stride : int
    q : int
        Activation bits.
    """

    def __init__(self, cin, cout, stride=1, q=2):
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride
        self.bn0, self.act0 = _bn(cin), ActQuant(q, ACT_STEP)
        self.conv1 = BinaryConv2d(cin, cout, 3, stride, "channel", const=1.0 / math.sqrt(9 * cin))
        self.bn1, self.act1 = _bn(cout), ActQuant(q, ACT_STEP)
        self.conv2 = BinaryConv2d(cout, cout, 3, 1, "const")
        self.down = (BinaryConv2d(cin, cout, 1, stride, "const")
                     if stride != 1 or cin != cout else None)

    def forward(self, x):
        a = self.act0(self.bn0(x))
        b = self.act1(self.bn1(self.conv1(a)))
        sc = x if self.down is None else self.down(a)
        return sc + self.conv2(b)


def _conv_int(codes, conv, in_bits=8):
    """Exact integer accumulator of a BinaryConv2d on integer codes (float tensor).

    float32 when every partial sum is below 2^24 (then exact in any summation order), else
    float64. Residual sums stay far below 2^24 too (bounded by :meth:`ERNet.int_bound`).
    """
    bound = conv.cin * conv.k * conv.k * ((1 << in_bits) - 1)
    dt = torch.float32 if bound < (1 << 24) and codes.dtype != torch.float64 else torch.float64
    w = torch.from_numpy(conv.weight_bits().astype(np.float32) * 2 - 1).to(codes.device, dt)
    return F.conv2d(codes.to(dt), w, stride=conv.stride, padding=conv.pad)


def _thr(v, T, direction, q):
    """Codes from integer v (float64 tensor (N,C,H,W)) with thresholds T (C,K), direction (C,)."""
    T = torch.from_numpy(np.asarray(T, np.float64)).to(v.device, v.dtype)
    up = torch.from_numpy(np.asarray(direction) > 0).to(v.device)[None, :, None, None]
    cnt = torch.zeros_like(v)
    for j in range(T.shape[1]):
        t = T[:, j][None, :, None, None]
        cnt = cnt + torch.where(up, v >= t, v <= t).to(v.dtype)
    return cnt.clamp(max=(1 << q) - 1).float()


def _fold(conv_scale, bn, act):
    """Integer thresholds for act(bn(conv_scale * v))."""
    a, b = bn_affine(bn)
    return fold_thresholds(a * conv_scale, b, float(act.effective_step().detach()), act.q)


class ERNet(nn.Module):
    """Configurable ERN-style W1A2 network.

    Parameters
    ----------
    variant : str
        One of :data:`VARIANTS`.
    in_channels, image_size, num_classes : int
        Input ``(in_channels, image_size, image_size)``; 1/28/10 for Fashion-MNIST, 3/32/10 for
        CIFAR-10-like inputs.
    width : int
        Channels of the stem and the first stage (multiple of 32 for the accelerator).
    stem_width : int, optional
        Channels of stem1 (the first layer's output, which stem2 reads); ``width`` when None. A
        wider first layer without widening the residual stream, whose layers hold most weights.
    d, q_embed : int
        Embedding dimension and code bits (``pixel_embedding``); ``q_embed`` is also the bits of
        the ``naive`` quantization.
    q : int
        Activation bits everywhere else (2).
    blocks : list of (int, int), optional
        ``(cout, stride)`` per ERN block (default ``[(W,1), (W,2), (W,1)]``).
    init : str
        Embedding initialisation: ``thermometer``, ``linear`` or ``random``.
    """

    def __init__(self, variant="pixel_embedding", in_channels=1, image_size=28, num_classes=10,
                 width=64, d=4, q_embed=2, q=2, blocks=None, init="thermometer", stem_width=None):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        blocks = [tuple(b) for b in (blocks or [(width, 1), (width, 2), (width, 1)])]
        self.config = dict(variant=variant, in_channels=in_channels, image_size=image_size,
                           num_classes=num_classes, width=width, d=d, q_embed=q_embed, q=q,
                           blocks=[list(b) for b in blocks], init=init)
        if stem_width is not None:        # older configs (and deploy headers) have no stem_width
            self.config["stem_width"] = stem_width
        stem = width if stem_width is None else stem_width
        self.variant, self.q, self.num_classes = variant, q, num_classes
        self.in_channels, self.image_size = in_channels, image_size
        self.embed = self.host = None
        if variant == "pixel_embedding":
            self.embed = PixelEmbedding(in_channels, d, q_embed, init)
            cin1, self.first_bits = in_channels * d, q_embed
        elif variant == "naive":
            table = (np.arange(256) >> (8 - q_embed))[None, :, None].repeat(in_channels, 0)
            self.embed = FixedEmbedding(table, q_embed)
            cin1, self.first_bits = in_channels, q_embed
        elif variant == "uint8_bitserial":
            cin1, self.first_bits = in_channels, 8
        else:
            self.host = nn.Conv2d(in_channels, stem, 3, 2, 1, bias=True)
        if self.host is None:
            self.stem1 = BinaryConv2d(cin1, stem, 3, 2, "channel",
                                      const=1.0 / math.sqrt(9 * cin1 * ((1 << self.first_bits) - 1)))
        self.bn1, self.act1 = _bn(stem), ActQuant(q, ACT_STEP)
        self.stem2 = BinaryConv2d(stem, width, 3, 1, "const")
        layers, c = [], width
        for cout, s in blocks:
            layers.append(ERNBlock(c, cout, s, q))
            c = cout
        self.blocks = nn.ModuleList(layers)
        self.bn_f, self.act_f = _bn(c), ActQuant(q, ACT_STEP)
        self.head = BinaryConv2d(c, num_classes, 1, 1, "const", const=1.0)
        self.head_log_scale = nn.Parameter(torch.full((num_classes,), math.log(0.1)))
        self.head_bias = nn.Parameter(torch.zeros(num_classes))
        self.int_eval = True  # eval-mode forward runs the integer path

    # --- float (training) path ------------------------------------------------------------------
    def first_codes(self, images):
        """Codes entering stem1 (float tensor), or None for float_first."""
        if self.embed is not None:
            return self.embed(images)
        if self.variant == "uint8_bitserial":
            return images.float()
        return None

    def forward_float(self, images):
        if self.host is not None:
            y = self.host(images.float() / 255.0)
        else:
            y = self.stem1(self.first_codes(images))
        a = self.act1(self.bn1(y))
        x = self.stem2(a)
        for blk in self.blocks:
            x = blk(x)
        a = self.act_f(self.bn_f(x))
        acc = self.head(a)
        hw = acc.shape[2] * acc.shape[3]
        return acc.sum(dim=(2, 3)) * (self.head_log_scale.exp() / hw) + self.head_bias

    def forward(self, images):
        """Logits ``(N, classes)``. Train mode: float simulation; eval mode: the integer path."""
        if not self.training and self.int_eval:
            return self.int_forward(images)["logits"]
        return self.forward_float(images)

    # --- integer (deploy) path ------------------------------------------------------------------
    def head_affine(self, hw):
        """float32 numpy (scale, bias) of the deploy head: ``logits = scale*logits_int + bias``."""
        scale = (self.head_log_scale.detach().double().exp() / hw).float().cpu().numpy()
        return scale.astype(np.float32), self.head_bias.detach().float().cpu().numpy()

    def _next_act(self, i):
        """BN and quantizer applied to the residual stream after block i (-1: after stem2)."""
        if i + 1 < len(self.blocks):
            return self.blocks[i + 1].bn0, self.blocks[i + 1].act0
        return self.bn_f, self.act_f

    def host_thresholds(self):
        a, b = bn_affine(self.bn1)
        return fold_float_thresholds(a, b, float(self.act1.effective_step().detach()), self.q)

    @torch.no_grad()
    def int_forward(self, images):
        """Integer-exact forward; returns a dict of tensors (float tensors holding integers) + logits.

        Keys: ``first`` (codes entering stem1, absent for float_first), ``s1``, ``x0``, ``a0``,
        per block ``b{i}_h``, ``b{i}_sc`` (downsampling blocks), ``x{i}``, ``a{i}``, and
        ``logits_int`` (int64), ``logits`` (float32).
        """
        t = {}
        dev = self.head_bias.device
        images = images.to(dev)
        if self.host is not None:
            x = (images.float() / 255.0).double()
            y = F.conv2d(x, self.host.weight.detach().double(), self.host.bias.detach().double(),
                         stride=2, padding=1)
            T, dirs = self.host_thresholds()
            s1 = _thr(y, T.astype(np.float64), dirs, self.q)
        else:
            if self.embed is not None:
                table = torch.from_numpy(self.embed.merge().astype(np.float32)).to(dev)
                idx = images.long()
                first = torch.cat([table[c][idx[:, c]].permute(0, 3, 1, 2)
                                   for c in range(self.in_channels)], dim=1)
            else:
                first = images.float()
            t["first"] = first
            v = _conv_int(first, self.stem1, self.first_bits)
            T, dirs = _fold(self.stem1.channel_scale().double().cpu().numpy(), self.bn1, self.act1)
            s1 = _thr(v, T, dirs, self.q)
        t["s1"] = s1
        x = _conv_int(s1, self.stem2, self.q)
        t["x0"] = x
        bn, act = self._next_act(-1)
        a = _thr(x, *_fold(self.stem2.const, bn, act), self.q)
        t["a0"] = a
        for i, blk in enumerate(self.blocks, 1):
            T, dirs = _fold(blk.conv1.channel_scale().double().cpu().numpy(), blk.bn1, blk.act1)
            h = _thr(_conv_int(a, blk.conv1, self.q), T, dirs, self.q)
            t[f"b{i}_h"] = h
            if blk.down is None:
                sc = x
            else:
                sc = _conv_int(a, blk.down, self.q)
                t[f"b{i}_sc"] = sc
            x = sc + _conv_int(h, blk.conv2, self.q)
            t[f"x{i}"] = x
            bn, act = self._next_act(i - 1)
            a = _thr(x, *_fold(blk.conv2.const, bn, act), self.q)
            t[f"a{i}"] = a
        acc = _conv_int(a, self.head, self.q)
        li = acc.sum(dim=(2, 3)).round().long()
        scale, bias = self.head_affine(acc.shape[2] * acc.shape[3])
        t["logits_int"] = li
        t["logits"] = (torch.from_numpy(scale).to(dev) * li.float()
                       + torch.from_numpy(bias).to(dev)).float()
        return t

    # --- bounds and export ----------------------------------------------------------------------
    def int_bound(self):
        """Static bound on |v| of every conv (accumulator + residual) in the deploy model."""
        qm = (1 << self.q) - 1
        w = self.stem2.cin
        bounds = {}
        if self.host is None:
            bounds["stem1"] = self.stem1.cin * 9 * ((1 << self.first_bits) - 1)
        x = w * 9 * qm
        bounds["stem2"] = x
        for i, blk in enumerate(self.blocks, 1):
            bounds[f"b{i}_conv1"] = blk.cin * 9 * qm
            sc = x if blk.down is None else blk.cin * qm
            if blk.down is not None:
                bounds[f"b{i}_down"] = sc
            x = sc + blk.cout * 9 * qm
            bounds[f"b{i}_conv2"] = x
        hw = self._out_hw()
        bounds["head"] = hw * self.head.cin * qm
        return bounds

    def _out_hw(self):
        s = self.image_size
        s = (s + 2 - 3) // 2 + 1
        for blk in self.blocks:
            s = (s + 2 - 3) // blk.stride + 1
        return s * s

    @torch.no_grad()
    def export(self, training=None):
        """The deploy model (header dict, arrays dict) of docs/ARCHITECTURE.md section 2.

        Parameters
        ----------
        training : dict, optional
            Recorded under ``header["training"]`` (with the net configuration under ``"net"``).

        Returns
        -------
        (dict, dict)
        """
        bound = self.int_bound()
        worst = max(v for k, v in bound.items() if k != "head")
        if worst >= THR_LIMIT:
            raise ValueError(f"integer bound {worst} does not fit the 16-bit residual lanes")
        layers, arrays = [], {}
        q = self.q

        def conv_entry(name, conv, src, in_bits, residual, acc, codes, thr=None):
            layers.append({"name": name, "kind": "conv", "input": src, "cin": conv.cin,
                           "cout": conv.cout, "k": conv.k, "stride": conv.stride, "pad": conv.pad,
                           "in_bits": in_bits, "residual": residual,
                           "q": q if codes else None, "pool": None,
                           "outputs": {"acc": acc, "codes": codes}})
            arrays[f"{name}.weight"] = dp.pack_bits(conv.weight_bits())
            if codes:
                arrays[f"{name}.thresholds"] = thr[0].astype(np.int32)
                arrays[f"{name}.direction"] = thr[1].astype(np.int8)

        if self.host is not None:
            T, dirs = self.host_thresholds()
            layers.append({"name": "host_conv", "kind": "host_conv", "input": "image", "k": 3,
                           "stride": 2, "pad": 1, "q": q, "outputs": {"codes": "s1"}})
            arrays["host_conv.weight"] = self.host.weight.detach().float().cpu().numpy()
            arrays["host_conv.bias"] = self.host.bias.detach().float().cpu().numpy()
            arrays["host_conv.thresholds"] = T
            arrays["host_conv.direction"] = dirs
        else:
            if self.embed is not None:
                layers.append({"name": "embed", "kind": "embed", "input": "image",
                               "d": self.embed.d, "q": self.embed.q, "outputs": {"codes": "e0"}})
                arrays["embed.table"] = self.embed.merge()
            else:
                layers.append({"name": "raw", "kind": "raw_input", "input": "image",
                               "outputs": {"codes": "e0"}})
            conv_entry("stem1", self.stem1, "e0", self.first_bits, None, None, "s1",
                       _fold(self.stem1.channel_scale().double().cpu().numpy(), self.bn1,
                             self.act1))
        # which residual-stream tensors are read later as a residual (identity blocks)
        keep_x = {i for i, blk in enumerate(self.blocks) if blk.down is None}  # x_i read by blk i+1
        bn, act = self._next_act(-1)
        conv_entry("stem2", self.stem2, "s1", q, None, "x0" if 0 in keep_x else None, "a0",
                   _fold(self.stem2.const, bn, act))
        for i, blk in enumerate(self.blocks, 1):
            conv_entry(f"b{i}_conv1", blk.conv1, f"a{i-1}", q, None, None, f"b{i}_h",
                       _fold(blk.conv1.channel_scale().double().cpu().numpy(), blk.bn1, blk.act1))
            if blk.down is None:
                res = f"x{i-1}"
            else:
                conv_entry(f"b{i}_down", blk.down, f"a{i-1}", q, None, f"b{i}_sc", None)
                res = f"b{i}_sc"
            bn, act = self._next_act(i - 1)
            conv_entry(f"b{i}_conv2", blk.conv2, f"b{i}_h", q, res,
                       f"x{i}" if i in keep_x else None, f"a{i}",
                       _fold(blk.conv2.const, bn, act))
        nb = len(self.blocks)
        layers.append({"name": "head", "kind": "head", "input": f"a{nb}", "cin": self.head.cin,
                       "classes": self.num_classes, "in_bits": q,
                       "outputs": {"logits": "logits"}})
        arrays["head.weight"] = dp.pack_bits(self.head.weight_bits())
        scale, bias = self.head_affine(self._out_hw())
        arrays["head.scale"] = scale
        arrays["head.bias"] = bias
        tr = dict(training or {})
        tr["net"] = self.config
        tr["int_bound"] = bound
        header = {"format": dp.FORMAT, "version": dp.VERSION,
                  "input": {"channels": self.in_channels, "height": self.image_size,
                            "width": self.image_size},
                  "num_classes": self.num_classes, "variant": self.variant, "layers": layers,
                  "training": json.loads(json.dumps(tr))}
        dp.validate(header, arrays)
        return header, arrays


def build_net(variant="pixel_embedding", **kw):
    """Build an :class:`ERNet` (keyword arguments as in its constructor)."""
    return ERNet(variant=variant, **kw)


def net_from_config(config):
    """Rebuild an (untrained) network from its ``config``.

    An :class:`ERNet` from ``ERNet.config`` / ``header["training"]["net"]``, or a
    :class:`model.float_teacher.FloatERNet` from a config whose ``"kind"`` is ``"float_teacher"``.
    """
    cfg = dict(config)
    cfg["blocks"] = [tuple(b) for b in cfg["blocks"]]
    kind = cfg.pop("kind", None)
    if kind is not None:
        if kind != FLOAT_TEACHER_KIND:
            raise ValueError(f"unknown network kind {kind!r} (known: {FLOAT_TEACHER_KIND!r})")
        return FloatERNet(**cfg)
    return ERNet(**cfg)
