"""Export a deploy file as a QONNX graph, so that a tool we did not write checks it.

Usage::

    python -m model.export_qonnx MODEL.npz -o MODEL.onnx [--batch-size N]

Every layer of docs/ARCHITECTURE.md section 1 becomes standard ONNX (opset 11) plus QONNX's
``MultiThreshold`` (domain ``qonnx.custom_op.general``), with QONNX datatype annotations
(``finn_datatype``): the image ``UINT8``, the embedding table and every codes tensor ``UINTq``,
binary weights ``BIPOLAR`` (float initializers of -1 and +1), accumulators and residual sums
``INTn`` with ``n`` from their bound. Tensors keep the deploy file's names (helper tensors are
``"<layer>.<what>"``; deploy names cannot contain a dot). The graph outputs are the integer logits
(the head's tensor name) and the float logits (that name plus ``".float"``). A layer's input
mapping (``in_gain``/``in_offset``) is a ``Mul`` and a ``Sub`` on its codes before the ``Conv``, so
that the convolution's zero padding stays 0; a head's ``k`` and a fully connected conv (``k`` the
map's size) are plain ``Conv`` kernels.

Exactness. Integers are held in float32 only where they are provably exact: every partial sum of
a tensor is bounded by the sum of its terms' magnitudes, ``cin*k*k*max|a|`` for a conv
accumulator (``max|a| = 2^bits-1`` for plain codes, ``max(offset, gain*(2^bits-1) - offset)`` with
an input mapping), plus the residual's bound for a residual sum, the output pixels times the
per-pixel bound for the head's sum over pixels; float32 holds every integer below ``2^24``, so
whatever order the runtime sums in, the result is the integer. A tensor whose bound reaches ``2^24`` is held in float64
instead (exact below ``2^53``): its convolution runs as float32 convolutions over groups of input
channels, each group's bound below ``2^24``, whose results are cast to float64 and summed.
Thresholds are clamped to ``+-(bound+1)`` of the value they are compared with (which changes no
comparison) so that they too are exact in the value's type.

``host_conv`` (the float first layer) follows the contract's float64 accumulation: ONNX Runtime has
no float64 ``Conv``, so the layer is an im2col ``Gather`` and a float64 ``MatMul`` on the float32
``pixel / 255``, then the float64 bias and thresholds. It equals ``model.golden`` except where a
pre-activation lies within float64 rounding (~1e-15 relative) of a threshold, where the two sum in
different orders.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from .deploy import DeployError, DeployModel, load


__all__ = ["export_qonnx", "FLOAT32_EXACT_LIMIT", "main"]

# Integers strictly below this magnitude are exact in float32 (24-bit significand).
FLOAT32_EXACT_LIMIT = 1 << 24
# Integers below this magnitude are exact in float64.
_FLOAT64_EXACT_LIMIT = 1 << 53
_QONNX_DOMAIN = "qonnx.custom_op.general"
_ONNX_OPSET = 11

_ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
         np.dtype(np.int64): TensorProto.INT64}


def _signed_type(bound):
    """Name of the narrowest QONNX signed integer type holding ``-bound..bound``."""
    return f"INT{int(bound).bit_length() + 1}"


class _GraphBuilder:
    """Collects nodes, initializers and datatype annotations; tracks each integer tensor's bound."""

    def __init__(self, exact_limit):
        self.exact_limit = exact_limit
        self.nodes = []
        self.initializers = []
        self.datatypes = {}
        self.bounds = {}  # tensor name -> bound on |value| (integer tensors)
        self.code_bits = {}  # codes tensor name -> bits
        self.activation_bound = {}  # mapped activations tensor name -> bound on |a|

    def wide(self, bound):
        """Whether an integer tensor of this bound must be held in float64."""
        if bound >= _FLOAT64_EXACT_LIMIT:
            raise ValueError(f"an integer bound of {bound} exceeds 2^53: not exactly representable")
        return bound >= self.exact_limit

    def dtype(self, name):
        """NumPy type of the float container of an integer tensor."""
        return np.float64 if self.wide(self.bounds[name]) else np.float32

    def constant(self, name, array, datatype=None):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        if datatype is not None:
            self.datatypes[name] = datatype
        return name

    def node(self, op_type, inputs, output, name, domain="", **attributes):
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=name,
                                           domain=domain, **attributes))
        return output

    def integer(self, name, bound, datatype=None):
        """Record an integer tensor's bound and annotation (by default ``INTn`` from the bound)."""
        self.bounds[name] = bound
        self.datatypes[name] = datatype or _signed_type(bound)
        return name

    def cast(self, name, dtype, output):
        if self.dtype(name) == dtype:
            return name
        self.node("Cast", [name], output, output, to=_ELEM[np.dtype(dtype)])
        return self.integer(output, self.bounds[name], self.datatypes[name])

    def activations(self, layer, source, gain, offset):
        """The activations ``gain * code - offset`` a layer multiplies; returns the tensor's name.

        They are computed before the convolution so that its zero padding stays 0 (the contract's
        out-of-image taps), and held in float32, exact (``|a| <= 2 * 255``). Without a mapping
        the codes themselves are the activations.
        """
        if gain == 1 and offset == 0:
            return source
        largest = max(offset, gain * ((1 << self.code_bits[source]) - 1) - offset)
        value = source
        if gain != 1:
            self.constant(f"{layer}.in_gain", np.array(gain, dtype=np.float32))
            value = self.node("Mul", [value, f"{layer}.in_gain"], f"{layer}.gained",
                              f"{layer}.in_gain")
            self.integer(value, gain * ((1 << self.code_bits[source]) - 1),
                         f"UINT{(gain * ((1 << self.code_bits[source]) - 1)).bit_length()}")
        if offset != 0:
            self.constant(f"{layer}.in_offset", np.array(offset, dtype=np.float32))
            value = self.node("Sub", [value, f"{layer}.in_offset"], f"{layer}.activations",
                              f"{layer}.in_offset")
            self.integer(value, largest)
        self.activation_bound[value] = largest
        return value

    def binary_conv(self, layer, source, weight_bits, k, stride, pad, output):
        """Binary-weight convolution of a codes or activations tensor, exact; returns the
        accumulator's name."""
        cout, cin = weight_bits.shape[:2]
        largest = self.activation_bound.get(source)
        if largest is None:
            largest = (1 << self.code_bits[source]) - 1
        per_channel = k * k * largest
        bound = cin * per_channel
        weight = weight_bits.astype(np.float32) * 2 - 1
        attributes = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)
        if not self.wide(bound):
            w = self.constant(f"{layer}.weight", weight, "BIPOLAR")
            self.node("Conv", [source, w], output, f"{layer}.conv", **attributes)
            return self.integer(output, bound)
        if per_channel >= self.exact_limit:
            raise ValueError(f"layer '{layer}': one input channel's sum bound {per_channel} is not "
                             f"exact in float32")
        group = (self.exact_limit - 1) // per_channel
        starts = list(range(0, cin, group))
        sizes = [min(group, cin - s) for s in starts]
        parts = [f"{layer}.input{g}" for g in range(len(starts))]
        self.nodes.append(helper.make_node("Split", [source], parts, name=f"{layer}.split",
                                           axis=1, split=sizes))
        sums = []
        for g, (start, size) in enumerate(zip(starts, sizes)):
            self.datatypes[parts[g]] = self.datatypes[source]
            w = self.constant(f"{layer}.weight{g}", weight[:, start:start + size], "BIPOLAR")
            partial = self.node("Conv", [parts[g], w], f"{layer}.acc{g}", f"{layer}.conv{g}",
                                **attributes)
            self.integer(partial, size * per_channel)
            sums.append(self.cast(partial, np.float64, f"{layer}.acc{g}.wide"))
        self.node("Sum", sums, output, f"{layer}.sum")
        return self.integer(output, bound)

    def thresholds(self, layer, value, thresholds, direction, q, output):
        """``code = #{k: dir*v >= dir*T[k]}`` through one ``MultiThreshold``; returns the codes.

        ``v <= T`` is ``-v >= -T`` exactly (negation is exact), so direction -1 multiplies the
        value and its thresholds by -1. There are ``2^q - 1`` thresholds per channel, so the count
        never exceeds ``2^q - 1`` and the contract's clamp never acts. An integer ``value`` (one
        with a recorded bound) gets clamped thresholds of its own type; any other is float64.
        """
        bound = self.bounds.get(value)
        dtype = np.float64 if bound is None else self.dtype(value)
        t = direction.astype(np.float64)[:, None] * thresholds.astype(np.float64)
        threshold_type = None
        if bound is not None:
            t = np.clip(t, -(bound + 1), bound + 1)
            threshold_type = _signed_type(bound + 1)
        t = np.sort(t, axis=1).astype(dtype)
        signed = value
        if np.any(direction < 0):
            sign = direction.astype(dtype).reshape(1, -1, 1, 1)
            self.constant(f"{layer}.direction", sign, "BIPOLAR")
            signed = self.node("Mul", [value, f"{layer}.direction"], f"{layer}.signed",
                               f"{layer}.direction")
            if bound is not None:
                self.integer(signed, bound)
        self.constant(f"{layer}.thresholds", t, threshold_type)
        codes = output if dtype == np.float32 else f"{layer}.codes.wide"
        self.node("MultiThreshold", [signed, f"{layer}.thresholds"], codes, f"{layer}.threshold",
                  domain=_QONNX_DOMAIN, out_dtype=f"UINT{q}", out_scale=1.0, out_bias=0.0,
                  data_layout="NCHW")
        self.integer(codes, (1 << q) - 1, f"UINT{q}")
        if codes != output:
            self.node("Cast", [codes], output, f"{layer}.cast", to=TensorProto.FLOAT)
        return self.codes(output, q)

    def codes(self, name, bits):
        self.code_bits[name] = bits
        return self.integer(name, (1 << bits) - 1, f"UINT{bits}")


