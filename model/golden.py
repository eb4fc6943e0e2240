"""Golden executor: the integer contract of docs/ARCHITECTURE.md section 1, vectorised in NumPy.

This is the reference every other implementation (PyTorch eval path, compiler + RTL simulation,
the board) is compared with bit for bit.

Exactness: a binary-weight convolution on codes is a sum of integers. It is computed as a float
matrix product (BLAS) only when that is provably exact: every partial sum is bounded by
``cin*k*k*max|a|`` (``max|a| = 2^bits-1`` for plain codes), and integers up to 2^24 (float32) / 2^53 (float64) are exact, so the float
result equals the integer one whatever the summation order; otherwise int64 is used.

``host_conv`` (the float first-layer baseline, run on the host) is computed from float32 inputs
(``img.astype(float32) / 255``) and float32 parameters with float64 accumulation, then compared with
the float32 thresholds; the PyTorch model does the same, so the two agree except for a
pre-activation within ~1e-15 of a threshold.
"""

from dataclasses import dataclass

import numpy as np

from .deploy import DeployModel, load


__all__ = ["GoldenResult", "run", "run_layers", "conv_int", "apply_thresholds", "embed", "predict"]


@dataclass
class GoldenResult:
    """Output of :func:`run`.

    Members
    -------
    logits_int : numpy.ndarray
        ``(N, classes)`` int64, the per-class sums the hardware returns.
    logits : numpy.ndarray
        ``(N, classes)`` float32, ``scale * logits_int + bias`` computed in float32.
    tensors : dict of str to numpy.ndarray
        Every feature map by tensor name, batch first: ``image`` (uint8), codes (uint8),
        ints (int64), the logits. Empty when ``run(..., keep_tensors=False)``.
    """
    logits_int: np.ndarray
    logits: np.ndarray
    tensors: dict

    @property
    def predictions(self):
        """Argmax of ``logits`` (ties: lowest index), int64 ``(N,)``."""
        return np.argmax(self.logits, axis=1)


def _im2col(x, k, stride, pad):
    """(N, C, H, W) -> (N, Ho, Wo, C*k*k) patches, in the (c, ky, kx) order of the weights."""
    n, c, h, w = x.shape
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))  # N,C,H',W',k,k
    win = win[:, :, : (ho - 1) * stride + 1: stride, : (wo - 1) * stride + 1: stride]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n, ho, wo, c * k * k)


def conv_int(codes, weight_bits, stride, pad, in_bits, in_gain=1, in_offset=0):
    """Binary-weight convolution of codes, exact.

    Parameters
    ----------
    codes : numpy.ndarray
        ``(N, Cin, H, W)`` unsigned codes.
    weight_bits : numpy.ndarray
        ``(Cout, Cin, k, k)`` 0/1; bit 1 is +1, bit 0 is -1.
    stride, pad, in_bits : int
    in_gain, in_offset : int
        The activation a code stands for, ``a = in_gain * code - in_offset`` (1 and 0: the code
        itself); out-of-image taps contribute 0 whatever the mapping.

    Returns
    -------
    numpy.ndarray
        ``(N, Cout, Ho, Wo)`` int64 accumulators.
    """
    cout, cin, k, _ = weight_bits.shape
    largest = max(in_offset, in_gain * ((1 << in_bits) - 1) - in_offset)
    bound = cin * k * k * largest
    if bound < (1 << 24):
        dt = np.float32
    elif bound < (1 << 53):
        dt = np.float64
    else:
        dt = np.int64
    wmat = (weight_bits.reshape(cout, -1).astype(dt) * 2 - 1).T  # (Cin*k*k, Cout)
    activations = codes.astype(dt)
    if in_gain != 1 or in_offset != 0:
        activations = activations * in_gain - in_offset
    cols = _im2col(activations, k, stride, pad)
    n, ho, wo, _ = cols.shape
    acc = cols.reshape(-1, cols.shape[-1]) @ wmat
    return acc.reshape(n, ho, wo, cout).transpose(0, 3, 1, 2).astype(np.int64)


def apply_thresholds(v, thresholds, direction, q):
    """``code[o] = #{k: v >= T[o,k]}`` (direction +1) or ``#{k: v <= T[o,k]}`` (-1), max ``2^q-1``.

    ``v`` is ``(N, Cout, H, W)`` (int or float); returns uint8 codes of the same shape.
    """
    cnt = np.zeros(v.shape, dtype=np.int64)
    up = (direction > 0)[None, :, None, None]
    for j in range(thresholds.shape[1]):
        t = thresholds[:, j][None, :, None, None]
        cnt += np.where(up, v >= t, v <= t)
    return np.minimum(cnt, (1 << q) - 1).astype(np.uint8)


def embed(images, table):
    """``out[:, c*d + j] = table[c, img[:, c], j]``; ``images`` (N,C,H,W) uint8 -> uint8 codes."""
    n, c, h, w = images.shape
    d = table.shape[2]
    out = np.empty((n, c * d, h, w), dtype=np.uint8)
    for ci in range(c):
        out[:, ci * d:(ci + 1) * d] = table[ci][images[:, ci]].transpose(0, 3, 1, 2)
    return out


