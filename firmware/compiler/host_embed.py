"""Whether the host, not the EMBED, writes the first layer's codes (ARCHITECTURE 3, "what runs
where"): for a fully connected first layer, and for input codes wider than the EMBED writes.

A fully connected layer right after the image (``k = H = W``, ``pad = 0``: TFC's and SFC's
784 -> N layer) would need a ``k x k`` CONV with one busy lane per word-set, and its ``k`` does not
fit the descriptor's 4-bit field beyond 15. Flattened, it is a 1x1 conv over one pixel of
``C*d*H*W`` channels, every lane busy: the host looks the pixels up in the embedding table (or
takes them as they are, for ``raw_input``), writes the codes in code-bank layout and the program
LOADs them. The channel order ``c*H*W + y*W + x`` is the weights' own ``(cin, k, k)`` order, so the
weights only change shape.

An embedding with ``q > a_planes`` (Brevitas' 8-bit input quantizer) is looked up on the host too:
the EMBED writes at most ``a_planes`` bits per code, the CONV reads ``ceil(q/a_planes)`` sub-words.
"""

from .network import layer_inputs

__all__ = ["plan_host_embed"]


def plan_host_embed(network):
    """The host-side first layer, when the network needs one.

    Parameters
    ----------
    network : NetworkPlan
        Before the analysis: the decision reads the header only; the analysis then checks the
        layers (and that the flattened map fits) as usual.

    Returns
    -------
    dict or None
        ``{"reader": name of the layer reading the codes, "flat": bool}``, or None when the
        EMBED writes the first layer's codes.
    """
    layers = network.layers
    if len(layers) < 2:
        return None
    first, reader = layers[0], layers[1]
    if first["kind"] not in ("embed", "raw_input") or first["input"] != "image":
        return None
    name = (first.get("outputs") or {}).get("codes")
    readers = [L for L in layers if name in layer_inputs(L)]
    if reader["kind"] not in ("conv", "head") or readers != [reader] or reader["input"] != name:
        flat = False
    else:
        _, H, W = network.input_shape
        k = int(reader.get("k", 1))
        pad = int(reader.get("pad", 0)) if reader["kind"] == "conv" else 0
        flat = H * W > 1 and k == H == W and pad == 0
    wide = first["kind"] == "embed" and int(first["q"]) > network.config.a_planes
    if not flat and not wide:
        return None
    return {"reader": reader["name"] if flat else None, "flat": flat}
