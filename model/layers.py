"""Quantized building blocks (PyTorch): pixel embedding, binary-weight conv, Q-bit activation.

Conventions shared with the deploy file (docs/ARCHITECTURE.md, section 1):

- Activations leave :class:`ActQuant` as **integer codes** ``0..2^q-1`` (held in a float tensor),
  not ``step * code``: the next binary convolution then sums integers, exactly what the accelerator
  does. Any positive scale between a code and the next batch norm is absorbed by that batch norm,
  and the convolutions feeding the residual stream are multiplied by one fixed power-of-two constant
  (:data:`RESIDUAL_SCALE`), so the residual stream is ``RESIDUAL_SCALE * integer`` exactly.
- Rounding is ``floor(x / step + 0.5)`` clamped to ``[0, 2^q-1]``; hence ``code >= k`` iff
  ``x >= (k - 0.5) * step``, which :func:`fold_thresholds` turns into integer thresholds.
- Binary weights: ``+1`` where the latent weight is ``>= 0`` (bit 1), ``-1`` elsewhere (bit 0).
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


__all__ = ["RESIDUAL_SCALE", "THR_LIMIT", "binarize", "ActQuant", "PixelEmbedding",
           "FixedEmbedding", "BinaryConv2d", "thermometer_table", "fold_thresholds",
           "fold_float_thresholds", "bn_affine"]

#: The shared constant scaling factor of the residual stream (ERN). A power of two, so that
#: ``RESIDUAL_SCALE * integer`` and sums of such values are exact in float32 training too.
RESIDUAL_SCALE = 2.0 ** -5
#: Thresholds are clipped to +-THR_LIMIT: with |v| <= THR_LIMIT - 1 a clipped threshold is passed
#: by the same values as the unclipped one (never or always), and it fits the 16-bit hardware field.
THR_LIMIT = 32767


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        # clipped straight-through estimator: no gradient once |w| > 1 (the sign cannot flip back)
        return g * (w.abs() <= 1).to(g.dtype)


def binarize(w):
    """``sign(w)`` in {-1, +1} (``+1`` at 0) with a clipped straight-through gradient."""
    return _SignSTE.apply(w)


class ActQuant(nn.Module):
    """Unsigned ``q``-bit activation quantizer with a learnable step (LSQ-style), emitting codes.

    ``code = clamp(floor(x / step + 0.5), 0, 2^q - 1)``; the gradient passes straight through
    inside the clamp range (``d code / dx = 1 / step``) and the step gets the LSQ gradient with
    LSQ's ``1 / sqrt(numel * qmax)`` gradient scaling.

    Parameters
    ----------
    q : int
        Code bits (1..8).
    step : float
        Initial step.

    Members
    -------
    step : torch.nn.Parameter
        Scalar step (kept >= 1e-4 in the forward pass).
    """

    def __init__(self, q, step=1.0):
        super().__init__()
        if not isinstance(q, int) or not 1 <= q <= 8:
            raise ValueError(f"q must be an integer 1..8, not {q!r}")
        self.q = q
        self.qmax = (1 << q) - 1
        self.step = nn.Parameter(torch.tensor(float(step)))

    def effective_step(self):
        return self.step.clamp(min=1e-4)

    def forward(self, x):
        s = self.effective_step()
        if self.training:
            g = 1.0 / math.sqrt(max(1, x.numel() // max(1, x.shape[0])) * self.qmax)
            s = s * g + (s - s * g).detach()
        y = (x / s).clamp(0, self.qmax)
        return y + (torch.floor(y + 0.5) - y).detach()

    def extra_repr(self):
        return f"q={self.q}"


def thermometer_table(d, q, levels=256):
    """Generalized thermometer encoding (ERN): ``(levels, d)`` int64 codes.

    ``s = max(1, floor(255 / ((2^q - 1) d)))``, ``y_i = x / (s d) + 1 - (i + 1) / d``,
    ``z_i = clamp(floor(y_i), 0, 2^q - 1)``; computed with exact integer arithmetic as
    ``floor((x + s d - (i + 1) s) / (s d))``.
    """
    qmax = (1 << q) - 1
    s = max(1, 255 // (qmax * d))
    x = np.arange(levels)[:, None]
    i = np.arange(d)[None, :]
    z = (x + s * d - (i + 1) * s) // (s * d)
    return np.clip(z, 0, qmax)


class PixelEmbedding(nn.Module):
    """Trainable pixel embedding: a ``256 x d`` table per input channel, then a ``q``-bit quantizer.

    Parameters
    ----------
    in_channels : int
        Image channels ``C``.
    d : int
        Embedding dimension per channel.
    q_bits : int
        Code bits of the embedding output.
    init : str
        ``"thermometer"`` (default; generalized thermometer codes), ``"linear"`` (every dimension a
        ramp with its own offset) or ``"random"``.

    Members
    -------
    table : torch.nn.Parameter
        ``(C, 256, d)`` float table (in units of the quantizer step).
    act : ActQuant
    """

    def __init__(self, in_channels, d, q_bits, init="thermometer", seed=0):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("d", d)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if init not in ("thermometer", "linear", "random"):
            raise ValueError(f"init must be 'thermometer', 'linear' or 'random', not {init!r}")
        self.in_channels, self.d, self.q = in_channels, d, q_bits
        self.act = ActQuant(q_bits, step=1.0)
        qmax = (1 << q_bits) - 1
        if init == "thermometer":
            # exactly the thermometer codes; the quantizer (step 1) reproduces them at the start
            t = torch.from_numpy(thermometer_table(d, q_bits)).float()
            t = t[None].repeat(in_channels, 1, 1)
        elif init == "linear":
            x = torch.arange(256.0)[:, None] / 255.0 * (qmax + 1)
            off = (torch.arange(d) + 0.5)[None, :] / d - 0.5
            t = (x - 0.5 + off).clamp(-0.5, qmax + 0.49)[None].repeat(in_channels, 1, 1)
        else:
            gen = torch.Generator().manual_seed(seed)
            t = torch.rand(in_channels, 256, d, generator=gen) * (qmax + 1) - 0.5
        self.table = nn.Parameter(t.contiguous())

    @property
    def out_channels(self):
        return self.in_channels * self.d

    def lookup(self, images):
        """Float table rows ``(N, C*d, H, W)`` (channel ``c*d + j``), before quantization."""
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"expected images (N, {self.in_channels}, H, W), got {tuple(images.shape)}")
        idx = images.long()
        parts = [self.table[c][idx[:, c]].permute(0, 3, 1, 2) for c in range(self.in_channels)]
        return torch.cat(parts, dim=1)

    def forward(self, images):
        """uint8 (or integer-valued) ``(N, C, H, W)`` -> codes ``(N, C*d, H, W)`` (float tensor)."""
        return self.act(self.lookup(images))

    @torch.no_grad()
    def merge(self):
        """The integer table ``(C, 256, d)`` uint8 that reproduces :meth:`forward`'s codes."""
        was = self.act.training
        self.act.eval()
        codes = self.act(self.table)
        self.act.train(was)
        return codes.round().to(torch.uint8).cpu().numpy()


