"""Exact streamlining: integer thresholds from a float graph's quantizer, found by search.

A binary-weight layer's float output is ``scale[o] * v`` for an integer ``v`` (the contract's
accumulator plus residual). The float graph then applies per-channel elementwise nodes (batch norm,
Mul, Add, ...) and a quantizer. Rather than solving ``quantizer(bn(scale * v))`` for ``v`` with a
float formula (which can be one off at a tie), the importer (``model/qonnx_graph.py``) evaluates
those very nodes, with the kernels the QONNX executor uses (``model/qonnx_nodes.py``), on every
integer ``v`` the layer can reach (:func:`accumulator_range`), and reads each threshold off as the
smallest ``v`` at which the code steps (:func:`thresholds_from_codes`).

The float graph's own accumulator is a float32 sum of float32 products, so it equals
``float32(scale[o] * v)`` (what is probed here) only up to its summation rounding: a code can
differ from the float graph's only where a quantizer boundary lies within that rounding (a few
units in the last place) of a reachable value.
"""

import numpy as np


__all__ = ["thresholds_from_codes", "accumulator_range", "NotMonotone"]


class NotMonotone(ValueError):
    """A channel's code is not a monotone function of its accumulator."""


def thresholds_from_codes(codes, v_min, q):
    """Thresholds and direction reproducing one channel's codes over a contiguous integer range.

    Parameters
    ----------
    codes : numpy.ndarray
        1-D integer codes; ``codes[i]`` is the code at accumulator value ``v_min + i``.
    v_min : int
    q : int
        Code width; ``2^q - 1`` thresholds are returned.

    Returns
    -------
    thresholds : numpy.ndarray
        int64 ``(2^q - 1,)``. Direction +1: ``T[k]`` is the smallest ``v`` with ``code >= k+1``
        (``v_max + 1`` when none); direction -1: the largest (``v_min - 1`` when none).
    direction : int
        +1 when the codes never decrease with ``v``, -1 when they never increase (a constant
        channel is +1).

    Raises
    ------
    NotMonotone
        When the codes go up and down.
    ValueError
        When a code exceeds ``2^q - 1``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 1 or codes.size == 0:
        raise ValueError("codes must be a non-empty 1-D array")
    if codes.min() < 0 or codes.max() > (1 << q) - 1:
        raise ValueError(f"codes must lie in 0..{(1 << q) - 1}")
    steps = np.diff(codes)
    v_max = v_min + codes.size - 1
    count = (1 << q) - 1
    thresholds = np.empty(count, dtype=np.int64)
    if np.all(steps >= 0):
        for k in range(count):
            passed = np.flatnonzero(codes >= k + 1)
            thresholds[k] = v_min + passed[0] if passed.size else v_max + 1
        return thresholds, 1
    if np.all(steps <= 0):
        for k in range(count):
            passed = np.flatnonzero(codes >= k + 1)
            thresholds[k] = v_min + passed[-1] if passed.size else v_min - 1
        return thresholds, -1
    raise NotMonotone("the code goes up and down as the accumulator grows")


def accumulator_range(weight_bits, a_min, a_max, padded):
    """Per-output-channel bounds of ``sum w * a`` over one output pixel.

    Parameters
    ----------
    weight_bits : numpy.ndarray
        ``(Cout, Cin, k, k)`` 0/1 (1 is +1, 0 is -1).
    a_min, a_max : int
        Bounds of the activation a code stands for.
    padded : bool
        Whether some taps may fall outside the image (they contribute 0).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        int64 ``(Cout,)`` lowest and highest reachable sums.
    """
    lo, hi = a_min, a_max
    if padded:
        lo, hi = min(lo, 0), max(hi, 0)
    plus = weight_bits.reshape(weight_bits.shape[0], -1).astype(np.int64).sum(axis=1)
    minus = weight_bits[0].size - plus
    return plus * lo - minus * hi, plus * hi - minus * lo
