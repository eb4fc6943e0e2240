"""Whether the EMBED writes the first conv's windows (ARCHITECTURE 3.3, "EMBED window mode")."""

from firmware.layout import ceil_div

from .limits import field_max
from .network import layer_inputs
from .table_split import table_split

__all__ = ["plan_window"]


def plan_window(network, im2col=True):
    """EMBED window mode, when the network allows it: a one-channel image's embedding read only by
    the next layer, a conv whose ``k x k`` windows of ``d`` channels fit one code-bank word per
    window row, the embedding table's channels and a code bank.

    Parameters
    ----------
    network : NetworkPlan
        Before the analysis: the decision reads the header only; the analysis then checks the
        layers as usual.
    im2col : bool
        False never chooses window mode.

    Returns
    -------
    tuple
        ``(conv name, dict of k, stride, pad, h_out, w_out)``, or ``(None, None)``: the network
        then compiles as without ``im2col``.
    """
    c, layers = network.config, network.layers
    if not im2col or len(layers) < 2:
        return None, None
    emb, conv = layers[0], layers[1]
    if emb["kind"] != "embed" or emb["input"] != "image" or conv["kind"] != "conv":
        return None, None
    C, H, W = network.input_shape
    name = (emb.get("outputs") or {}).get("codes")
    readers = [L for L in layers if name in layer_inputs(L)]
    if C != 1 or len(readers) != 1 or readers[0] is not conv or conv["input"] != name:
        return None, None
    d, q = int(emb["d"]), int(emb["q"])
    k, s, p = int(conv["k"]), int(conv["stride"]), int(conv["pad"])
    if int(conv["cin"]) != d or int(conv["in_bits"]) != q or ceil_div(q, c.a_planes) != 1:
        return None, None
    if table_split(d, q) != 1:            # window mode reads one table channel per window column
        return None, None
    if not (1 <= k <= min(c.emb_channels, field_max("k")) and 1 <= s <= field_max("stride")
            and 0 <= p <= field_max("pad") and 1 <= d and k * d <= c.p_i):
        return None, None
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    if not (1 <= Ho <= field_max("h_out") and 1 <= Wo <= field_max("w_out")) or Ho * Wo * k > c.bank_depth:
        return None, None
    return conv["name"], dict(k=k, stride=s, pad=p, h_out=Ho, w_out=Wo)