def _maxpool2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def run_layers(layers, images, keep_tensors=True):
    """Execute a list of deploy layers on one batch of images, without validation or batching.

    :func:`run` calls it per batch on a validated model's layers; the compiler's host-side input
    preparation calls it on the one ``host_conv`` layer of a model, so that the host computes that
    layer exactly as the contract does.

    Parameters
    ----------
    layers : list of dict
        Layer dicts as in ``DeployModel.layers``: the header fields of each layer plus its
        parameter arrays under ``"arrays"`` (``"weight_bits"`` for conv and head layers). The
        first layer reads ``"image"``; every other input must be produced by an earlier layer.
    images : numpy.ndarray
        ``(N, C, H, W)`` uint8.
    keep_tensors : bool
        Return every feature map; False returns an empty dict.

    Returns
    -------
    logits_int : numpy.ndarray or None
        ``(N, classes)`` int64 of the head, None when ``layers`` has no head.
    logits : numpy.ndarray or None
        ``(N, classes)`` float32, ``scale * logits_int + bias``, None without a head.
    tensors : dict of str to numpy.ndarray
        Every feature map by tensor name, ``"image"`` included (empty unless ``keep_tensors``).
    """
    tensors = {"image": images}
    logits_int = logits = None
    for layer in layers:
        kind, la, out = layer["kind"], layer["arrays"], layer["outputs"]
        x = tensors[layer["input"]]
        if kind == "embed":
            tensors[out["codes"]] = embed(x, la["table"])
        elif kind == "raw_input":
            tensors[out["codes"]] = x.astype(np.uint8).copy()
        elif kind == "host_conv":
            xf = (x.astype(np.float32) / np.float32(255)).astype(np.float64)
            wgt = la["weight"].astype(np.float64)
            cout = wgt.shape[0]
            cols = _im2col(xf, layer["k"], layer["stride"], layer["pad"])
            n, ho, wo, _ = cols.shape
            y = cols.reshape(-1, cols.shape[-1]) @ wgt.reshape(cout, -1).T
            y = y.reshape(n, ho, wo, cout).transpose(0, 3, 1, 2) \
                + la["bias"].astype(np.float64)[None, :, None, None]
            tensors[out["codes"]] = apply_thresholds(y, la["thresholds"].astype(np.float64),
                                                     la["direction"], layer["q"])
        elif kind == "conv":
            v = conv_int(x, la["weight_bits"], layer["stride"], layer["pad"], layer["in_bits"],
                         layer.get("in_gain", 1), layer.get("in_offset", 0))
            if layer["residual"] is not None:
                v = v + tensors[layer["residual"]]
            if out["acc"] is not None:
                tensors[out["acc"]] = v
            if out["codes"] is not None:
                c = apply_thresholds(v, la["thresholds"].astype(np.int64), la["direction"],
                                     layer["q"])
                if layer["pool"] == "max2":
                    c = _maxpool2(c)
                tensors[out["codes"]] = c
        else:  # head
            acc = conv_int(x, la["weight_bits"], 1, 0, layer["in_bits"],
                           layer.get("in_gain", 1), layer.get("in_offset", 0))
            logits_int = acc.sum(axis=(2, 3), dtype=np.int64)
            logits = (la["scale"][None, :] * logits_int.astype(np.float32)
                      + la["bias"][None, :]).astype(np.float32)
            tensors[out["logits"]] = logits_int
    return logits_int, logits, (tensors if keep_tensors else {})


def run(deploy, images_uint8, *, keep_tensors=True, batch_size=500):
    """Execute a deploy model on a batch of images with integer-only arithmetic.

    Parameters
    ----------
    deploy : DeployModel or str or os.PathLike
        A loaded model or a deploy file path.
    images_uint8 : numpy.ndarray
        ``(N, C, H, W)`` uint8 (``(N, H, W)`` is accepted for one channel).
    keep_tensors : bool
        Return every intermediate feature map (memory grows with N).
    batch_size : int
        Images processed at once (bounds the im2col memory).

    Returns
    -------
    GoldenResult
    """
    model = deploy if isinstance(deploy, DeployModel) else load(deploy)
    x = np.asarray(images_uint8)
    if x.ndim == 3 and model.input_shape[0] == 1:
        x = x[:, None]
    if x.dtype != np.uint8:
        raise TypeError(f"images_uint8 must be uint8, not {x.dtype}")
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(model.input_shape):
        raise ValueError(f"images_uint8 must be (N, {', '.join(map(str, model.input_shape))}), "
                         f"not {x.shape}")
    li, lf, parts = [], [], []
    for i in range(0, max(len(x), 1), batch_size):
        a, b, t = run_layers(model.layers, x[i:i + batch_size], keep_tensors)
        li.append(a)
        lf.append(b)
        parts.append(t)
    tensors = {}
    if keep_tensors:
        for name in parts[0]:
            tensors[name] = np.concatenate([p[name] for p in parts])
    return GoldenResult(np.concatenate(li), np.concatenate(lf), tensors)


def predict(deploy, images_uint8, batch_size=500):
    """Predicted classes ``(N,)`` (argmax of the float logits, ties to the lowest index)."""
    return run(deploy, images_uint8, keep_tensors=False, batch_size=batch_size).predictions
