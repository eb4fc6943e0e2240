"""The records the compiler's passes fill in: one per feature map (:class:`TensorPlacement`), one
per deploy layer (:class:`LayerPlan`) and one per row of the allocation map (:class:`Allocation`).

``model.deploy.TensorInfo`` describes a tensor of the network (name, kind, shape, bits, producing
layer). :class:`TensorPlacement` is what the compiler decides about one: its worst-case bound, its
liveness in layer indices, and where it lives in the accelerator (code bank, residual-buffer
region, EMBED window layout).
"""

from dataclasses import dataclass

__all__ = ["Allocation", "LayerPlan", "TensorPlacement"]


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
class TensorPlacement:
    """A feature map of the network as the compiler places it.

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
    flat : bool
        The host writes this map flattened (ARCHITECTURE 3, "fully connected first layer"): its bank
        holds one pixel of ``C*H*W`` channels, channel ``c*H*W + y*W + x``.
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
    flat: bool = False

    def bank_shape(self, p_i):
        """``(C, H, W)`` of the code map as its bank holds it: ``shape``, for a window-mode map
        the ``(k*p_i, h_out, w_out)`` windows (``k`` groups, one word per window row), for a
        flattened map ``(C*H*W, 1, 1)``."""
        if self.flat:
            C, H, W = self.shape
            return (C * H * W, 1, 1)
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
