"""QONNX import (model/import_qonnx.py): Brevitas networks built here, exported, imported exactly.

Every network is untrained with random weights and batch-norm statistics (negative batch-norm
scales included), so thresholds fall inside the reachable accumulator ranges and both threshold
directions occur. Checks: the importer's thresholds reproduce the float graph's quantizers over
every reachable accumulator value of every folded layer; the golden model's codes, logits and
predictions on the fixture images equal qonnx's executor running the exported graph; unsupported
graphs are refused with one line naming the node, its op and the reason.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import brevitas
import qonnx  # noqa: F401  (the executor the tests compare with)
import torch

import brevitas.nn as qnn  # noqa: E402
from brevitas.export import export_qonnx  # noqa: E402
from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant  # noqa
from qonnx.core.onnx_exec import execute_onnx  # noqa: E402

from model import golden  # noqa: E402
from model.deploy import load  # noqa: E402
from model.import_qonnx import (QonnxImportError, import_qonnx, load_qonnx,  # noqa: E402
                                pixels_to_graph_input)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "model", "fixtures", "fmnist_test256.npz")
N_IMAGES = 32


def _binary_conv(cin, cout, k, stride=1, padding=0):
    return qnn.QuantConv2d(cin, cout, k, stride=stride, padding=padding, bias=False,
                           weight_quant=CommonWeightQuant, weight_bit_width=1)


def _binary_linear(cin, cout):
    return qnn.QuantLinear(cin, cout, bias=False, weight_quant=CommonWeightQuant,
                           weight_bit_width=1)


def _randomise(net, seed):
    """Random weights and batch-norm statistics, scaled to each layer's fan-in."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (qnn.QuantConv2d, qnn.QuantLinear)):
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen))
                fan_in = module.weight[0].numel()
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                n = module.num_features
                spread = float(fan_in) ** 0.5
                module.running_mean.copy_(torch.randn(n, generator=gen) * spread * 0.5)
                module.running_var.copy_((torch.rand(n, generator=gen) + 0.5) * fan_in)
                module.weight.copy_(torch.randn(n, generator=gen))
                module.bias.copy_(torch.randn(n, generator=gen) * 0.5)
    return net.eval()


class ConvNet(torch.nn.Module):
    """Image normalisation, an 8- or 2-bit input quantizer, padded/unpadded/strided binary convs,
    2-bit unsigned, 2-bit signed narrow and bipolar activations (into an unpadded and a padded
    conv), both max-pool placements, an FC head on a 3x3 map."""

    def __init__(self, in_bits):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(bit_width=in_bits)
        self.conv1 = _binary_conv(1, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.act1 = qnn.QuantReLU(bit_width=2)
        self.conv2 = _binary_conv(8, 8, 3, stride=2, padding=1)
        self.bn2 = torch.nn.BatchNorm2d(8)
        self.act2 = qnn.QuantIdentity(act_quant=CommonActQuant, bit_width=1)
        self.conv3 = _binary_conv(8, 16, 3)
        self.bn3 = torch.nn.BatchNorm2d(16)
        self.act3 = qnn.QuantIdentity(act_quant=CommonActQuant, bit_width=1)
        self.conv4 = _binary_conv(16, 16, 3, padding=1)
        self.bn4 = torch.nn.BatchNorm2d(16)
        self.act4 = qnn.QuantIdentity(act_quant=CommonActQuant, bit_width=2)
        self.fc = _binary_linear(16 * 3 * 3, 10)
        self.bn_out = torch.nn.BatchNorm1d(10)

    def forward(self, x):
        x = self.quant_in((x - 0.3) / 0.4)
        x = self.act1(self.bn1(self.conv1(x)))                                  # 28x28
        x = self.act2(self.bn2(self.conv2(x)))                                  # 14x14
        x = torch.nn.functional.max_pool2d(self.act3(self.bn3(self.conv3(x))), 2)  # 12 -> 6
        x = self.act4(torch.nn.functional.max_pool2d(self.bn4(self.conv4(x)), 2))  # 6 -> 3
        return self.bn_out(self.fc(torch.flatten(x, 1)))


class ResidualNet(torch.nn.Module):
    """A residual add of two binary convs' accumulators, global average pooling, FC head with a
    per-class scale of either sign and a bias."""

    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(bit_width=2)
        self.conv0 = _binary_conv(1, 8, 3, stride=2)
        self.bn0 = torch.nn.BatchNorm2d(8)
        self.act0 = qnn.QuantReLU(bit_width=2)
        self.conv1 = _binary_conv(8, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.act1 = qnn.QuantReLU(bit_width=2)
        self.conv2 = _binary_conv(8, 8, 3, padding=1)
        self.bn2 = torch.nn.BatchNorm2d(8)
        self.act2 = qnn.QuantReLU(bit_width=2)
        self.fc = _binary_linear(8, 10)
        self.scale = torch.nn.Parameter(torch.linspace(-1.5, 2.0, 10))
        self.shift = torch.nn.Parameter(torch.linspace(0.3, -0.2, 10))

    def forward(self, x):
        x = self.act0(self.bn0(self.conv0(self.quant_in(x * 2.0 - 1.0))))      # 13x13
        t1 = self.conv1(x)
        t2 = self.conv2(self.act1(self.bn1(t1)))
        x = self.act2(self.bn2(t2 + t1))
        x = torch.nn.functional.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1)) * self.scale + self.shift


