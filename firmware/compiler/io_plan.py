"""The program's input and output conventions: what the host writes for each image, and what the
program stores as the logits."""

from dataclasses import dataclass

from contract.config import BUF_CODE_BANK0, BUF_RESIDUAL
from firmware.layout import ceil_div

from .records import TensorPlacement

__all__ = ["InputOutput", "plan_input_output"]


@dataclass
class InputOutput:
    """Sizes and kinds of a program's input and output regions.

    Members
    -------
    input_kind : str
        ``"image"`` (EMBED of HWC bytes, each channel ``table_split`` times), ``"raw"`` (EMBED
        raw), ``"host_codes"`` (the host computes the ``host_conv`` first layer and writes its code
        map in code-bank layout) or
        ``"host_embed"`` (the host writes the embed's or raw input's codes in code-bank layout,
        flattened for a fully connected reader; see :mod:`.host_embed`).
    input_words : int
        Main-memory words of one input.
    output_words : int
        Main-memory words of the logits (residual-buffer lanes).
    host_layer : dict or None
        The first layer the host computes (``host_codes``, ``host_embed``), else None.
    logits : TensorPlacement
        The head's logits.
    """
    input_kind: str
    input_words: int
    output_words: int
    host_layer: dict
    logits: TensorPlacement


def plan_input_output(network):
    """The :class:`InputOutput` of an analysed network whose buffers are allocated."""
    c = network.config
    first, head = network.layers[0], network.layers[-1]
    in_t = network.tensors[first["outputs"]["codes"]]
    logits = network.tensors[head["outputs"]["logits"]]
    C, H, W = network.input_shape
    host = first["kind"] == "host_conv" or network.host_embed is not None
    if host:
        input_kind = "host_codes" if first["kind"] == "host_conv" else "host_embed"
        Ci, Hi, Wi = in_t.bank_shape(c.p_i)
        input_words = Hi * Wi * ceil_div(Ci, c.p_i) * ceil_div(in_t.bits, c.a_planes) * c.lanes(BUF_CODE_BANK0)
    else:
        input_kind = "raw" if first["kind"] == "raw_input" else "image"
        input_words = ceil_div(C * network.table_split * H * W, 4)
    output_words = ceil_div(logits.shape[0], c.p_o) * c.lanes(BUF_RESIDUAL)
    return InputOutput(input_kind=input_kind, input_words=input_words, output_words=output_words,
                       host_layer=first if host else None, logits=logits)
