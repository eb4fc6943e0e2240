"""The network as the compiler sees it: the deploy layers, the configuration, and what the
analysis decided (feature-map placements, layer plans, EMBED window mode). Every pass after the
analysis reads a :class:`NetworkPlan`."""

from dataclasses import dataclass, field

from contract import isa
from contract.config import AccelConfig
from firmware.layout import ceil_div

__all__ = ["NetworkPlan", "layer_inputs"]


def layer_inputs(layer):
    """Names of the feature maps a deploy layer reads (its input, and a conv's residual)."""
    ins = [] if layer["input"] == "image" else [layer["input"]]
    if layer["kind"] == "conv" and layer.get("residual"):
        ins.append(layer["residual"])
    return ins


@dataclass
class NetworkPlan:
    """A deploy network being compiled for one configuration.

    Members
    -------
    config : AccelConfig
    layers : list of dict
        The header's layers, in order.
    arrays : mapping of str to numpy.ndarray
        The deploy file's parameter arrays.
    input_shape : tuple
        ``(C, H, W)`` of the uint8 image.
    num_classes : int
    tensors : dict of str to TensorPlacement
        Every feature map, in production order (filled by the analysis; banks and residual
        regions by the buffer allocation).
    plans : list of LayerPlan
        One per layer (descriptors filled by the program emission).
    window_conv : str or None
        Name of the conv that reads the EMBED's windows (EMBED window mode), else None.
    window : dict or None
        ``k, stride, pad, h_out, w_out`` of those windows.
    host_embed : dict or None
        ``{"reader", "flat"}`` when the host writes the first layer's codes (see
        :func:`~.host_embed.plan_host_embed`), else None.
    table_split : int
        Table channels per image channel for the EMBED (see :func:`~.table_split.table_split`);
        the host sends each image byte this many times.
    """
    config: AccelConfig
    layers: list
    arrays: dict
    input_shape: tuple
    num_classes: int
    tensors: dict = field(default_factory=dict)
    plans: list = field(default_factory=list)
    window_conv: str = None
    window: dict = None
    host_embed: dict = None
    table_split: int = 1

    @classmethod
    def from_header(cls, header, arrays, config):
        """The network of a deploy header before any analysis."""
        inp = header["input"]
        return cls(config=config, layers=list(header["layers"]), arrays=arrays,
                   input_shape=(int(inp["channels"]), int(inp["height"]), int(inp["width"])),
                   num_classes=int(header["num_classes"]))

    def mac_geometry(self, layer):
        """``(h_in, w_in, k, stride, pad, n_cig)`` of a conv or head as its CONV descriptor runs
        it: the conv reading the EMBED's windows is a 1x1 conv over the ``h_out x w_out`` windows
        with ``k`` input groups; the layer reading a flattened map a 1x1 conv over one pixel of
        ``cin*k*k`` channels."""
        c = self.config
        if layer["name"] == self.window_conv:
            w = self.window
            return w["h_out"], w["w_out"], 1, 1, 0, w["k"]
        if self.host_embed and layer["name"] == self.host_embed["reader"]:
            k = int(layer.get("k", 1))
            return 1, 1, 1, 1, 0, ceil_div(int(layer["cin"]) * k * k, c.p_i)
        _, H, W = self.tensors[layer["input"]].shape
        n_cig = ceil_div(int(layer["cin"]), c.p_i)
        if layer["kind"] == "head":
            return H, W, int(layer.get("k", 1)), 1, 0, n_cig
        return H, W, int(layer["k"]), int(layer["stride"]), int(layer["pad"]), n_cig

    def embed_fields(self, layer):
        """The EMBED descriptor's geometry fields (window mode and table split included)."""
        C, H, W = self.input_shape
        s = self.table_split
        f = dict(op=isa.Op.EMBED, nsub=1, h_in=H, w_in=W, emb_c=C * s, emb_d=int(layer["d"]) // s,
                 emb_q=int(layer["q"]))
        if self.window is not None:
            f.update(self.window)
        return f

    def code_words(self, tensor):
        """Code-bank words a code map occupies, as its bank holds it."""
        c = self.config
        C, H, W = tensor.bank_shape(c.p_i)
        return H * W * ceil_div(C, c.p_i) * ceil_div(tensor.bits, c.a_planes)

    def residual_words(self, tensor):
        """Residual-buffer words an int map or the logits occupy."""
        C, H, W = tensor.shape
        n = ceil_div(C, self.config.p_o)
        return n if tensor.kind == "logits" else H * W * n
