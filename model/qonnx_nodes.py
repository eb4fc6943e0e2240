"""Reading QONNX nodes: quantizer levels, binary weights, affine maps, and running single nodes.

Shared by the graph walk (``model/qonnx_graph.py``) and the public API (``model/import_qonnx.py``).
Every refusal is a :class:`QonnxImportError` naming the node, its op and the reason.
"""

import math

import numpy as np
import onnxruntime
from onnx import TensorProto, helper
from qonnx.custom_op.general.bipolar_quant import binary_quant
from qonnx.custom_op.general.multithreshold import multithreshold
from qonnx.custom_op.general.quant import max_int, min_int, quant


__all__ = ["QonnxImportError", "node_error", "pixels_to_graph_input", "load_qonnx",
           "NodeEvaluator", "constant", "quantizer_levels", "code_map", "codes_of",
           "binary_weights", "check_max_pool", "affine_float64", "MAX_ACTIVATION_BITS",
           "AFFINE_OPS", "CHAIN_OPS", "QUANTIZER_OPS", "LAYOUT_OPS"]

# Codes between layers: the accelerator's activations are 1 or 2 bits (the input embedding may be
# up to 8).
MAX_ACTIVATION_BITS = 2
AFFINE_OPS = ("Mul", "Div", "Add", "Sub", "BatchNormalization")
CHAIN_OPS = AFFINE_OPS + ("Relu",)
QUANTIZER_OPS = ("Quant", "BipolarQuant", "MultiThreshold")
LAYOUT_OPS = ("Reshape", "Flatten")


class QonnxImportError(ValueError):
    """A graph the importer cannot map exactly onto the deploy contract (one-line message)."""


def node_error(node, reason):
    """Raise the one-line refusal for ``node``."""
    raise QonnxImportError(f"node '{node.name or node.output[0]}' ({node.op_type}): {reason}")


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


