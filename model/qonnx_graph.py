"""The graph walk of the QONNX importer: float tensors to deploy layers.

Walks the cleaned graph in topological order keeping, for every float tensor, what it is in
integer terms (see ``model/import_qonnx.py`` for the rules); :class:`GraphImporter` collects the
deploy layers and arrays.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from onnx import TensorProto

from .deploy import pack_bits
from .qonnx_nodes import (AFFINE_OPS, CHAIN_OPS, LAYOUT_OPS, MAX_ACTIVATION_BITS, QUANTIZER_OPS,
                          NodeEvaluator, QonnxImportError, affine_float64, binary_weights,
                          check_max_pool, code_map, codes_of, constant, node_error,
                          pixels_to_graph_input, quantizer_levels)
from .streamline import NotMonotone, accumulator_range, thresholds_from_codes


__all__ = ["GraphImporter"]


@dataclass
class _Image:
    nodes: list = field(default_factory=list)   # elementwise and layout nodes after the input


@dataclass
class _Codes:
    name: str           # deploy tensor
    bits: int
    gain: int
    offset: int
    scale: float
    shape: tuple        # (C, H, W)
    code_max: int
    layer: object       # producing conv layer (for a following max-pool) or None
    spatial: object = None   # None, or the divisor of a global pool (1: sum, H*W: mean)


@dataclass
class _Linear:
    layer: dict
    scale: np.ndarray   # (C,) float64
    shape: tuple        # (C, H, W) of the accumulator map
    rank: int           # rank of the float tensor (4: NCHW, 2: NC)
    chain: list = field(default_factory=list)
    pool_at: object = None
    spatial: object = None


@dataclass
class _Index:
    linear: _Linear


@dataclass
class _Lookup:
    """Part of a table look-up of the pixels (``model.export_qonnx``'s ``embed``).

    ``stage`` is ``"pixel"`` (the pixels as integers), ``"index"`` (plus ``256 * channel``),
    ``"looked up"`` (``(1, C, H, W, d)`` table rows) or ``"transposed"`` (``(1, C, d, H, W)``).
    """
    stage: str
    table: object = None   # (C, 256, d) codes once looked up
    bits: int = 0


class GraphImporter:
    """One import: ``GraphImporter(model, input_scale).run()`` returns the class count and
    leaves ``layers`` (header entries, with ``_``-prefixed working fields), ``arrays``,
    ``notes`` and ``graph_tensors``."""


    def __init__(self, model, input_scale):
        self.model = model
        self.evaluator = NodeEvaluator(model)
        self.input_scale = float(input_scale)
        self.layers = []
        self.arrays = {}
        self.states = {}
        self.notes = []
        self.graph_tensors = {}

    # --- helpers ---------------------------------------------------------------------------------

    def fail(self, node, reason):
        node_error(node, reason)

    def constant(self, node, index, what):
        return constant(self.evaluator, node, index, what)

    def rank(self, tensor):
        shape = self.model.get_tensor_shape(tensor)
        return len(shape) if shape is not None else 0

    def new_layer(self, entry):
        entry["name"] = f"L{len(self.layers)}"
        self.layers.append(entry)
        return entry

    # --- the graph walk --------------------------------------------------------------------------

    def run(self):
        graph = self.model.graph
        if len(graph.input) != 1:
            raise QonnxImportError(f"the graph has {len(graph.input)} inputs, expected one image")
        shape = self.model.get_tensor_shape(graph.input[0].name)
        if shape is None or len(shape) != 4 or shape[0] != 1:
            raise QonnxImportError(f"graph input shape {shape}: expected (1, C, H, W)")
        self.input_shape = tuple(int(s) for s in shape[1:])
        self.states[graph.input[0].name] = _Image()
        for node in graph.node:
            ins = [self.states.get(n) for n in node.input]
            if node.op_type == "Gather" and len(ins) == 2 and isinstance(ins[1], _Lookup):
                ins = [ins[1], ins[0]]   # the indices are computed, the table is the constant
            if ins and ins[0] is None and not (node.op_type in ("BipolarQuant", "Quant")
                                               and self.model.get_initializer(node.input[0])
                                               is not None):
                self.fail(node, "its input is neither the image nor computed from it")
            if ins and ins[0] is None:
                continue   # a weight quantizer: read by the layer that uses it
            self.step(node, ins)
        outputs = [self.states.get(o.name) for o in graph.output]
        final = [s for s in outputs if isinstance(s, (_Linear, _Index))]
        if not final:
            raise QonnxImportError("the graph output is not the affine output of a binary layer")
        # A graph with both the integer sum and its affine map as outputs (model.export_qonnx's)
        # gives the head its scale and bias from the one with the longer affine chain.
        classes = self.finish(max(final, key=lambda s: len(getattr(s, "linear", s).chain)))
        for entry in self.layers[:-1]:
            if entry["kind"] == "conv" and entry["outputs"] == {"acc": None, "codes": None}:
                # a layer whose output nothing reads keeps its accumulator as an output, so
                # that the deploy file holds every layer of the graph
                entry["outputs"]["acc"] = f"{entry['name']}_acc"
            self.plain_input(entry)
        return classes

    def step(self, node, ins):
        op, state = node.op_type, ins[0]
        out = node.output[0]
        if isinstance(state, _Image):
            if op in AFFINE_OPS[:4] + LAYOUT_OPS + ("Identity",):
                self.states[out] = _Image(state.nodes + [node])
            elif op == "Cast" and self.evaluator.attribute(node, "to") == TensorProto.FLOAT:
                self.states[out] = _Image(state.nodes + [node])   # float32 to float32
            elif op == "Cast":
                self.states[out] = self.pixel_indices(node, state)
            elif op in QUANTIZER_OPS:
                self.states[out] = self.embed(node, state)
            elif op in ("Conv", "Gemm", "MatMul"):
                self.states[out] = self.layer(node, self.raw_input(node, state))
            else:
                self.fail(node, "unsupported before the input quantizer")
            return
        if isinstance(state, _Lookup):
            self.states[out] = self.lookup_step(node, state)
            return
        if isinstance(state, _Codes):
            if op in ("Conv", "Gemm", "MatMul"):
                self.states[out] = self.layer(node, state)
            elif op in LAYOUT_OPS:
                shape = self.model.get_tensor_shape(out)
                kept = state.shape if state.spatial is None else (state.shape[0], 1, 1)
                size = int(np.prod(kept))
                if shape is None or list(shape) not in ([1, size], [1, *kept]):
                    self.fail(node, f"reshapes a {state.shape} map to {shape}; only flattening "
                                    f"to (1, {size}) is supported")
                self.states[out] = state
            elif op == "MaxPool":
                self.states[out] = self.max_pool_codes(node, state)
            elif op in ("GlobalAveragePool", "ReduceSum", "ReduceMean"):
                self.states[out] = _Codes(**{**state.__dict__,
                                             "spatial": self.spatial(node, state)})
            elif op in ("Mul", "Div") and self.model.get_initializer(node.input[1]) is not None:
                self.states[out] = self.scale_codes(node, state)
            elif op in ("Sub", "Add") and self.model.get_initializer(node.input[1]) is not None:
                self.states[out] = self.shift_codes(node, state)
            elif op == "Add":
                self.fail(node, "adds quantized activations; a residual add must add two binary "
                                "layers' accumulators of the same scale")
            else:
                self.fail(node, "unsupported on quantized activations")
            return
        if isinstance(state, _Linear):
            if op in CHAIN_OPS and len(ins) > 1 and isinstance(ins[1], _Linear):
                self.states[out] = self.residual_add(node, state, ins[1])
            elif op in CHAIN_OPS:
                for name in node.input[1:]:
                    if name and self.model.get_initializer(name) is None:
                        self.fail(node, f"input '{name}' must be a constant")
                self.states[out] = _Linear(**{**state.__dict__, "chain": state.chain + [node]})
            elif op in QUANTIZER_OPS:
                self.states[out] = self.fold(node, state)
            elif op == "MaxPool":
                check_max_pool(self.evaluator, node)
                self.only_consumer(node, node.input[0], "the un-pooled values are also used")
                if state.pool_at is not None or state.rank != 4:
                    self.fail(node, "a second or non-spatial max-pool before one quantizer")
                self.states[out] = _Linear(**{**state.__dict__, "pool_at": len(state.chain)})
            elif op in ("GlobalAveragePool", "ReduceSum", "ReduceMean"):
                # keepdims=0 (model.export_qonnx's ReduceSum) leaves (N, C): the affine nodes
                # after it broadcast over rank 2
                self.states[out] = _Linear(**{**state.__dict__,
                                              "spatial": self.spatial(node, state),
                                              "rank": self.rank(out) or state.rank})
            elif op in LAYOUT_OPS:
                if state.spatial is None and state.shape[1:] != (1, 1):
                    self.fail(node, "flattens a map of accumulators")
                self.states[out] = _Linear(**{**state.__dict__, "rank": 2})
            elif op in ("TopK", "ArgMax"):
                self.states[out] = _Index(state)
                if op == "TopK" and len(node.output) > 1:
                    self.states[node.output[1]] = _Index(state)
            else:
                self.fail(node, "unsupported after a binary layer")
            return
        self.fail(node, "unsupported after the network's output")

    # --- the input -------------------------------------------------------------------------------

    def embed(self, node, image):
        """The input quantizer as a 256-entry table per channel (``embed``, ``d = 1``)."""
        c, h, w = self.input_shape
        per_image = h * w
        runs = math.ceil(256 / per_image)
        table = np.full((c, 256), -1, dtype=np.int64)
        alpha, beta, bits, code_max = quantizer_levels(self.evaluator, node)
        for r in range(runs):
            pixels = np.minimum(np.arange(per_image) + r * per_image, 255).reshape(h, w)
            img = np.broadcast_to(pixels, (1, c, h, w)).astype(np.uint8)
            value = pixels_to_graph_input(img, self.input_scale)
            for pre in image.nodes:
                value = self.evaluator.run(pre, value)
            y = self.evaluator.run(node, value).astype(np.float64).reshape(c, per_image)
            codes = codes_of(node, y, alpha, beta, code_max)
            flat_pixels = pixels.reshape(-1)
            for ci in range(c):
                seen = table[ci, flat_pixels]
                if np.any((seen >= 0) & (seen != codes[ci])):
                    self.fail(node, "the input affine differs between pixels of one channel")
                table[ci, flat_pixels] = codes[ci]
        gain, offset, scale = code_map(node, alpha, beta)
        entry = self.new_layer({"kind": "embed", "input": "image", "d": 1, "q": bits})
        name = f"{entry['name']}_codes"
        entry["outputs"] = {"codes": name}
        self.arrays[f"{entry['name']}.table"] = table.astype(np.uint8)[:, :, None]
        self.graph_tensors[name] = (node.output[0], gain, offset, scale)
        if bits == 8:
            self.notes.append(f"8-bit input codes: an embed layer with q=8 (codes offset by "
                              f"{offset}); the accelerator's embedding unit takes q <= a_planes")
        return _Codes(name, bits, gain, offset, scale, self.input_shape, int(table.max()), None)

    def raw_input(self, node, image):
        """The pixels themselves, when the graph's first layer reads the scaled image."""
        entry = self.new_layer({"kind": "raw_input", "input": "image"})
        name = f"{entry['name']}_codes"
        entry["outputs"] = {"codes": name}
        codes = _Codes(name, 8, 1, 0, self.input_scale, self.input_shape, 255, None)
        # positive scalings and whole-step shifts of the pixels are the next layer's activation
        # map (model.export_qonnx writes in_gain/in_offset so); anything else needs a quantizer
        for pre in image.nodes:
            if pre.op_type in LAYOUT_OPS + ("Identity", "Cast"):
                continue
            if pre.op_type not in ("Mul", "Div", "Sub", "Add") \
                    or self.model.get_initializer(pre.input[1]) is None:
                self.fail(pre, "an input affine without an input quantizer")
            codes = self.scale_codes(pre, codes) if pre.op_type in ("Mul", "Div") \
                else self.shift_codes(pre, codes)
        return codes

    def scale_codes(self, node, codes):
        """Activations multiplied or divided by a positive scalar: a new ``scale`` (or gain).

        Integer codes doubled (``model.export_qonnx``'s ``in_gain`` 2) become gain 2; every
        other factor goes into the scale.
        """
        factor = self.constant(node, 1, "the factor").astype(np.float64)
        if factor.size != 1 or float(factor.reshape(-1)[0]) <= 0:
            self.fail(node, "only a positive scalar may scale quantized activations")
        f = float(factor.reshape(-1)[0])
        if node.op_type == "Mul" and f == 2 and codes.gain == 1 and codes.scale == 1:
            return _Codes(**{**codes.__dict__, "gain": 2, "offset": 2 * codes.offset})
        return _Codes(**{**codes.__dict__,
                         "scale": codes.scale * f if node.op_type == "Mul" else codes.scale / f})

    def shift_codes(self, node, codes):
        """A scalar subtracted from (or added to) activations: a change of their ``offset``.

        ``scale * (gain * code - offset) - c = scale * (gain * code - (offset + c / scale))``,
        exact when ``c / scale`` is an integer and the new offset stays in the contract's range
        ``0..gain * code_max``.
        """
        shift = self.constant(node, 1, "the shift").astype(np.float64)
        if shift.size != 1:
            self.fail(node, "only a scalar may shift quantized activations")
        steps = float(shift.reshape(-1)[0]) / codes.scale
        offset = codes.offset + (steps if node.op_type == "Sub" else -steps)
        if abs(offset - round(offset)) > 1e-6 or not 0 <= round(offset) <= codes.gain \
                * codes.code_max:
            self.fail(node, f"shifts the activations by {float(shift.reshape(-1)[0]):g}, not a "
                            f"whole number of steps giving an offset in 0..gain * code_max")
        return _Codes(**{**codes.__dict__, "offset": int(round(offset))})

    def pixel_indices(self, node, image):
        """The pixels cast to integers: the start of a table look-up (``embed`` of any ``d``)."""
        to = self.evaluator.attribute(node, "to")
        integer_types = (TensorProto.INT64, TensorProto.INT32, TensorProto.INT16,
                         TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32)
        if to not in integer_types:
            self.fail(node, "casts the input to a non-integer type (a float first layer such as "
                            "model.export_qonnx's host_conv is not imported: its float64 "
                            "arithmetic has no exact integer form)")
        if image.nodes:
            self.fail(node, "a table look-up of a transformed input (only of the pixels)")
        if self.input_scale != 1:
            self.fail(node, f"a table look-up indexed by pixel values 0..255, but the input "
                            f"scale is {self.input_scale:g} (use an input scale of 1)")
        return _Lookup("pixel")

    def lookup_step(self, node, lookup):
        """One node of ``Gather(table[C*256, d], pixel + 256*c)``, transposed and reshaped."""
        op = node.op_type
        c, h, w = self.input_shape
        if lookup.stage == "pixel" and op == "Add":
            offset = self.constant(node, 1, "the channel offset")
            expected = (256 * np.arange(c)).reshape(1, c, 1, 1)
            if offset.size != c or not np.array_equal(offset.reshape(1, c, 1, 1), expected):
                self.fail(node, "a table index other than pixel + 256 * channel")
            return _Lookup("index")
        if lookup.stage == "index" and op == "Gather":
            table = self.constant(node, 0, "the look-up table")
            if self.evaluator.attribute(node, "axis", 0) != 0 or table.ndim != 2 \
                    or table.shape[0] != c * 256:
                self.fail(node, f"a look-up table of shape {table.shape} on axis "
                                f"{self.evaluator.attribute(node, 'axis', 0)}: expected rows "
                                f"(channel, pixel), {c * 256} of them")
            if np.any(table != np.rint(table)) or table.min() < 0 or table.max() > 255:
                self.fail(node, "a look-up table of values other than codes 0..255")
            bits = max(1, int(table.max()).bit_length())
            datatype = self.model.get_tensor_datatype(node.input[0]).name
            if datatype.startswith("UINT"):
                if int(datatype[4:]) < bits:
                    self.fail(node, f"a table annotated {datatype} holds {bits}-bit codes")
                bits = int(datatype[4:])
            d = table.shape[1]
            return _Lookup("looked up", table.reshape(c, 256, d).astype(np.int64), bits)
        if lookup.stage == "looked up" and op == "Transpose":
            if list(self.evaluator.attribute(node, "perm", [])) != [0, 1, 4, 2, 3]:
                self.fail(node, "a transpose of the looked-up codes other than (N, C, d, H, W)")
            return _Lookup("transposed", lookup.table, lookup.bits)
        d = 0 if lookup.table is None else lookup.table.shape[2]
        if op in LAYOUT_OPS and (lookup.stage == "transposed"
                                 or (lookup.stage == "looked up" and d == 1)):
            shape = self.model.get_tensor_shape(node.output[0])
            if shape is None or list(shape) != [1, c * d, h, w]:
                self.fail(node, f"reshapes the looked-up codes to {shape}, not (1, {c * d}, {h}, "
                                f"{w})")
            entry = self.new_layer({"kind": "embed", "input": "image", "d": d,
                                    "q": lookup.bits})
            name = f"{entry['name']}_codes"
            entry["outputs"] = {"codes": name}
            self.arrays[f"{entry['name']}.table"] = lookup.table.astype(np.uint8)
            self.graph_tensors[name] = (node.output[0], 1, 0, 1.0)
            return _Codes(name, lookup.bits, 1, 0, 1.0, (c * d, h, w), int(lookup.table.max()),
                          None)
        self.fail(node, f"unexpected in a table look-up of the pixels (after its "
                        f"{lookup.stage} stage)")

    # --- binary layers ---------------------------------------------------------------------------

    def layer(self, node, codes):
        op = node.op_type
        if codes.bits > MAX_ACTIVATION_BITS and codes.layer is not None:
            self.fail(node, f"reads {codes.bits}-bit activations")
        bits, magnitude = binary_weights(self.evaluator, node)
        cin, h, w = codes.shape
        cout = bits.shape[0]
        chain = []
        if op == "Conv":
            kernel = self.evaluator.attribute(node, "kernel_shape", list(bits.shape[2:]))
            strides = self.evaluator.attribute(node, "strides", [1, 1])
            pads = self.evaluator.attribute(node, "pads", [0, 0, 0, 0])
            dilations = self.evaluator.attribute(node, "dilations", [1, 1])
            group = self.evaluator.attribute(node, "group", 1)
            auto_pad = self.evaluator.attribute(node, "auto_pad", b"NOTSET")
            if kernel[0] != kernel[1] or strides[0] != strides[1] or len(set(pads)) != 1 \
                    or set(dilations) != {1} or group != 1 \
                    or auto_pad not in (b"NOTSET", "NOTSET"):
                self.fail(node, f"kernel {kernel}, strides {strides}, pads {pads}, dilations "
                                f"{dilations}, group {group}: only square kernels, equal strides, "
                                f"one padding on all sides, no dilation or groups")
            if codes.spatial is not None:
                self.fail(node, "a convolution after global pooling")
            k, stride, pad = int(kernel[0]), int(strides[0]), int(pads[0])
            if len(node.input) > 2 and node.input[2]:
                chain.append(("bias", self.constant(node, 2, "the bias")))
        else:
            if self.rank(node.input[0]) != 2:
                self.fail(node, "a fully connected layer on an unflattened map")
            if op == "Gemm":
                if self.evaluator.attribute(node, "transA", 0) \
                        or self.evaluator.attribute(node, "alpha", 1.0) != 1.0 \
                        or self.evaluator.attribute(node, "beta", 1.0) != 1.0:
                    self.fail(node, "transA, alpha or beta other than 0, 1, 1")
                if len(node.input) > 2 and node.input[2]:
                    chain.append(("bias", self.constant(node, 2, "the bias")))
            k = 1 if codes.spatial is not None else h
            if codes.spatial is None and h != w:
                self.fail(node, f"a fully connected layer on a {h}x{w} map (needs a square map)")
            if bits.shape[1] != cin * k * k:
                self.fail(node, f"{bits.shape[1]} inputs, the map holds {cin * k * k}")
            bits = bits.reshape(cout, cin, k, k)
            stride, pad = 1, 0
        if bits.shape[1:] != (cin, k, k):
            self.fail(node, f"weight shape {bits.shape} does not match {cin} input channels")
        if pad >= k:
            self.fail(node, f"padding {pad} not below the kernel size {k}")
        if k > h + 2 * pad or k > w + 2 * pad:
            self.fail(node, "the kernel is larger than the padded map")
        ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        a_min, a_max = -codes.offset, codes.gain * codes.code_max - codes.offset
        v_lo, v_hi = accumulator_range(bits, a_min, a_max, pad > 0)
        entry = {"kind": "conv", "input": codes.name, "cin": cin, "cout": cout, "k": k,
                 "stride": stride, "pad": pad, "in_bits": codes.bits, "residual": None,
                 "q": None, "pool": None, "outputs": {"acc": None, "codes": None}}
        if codes.gain != 1:
            entry["in_gain"] = codes.gain
        if codes.offset != 0:
            entry["in_offset"] = codes.offset
        entry = self.new_layer(entry)
        entry["_bits"], entry["_range"], entry["_node"] = bits, (v_lo, v_hi), node
        state = _Linear(entry, codes.scale * magnitude, (cout, ho, wo),
                        self.rank(node.output[0]), spatial=codes.spatial)
        state.chain = [self.bias_node(node, c, state.rank) for _, c in chain]
        return state

    def bias_node(self, node, bias, rank):
        from onnx import helper
        shape = (1, -1, 1, 1) if rank == 4 else (1, -1)
        name = f"{node.output[0]}_bias"
        self.model.set_initializer(name, np.asarray(bias, dtype=np.float32).reshape(shape))
        return helper.make_node("Add", [node.output[0], name], [name + "_out"], name=name)

    def spatial(self, node, state):
        if node.op_type != "GlobalAveragePool":
            axes = self.evaluator.attribute(node, "axes")
            if axes is None and len(node.input) > 1 and node.input[1]:
                axes = list(self.constant(node, 1, "the axes"))
            if axes is None or sorted(int(a) % 4 for a in axes) != [2, 3]:
                self.fail(node, "only a reduction over both spatial axes")
        if state.spatial is not None:
            self.fail(node, "a second global pooling")
        _, h, w = state.shape
        return 1 if node.op_type == "ReduceSum" else h * w

    def only_consumer(self, node, tensor, why):
        if len(self.model.find_consumers(tensor)) != 1:
            self.fail(node, why)

    def max_pool_codes(self, node, codes):
        check_max_pool(self.evaluator, node)
        entry = codes.layer
        if entry is None or entry["pool"] is not None or entry["outputs"]["acc"] is not None:
            self.fail(node, "a max-pool must directly follow a binary layer's quantizer")
        self.only_consumer(node, node.input[0], "the un-pooled codes are also read elsewhere "
                                                "(a layer's codes are stored pooled)")
        c, h, w = codes.shape
        if h % 2 or w % 2:
            self.fail(node, f"a 2x2 max-pool of an odd {h}x{w} map")
        entry["pool"] = "max2"
        return _Codes(**{**codes.__dict__, "shape": (c, h // 2, w // 2), "layer": None})

    def residual_add(self, node, first, second):
        if node.op_type != "Add":
            self.fail(node, "combines two layers' outputs other than by Add")
        for s in (first, second):
            if s.chain or s.pool_at is not None or s.spatial is not None:
                self.fail(node, "a residual add needs both sides straight from a binary layer "
                                "(no batch norm, scale or pooling before the add)")
        # The layer that takes the residual is the one whose output nothing but this add reads;
        # the graph's order may put its convolution before the other's.
        inputs = {id(first): node.input[0], id(second): node.input[1]}

        def takes_residual(s):
            out = s.layer["outputs"]
            return len(self.model.find_consumers(inputs[id(s)])) == 1 and out["acc"] is None \
                and out["codes"] is None and s.layer["residual"] is None
        early, late = sorted((first, second), key=lambda s: self.layers.index(s.layer))
        if not takes_residual(late) and takes_residual(early):
            early, late = late, early
        self.only_consumer(node, inputs[id(late)], "the later layer's output is also used "
                                                   "without the residual (the contract adds it "
                                                   "before anything else)")
        if self.layers.index(late.layer) < self.layers.index(early.layer):
            # nothing reads the later layer yet (this add is its only reader): it may run last
            self.layers.remove(late.layer)
            self.layers.append(late.layer)
        if early.shape != late.shape:
            self.fail(node, f"adds maps of shapes {early.shape} and {late.shape}")
        if not np.allclose(early.scale, late.scale, rtol=1e-6, atol=0):
            self.fail(node, "adds accumulators of different scales (the binary layers' input "
                            "and weight scales must agree)")
        if late.layer["residual"] is not None:
            self.fail(node, "a layer with two residual adds")
        acc = f"{early.layer['name']}_acc"
        early.layer["outputs"]["acc"] = acc
        late.layer["residual"] = acc
        lo, hi = late.layer["_range"]
        late.layer["_range"] = (lo + early.layer["_range"][0], hi + early.layer["_range"][1])
        return _Linear(late.layer, late.scale, late.shape, late.rank)

    # --- folding a quantizer into thresholds -----------------------------------------------------

    def fold(self, node, state):
        entry = state.layer
        if state.spatial is not None:
            self.fail(node, "a quantizer after global pooling (pooling is only for the head)")
        if entry["outputs"]["codes"] is not None:
            self.fail(node, "a second quantizer of one layer's output")
        alpha, beta, bits, code_max = quantizer_levels(self.evaluator, node)
        if bits > MAX_ACTIVATION_BITS:
            self.fail(node, f"{bits}-bit activations; the accelerator's activations are 1 to "
                            f"{MAX_ACTIVATION_BITS} bits")
        gain, offset, scale = code_map(node, alpha, beta)
        v_lo, v_hi = entry["_range"]
        cout = len(v_lo)
        length = int((v_hi - v_lo).max()) + 1
        v = np.minimum(v_lo[:, None] + np.arange(length)[None, :], v_hi[:, None])
        x = (state.scale[:, None] * v).astype(np.float32)
        probe = x[None, :, :, None] if state.rank == 4 else x.T
        value, at_pool = probe, None
        for i, chain_node in enumerate(state.chain):
            if i == state.pool_at:
                at_pool = value
            value = self.evaluator.run(chain_node, value)
        if state.pool_at == len(state.chain):
            at_pool = value
        y = self.evaluator.run(node, value).astype(np.float64)
        y = y[0, :, :, 0] if state.rank == 4 else y.T
        codes = codes_of(node, y, alpha, beta, code_max)
        thresholds = np.empty((cout, (1 << bits) - 1), dtype=np.int64)
        direction = np.empty(cout, dtype=np.int8)
        for o in range(cout):
            n = int(v_hi[o] - v_lo[o]) + 1
            try:
                thresholds[o], direction[o] = thresholds_from_codes(codes[o, :n], int(v_lo[o]),
                                                                    bits)
            except NotMonotone:
                self.fail(node, f"channel {o}: the code is not monotone in the accumulator")
        if at_pool is not None:
            pre = at_pool[0, :, :, 0] if state.rank == 4 else at_pool.T
            for o in range(cout):
                order = np.argsort(pre[o], kind="stable")
                if np.any(np.diff(codes[o, order]) < 0):
                    self.fail(node, f"channel {o}: the max-pool does not commute with the nodes "
                                    f"after it")
            _, h, w = state.shape
            if h % 2 or w % 2:
                self.fail(node, f"a 2x2 max-pool of an odd {h}x{w} map")
            entry["pool"] = "max2"
        if thresholds.min() < -(1 << 31) or thresholds.max() >= (1 << 31):
            self.fail(node, "thresholds outside int32")
        name = f"{entry['name']}_codes"
        entry["outputs"]["codes"] = name
        entry["q"] = bits
        self.arrays[f"{entry['name']}.thresholds"] = thresholds.astype(np.int32)
        self.arrays[f"{entry['name']}.direction"] = direction
        entry["_codes"] = (v, codes)
        self.graph_tensors[name] = (node.output[0], gain, offset, scale)
        c, h, w = state.shape
        shape = (c, h // 2, w // 2) if entry["pool"] else state.shape
        return _Codes(name, bits, gain, offset, scale, shape, code_max,
                      None if entry["pool"] else entry)

    def plain_input(self, entry):
        """Fold a conv's input offset into its thresholds where that is position-independent.

        Without padding every tap is inside the image, so ``v = gain * acc_u - offset * S[o] (+
        residual)`` with ``acc_u`` the sum over the codes themselves and ``S[o]`` the sum of the
        weight signs: thresholds on ``acc_u`` then give the same codes, and the layer needs no
        ``in_gain``/``in_offset`` (fields the compiler does not implement). Not done when the
        accumulator is an output (a residual elsewhere needs ``v`` itself), nor with gain 2 and
        a residual. The new thresholds are searched again over every reachable ``acc_u``.
        """
        gain, offset = entry.get("in_gain", 1), entry.get("in_offset", 0)
        if entry["kind"] != "conv" or (gain, offset) == (1, 0) or entry["pad"] != 0 \
                or entry["outputs"]["acc"] is not None or entry["outputs"]["codes"] is None \
                or (gain != 1 and entry["residual"] is not None):
            return
        bits = entry["_bits"]
        signs = 2 * bits.reshape(bits.shape[0], -1).astype(np.int64).sum(axis=1) \
            - bits[0].size
        shift = offset * signs
        v, codes = entry["_codes"]
        cout, q = v.shape[0], entry["q"]
        rows, row_codes = [], []
        for o in range(cout):
            reachable = (v[o] + shift[o]) % gain == 0
            u = (v[o][reachable] + shift[o]) // gain
            u, first = np.unique(u, return_index=True)
            rows.append(u)
            row_codes.append(codes[o][reachable][first])
        length = max(len(r) for r in rows)
        v_u = np.stack([np.pad(r, (0, length - len(r)), mode="edge") for r in rows])
        codes_u = np.stack([np.pad(c, (0, length - len(c)), mode="edge") for c in row_codes])
        thresholds = np.empty((cout, (1 << q) - 1), dtype=np.int64)
        direction = np.empty(cout, dtype=np.int8)
        for o in range(cout):
            if np.any(np.diff(rows[o]) != 1):
                return   # a gap in the reachable sums: keep the general form
            thresholds[o], direction[o] = thresholds_from_codes(row_codes[o], int(rows[o][0]), q)
        if thresholds.min() < -(1 << 31) or thresholds.max() >= (1 << 31):
            return
        self.arrays[f"{entry['name']}.thresholds"] = thresholds.astype(np.int32)
        self.arrays[f"{entry['name']}.direction"] = direction
        entry["_codes"] = (v_u, codes_u)
        entry.pop("in_gain", None)
        entry.pop("in_offset", None)

    # --- the head --------------------------------------------------------------------------------

    def finish(self, final):
        state = final.linear if isinstance(final, _Index) else final
        entry = state.layer
        node = entry["_node"]
        if entry["outputs"]["codes"] is not None or entry["outputs"]["acc"] is not None \
                or entry["residual"] is not None or state.pool_at is not None:
            self.fail(node, "the output layer also feeds other layers or has a residual/pool")
        if entry["stride"] != 1 or entry["pad"] != 0:
            self.fail(node, "the output layer needs stride 1 and no padding")
        for chain_node in state.chain:
            if chain_node.op_type not in AFFINE_OPS:
                self.fail(chain_node, "a non-affine node after the output layer")
        # nothing reads the output layer, so it may run after any layer the graph sorted after it
        self.layers.remove(entry)
        self.layers.append(entry)
        classes = entry["cout"]
        rank = state.rank

        def affine(x):
            value = np.asarray(x, dtype=np.float64)
            value = value[None, :, None, None] if rank == 4 else value[None, :]
            for chain_node in state.chain:
                value = affine_float64(self.evaluator, chain_node, value)
            return value.reshape(-1)

        base = affine(np.zeros(classes))
        slope = affine(state.scale) - base
        divisor = state.spatial if state.spatial is not None else 1
        scale = slope / divisor
        bits = entry["_bits"]
        if np.any(scale == 0):
            self.fail(node, "a class whose logit does not depend on the input (scale 0)")
        # The head has no padding, so its input offset is a constant per class: with S[o] the
        # sum of the weight signs and P the output pixels summed, sum(a) = gain * sum(code) -
        # offset * S[o] * P goes into the scale and bias, and the file needs no in_gain/in_offset.
        gain, offset = entry.pop("in_gain", 1), entry.pop("in_offset", 0)
        _, h, w = state.shape
        signs = 2 * bits.reshape(classes, -1).astype(np.int64).sum(axis=1) - bits[0].size
        base = base - scale * offset * signs * (h * w)
        scale = scale * gain
        flip = scale < 0
        bits = np.where(flip[:, None, None, None], 1 - bits, bits).astype(np.uint8)
        k = entry["k"]
        header_entry = {"name": entry["name"], "kind": "head", "input": entry["input"],
                        "outputs": {"logits": f"{entry['name']}_logits"}, "cin": entry["cin"],
                        "classes": classes, "in_bits": entry["in_bits"]}
        if k != 1:
            header_entry["k"] = k
        self.layers[-1] = header_entry
        self.arrays[f"{entry['name']}.weight"] = pack_bits(bits)
        self.arrays[f"{entry['name']}.scale"] = np.abs(scale).astype(np.float32)
        self.arrays[f"{entry['name']}.bias"] = base.astype(np.float32)
        for layer in self.layers[:-1]:
            if layer["kind"] == "conv":
                self.arrays[f"{layer['name']}.weight"] = pack_bits(layer["_bits"])
        return classes