def _export(net, tmp_path, name, shape=(1, 1, 28, 28)):
    path = str(tmp_path / f"{name}.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(net, torch.rand(shape), export_path=path)
    return path


def _global_average_pool(model):
    node = _first(model, "ReduceMean")
    node.op_type = "GlobalAveragePool"
    del node.input[1:]
    del node.attribute[:]


def _reduce_sum(model):
    _first(model, "ReduceMean").op_type = "ReduceSum"


@pytest.mark.parametrize("edit", [_global_average_pool, _reduce_sum])
def test_global_pool_forms(tmp_path, residual_path, images, edit):
    """GlobalAveragePool and a sum-pool (ReduceSum) before the last layer: the head's sum over
    pixels, with the scale divided by H*W for the mean."""
    path = _edited(residual_path, tmp_path, edit)
    deploy, _ = _check_against_executor(path, images[:16], 1 / 255, varied=False)
    assert deploy.header["layers"][-1]["kind"] == "head"


def test_imported_residual_net_runs_on_the_compiler_and_reference_simulator(residual_path,
                                                                            images):
    """Its layers need none of the contract's new fields, so today's compiler takes it; the
    reference simulator's logits then equal the golden model's."""
    from firmware.compiler import compile_model
    from firmware.refsim import run_compiled
    deploy = import_qonnx(residual_path, input_scale=1 / 255)
    logits_int, _, _ = run_compiled(compile_model(deploy), images[:12])
    assert np.array_equal(logits_int, golden.run(deploy, images[:12]).logits_int)


def _tfc(seed):
    """The model zoo's TFC-W1A2 structure (784-64-64-64-10, TensorNorm head), random weights."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg
    net, _ = model_with_cfg("TFC_1W2A", pretrained=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, qnn.QuantLinear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen))
                fan_in = module.weight.shape[1]
            elif isinstance(module, torch.nn.BatchNorm1d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * fan_in ** 0.5 * 0.5)
                module.running_var.copy_((torch.rand(n, generator=gen) + 0.5) * fan_in)
                module.weight.copy_(torch.randn(n, generator=gen))
                module.bias.copy_(torch.randn(n, generator=gen) * 0.5)
            elif type(module).__name__ == "TensorNorm":
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen))
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen))
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen))
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 1)
    return net.eval()


@pytest.fixture(scope="module")
def images():
    with np.load(FIXTURE) as f:
        x = f["images"][:N_IMAGES]
    return x[:, None] if x.ndim == 3 else x


def _maxpool2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def _check_against_executor(path, images, input_scale, varied=True):
    """Import, then compare the golden model with qonnx's executor on the fixture images."""
    deploy, report = import_qonnx(path, input_scale=input_scale, return_report=True)
    # Exactness of every folded layer over its whole reachable accumulator range.
    layers = {layer["name"]: layer for layer in deploy.layers}
    for name, (v, codes) in report.probes.items():
        layer = layers[name]
        got = golden.apply_thresholds(v[None, :, :, None],
                                      layer["arrays"]["thresholds"].astype(np.int64),
                                      layer["arrays"]["direction"], layer["q"])[0, :, :, 0]
        assert np.array_equal(got, codes), name
    model = load_qonnx(path)
    result = golden.run(deploy, images)
    in_name, out_name = model.graph.input[0].name, model.graph.output[0].name
    wanted = {t[0] for t in report.graph_tensors.values()}
    outputs, seen = [], {t: [] for t in wanted}
    for i in range(len(images)):
        context = execute_onnx(model, {in_name: pixels_to_graph_input(images[i:i + 1],
                                                                      input_scale)},
                               return_full_exec_context=True)
        outputs.append(context[out_name])
        for t in wanted:
            seen[t].append(context[t])
    for codes_name, (tensor, gain, offset, scale) in report.graph_tensors.items():
        ours = result.tensors[codes_name].astype(np.float64)
        theirs = np.concatenate(seen[tensor]).astype(np.float64)
        theirs = theirs.reshape((len(images),) + deploy.tensors[codes_name].shape
                                if theirs[0].size == ours[0].size else
                                (len(images), ours.shape[1], 2 * ours.shape[2],
                                 2 * ours.shape[3]))
        if theirs.shape != ours.shape:
            theirs = _maxpool2(theirs)
        np.testing.assert_allclose(scale * (gain * ours - offset), theirs, rtol=1e-6, atol=1e-6,
                                   err_msg=codes_name)
    logits = np.concatenate(outputs)
    if logits.ndim == 2 and logits.shape[1] == deploy.num_classes:
        np.testing.assert_allclose(result.logits, logits, rtol=1e-5,
                                   atol=1e-5 * float(np.abs(logits).max()))
        assert np.array_equal(result.predictions, logits.argmax(axis=1))
        if varied:   # the network does not answer one class for every image
            assert len(set(result.predictions.tolist())) > 1
    else:   # TopK / ArgMax: the graph answers the class index
        assert np.array_equal(result.predictions, logits.reshape(len(images), -1)[:, 0])
        if varied:
            assert len(set(result.predictions.tolist())) > 1
    return deploy, report


@pytest.fixture(scope="module")
def conv2_path(tmp_path_factory):
    """The 2-bit-input ConvNet, exported once (the rejection tests edit copies of it)."""
    return _export(_randomise(ConvNet(2), seed=2), tmp_path_factory.mktemp("conv2"), "conv2")


@pytest.mark.parametrize("in_bits", [8, 2])
def test_conv_net_matches_executor(tmp_path, images, conv2_path, in_bits):
    path = conv2_path if in_bits == 2 else \
        _export(_randomise(ConvNet(in_bits), seed=in_bits), tmp_path, f"conv{in_bits}")
    deploy, report = _check_against_executor(path, images, 1 / 255)
    kinds = [(layer["kind"], layer.get("pool")) for layer in deploy.header["layers"]]
    assert kinds == [("embed", None), ("conv", None), ("conv", None), ("conv", "max2"),
                     ("conv", "max2"), ("head", None)]
    first, strided, bipolar_in = deploy.header["layers"][1:4]
    assert deploy.header["layers"][0]["q"] == in_bits
    assert first["in_offset"] == (128 if in_bits == 8 else 2)    # signed input codes
    assert strided["stride"] == 2 and bipolar_in["pad"] == 0
    # Bipolar input codes without padding: the offset is folded into the thresholds (the plain
    # contract), searched over all fan_in + 1 reachable sums (the bipolar sums -fan_in, -fan_in
    # + 2, ..., +fan_in); the padded conv after them keeps in_gain 2.
    assert "in_gain" not in bipolar_in and "in_offset" not in bipolar_in
    v, _ = report.probes[bipolar_in["name"]]
    fan_in = bipolar_in["cin"] * bipolar_in["k"] ** 2
    assert np.all(v.max(axis=1) - v.min(axis=1) == fan_in)
    padded_after_bipolar = deploy.header["layers"][4]
    assert padded_after_bipolar["pad"] == 1
    assert padded_after_bipolar["in_gain"] == 2 and padded_after_bipolar["in_offset"] == 1
    assert deploy.header["layers"][-1]["k"] == 3                  # FC on a 3x3 map
    directions = np.concatenate([deploy.arrays[f"{layer['name']}.direction"]
                                 for layer in deploy.header["layers"] if layer.get("q")
                                 and layer["kind"] == "conv"])
    assert set(directions.tolist()) == {-1, 1}
    if in_bits == 8:
        assert any("8-bit input codes" in note for note in report.notes)


@pytest.fixture(scope="module")
def residual_path(tmp_path_factory):
    return _export(_randomise(ResidualNet(), seed=5), tmp_path_factory.mktemp("res"), "residual")


def test_residual_gap_net_matches_executor(residual_path, images):
    path = residual_path
    # Global pooling makes the untrained network's answer the same class for every image.
    deploy, _ = _check_against_executor(path, images, 1 / 255, varied=False)
    layers = deploy.header["layers"]
    assert layers[2]["outputs"]["acc"] is not None
    assert layers[3]["residual"] == layers[2]["outputs"]["acc"]
    assert layers[-1]["kind"] == "head" and "k" not in layers[-1]


def test_tfc_structure_matches_executor(tmp_path, images):
    path = _export(_tfc(seed=3), tmp_path, "tfc")
    deploy, _ = _check_against_executor(path, images, 1 / 255)
    layers = deploy.header["layers"]
    assert [layer["kind"] for layer in layers] == ["embed", "conv", "conv", "conv", "head"]
    assert layers[1]["k"] == 28 and layers[1]["pad"] == 0        # fully connected over 28x28


def _finn_streamlined(images, seed):
    """A FINN-style streamlined MLP: raw pixels, MatMul with bipolar weights, MultiThreshold to
    2-bit and to bipolar codes, a final scale and bias, TopK. Thresholds are quantiles of the
    accumulators on the images, half of them integers (so ties with the accumulator occur)."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    rng = np.random.default_rng(seed)
    sizes = [784, 32, 16, 10]
    weights = [rng.choice([-1.0, 1.0], size=(a, b)).astype(np.float32)
               for a, b in zip(sizes[:-1], sizes[1:])]
    x = images.reshape(len(images), -1).astype(np.float64)

    def thresholds(acc, count):
        t = np.quantile(acc, np.linspace(0.2, 0.8, count), axis=0).T
        t = np.floor(t) + (rng.random(t.shape) < 0.5) * 0.5
        return np.sort(t, axis=1).astype(np.float32)

    acc1 = x @ weights[0]
    t1 = thresholds(acc1, 3)
    codes1 = (acc1[:, :, None] >= t1[None]).sum(axis=2)
    acc2 = codes1 @ weights[1]
    t2 = thresholds(acc2, 1)
    init = {"shape": np.array([1, -1], dtype=np.int64), "w1": weights[0], "t1": t1,
            "w2": weights[1], "t2": t2, "w3": weights[2],
            "scale": rng.uniform(-1.0, 1.0, 10).astype(np.float32),
            "shift": rng.normal(0.0, 0.1, 10).astype(np.float32),
            "k": np.array([1], dtype=np.int64)}
    domain = "qonnx.custom_op.general"
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["flat"], name="Flatten0"),
        helper.make_node("MatMul", ["flat", "w1"], ["acc1"], name="MatMul1"),
        helper.make_node("MultiThreshold", ["acc1", "t1"], ["codes1"], name="Threshold1",
                         domain=domain, out_dtype="UINT2"),
        helper.make_node("MatMul", ["codes1", "w2"], ["acc2"], name="MatMul2"),
        helper.make_node("MultiThreshold", ["acc2", "t2"], ["codes2"], name="Threshold2",
                         domain=domain, out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0),
        helper.make_node("MatMul", ["codes2", "w3"], ["acc3"], name="MatMul3"),
        helper.make_node("Mul", ["acc3", "scale"], ["scaled"], name="Scale"),
        helper.make_node("Add", ["scaled", "shift"], ["logits"], name="Shift"),
        helper.make_node("TopK", ["logits", "k"], ["top_value", "top_index"], name="TopK0"),
    ]
    graph = helper.make_graph(
        nodes, "finn_streamlined",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("top_index", TensorProto.INT64, [1, 1])],
        [helper.make_tensor(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape,
                            v.reshape(-1).tolist()) for name, v in init.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return ModelWrapper(model)


def test_finn_streamlined_graph_matches_executor(tmp_path, images):
    path = str(tmp_path / "finn.onnx")
    _finn_streamlined(images, seed=11).save(path)
    deploy, report = _check_against_executor(path, images, 1.0)
    layers = deploy.header["layers"]
    assert [layer["kind"] for layer in layers] == ["raw_input", "conv", "conv", "head"]
    assert layers[1]["k"] == 28 and layers[1]["q"] == 2
    assert layers[2]["q"] == 1
    # The head reads bipolar codes; its offset went into the scale and bias.
    assert "in_gain" not in layers[3] and "in_offset" not in layers[3]
    assert report.notes[0].startswith("input scale 1")


# --- the contract's input mapping and head kernel ------------------------------------------------

def _reference_conv(codes, weight_bits, stride, pad, gain, offset):
    """Direct loops: a = gain*code - offset inside the image, 0 outside."""
    n, cin, h, w = codes.shape
    cout, _, k, _ = weight_bits.shape
    a = np.pad(codes.astype(np.int64) * gain - offset, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    wt = weight_bits.astype(np.int64) * 2 - 1
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    out = np.zeros((n, cout, ho, wo), dtype=np.int64)
    for y in range(ho):
        for x in range(wo):
            patch = a[:, :, y * stride:y * stride + k, x * stride:x * stride + k]
            out[:, :, y, x] = np.einsum("nikl,oikl->no", patch, wt)
    return out


@pytest.mark.parametrize("bits, gain, offset, stride, pad", [
    (1, 2, 1, 1, 1), (2, 1, 1, 2, 1), (2, 1, 2, 1, 0), (8, 1, 128, 1, 2), (2, 1, 0, 2, 0)])
def test_golden_input_mapping(bits, gain, offset, stride, pad):
    rng = np.random.default_rng(bits * 10 + offset)
    codes = rng.integers(0, 1 << bits, (2, 5, 7, 7)).astype(np.uint8)
    weights = rng.integers(0, 2, (4, 5, 3, 3)).astype(np.uint8)
    got = golden.conv_int(codes, weights, stride, pad, bits, gain, offset)
    assert np.array_equal(got, _reference_conv(codes, weights, stride, pad, gain, offset))


def _fc_model(**head_fields):
    from model.deploy import pack_bits, validate
    rng = np.random.default_rng(0)
    header = {"format": "pixel-embedding-deploy", "version": 1,
              "input": {"channels": 1, "height": 4, "width": 4}, "num_classes": 3,
              "variant": "test", "training": {},
              "layers": [{"name": "E", "kind": "embed", "input": "image", "d": 1, "q": 1,
                          "outputs": {"codes": "e"}},
                         dict({"name": "H", "kind": "head", "input": "e", "cin": 1,
                               "classes": 3, "in_bits": 1, "outputs": {"logits": "l"}},
                              **head_fields)]}
    k = head_fields.get("k", 1)
    arrays = {"E.table": (np.arange(256) >= 128).astype(np.uint8).reshape(1, 256, 1),
              "H.weight": pack_bits(rng.integers(0, 2, (3, 1, k, k))),
              "H.scale": np.ones(3, np.float32), "H.bias": np.zeros(3, np.float32)}
    return validate(header, arrays)


def test_head_kernel_and_input_mapping_fields():
    from model.deploy import DeployError
    deploy = _fc_model(k=4, in_gain=2, in_offset=1)
    images = np.random.default_rng(1).integers(0, 256, (5, 1, 4, 4)).astype(np.uint8)
    bits = deploy.layers[1]["arrays"]["weight_bits"]
    want = _reference_conv((images >= 128).astype(np.uint8), bits, 1, 0, 2, 1).sum(axis=(2, 3))
    assert np.array_equal(golden.run(deploy, images).logits_int, want)
    for fields, problem in (({"k": 5}, "output would be empty"),
                            ({"in_gain": 3}, "'in_gain' = 3 out of range"),
                            ({"in_offset": 2}, "'in_offset' = 2 out of range"),
                            ({"in_gain": 2, "in_offset": 3}, "'in_offset' = 3 out of range")):
        with pytest.raises(DeployError, match=problem):
            _fc_model(**fields)


# --- refused graphs ------------------------------------------------------------------------------

def _edited(path, tmp_path, edit):
    """A copy of the cleaned graph at ``path`` with ``edit(model)`` applied, saved beside."""
    model = load_qonnx(path)
    edit(model)
    out = str(tmp_path / "edited.onnx")
    model.save(out)
    return out


def _first(model, op, skip_weights=True):
    for node in model.graph.node:
        if node.op_type == op and not (skip_weights and model.get_initializer(node.input[0])
                                       is not None):
            return node
    raise AssertionError(f"no {op} node")


def _two_bit_weight(model):
    """The first conv's weight quantizer becomes a 2-bit Quant."""
    from onnx import helper
    conv = _first(model, "Conv")
    producer = model.find_producer(conv.input[1])
    for name, value in (("w_zero", 0.0), ("w_bits", 2.0)):
        model.set_initializer(name, np.array(value, dtype=np.float32))
    quant = helper.make_node("Quant", [producer.input[0], producer.input[1], "w_zero", "w_bits"],
                             list(producer.output), name="WeightQuant2",
                             domain="qonnx.custom_op.general", signed=1, narrow=0,
                             rounding_mode="ROUND")
    index = list(model.graph.node).index(producer)
    model.graph.node.remove(producer)
    model.graph.node.insert(index, quant)


def _three_by_three_pool(model):
    pool = _first(model, "MaxPool")
    for attribute in pool.attribute:
        if attribute.name in ("kernel_shape", "strides"):
            attribute.ints[:] = [3, 3]


def _four_bit_activation(model):
    node = [n for n in model.graph.node if n.op_type == "Quant"][1]   # after the first conv
    model.set_initializer(node.input[3], np.array(4.0, dtype=np.float32))


def _sigmoid(model):
    node = _first(model, "Relu")
    node.op_type = "Sigmoid"


@pytest.mark.parametrize("edit, op, reason", [
    (_two_bit_weight, "Quant", "2-bit weights"),
    (_three_by_three_pool, "MaxPool", "only a 2x2 stride-2 max-pool"),
    (_four_bit_activation, "Quant", "4-bit activations"),
    (_sigmoid, "Sigmoid", "unsupported after a binary layer"),
])
def test_unsupported_graphs_are_refused(tmp_path, conv2_path, edit, op, reason):
    path = _edited(conv2_path, tmp_path, edit)
    with pytest.raises(QonnxImportError) as info:
        import_qonnx(path)
    message = str(info.value)
    assert "\n" not in message and f"({op})" in message and reason in message
    assert message.startswith("node '")


def test_command_line(tmp_path, conv2_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = tmp_path / "net.npz"
    done = subprocess.run([sys.executable, "-m", "model.import_qonnx", conv2_path, "-o",
                           str(out), "--input-scale", "1/255"], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "input scale 0.00392157" in done.stdout
    assert load(out).num_classes == 10
    bad = _edited(conv2_path, tmp_path, _four_bit_activation)
    refused = tmp_path / "refused.npz"
    done = subprocess.run([sys.executable, "-m", "model.import_qonnx", bad, "-o", str(refused)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "(Quant)" in lines[0] and "4-bit" in lines[0]
    assert not refused.exists() and not (tmp_path / "refused.npz.npz").exists()