class FixedEmbedding(nn.Module):
    """A fixed (non-trainable) integer table, e.g. the naive input quantization ``p >> (8 - q)``.

    Parameters
    ----------
    table : numpy.ndarray
        ``(C, 256, d)`` integer codes ``< 2^q``.
    q : int
    """

    def __init__(self, table, q):
        super().__init__()
        table = np.asarray(table)
        self.in_channels, _, self.d = table.shape
        self.q = q
        self.register_buffer("table", torch.from_numpy(table.astype(np.float32)))

    @property
    def out_channels(self):
        return self.in_channels * self.d

    def forward(self, images):
        idx = images.long()
        return torch.cat([self.table[c][idx[:, c]].permute(0, 3, 1, 2)
                          for c in range(self.in_channels)], dim=1)

    def merge(self):
        return self.table.round().to(torch.uint8).cpu().numpy()


class BinaryConv2d(nn.Module):
    """Binary-weight convolution (sign with STE) with a per-output-channel or a constant scale.

    ``out = scale * conv2d(x, sign(w))`` where ``scale`` is ``|alpha_o| * const`` with a learnable
    per-output-channel ``alpha`` (``scale="channel"``; it only matters for training since a batch
    norm always follows and folds it into the thresholds) or the fixed ``const``
    (``scale="const"``, for convs feeding the residual stream: the shared constant scaling factor
    of ERN).

    Parameters
    ----------
    cin, cout, k, stride : int
    scale : str
        ``"channel"`` or ``"const"``.
    const : float
        Constant factor (default :data:`RESIDUAL_SCALE`).

    Members
    -------
    weight : torch.nn.Parameter
        Latent float weights ``(cout, cin, k, k)``.
    """

    def __init__(self, cin, cout, k=3, stride=1, scale="channel", const=RESIDUAL_SCALE):
        super().__init__()
        if k not in (1, 2, 3, 5, 7):
            raise ValueError(f"k must be 1, 2, 3, 5 or 7, not {k!r}")
        if scale not in ("channel", "const"):
            raise ValueError(f"scale must be 'channel' or 'const', not {scale!r}")
        self.cin, self.cout, self.k, self.stride, self.pad = cin, cout, k, stride, k // 2
        self.scale_mode, self.const = scale, float(const)
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        nn.init.normal_(self.weight, 0.0, 0.05)
        # learnable per-output-channel scaling factor (absolute value used); "const" has none
        self.alpha = nn.Parameter(torch.ones(cout)) if scale == "channel" else None

    def binary_weight(self):
        return binarize(self.weight)

    def weight_bits(self):
        """0/1 numpy array ``(cout, cin, k, k)``: bit 1 is +1."""
        return (self.weight.detach() >= 0).to(torch.uint8).cpu().numpy()

    def channel_scale(self):
        """Positive per-output-channel factor ``(cout,)`` multiplying the integer accumulator."""
        if self.scale_mode == "const":
            return torch.full((self.cout,), self.const, device=self.weight.device)
        return self.alpha.detach().abs() * self.const

    def acc(self, x):
        """Integer accumulator (as float) of ``x`` with the ±1 weights, no scaling."""
        return F.conv2d(x, self.binary_weight(), stride=self.stride, padding=self.pad)

    def forward(self, x):
        if self.scale_mode == "const":
            return self.acc(x) * self.const
        return self.acc(x) * (self.alpha.abs() * self.const)[None, :, None, None]

    def extra_repr(self):
        return f"{self.cin}, {self.cout}, k={self.k}, stride={self.stride}, scale={self.scale_mode}"


