"""Import a QONNX graph (Brevitas export or FINN-streamlined) as a deploy file, exactly.

``import_qonnx(path_or_model, input_scale=1.0) -> DeployModel`` walks the cleaned graph in
topological order and keeps, for every float tensor, what it is in integer terms:

- the image (graph input ``= input_scale * pixel``) and the elementwise nodes after it;
- codes: ``float = scale * (gain * code - offset)`` with an unsigned ``bits``-bit code, a
  per-tensor ``scale`` and ``gain`` 1 or 2 (2 for bipolar {-1,+1} activations);
- linear: ``float = chain(scale[o] * v)`` where ``v`` is a deploy layer's integer accumulator
  (plus residual) and ``chain`` the per-channel elementwise nodes seen since (batch norm, Mul, ...).

The input quantizer becomes an ``embed`` layer with ``d = 1``: its table is the float graph's own
output for each of the 256 pixel values, so any input affine is exact. Conv, Gemm and MatMul with
binary weights become ``conv`` layers (a Gemm on a flattened ``C x H x W`` map is a conv whose
kernel covers the map, ``k = H``, no padding, giving a 1 x 1 map); the quantizer that ends a
linear state is folded into that layer's integer thresholds by searching every reachable
accumulator value (``model/streamline.py``). The graph's output (after an optional TopK/ArgMax)
must be a linear state with an affine chain: that layer becomes the ``head``, ``logits = scale *
sum + bias``, a class whose scale is negative gets its weights negated.

Anything else is refused with one line naming the node, its op and the reason
(:class:`QonnxImportError`); the command line then exits 1 and writes nothing.
"""

import argparse
import math
import sys
from dataclasses import dataclass, field

import numpy as np

from .deploy import FORMAT, VERSION, DeployError, pack_bits, save, validate
from .streamline import NodeEvaluator, NotMonotone, accumulator_range, thresholds_from_codes


__all__ = ["QonnxImportError", "ImportReport", "import_qonnx", "pixels_to_graph_input", "load_qonnx",
           "MAX_ACTIVATION_BITS", "main"]

# Codes between layers: the accelerator's activations are 1 or 2 bits (the input embedding may be
# up to 8).
MAX_ACTIVATION_BITS = 2
_AFFINE_OPS = ("Mul", "Div", "Add", "Sub", "BatchNormalization")
_CHAIN_OPS = _AFFINE_OPS + ("Relu",)
_QUANTIZERS = ("Quant", "BipolarQuant", "MultiThreshold")
_LAYOUT_OPS = ("Reshape", "Flatten")


class QonnxImportError(ValueError):
    """A graph the importer cannot map exactly onto the deploy contract (one-line message)."""


def pixels_to_graph_input(images_uint8, input_scale):
    """The float32 graph input for uint8 pixels under ``input_scale``.

    ``pixel / (1 / input_scale)`` in float32 when ``1 / input_scale`` is an integer (``1/255``
    gives ``ToTensor``'s ``pixel / 255``), else ``pixel * input_scale``.
    """
    x = np.asarray(images_uint8).astype(np.float32)
    inverse = 1.0 / input_scale
    if abs(inverse - round(inverse)) < 1e-9 * inverse and round(inverse) != 1:
        return x / np.float32(round(inverse))
    return x * np.float32(input_scale)