def _embed(b, layer, image):
    table = layer["arrays"]["table"]  # (C, 256, d)
    c, _, d = table.shape
    name = layer["name"]
    _, h, w = layer["in_shape"]
    index = b.node("Cast", [image], f"{name}.pixel", f"{name}.pixel", to=TensorProto.INT64)
    offset = b.constant(f"{name}.offset", (256 * np.arange(c, dtype=np.int64)).reshape(1, c, 1, 1))
    index = b.node("Add", [index, offset], f"{name}.index", f"{name}.index")
    flat = b.constant(f"{name}.table", table.reshape(c * 256, d).astype(np.float32),
                      f"UINT{layer['q']}")
    looked_up = b.node("Gather", [flat, index], f"{name}.lookup", f"{name}.lookup", axis=0)
    b.codes(looked_up, layer["q"])
    moved = b.node("Transpose", [looked_up], f"{name}.transpose", f"{name}.transpose",
                   perm=[0, 1, 4, 2, 3])
    b.codes(moved, layer["q"])
    shape = b.constant(f"{name}.shape", np.array([-1, c * d, h, w], dtype=np.int64))
    out = b.node("Reshape", [moved, shape], layer["outputs"]["codes"], f"{name}.reshape")
    return b.codes(out, layer["q"])


def _host_conv(b, layer, image):
    name, la = layer["name"], layer["arrays"]
    k, stride, pad = layer["k"], layer["stride"], layer["pad"]
    c, h, w = layer["in_shape"]
    cout, ho, wo = layer["out_shape"]
    hp, wp = h + 2 * pad, w + 2 * pad
    scale = b.constant(f"{name}.255", np.array(255, dtype=np.float32))
    x = b.node("Div", [image, scale], f"{name}.pixel", f"{name}.normalise")
    x = b.node("Cast", [x], f"{name}.pixel64", f"{name}.widen", to=TensorProto.DOUBLE)
    if pad:
        pads = b.constant(f"{name}.pads", np.array([0, 0, pad, pad, 0, 0, pad, pad], np.int64))
        x = b.node("Pad", [x, pads], f"{name}.padded", f"{name}.pad", mode="constant")
    flat_shape = b.constant(f"{name}.flat_shape", np.array([-1, c * hp * wp], np.int64))
    x = b.node("Reshape", [x, flat_shape], f"{name}.flat", f"{name}.flatten")
    # im2col indices: row (oy, ox), column (ci, ky, kx), the weights' order
    oy, ox = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    ci, ky, kx = np.meshgrid(np.arange(c), np.arange(k), np.arange(k), indexing="ij")
    rows = (oy * stride).reshape(-1, 1) + ky.reshape(1, -1)
    cols = (ox * stride).reshape(-1, 1) + kx.reshape(1, -1)
    windows = b.constant(f"{name}.windows", (ci.reshape(1, -1) * hp * wp + rows * wp + cols)
                         .astype(np.int64))
    x = b.node("Gather", [x, windows], f"{name}.im2col", f"{name}.im2col", axis=1)
    weight = b.constant(f"{name}.weight",
                        la["weight"].astype(np.float64).reshape(cout, -1).T.copy())
    y = b.node("MatMul", [x, weight], f"{name}.product", f"{name}.matmul")
    bias = b.constant(f"{name}.bias", la["bias"].astype(np.float64))
    y = b.node("Add", [y, bias], f"{name}.biased", f"{name}.bias")
    y = b.node("Transpose", [y], f"{name}.channels_first", f"{name}.transpose", perm=[0, 2, 1])
    out_shape = b.constant(f"{name}.shape", np.array([-1, cout, ho, wo], np.int64))
    y = b.node("Reshape", [y, out_shape], f"{name}.preactivation", f"{name}.reshape")
    return b.thresholds(name, y, la["thresholds"], la["direction"], layer["q"],
                        layer["outputs"]["codes"])