def bn_affine(bn):
    """(a, b) float64 numpy with ``bn(z) = a*z + b`` in eval mode."""
    sig = np.sqrt(bn.running_var.detach().double().cpu().numpy() + bn.eps)
    g = bn.weight.detach().double().cpu().numpy() if bn.affine else np.ones_like(sig)
    be = bn.bias.detach().double().cpu().numpy() if bn.affine else np.zeros_like(sig)
    mu = bn.running_mean.detach().double().cpu().numpy()
    return g / sig, be - g * mu / sig


def fold_thresholds(A, B, step, q):
    """Integer thresholds for ``code = clamp(floor((A*v + B)/step + 0.5), 0, 2^q-1)`` on integer v.

    Parameters
    ----------
    A, B : numpy.ndarray
        Per-channel float64 affine from the integer ``v`` to the quantizer input.
    step : float
        Quantizer step (> 0).
    q : int

    Returns
    -------
    thresholds : numpy.ndarray
        int32 ``(C, 2^q-1)`` within ``+-THR_LIMIT``.
    direction : numpy.ndarray
        int8 ``(C,)``: code = #{k: v >= T_k} (+1) or #{k: v <= T_k} (-1).
    """
    A = np.asarray(A, np.float64)
    B = np.asarray(B, np.float64)
    ks = np.arange(1, 1 << q, dtype=np.float64)[None, :] - 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (ks * float(step) - B[:, None]) / A[:, None]
    pos = A > 0
    neg = A < 0
    T = np.where(pos[:, None], np.ceil(r), np.floor(r))
    # A == 0: constant codes; v*0 + B >= (k-0.5)*step is either always or never true
    always = (B[:, None] >= ks * float(step))
    T = np.where((~pos & ~neg)[:, None], np.where(always, -THR_LIMIT, THR_LIMIT), T)
    T = np.clip(np.nan_to_num(T, nan=THR_LIMIT, posinf=THR_LIMIT, neginf=-THR_LIMIT),
                -THR_LIMIT, THR_LIMIT)
    direction = np.where(neg, -1, 1).astype(np.int8)
    return T.astype(np.int32), direction


def fold_float_thresholds(A, B, step, q):
    """Float32 thresholds on ``y`` for ``code = clamp(floor((A*y + B)/step + 0.5))`` (host_conv)."""
    A = np.asarray(A, np.float64)
    B = np.asarray(B, np.float64)
    ks = np.arange(1, 1 << q, dtype=np.float64)[None, :] - 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (ks * float(step) - B[:, None]) / A[:, None]
    zero = A == 0
    always = (B[:, None] >= ks * float(step))
    r = np.where(zero[:, None], np.where(always, -1e30, 1e30), r)
    r = np.clip(np.nan_to_num(r, nan=1e30), -1e30, 1e30)
    direction = np.where(A < 0, -1, 1).astype(np.int8)
    return r.astype(np.float32), direction
