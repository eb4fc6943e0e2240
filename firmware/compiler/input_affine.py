"""A layer's input affine ``a = in_gain * code - in_offset`` (ARCHITECTURE 1) on an accelerator
that multiplies the codes themselves: where it is exact, folded into the thresholds (a conv) or into
the host's decoding of the logits (the head); everywhere else refused.

With ``S[o]`` the sum of output channel ``o``'s weight signs over ``(cin, k, k)``, an unpadded
layer computes ``v = g * acc - offset * S[o] (+ residual)`` from the accelerator's
``acc = sum w * code``. So for a conv's codes (gain 1, or gain 2 without a residual, whose
integer unit the gain would change) ``v >= T`` is ``acc (+ residual) >= T'`` with
``T' = ceil((T + offset*S) / g)`` (``v <= T``: ``floor``); the head's ``logits_int`` is
``g * sum - H_out*W_out*offset*S[o]``. Padding makes an offset's share depend on how many taps
fall inside the map (a gain alone does not: padding is 0 either way), and an ``acc`` output is an int map with no place for a per-channel
correction: both are refused.
"""

import numpy as np

from .deploy_input import weight_bits
from .errors import layer_error

__all__ = ["input_affine", "check_input_affine", "weight_sign_sums", "folded_thresholds",
           "logits_correction"]


def input_affine(layer):
    """``(in_gain, in_offset)`` of a conv or head (``(1, 0)`` when absent)."""
    return int(layer.get("in_gain", 1)), int(layer.get("in_offset", 0))


def check_input_affine(layer, in_bits):
    """Refuse an input affine the accelerator cannot apply exactly (one-line ``CompileError``).

    Parameters
    ----------
    layer : dict
        A conv or head of the deploy header.
    in_bits : int
        The width of the codes it reads.
    """
    gain, offset = input_affine(layer)
    if gain not in (1, 2):
        raise layer_error(layer, f"in_gain={gain} outside 1..2")
    if not 0 <= offset <= gain * ((1 << in_bits) - 1):
        raise layer_error(layer, f"in_offset={offset} outside 0..{gain * ((1 << in_bits) - 1)} "
                                 f"(in_gain*(2^in_bits-1))")
    if (gain, offset) == (1, 0) or layer["kind"] == "head":
        return
    what = f"in_gain={gain}, in_offset={offset}"
    if offset and int(layer.get("pad", 0)) > 0:
        raise layer_error(layer, f"{what} on a padded conv (pad={layer['pad']}): the offset's share "
                                 f"depends on the position, the accelerator multiplies the codes")
    if (layer.get("outputs") or {}).get("acc"):
        raise layer_error(layer, f"{what} with an acc output: the int map would need a per-channel "
                                 f"correction the accelerator does not apply")
    if gain != 1 and layer.get("residual"):
        raise layer_error(layer, f"{what} with a residual: the gain would scale the residual")


def weight_sign_sums(arrays, layer):
    """int64 ``S[o]``: the sum of output channel ``o``'s weights as +-1 over ``(cin, k, k)``."""
    cout = int(layer["cout"]) if layer["kind"] == "conv" else int(layer["classes"])
    cin, k = int(layer["cin"]), int(layer.get("k", 1))
    bits = weight_bits(arrays, layer["name"], cout, cin, k).reshape(cout, -1).astype(np.int64)
    return 2 * bits.sum(axis=1) - cin * k * k


def folded_thresholds(arrays, layer):
    """A conv's int64 thresholds ``(cout, 2^q-1)`` on ``acc (+ residual)``: the deploy thresholds
    on ``v`` with the input affine folded in (the deploy thresholds when there is none)."""
    T = np.asarray(arrays[f"{layer['name']}.thresholds"], dtype=np.int64)
    gain, offset = input_affine(layer)
    if (gain, offset) == (1, 0):
        return T
    direction = np.asarray(arrays[f"{layer['name']}.direction"], dtype=np.int64)
    shifted = T + offset * weight_sign_sums(arrays, layer)[:, None]
    up = -((-shifted) // gain)                   # ceil: v >= T  <=>  acc >= ceil((T + oS) / g)
    down = shifted // gain                       # floor: v <= T  <=>  acc <= floor((T + oS) / g)
    return np.where(direction[:, None] < 0, down, up)


def logits_correction(arrays, layer, out_pixels):
    """The head's ``(gain, offset)`` with ``logits_int = gain * sums - offset``: int and int64
    ``(classes,)``, ``offset = out_pixels * in_offset * S``."""
    gain, offset = input_affine(layer)
    if offset == 0:
        return gain, np.zeros(int(layer["classes"]), np.int64)
    return gain, out_pixels * offset * weight_sign_sums(arrays, layer)