def _conv(b, layer):
    name, la, out = layer["name"], layer["arrays"], layer["outputs"]
    value_name = out["acc"] if out["acc"] is not None else f"{name}.value"
    acc_name = value_name if layer["residual"] is None else f"{name}.acc"
    source = b.activations(name, layer["input"], layer.get("in_gain", 1),
                           layer.get("in_offset", 0))
    acc = b.binary_conv(name, source, la["weight_bits"], layer["k"], layer["stride"],
                        layer["pad"], acc_name)
    value = acc
    if layer["residual"] is not None:
        residual = layer["residual"]
        bound = b.bounds[acc] + b.bounds[residual]
        dtype = np.float64 if b.wide(bound) else np.float32
        left = b.cast(acc, dtype, f"{acc}.wide")
        right = b.cast(residual, dtype, f"{name}.residual.wide")
        value = b.node("Add", [left, right], value_name, f"{name}.residual")
        b.integer(value, bound)
    if out["codes"] is None:
        return
    pooled = layer["pool"] == "max2"
    codes_name = f"{name}.codes" if pooled else out["codes"]
    codes = b.thresholds(name, value, la["thresholds"], la["direction"], layer["q"], codes_name)
    if pooled:
        b.node("MaxPool", [codes], out["codes"], f"{name}.maxpool", kernel_shape=[2, 2],
               strides=[2, 2])
        b.codes(out["codes"], layer["q"])