def _source_name(path_or_model):
    """How a refusal names the graph: its path, or "the model" for one given in memory."""
    if isinstance(path_or_model, (str, bytes)) or hasattr(path_or_model, "__fspath__"):
        return str(path_or_model)
    return "the model"


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
        raise QonnxImportError(f"{_source_name(path_or_model)}: not a readable ONNX model "
                               f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None
    except Exception as e:  # onnx's and qonnx's parsers raise their own exception types
        raise QonnxImportError(f"{_source_name(path_or_model)}: not a readable ONNX model "
                               f"({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''})") from None


class NodeEvaluator:
    """Runs single nodes of a QONNX graph on arbitrary-shaped float32 arrays.

    Standard ONNX ops run in onnxruntime (as in the QONNX executor), one session per node, built
    without shapes so that probes of any shape pass; Quant, BipolarQuant and MultiThreshold run
    through qonnx's own functions.

    Parameters
    ----------
    model : qonnx.core.modelwrapper.ModelWrapper
        The graph, for initializers, attributes and its opset.
    """

    CUSTOM = ("Quant", "BipolarQuant", "MultiThreshold")

    def __init__(self, model):
        self.model = model
        opsets = [o.version for o in model.model.opset_import if o.domain in ("", "ai.onnx")]
        self.opset = opsets[0] if opsets else 13
        self._sessions = {}

    def constant(self, name):
        """The initializer called ``name`` or None."""
        return self.model.get_initializer(name)

    def attribute(self, node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    def run(self, node, value, extra=None):
        """Output 0 of ``node`` with its first input ``value``; the others are initializers."""
        inputs = [value] + [self.constant(n) if n else None for n in node.input[1:]]
        if extra is not None:
            inputs = [value] + list(extra)
        op = node.op_type
        if op == "Quant":
            scale, zeropt, bits = inputs[1:4]
            mode = self.attribute(node, "rounding_mode", b"ROUND")
            mode = mode.decode() if isinstance(mode, bytes) else mode
            return quant(value, scale, zeropt, bits, self.attribute(node, "signed", 1),
                         self.attribute(node, "narrow", 0), mode).astype(np.float32)
        if op == "BipolarQuant":
            return binary_quant(value, inputs[1]).astype(np.float32)
        if op == "MultiThreshold":
            return multithreshold(value, inputs[1], self.attribute(node, "out_scale", 1.0),
                                  self.attribute(node, "out_bias", 0.0)).astype(np.float32)
        key = id(node)
        if key not in self._sessions:
            names = [f"in{i}" for i in range(len(node.input))]
            probe = helper.make_node(op, names, ["out"], domain=node.domain or "",
                                     **{a.name: helper.get_attribute_value(a)
                                        for a in node.attribute})
            types = [TensorProto.FLOAT if i == 0 else
                     helper.np_dtype_to_tensor_dtype(np.asarray(inputs[i]).dtype)
                     for i in range(len(names))]
            graph = helper.make_graph(
                [probe], "probe",
                [helper.make_tensor_value_info(n, t, None) for n, t in zip(names, types)],
                [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
            proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
            proto.ir_version = min(proto.ir_version, 10)
            self._sessions[key] = onnxruntime.InferenceSession(
                proto.SerializeToString(), providers=["CPUExecutionProvider"])
        feed = {f"in{i}": np.asarray(x) for i, x in enumerate(inputs)}
        feed["in0"] = np.asarray(value, dtype=np.float32)
        return self._sessions[key].run(None, feed)[0]


def constant(evaluator, node, index, what):
    """Input ``index`` of ``node`` as a constant array (refused when it is computed)."""
    value = evaluator.model.get_initializer(node.input[index])
    if value is None:
        node_error(node, f"{what} must be a constant")
    return np.asarray(value)


def quantizer_levels(evaluator, node):
    """``(alpha, beta, bits, code_max)``: output ``= alpha * code + beta``, code 0..code_max."""
    op = node.op_type
    if op == "Quant":
        scale = constant(evaluator, node, 1, "the scale").astype(np.float64)
        zero = constant(evaluator, node, 2, "the zero point").astype(np.float64)
        bw = constant(evaluator, node, 3, "the bit width").astype(np.float64)
        if scale.size != 1 or zero.size != 1 or bw.size != 1:
            node_error(node, "a per-channel activation quantizer (the next layer needs one "
                       "scale per tensor)")
        bw = float(bw.reshape(-1)[0])
        if bw != int(bw) or bw < 1:
            node_error(node, f"bit width {bw} is not a positive integer")
        bw = int(bw)
        signed = evaluator.attribute(node, "signed", 1)
        narrow = evaluator.attribute(node, "narrow", 0)
        lo, hi = min_int(signed, narrow, bw), max_int(signed, narrow, bw)
        z = float(zero.reshape(-1)[0])
        if z != int(z):
            node_error(node, f"zero point {z} is not an integer")
        s = float(scale.reshape(-1)[0])
        return s, s * (lo - z), bw, hi - lo
    if op == "BipolarQuant":
        scale = constant(evaluator, node, 1, "the scale").astype(np.float64)
        if scale.size != 1:
            node_error(node, "a per-channel activation quantizer")
        s = float(scale.reshape(-1)[0])
        return 2 * s, -s, 1, 1
    thresholds = constant(evaluator, node, 1, "the thresholds")
    levels = thresholds.shape[-1] + 1
    return (float(evaluator.attribute(node, "out_scale", 1.0)),
            float(evaluator.attribute(node, "out_bias", 0.0)),
            max(1, math.ceil(math.log2(levels))), levels - 1)


def code_map(node, alpha, beta):
    """``(gain, offset, scale)`` with ``alpha * code + beta = scale * (gain * code - offset)``."""
    if alpha <= 0:
        node_error(node, "a quantizer with a non-positive step")
    ratio = -beta / alpha
    for gain in (1, 2):
        offset = ratio * gain
        if abs(offset - round(offset)) < 1e-6:
            return gain, int(round(offset)), alpha / gain
    node_error(node, f"output levels {alpha:g} * code + {beta:g} are not a scaled integer "
               f"grid with an integer offset")


def codes_of(node, y, alpha, beta, code_max):
    codes = np.rint((y - beta) / alpha)
    if not np.allclose(codes, (y - beta) / alpha, atol=1e-3):
        node_error(node, "quantizer outputs off its own grid")
    return np.clip(codes, 0, code_max).astype(np.int64)

# --- binary layers -------------------------------------------------------------------------------


def binary_weights(evaluator, node):
    """``(bits (Cout, K...), per-channel magnitude)`` of a Conv/Gemm/MatMul's weight input."""
    name = node.input[1]
    weight = evaluator.model.get_initializer(name)
    producer = evaluator.model.find_producer(name)
    if weight is None and producer is not None and producer.op_type in ("Quant",
                                                                         "BipolarQuant"):
        raw = evaluator.model.get_initializer(producer.input[0])
        if raw is None:
            node_error(producer, "the weight must be a constant")
        if producer.op_type == "Quant":
            bw = evaluator.model.get_initializer(producer.input[3])
            if bw is None or np.size(bw) != 1:
                node_error(producer, "the weight's bit width must be a constant")
            if float(np.reshape(bw, -1)[0]) != 1:
                node_error(producer, f"{float(np.reshape(bw, -1)[0]):g}-bit weights; the "
                           f"accelerator's weights are binary")
        weight = evaluator.run(producer, raw.astype(np.float32))
    if weight is None:
        node_error(node, "the weight is neither a constant nor a quantizer of one")
    weight = np.asarray(weight, dtype=np.float64)
    if node.op_type == "MatMul":
        weight = weight.T
    elif node.op_type == "Gemm" and not evaluator.attribute(node, "transB", 0):
        weight = weight.T
    flat = weight.reshape(weight.shape[0], -1)
    magnitude = np.abs(flat).max(axis=1)
    if np.any(magnitude <= 0) or np.any(np.abs(flat) != magnitude[:, None]):
        node_error(node, "the weights are not binary (+s or -s for each output channel)")
    return (weight > 0).astype(np.uint8), magnitude


def check_max_pool(evaluator, node):
    kernel = evaluator.attribute(node, "kernel_shape")
    strides = evaluator.attribute(node, "strides", [1, 1])
    pads = evaluator.attribute(node, "pads", [0, 0, 0, 0])
    if list(kernel) != [2, 2] or list(strides) != [2, 2] or set(pads) != {0} \
            or evaluator.attribute(node, "ceil_mode", 0):
        node_error(node, f"kernel {list(kernel)}, strides {list(strides)}, pads {list(pads)}: "
                   f"only a 2x2 stride-2 max-pool without padding")


def affine_float64(evaluator, node, value):
    op = node.op_type
    consts = [np.asarray(evaluator.model.get_initializer(n), dtype=np.float64)
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
    eps = float(evaluator.attribute(node, "epsilon", 1e-5))
    shape = (1, -1) + (1,) * (value.ndim - 2)
    return ((value - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
            * gamma.reshape(shape) + beta.reshape(shape))