def load_qonnx(path_or_model):
    """A cleaned, shape-inferred, sorted ``ModelWrapper`` from a path, ModelProto or wrapper."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.general import SortGraph
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.cleanup import cleanup_model
    try:
        model = path_or_model if isinstance(path_or_model, ModelWrapper) \
            else ModelWrapper(path_or_model if not hasattr(path_or_model, "__fspath__")
                              else str(path_or_model))
        model = cleanup_model(model)
        return model.transform(InferShapes()).transform(SortGraph())
    except (OSError, ValueError) as e:
        raise QonnxImportError(f"{path_or_model}: not a readable ONNX model "
                               f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None
    except Exception as e:  # onnx's and qonnx's parsers raise their own exception types
        raise QonnxImportError(f"{path_or_model}: not a readable ONNX model ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''})") from None


@dataclass
class ImportReport:
    """What :func:`import_qonnx` decided, beside the deploy model.

    Members
    -------
    notes : list of str
        One line per choice (the input scale used, 8-bit input codes, ...).
    probes : dict of str to (numpy.ndarray, numpy.ndarray)
        Per folded layer name: ``v`` ``(Cout, L)`` every reachable accumulator value (rows padded
        by repeating the last) and the float graph's codes at those values, for checking the
        thresholds against.
    graph_tensors : dict of str to (str, int, int, float)
        Per deploy codes tensor: the float graph's quantizer output it stands for and the map
        ``(gain, offset, scale)``: ``float = scale * (gain * code - offset)`` (before the
        layer's max-pool, if it has one).
    """
    notes: list
    probes: dict
    graph_tensors: dict


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


class _Importer:
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
        raise QonnxImportError(f"node '{node.name or node.output[0]}' ({node.op_type}): {reason}")

    def constant(self, node, index, what):
        value = self.model.get_initializer(node.input[index])
        if value is None:
            self.fail(node, f"{what} must be a constant")
        return np.asarray(value)

    def rank(self, tensor):
        shape = self.model.get_tensor_shape(tensor)
        return len(shape) if shape is not None else 0

    def new_layer(self, entry):
        entry["name"] = f"L{len(self.layers)}"
        self.layers.append(entry)
        return entry

    # --- the graph walk ----------------------------------------------------------------------------

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
        return self.finish(final[0])

    def step(self, node, ins):
        op, state = node.op_type, ins[0]
        out = node.output[0]
        if isinstance(state, _Image):
            if op in _AFFINE_OPS[:4] + _LAYOUT_OPS:
                self.states[out] = _Image(state.nodes + [node])
            elif op in _QUANTIZERS:
                self.states[out] = self.embed(node, state)
            elif op in ("Conv", "Gemm", "MatMul"):
                self.states[out] = self.layer(node, self.raw_input(node, state))
            else:
                self.fail(node, "unsupported before the input quantizer")
            return
        if isinstance(state, _Codes):
            if op in ("Conv", "Gemm", "MatMul"):
                self.states[out] = self.layer(node, state)
            elif op in _LAYOUT_OPS:
                self.states[out] = state
            elif op == "MaxPool":
                self.states[out] = self.max_pool_codes(node, state)
            elif op in ("GlobalAveragePool", "ReduceSum", "ReduceMean"):
                self.states[out] = _Codes(**{**state.__dict__, "spatial": self.spatial(node, state)})
            elif op in ("Mul", "Div") and self.model.get_initializer(node.input[1]) is not None:
                factor = self.constant(node, 1, "the factor").astype(np.float64)
                if factor.size != 1 or float(factor.reshape(-1)[0]) <= 0:
                    self.fail(node, "only a positive scalar may scale quantized activations")
                f = float(factor.reshape(-1)[0])
                self.states[out] = _Codes(**{**state.__dict__,
                                             "scale": state.scale * f if op == "Mul"
                                             else state.scale / f})
            elif op == "Add":
                self.fail(node, "adds quantized activations; a residual add must add two binary "
                                "layers' accumulators of the same scale")
            else:
                self.fail(node, "unsupported on quantized activations")
            return
        if isinstance(state, _Linear):
            if op in _CHAIN_OPS and len(ins) > 1 and isinstance(ins[1], _Linear):
                self.states[out] = self.residual_add(node, state, ins[1])
            elif op in _CHAIN_OPS:
                for name in node.input[1:]:
                    if name and self.model.get_initializer(name) is None:
                        self.fail(node, f"input '{name}' must be a constant")
                self.states[out] = _Linear(**{**state.__dict__, "chain": state.chain + [node]})
            elif op in _QUANTIZERS:
                self.states[out] = self.fold(node, state)
            elif op == "MaxPool":
                self.check_max_pool(node)
                self.only_consumer(node, node.input[0], "the un-pooled values are also used")
                if state.pool_at is not None or state.rank != 4:
                    self.fail(node, "a second or non-spatial max-pool before one quantizer")
                self.states[out] = _Linear(**{**state.__dict__, "pool_at": len(state.chain)})
            elif op in ("GlobalAveragePool", "ReduceSum", "ReduceMean"):
                self.states[out] = _Linear(**{**state.__dict__, "spatial": self.spatial(node, state)})
            elif op in _LAYOUT_OPS:
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
        alpha, beta, bits, code_max = self.quantizer_levels(node)
        for r in range(runs):
            pixels = np.minimum(np.arange(per_image) + r * per_image, 255).reshape(h, w)
            img = np.broadcast_to(pixels, (1, c, h, w)).astype(np.uint8)
            value = pixels_to_graph_input(img, self.input_scale)
            for pre in image.nodes:
                value = self.evaluator.run(pre, value)
            y = self.evaluator.run(node, value).astype(np.float64).reshape(c, per_image)
            codes = self.codes_of(node, y, alpha, beta, code_max)
            flat_pixels = pixels.reshape(-1)
            for ci in range(c):
                seen = table[ci, flat_pixels]
                if np.any((seen >= 0) & (seen != codes[ci])):
                    self.fail(node, "the input affine differs between pixels of one channel")
                table[ci, flat_pixels] = codes[ci]
        gain, offset, scale = self.code_map(node, alpha, beta)
        entry = self.new_layer({"kind": "embed", "input": "image", "d": 1, "q": bits})
        name = f"{entry['name']}_codes"
        entry["outputs"] = {"codes": name}
        self.arrays[f"{entry['name']}.table"] = table.astype(np.uint8)[:, :, None]
        self.graph_tensors[name] = (node.output[0], gain, offset, scale)
        if bits == 8:
            self.notes.append(f"8-bit input codes: embed layer with q=8 (offset {offset})")
        return _Codes(name, bits, gain, offset, scale, self.input_shape, int(table.max()), None)

    def raw_input(self, node, image):
        """The pixels themselves, when the graph's first layer reads the scaled image."""
        scale = self.input_scale
        for pre in image.nodes:
            if pre.op_type in _LAYOUT_OPS:
                continue
            factor = self.model.get_initializer(pre.input[1])
            if pre.op_type not in ("Mul", "Div") or factor is None or np.size(factor) != 1 \
                    or float(np.reshape(factor, -1)[0]) <= 0:
                self.fail(pre, "an input affine without an input quantizer")
            f = float(np.reshape(factor, -1)[0])
            scale = scale * f if pre.op_type == "Mul" else scale / f
        entry = self.new_layer({"kind": "raw_input", "input": "image"})
        name = f"{entry['name']}_codes"
        entry["outputs"] = {"codes": name}
        return _Codes(name, 8, 1, 0, scale, self.input_shape, 255, None)

    # --- quantizers ---------------------------------------------------------------------------------

    def quantizer_levels(self, node):
        """``(alpha, beta, bits, code_max)``: output ``= alpha * code + beta``, code 0..code_max."""
        op = node.op_type
        if op == "Quant":
            from qonnx.custom_op.general.quant import max_int, min_int
            scale = self.constant(node, 1, "the scale").astype(np.float64)
            zero = self.constant(node, 2, "the zero point").astype(np.float64)
            bw = self.constant(node, 3, "the bit width").astype(np.float64)
            if scale.size != 1 or zero.size != 1 or bw.size != 1:
                self.fail(node, "a per-channel activation quantizer (the next layer needs one "
                                "scale per tensor)")
            bw = float(bw.reshape(-1)[0])
            if bw != int(bw) or bw < 1:
                self.fail(node, f"bit width {bw} is not a positive integer")
            bw = int(bw)
            signed = self.evaluator.attribute(node, "signed", 1)
            narrow = self.evaluator.attribute(node, "narrow", 0)
            lo, hi = min_int(signed, narrow, bw), max_int(signed, narrow, bw)
            z = float(zero.reshape(-1)[0])
            if z != int(z):
                self.fail(node, f"zero point {z} is not an integer")
            s = float(scale.reshape(-1)[0])
            return s, s * (lo - z), bw, hi - lo
        if op == "BipolarQuant":
            scale = self.constant(node, 1, "the scale").astype(np.float64)
            if scale.size != 1:
                self.fail(node, "a per-channel activation quantizer")
            s = float(scale.reshape(-1)[0])
            return 2 * s, -s, 1, 1
        thresholds = self.constant(node, 1, "the thresholds")
        levels = thresholds.shape[-1] + 1
        return (float(self.evaluator.attribute(node, "out_scale", 1.0)),
                float(self.evaluator.attribute(node, "out_bias", 0.0)),
                max(1, math.ceil(math.log2(levels))), levels - 1)

    def code_map(self, node, alpha, beta):
        """``(gain, offset, scale)`` with ``alpha * code + beta = scale * (gain * code - offset)``."""
        if alpha <= 0:
            self.fail(node, "a quantizer with a non-positive step")
        ratio = -beta / alpha
        for gain in (1, 2):
            offset = ratio * gain
            if abs(offset - round(offset)) < 1e-6:
                return gain, int(round(offset)), alpha / gain
        self.fail(node, f"output levels {alpha:g} * code + {beta:g} are not a scaled integer "
                        f"grid with an integer offset")

    def codes_of(self, node, y, alpha, beta, code_max):
        codes = np.rint((y - beta) / alpha)
        if not np.allclose(codes, (y - beta) / alpha, atol=1e-3):
            self.fail(node, "quantizer outputs off its own grid")
        return np.clip(codes, 0, code_max).astype(np.int64)

    # --- binary layers -------------------------------------------------------------------------------

    def binary_weights(self, node):
        """``(bits (Cout, K...), per-channel magnitude)`` of a Conv/Gemm/MatMul's weight input."""
        name = node.input[1]
        weight = self.model.get_initializer(name)
        producer = self.model.find_producer(name)
        if weight is None and producer is not None and producer.op_type in ("Quant",
                                                                             "BipolarQuant"):
            raw = self.model.get_initializer(producer.input[0])
            if raw is None:
                self.fail(producer, "the weight must be a constant")
            if producer.op_type == "Quant":
                bw = self.model.get_initializer(producer.input[3])
                if bw is None or np.size(bw) != 1:
                    self.fail(producer, "the weight's bit width must be a constant")
                if float(np.reshape(bw, -1)[0]) != 1:
                    self.fail(producer, f"{float(np.reshape(bw, -1)[0]):g}-bit weights; the "
                                        f"accelerator's weights are binary")
            weight = self.evaluator.run(producer, raw.astype(np.float32))
        if weight is None:
            self.fail(node, "the weight is neither a constant nor a quantizer of one")
        weight = np.asarray(weight, dtype=np.float64)
        if node.op_type == "MatMul":
            weight = weight.T
        elif node.op_type == "Gemm" and not self.evaluator.attribute(node, "transB", 0):
            weight = weight.T
        flat = weight.reshape(weight.shape[0], -1)
        magnitude = np.abs(flat).max(axis=1)
        if np.any(magnitude <= 0) or np.any(np.abs(flat) != magnitude[:, None]):
            self.fail(node, "the weights are not binary (+s or -s for each output channel)")
        return (weight > 0).astype(np.uint8), magnitude

    def layer(self, node, codes):
        op = node.op_type
        if codes.bits > MAX_ACTIVATION_BITS and codes.layer is not None:
            self.fail(node, f"reads {codes.bits}-bit activations")
        bits, magnitude = self.binary_weights(node)
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

    def check_max_pool(self, node):
        kernel = self.evaluator.attribute(node, "kernel_shape")
        strides = self.evaluator.attribute(node, "strides", [1, 1])
        pads = self.evaluator.attribute(node, "pads", [0, 0, 0, 0])
        if list(kernel) != [2, 2] or list(strides) != [2, 2] or set(pads) != {0} \
                or self.evaluator.attribute(node, "ceil_mode", 0):
            self.fail(node, f"kernel {list(kernel)}, strides {list(strides)}, pads {list(pads)}: "
                            f"only a 2x2 stride-2 max-pool without padding")

    def only_consumer(self, node, tensor, why):
        if len(self.model.find_consumers(tensor)) != 1:
            self.fail(node, why)

    def max_pool_codes(self, node, codes):
        self.check_max_pool(node)
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
        early, late = sorted((first, second), key=lambda s: self.layers.index(s.layer))
        late_input = node.input[0] if late is first else node.input[1]
        self.only_consumer(node, late_input, "the later layer's output is also used without the "
                                             "residual (the contract adds it before anything else)")
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

    # --- folding a quantizer into thresholds --------------------------------------------------------

    def fold(self, node, state):
        entry = state.layer
        if state.spatial is not None:
            self.fail(node, "a quantizer after global pooling (pooling is only for the head)")
        if entry["outputs"]["codes"] is not None:
            self.fail(node, "a second quantizer of one layer's output")
        alpha, beta, bits, code_max = self.quantizer_levels(node)
        if bits > MAX_ACTIVATION_BITS:
            self.fail(node, f"{bits}-bit activations; the accelerator's activations are 1 to "
                            f"{MAX_ACTIVATION_BITS} bits")
        gain, offset, scale = self.code_map(node, alpha, beta)
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
        codes = self.codes_of(node, y, alpha, beta, code_max)
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

    # --- the head ----------------------------------------------------------------------------------

    def finish(self, final):
        state = final.linear if isinstance(final, _Index) else final
        entry = state.layer
        node = entry["_node"]
        if entry is not self.layers[-1]:
            self.fail(node, "the output layer is not the last binary layer")
        if entry["outputs"]["codes"] is not None or entry["outputs"]["acc"] is not None \
                or entry["residual"] is not None or state.pool_at is not None:
            self.fail(node, "the output layer also feeds other layers or has a residual/pool")
        if entry["stride"] != 1 or entry["pad"] != 0:
            self.fail(node, "the output layer needs stride 1 and no padding")
        for chain_node in state.chain:
            if chain_node.op_type not in _AFFINE_OPS:
                self.fail(chain_node, "a non-affine node after the output layer")
        classes = entry["cout"]
        rank = state.rank

        def affine(x):
            value = np.asarray(x, dtype=np.float64)
            value = value[None, :, None, None] if rank == 4 else value[None, :]
            for chain_node in state.chain:
                value = self.affine_float64(chain_node, value)
            return value.reshape(-1)

        base = affine(np.zeros(classes))
        slope = affine(state.scale) - base
        divisor = state.spatial if state.spatial is not None else 1
        scale = slope / divisor
        bits = entry["_bits"]
        if np.any(scale == 0):
            self.fail(node, "a class whose logit does not depend on the input (scale 0)")
        flip = scale < 0
        bits = np.where(flip[:, None, None, None], 1 - bits, bits).astype(np.uint8)
        k = entry["k"]
        header_entry = {"name": entry["name"], "kind": "head", "input": entry["input"],
                        "outputs": {"logits": f"{entry['name']}_logits"}, "cin": entry["cin"],
                        "classes": classes, "in_bits": entry["in_bits"]}
        if k != 1:
            header_entry["k"] = k
        for key in ("in_gain", "in_offset"):
            if key in entry:
                header_entry[key] = entry[key]
        self.layers[-1] = header_entry
        self.arrays[f"{entry['name']}.weight"] = pack_bits(bits)
        self.arrays[f"{entry['name']}.scale"] = np.abs(scale).astype(np.float32)
        self.arrays[f"{entry['name']}.bias"] = base.astype(np.float32)
        for layer in self.layers[:-1]:
            if layer["kind"] == "conv":
                self.arrays[f"{layer['name']}.weight"] = pack_bits(layer["_bits"])
        return classes

    def affine_float64(self, node, value):
        op = node.op_type
        consts = [np.asarray(self.model.get_initializer(n), dtype=np.float64)
                  for n in node.input[1:]]
        if op == "Mul":
            return value * consts[0]
        if op == "Div":
            return value / consts[0]
        if op == "Add":
            return value + consts[0]
        if op == "Sub":
            return value - consts[0]
        gamma, beta, mean, var = consts[:4]
        eps = float(self.evaluator.attribute(node, "epsilon", 1e-5))
        shape = (1, -1) + (1,) * (value.ndim - 2)
        return ((value - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
                * gamma.reshape(shape) + beta.reshape(shape))


def import_qonnx(path_or_model, *, input_scale=1.0, variant="qonnx", return_report=False):
    """Convert a QONNX graph into a validated deploy model.

    Parameters
    ----------
    path_or_model : str, os.PathLike, onnx.ModelProto or qonnx ModelWrapper
        A Brevitas ``export_qonnx`` graph or a FINN-streamlined one.
    input_scale : float
        The graph input for pixel value ``p`` is ``p * input_scale`` (see
        :func:`pixels_to_graph_input`); 1 by default, ``1/255`` for ``ToTensor`` images.
    variant : str
        The deploy header's ``variant``.
    return_report : bool
        Also return an :class:`ImportReport`.

    Returns
    -------
    DeployModel, or (DeployModel, ImportReport) with ``return_report``

    Raises
    ------
    QonnxImportError
        One line naming the node, its op and why the graph cannot be imported exactly.
    """
    if not isinstance(input_scale, (int, float)) or isinstance(input_scale, bool):
        raise TypeError(f"input_scale must be a number, not {type(input_scale).__name__}")
    if not (math.isfinite(input_scale) and input_scale > 0):
        raise ValueError(f"input_scale must be positive and finite, not {input_scale}")
    model = load_qonnx(path_or_model)
    importer = _Importer(model, input_scale)
    classes = importer.run()
    layers = [{k: v for k, v in entry.items() if not k.startswith("_")}
              for entry in importer.layers]
    c, h, w = importer.input_shape
    header = {"format": FORMAT, "version": VERSION,
              "input": {"channels": c, "height": h, "width": w}, "num_classes": classes,
              "variant": variant, "layers": layers,
              "training": {"source": "qonnx import", "input_scale": input_scale}}
    try:
        deploy = validate(header, importer.arrays)
    except DeployError as e:
        raise QonnxImportError(f"the imported network violates the deploy contract: {e}") \
            from None
    notes = [f"input scale {input_scale:g}: pixel p enters the graph as p * {input_scale:g}"]
    report = ImportReport(notes + importer.notes,
                          {e["name"]: e["_codes"] for e in importer.layers if "_codes" in e},
                          importer.graph_tensors)
    return (deploy, report) if return_report else deploy


def main(argv=None):
    """``python -m model.import_qonnx MODEL.onnx -o MODEL.npz [--input-scale S]``."""
    parser = argparse.ArgumentParser(prog="python -m model.import_qonnx",
                                     description="Import a QONNX graph as a deploy file.")
    parser.add_argument("model", help="QONNX (.onnx) file")
    parser.add_argument("-o", "--output", required=True, help="deploy file to write (.npz)")
    parser.add_argument("--input-scale", default="1",
                        help="graph input per pixel unit: 1 (pixels 0..255, default) or e.g. "
                             "1/255 for [0,1] images")
    args = parser.parse_args(argv)
    try:
        text = args.input_scale
        if "/" in text:
            num, den = text.split("/", 1)
            scale = float(num) / float(den)
        else:
            scale = float(text)
    except (ValueError, ZeroDivisionError):
        print(f"error: --input-scale {args.input_scale!r} is not a number", file=sys.stderr)
        return 1
    try:
        deploy, report = import_qonnx(args.model, input_scale=scale, return_report=True)
        save(args.output, deploy.header, deploy.arrays)
    except (QonnxImportError, DeployError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # onnxruntime or qonnx refusing a malformed graph
        print(f"error: {args.model}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
              file=sys.stderr)
        return 1
    kinds = ", ".join(f"{layer['name']} {layer['kind']}" for layer in deploy.header["layers"])
    print(f"imported {args.model} -> {args.output}: {kinds}")
    for note in report.notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