def _head(b, layer):
    name, la = layer["name"], layer["arrays"]
    logits_int = layer["outputs"]["logits"]
    k = layer.get("k", 1)
    source = b.activations(name, layer["input"], layer.get("in_gain", 1),
                           layer.get("in_offset", 0))
    acc = b.binary_conv(name, source, la["weight_bits"], k, 1, 0, f"{name}.acc")
    _, h, w = layer["in_shape"]
    bound = (h - k + 1) * (w - k + 1) * b.bounds[acc]
    dtype = np.float64 if b.wide(bound) else np.float32
    acc = b.cast(acc, dtype, f"{name}.acc.wide")
    b.node("ReduceSum", [acc], logits_int, f"{name}.sum", axes=[2, 3], keepdims=0)
    b.integer(logits_int, bound)
    # golden: scale * float32(logits_int) + bias, in float32
    narrow = b.cast(logits_int, np.float32, f"{logits_int}.float32")
    scale = b.constant(f"{name}.scale", la["scale"].astype(np.float32))
    bias = b.constant(f"{name}.bias", la["bias"].astype(np.float32))
    scaled = b.node("Mul", [narrow, scale], f"{name}.scaled", f"{name}.scale")
    return logits_int, b.node("Add", [scaled, bias], f"{logits_int}.float", f"{name}.bias")


