"""A compiled network (:class:`CompiledModel`): the memory image, the program and the allocation
map, its I/O conventions (preparing an input, decoding the logits and dumps) and its text reports."""

from dataclasses import dataclass, field

import numpy as np

from contract.config import AccelConfig
from firmware import layout

from . import host_input

__all__ = ["CompiledModel"]


@dataclass
class CompiledModel:
    """A compiled network: memory image, program, allocation map and I/O conventions.

    Members
    -------
    config : AccelConfig
    memory : numpy.ndarray
        uint32 words of the memory image; ``memory[i]`` is main-memory word ``window_base + i``.
    program : list of list of int
        The packed descriptors (8 words each) in memory order, starting at ``prog_load_addr``.
    descriptors : list of dict
        Per descriptor: ``addr`` (word address), ``fields`` (dict for ``isa.pack``), ``note``.
    prog_load_addr, prog_image_addr : int
        Entry points: load parameters then run an image; run an image only.
    input_addr, input_words : int
        Where the host writes each input (``prepare_input(image)`` words).
    input_kind : str
        ``"image"`` (EMBED of HWC bytes), ``"raw"`` (EMBED raw), ``"host_codes"`` (the first layer is
        ``host_conv``; the host writes its code map in code-bank layout and the program LOADs it)
        or ``"host_embed"`` (the host writes the embed's or raw input's codes, flattened when
        ``host_flat``; see :mod:`.host_embed`).
    input_shape : tuple
        ``(C, H, W)`` of the uint8 image.
    image_repeat : int
        Input kind ``"image"``: how many times the host sends each channel of a pixel (channel
        ``c`` as channels ``c*image_repeat ..``), so that each of an embedding's table channels
        looks it up (``firmware.compiler.table_split``).
    output_addr, output_words : int
        Where the program STOREs the logits: ``n_cog`` residual words, ``res_bits``-wide signed lanes,
        as 32-bit lanes; ``decode_logits`` turns them into int64 ``logits_int``.
    window_base, window_limit : int
        The image's extent (limit exclusive), to program WINDOW_BASE/WINDOW_LIMIT.
    num_classes : int
    logits_res_base, logits_groups : int
        Residual buffer words holding the logits sums.
    allocations : list of Allocation
    layers : list of LayerPlan
    tensors : dict of str to TensorPlacement
    host_layer : dict or None
        The first layer the host computes (``input_kind`` ``"host_codes"`` or ``"host_embed"``).
    host_arrays : mapping or None
        The deploy arrays that layer's parameters come from.
    logits_name : str
        The head's logits tensor.
    dumps : list of (str, int, int)
        Per dumped feature map (``compile_model(..., dump=True)``): tensor name, main-memory word
        address, words.
    host_flat : bool
        The host writes the first layer's codes flattened (a fully connected reader).
    logits_gain : int
    logits_offset : numpy.ndarray or None
        The head's input affine (:func:`~.input_affine.logits_correction`):
        ``logits_int = logits_gain * sums - logits_offset``; None: the sums themselves.
    """
    config: AccelConfig
    memory: np.ndarray
    program: list
    descriptors: list
    prog_load_addr: int
    prog_image_addr: int
    input_addr: int
    input_words: int
    input_kind: str
    input_shape: tuple
    output_addr: int
    output_words: int
    window_base: int
    window_limit: int
    num_classes: int
    logits_res_base: int
    logits_groups: int
    allocations: list
    layers: list
    tensors: dict
    host_layer: dict = None
    host_arrays: dict = field(default=None, repr=False)
    logits_name: str = None
    dumps: list = field(default_factory=list)
    host_flat: bool = False
    logits_gain: int = 1
    logits_offset: np.ndarray = field(default=None, repr=False)
    image_repeat: int = 1

    # ---- I/O ---------------------------------------------------------------------------------
    def encode_image(self, image):
        """uint8 ``(C, H, W)`` image as main-memory words (HWC, 4 bytes per word, little-endian),
        each channel ``image_repeat`` times."""
        return host_input.image_words(image, self.input_shape, self.image_repeat)

    def host_prepare(self, image):
        """For a ``host_conv`` first layer: compute it on the host (model.golden's function) and
        return its code map in code-bank layout, ready for ``input_addr``."""
        if self.input_kind != "host_codes":
            raise ValueError("this model has no host_conv layer; use prepare_input")
        return host_input.host_codes_words(self.host_layer, self.host_arrays, image, self.input_shape,
                                           self.config)

    def prepare_input(self, image):
        """The words to write at ``input_addr`` for one image (whatever the input kind)."""
        if self.input_kind == "host_embed":
            return host_input.host_embed_words(self.host_layer, self.host_arrays, image, self.input_shape,
                                               self.config, self.host_flat)
        if self.input_kind == "host_codes":
            return self.host_prepare(image)
        return self.encode_image(image)

    def decode_logits(self, words):
        """``output_words`` words read from ``output_addr`` to int64 ``logits_int`` ``(classes,)``."""
        words = np.asarray(words, dtype=np.uint32).reshape(-1)
        if words.size != self.output_words:
            raise ValueError(f"expected {self.output_words} logits words, got {words.size}")
        sums = layout.decode_sums(words, self.num_classes, self.config)
        if self.logits_offset is None and self.logits_gain == 1:
            return sums
        offset = 0 if self.logits_offset is None else self.logits_offset
        return self.logits_gain * sums - offset

    def decode_dump(self, name, words):
        """Words read from a dump region (``dumps``: name, address, words; compiled with
        ``dump=True``) to the feature map as int64, as the program stores it: ``(C, H, W)`` as
        ``model.golden`` names it, except a map the EMBED wrote in window mode
        (``tensors[name].window``), which decodes to its ``(k*p_i, h_out, w_out)`` windows, padding
        lanes included, and a flattened map (``tensors[name].flat``), ``(C*H*W, 1, 1)``. Compare
        with ``as_stored(name, golden_map)``."""
        t = self.tensors[name]
        words = np.asarray(words, dtype=np.uint32).reshape(-1)
        if t.kind == "codes":
            C, H, W = t.bank_shape(self.config.p_i)
            return layout.decode_codes(words, C, H, W, t.bits, self.config)[:C].astype(np.int64)
        C, H, W = t.shape
        return layout.decode_ints(words, C, H, W, self.config)[:C].astype(np.int64)

    def as_stored(self, name, fmap):
        """A feature map of tensor ``name`` (``model.golden``'s, ``(C, H, W)`` or any shape of as
        many values) as :meth:`decode_dump` and ``refsim.feature_maps`` return it: ``shape``, or
        ``layout.window_codes`` of it for a window-mode map (every window position, zero padding
        and padding lane, so the comparison covers all the words the EMBED wrote)."""
        t = self.tensors[name]
        fmap = np.asarray(fmap, dtype=np.int64).reshape(t.shape)
        if t.flat:
            return fmap.reshape(-1, 1, 1)
        if t.window is None:
            return fmap
        return layout.window_codes(fmap, p_i=self.config.p_i, **t.window)

    def memory_dict(self):
        """The memory image as ``{word address: word}``."""
        return {self.window_base + i: int(w) for i, w in enumerate(self.memory)}

    # ---- reports -----------------------------------------------------------------------------
    def allocation_table(self):
        """The allocation map as an aligned text table (name, region, address, size)."""
        rows = [("name", "region", "addr", "size")]
        for a in self.allocations:
            rows.append((a.name, a.region, str(a.addr), str(a.size)))
        w = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = []
        for n, r in enumerate(rows):
            lines.append(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}")
            if n == 0:
                lines.append("  ".join("-" * x for x in w))
        return "\n".join(lines)

    @property
    def total_macs(self):
        """Network multiply-accumulates per image."""
        return sum(l.macs for l in self.layers)

    @property
    def ideal_cycles(self):
        """Ideal cycles per image of the conv and head layers (one word-set per cycle)."""
        return sum(l.ideal_cycles for l in self.layers if l.kind in ("conv", "head"))

    def layer_table(self):
        """Per layer: descriptor, output shape, MACs, ideal cycles and the worst-case bounds used."""
        rows = [("layer", "kind", "desc", "output", "MACs", "cycles", "|acc|<=", "|v|<=")]
        for p in self.layers:
            outs = [t for t in self.tensors.values() if self.layers[t.producer] is p]
            shape = " ".join("x".join(map(str, t.shape)) + (f"/{t.bits}b" if t.bits else "")
                             + (f" as {t.window['k']}x{t.window['k']} windows" if t.window else "")
                             + (" flattened by the host" if t.flat else "")
                             for t in outs)
            rows.append((p.name, p.kind, "" if p.desc_index is None else str(p.desc_index), shape,
                         str(p.macs), str(p.ideal_cycles), str(p.acc_bound or ""), str(p.v_bound or "")))
        w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(f"{x:<{w[i]}}" if i < 4 else f"{x:>{w[i]}}" for i, x in enumerate(r))
                         .rstrip() for r in rows)

    def summary(self):
        """Configuration, program, memory image, entry points, I/O, MACs and cycles, one per line."""
        n_image = sum(1 for d in self.descriptors if d["addr"] >= self.prog_image_addr)
        words = self.window_limit - self.window_base
        c = self.config
        return "\n".join([
            f"config: p_o={c.p_o} p_i={c.p_i} a_planes={c.a_planes} acc_bits={c.acc_bits} "
            f"res_bits={c.res_bits} mem_words={c.mem_words}",
            f"descriptors: {len(self.descriptors)} ({len(self.descriptors) - n_image} load, "
            f"{n_image} per image)",
            f"memory image: {words} words ({4 * words} bytes) at [{self.window_base}, {self.window_limit})",
            f"entry points: prog_load_addr={self.prog_load_addr} prog_image_addr={self.prog_image_addr}",
            f"input: {self.input_kind} {tuple(self.input_shape)}"
            + (f", each channel sent {self.image_repeat} times" if self.image_repeat > 1 else "")
            + f" at {self.input_addr} ({self.input_words} words); "
            f"logits: {self.num_classes} classes at {self.output_addr} ({self.output_words} words)",
            f"MACs per image: {self.total_macs}",
            f"ideal cycles per image (conv layers): {self.ideal_cycles}",
            self._batch_line(),
        ])

    def _batch_line(self):
        """The largest batch (``firmware.compiler.batch``) that fits main memory, and its extent."""
        from .batch import batch_layout_words, max_batch_size
        n = max_batch_size(self)
        return (f"largest batch: {n} images per start ({batch_layout_words(self, n)} words of "
                f"{self.config.mem_words} with the batch program, inputs and outputs)")