def _build(model, batch_size, exact_limit):
    b = _GraphBuilder(exact_limit)
    c, h, w = model.input_shape
    b.codes("image", 8)
    outputs = None
    for layer in model.layers:
        kind = layer["kind"]
        if kind == "embed":
            _embed(b, layer, "image")
        elif kind == "raw_input":
            b.node("Identity", ["image"], layer["outputs"]["codes"], layer["name"])
            b.codes(layer["outputs"]["codes"], 8)
        elif kind == "host_conv":
            _host_conv(b, layer, "image")
        elif kind == "conv":
            _conv(b, layer)
        else:
            outputs = _head(b, layer)
    logits_int, logits = outputs
    classes = model.num_classes
    graph = helper.make_graph(
        b.nodes, f"{model.variant}",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch_size, c, h, w])],
        [helper.make_tensor_value_info(logits_int, _ELEM[np.dtype(b.dtype(logits_int))],
                                       [batch_size, classes]),
         helper.make_tensor_value_info(logits, TensorProto.FLOAT, [batch_size, classes])],
        b.initializers)
    proto = helper.make_model(graph, producer_name="model.export_qonnx",
                              opset_imports=[helper.make_opsetid("", _ONNX_OPSET),
                                             helper.make_opsetid(_QONNX_DOMAIN, 1)])
    proto.doc_string = (f"Deploy file variant '{model.variant}' (docs/ARCHITECTURE.md): outputs "
                        f"'{logits_int}' (integer logits) and '{logits}' (float logits).")
    # qonnx is imported here so that `import model.export_qonnx` alone does not need it
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    wrapper = ModelWrapper(proto)
    for name, datatype in b.datatypes.items():
        wrapper.set_tensor_datatype(name, DataType[datatype])
    wrapper = wrapper.transform(InferShapes())
    return wrapper.model


def _write_atomically(proto, path):
    """Write ``proto`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as f:
            f.write(proto.SerializeToString())
        # mkstemp makes the file private; the export gets the mode any new file would get.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def export_qonnx(deploy_model, path=None, *, batch_size=1):
    """Build the QONNX graph of a deploy model, and write it when ``path`` is given.

    Parameters
    ----------
    deploy_model : DeployModel or str or os.PathLike
        A loaded model or a deploy file path.
    path : str or os.PathLike, optional
        Where to write the ``.onnx`` file (through a temporary file and a rename, so that a failed
        write leaves nothing half-written).
    batch_size : int
        The graph's fixed batch size (qonnx's executor needs static shapes, and qonnx's
        ``ChangeBatchSize`` resizes only the first graph output).

    Returns
    -------
    onnx.ModelProto
        Input ``image`` (float32 ``(batch_size, C, H, W)``, pixel values 0..255); outputs the
        integer logits (the head's tensor name) and the float logits (``"<name>.float"``).

    Raises
    ------
    DeployError
        If ``deploy_model`` is a path to an unreadable or invalid deploy file.
    OSError
        If ``path`` cannot be written.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool):
        raise TypeError(f"batch_size must be an int, not {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if isinstance(deploy_model, (str, os.PathLike)):
        deploy_model = load(deploy_model)
    if not isinstance(deploy_model, DeployModel):
        raise TypeError(f"deploy_model must be a DeployModel or a path, "
                        f"not {type(deploy_model).__name__}")
    proto = _build(deploy_model, batch_size, FLOAT32_EXACT_LIMIT)
    if path is not None:
        _write_atomically(proto, path)
    return proto


def main(argv=None):
    """``python -m model.export_qonnx MODEL.npz -o MODEL.onnx``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m model.export_qonnx",
                                     description="Export a deploy file as a QONNX graph.")
    parser.add_argument("model", help="deploy file (.npz)")
    parser.add_argument("-o", "--output", help="ONNX file to write (default: MODEL with .onnx)")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="the graph's fixed batch size (default 1)")
    args = parser.parse_args(argv)
    output = args.output or str(Path(args.model).with_suffix(".onnx"))
    if args.batch_size < 1:
        print(f"error: --batch-size must be at least 1, not {args.batch_size}", file=sys.stderr)
        return 1
    try:
        export_qonnx(args.model, output, batch_size=args.batch_size)
    except DeployError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"error: {args.model}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: cannot write {output}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
