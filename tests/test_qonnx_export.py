"""QONNX export: qonnx's executor runs the exported graph and matches model.golden bit for bit."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.util.cleanup import cleanup_model

from model import export_qonnx as exporter
from model import golden
from model.data import load_fixture
from model.deploy import load, pack_bits, validate
from model.random_deploy import random_deploy

# qonnx's executor checks every integer-annotated tensor against its datatype after each node and
# only warns when a value does not fit; here that is a failure, as is a shape its inference missed.
pytestmark = [pytest.mark.filterwarnings("error:The values of tensor"),
              pytest.mark.filterwarnings(r"error:\s*Output shapes disagree")]

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "model" / "shipped" / "default.npz"


def _run_qonnx(model, images):
    """Export, make every golden feature map a graph output, clean up, execute with qonnx.

    Returns ``(proto, {tensor name: array})``: the integer logits under the head's tensor name,
    the float logits under ``"float_logits"``, and every other feature map by its deploy name.
    """
    proto = exporter.export_qonnx(model, batch_size=len(images))
    wrapper = ModelWrapper(proto)
    logits_name = wrapper.graph.output[0].name
    names = [t for t in model.tensors if t not in ("image", logits_name)]
    for name in names:
        info = wrapper.get_tensor_valueinfo(name)
        wrapper.graph.value_info.remove(info)
        wrapper.graph.output.append(info)
    wrapper = cleanup_model(wrapper)
    result = execute_onnx(wrapper, {wrapper.graph.input[0].name: images.astype(np.float32)})
    values = [result[out.name] for out in wrapper.graph.output]
    return proto, dict(zip([logits_name, "float_logits"] + names, values))


def _check_against_golden(model, images):
    proto, outputs = _run_qonnx(model, images)
    reference = golden.run(model, images)
    logits_name = model.layers[-1]["outputs"]["logits"]
    assert np.array_equal(outputs[logits_name], reference.logits_int), "integer logits"
    # the float logits come from the same integers through the same float32 Mul and Add
    assert outputs["float_logits"].dtype == np.float32
    assert np.array_equal(outputs["float_logits"], reference.logits), "float logits"
    for name, expected in reference.tensors.items():
        if name in ("image", logits_name):
            continue
        assert np.array_equal(outputs[name], expected), f"tensor {name}"
    return proto


def test_shipped_model_on_fixture():
    images, _ = load_fixture()
    _check_against_golden(load(SHIPPED), images)


def _features(model):
    """The layer features a random model exercises."""
    found = {model.layers[0]["kind"]}
    for layer in model.layers:
        if layer["kind"] != "conv":
            continue
        found.add(f"stride{layer['stride']}")
        found.add("pad" if layer["pad"] else "no pad")
        if layer["residual"] is not None:
            found.add("residual")
        if layer["pool"] == "max2":
            found.add("max2")
        if layer["outputs"]["codes"] is not None:
            directions = layer["arrays"]["direction"]
            found.update(f"direction{int(d):+d}" for d in np.unique(directions))
    first = model.layers[0]
    if first["kind"] == "host_conv":
        found.update(f"host direction{int(d):+d}" for d in np.unique(first["arrays"]["direction"]))
    return found


@pytest.mark.parametrize("hardware", [True, False])
def test_random_models(hardware):
    """A seed loop over random deploy files; the features they cover are checked too."""
    kinds = ("embed", "raw_input") + (() if hardware else ("host_conv",))
    rng = np.random.default_rng(7)
    covered = set()
    for seed in range(15):
        model = random_deploy(1000 * hardware + seed, hardware=hardware,
                              first=kinds[seed % len(kinds)])
        images = rng.integers(0, 256, size=(3,) + model.input_shape, dtype=np.uint8)
        _check_against_golden(model, images)
        covered |= _features(model)
    wanted = set(kinds) | {"stride1", "stride2", "pad", "residual", "max2", "direction+1",
                           "direction-1"}
    if not hardware:
        wanted |= {"stride3", "no pad", "host direction+1", "host direction-1"}
    assert wanted <= covered, f"not covered: {sorted(wanted - covered)}"


def _with_new_fields(model, seed):
    """A copy of a random deploy model using the contract's optional fields.

    Every conv and the head get a random input mapping (``in_gain`` 1 or 2, ``in_offset`` from 0
    to its maximum); odd seeds put a fully connected conv (``k`` = the map's smaller side, no
    padding) before the head, even seeds give the head a kernel larger than 1.
    """
    rng = np.random.default_rng(seed)
    header = json.loads(json.dumps(model.header))
    arrays = dict(model.arrays)
    layers = header["layers"]
    head = layers[-1]
    _, h, w = model.layers[-1]["in_shape"]
    if seed % 2:
        cin, bits = head["cin"], head["in_bits"]
        cout, q, k = int(rng.choice([4, 8, 16])), int(rng.integers(1, 3)), min(h, w)
        layers.insert(-1, {"name": "fc", "kind": "conv", "input": head["input"], "cin": cin,
                           "cout": cout, "k": k, "stride": 1, "pad": 0, "in_bits": bits,
                           "residual": None, "q": q, "pool": None,
                           "outputs": {"acc": None, "codes": "fc_codes"}})
        arrays["fc.weight"] = pack_bits(rng.integers(0, 2, size=(cout, cin, k, k)))
        spread = max(2, int(2 * np.sqrt(cin * k * k) * ((1 << bits) - 1)))
        arrays["fc.thresholds"] = np.sort(rng.integers(-spread, spread + 1,
                                                       size=(cout, (1 << q) - 1)),
                                          axis=1).astype(np.int32)
        arrays["fc.direction"] = rng.choice([-1, 1], size=cout).astype(np.int8)
        head.update(input="fc_codes", cin=cout, in_bits=q)
        h = w = 1
    else:
        head["k"] = int(rng.integers(2, min(h, w) + 1)) if min(h, w) > 1 else 1
    k = head.get("k", 1)
    arrays["head.weight"] = pack_bits(rng.integers(0, 2, size=(head["classes"], head["cin"], k,
                                                                k)))
    for layer in layers:
        if layer["kind"] in ("conv", "head"):
            gain = int(rng.integers(1, 3))
            layer["in_gain"] = gain
            layer["in_offset"] = int(rng.integers(0, gain * ((1 << layer["in_bits"]) - 1) + 1))
    return validate(header, arrays)


def _new_fields_used(model):
    found = set()
    for layer in model.layers:
        if layer.get("in_gain", 1) != 1:
            found.add("in_gain")
        if layer.get("in_offset", 0) != 0:
            found.add("in_offset")
        if layer["kind"] == "head" and layer.get("k", 1) > 1:
            found.add("head k")
        if layer["kind"] == "conv" and layer["pad"] == 0 and layer["out_shape"][1:] == (1, 1) \
                and layer["k"] > 1:
            found.add("fully connected")
    return found


def test_optional_contract_fields():
    """Input mappings, head kernels and fully connected convs: qonnx's executor equals golden."""
    rng = np.random.default_rng(11)
    covered = set()
    for seed in range(8):
        side = int(rng.integers(4, 11))  # a square image keeps every map square
        base = random_deploy(3000 + seed, hardware=seed % 4 != 3, height=side, width=side,
                             first=("embed", "raw_input")[seed % 2 if seed % 4 != 3 else 0])
        model = _with_new_fields(base, seed)
        images = rng.integers(0, 256, size=(3,) + model.input_shape, dtype=np.uint8)
        _check_against_golden(model, images)
        covered |= _new_fields_used(model)
    assert covered == {"in_gain", "in_offset", "head k", "fully connected"}, sorted(covered)


def test_optional_fields_on_the_float64_path(monkeypatch):
    """The mapped activations' bound sets the float64 split as the codes' bound does."""
    monkeypatch.setattr(exporter, "FLOAT32_EXACT_LIMIT", 1 << 8)
    rng = np.random.default_rng(5)
    ops = set()
    for seed in range(4):
        model = _with_new_fields(random_deploy(4000 + seed, hardware=True, first="embed",
                                               height=8, width=8, max_convs=3), seed)
        images = rng.integers(0, 256, size=(2,) + model.input_shape, dtype=np.uint8)
        ops |= {n.op_type for n in _check_against_golden(model, images).graph.node}
    assert {"Split", "Sum", "Mul", "Sub"} <= ops


def test_float64_path_for_wide_integers(monkeypatch):
    """Integers past the float32 limit (lowered here to 2^7) go to float64, still exact.

    The exporter splits a convolution into input-channel groups whose sums stay below the limit
    and adds the groups, the residuals and the head's sum over pixels in float64.
    """
    monkeypatch.setattr(exporter, "FLOAT32_EXACT_LIMIT", 1 << 7)
    rng = np.random.default_rng(3)
    ops = set()
    for seed in range(4):
        model = random_deploy(2000 + seed, hardware=True, first="embed", max_convs=4)
        images = rng.integers(0, 256, size=(2,) + model.input_shape, dtype=np.uint8)
        proto = _check_against_golden(model, images)
        ops |= {n.op_type for n in proto.graph.node}
        ops |= {f"Cast to {n.attribute[0].i}" for n in proto.graph.node if n.op_type == "Cast"}
    assert {"Split", "Sum", f"Cast to {onnx.TensorProto.DOUBLE}"} <= ops


def test_datatype_annotations():
    model = load(SHIPPED)
    wrapper = ModelWrapper(exporter.export_qonnx(model))
    assert wrapper.get_tensor_datatype("image") == DataType["UINT8"]
    assert wrapper.get_tensor_datatype("embed.table") == DataType["UINT2"]
    for name, info in model.tensors.items():
        if info.kind == "codes":
            assert wrapper.get_tensor_datatype(name) == DataType[f"UINT{info.bits}"], name
    # x0 = stem2's accumulator: 32 channels x 3x3 taps x codes up to 3 -> |x0| <= 864, INT11
    assert wrapper.get_tensor_datatype("x0") == DataType["INT11"]
    # the head sums 7x7 pixels of 64 x 3: |logits| <= 9408, INT15
    assert wrapper.get_tensor_datatype("logits") == DataType["INT15"]
    # after qonnx's cleanup (which renames every tensor) the annotations follow the tensors
    cleaned = cleanup_model(wrapper)
    convs = cleaned.get_nodes_by_op_type("Conv")
    assert len(convs) == sum(layer["kind"] in ("conv", "head") for layer in model.layers)
    for node in convs:
        weight = cleaned.get_initializer(node.input[1])
        assert cleaned.get_tensor_datatype(node.input[1]) == DataType["BIPOLAR"]
        assert set(np.unique(weight)) == {-1.0, 1.0}
    thresholds = cleaned.get_nodes_by_op_type("MultiThreshold")
    assert len(thresholds) == sum(layer["outputs"].get("codes") is not None
                                  for layer in model.layers if layer["kind"] == "conv")
    for node in thresholds:
        assert node.domain == "qonnx.custom_op.general"
        assert cleaned.get_tensor_datatype(node.output[0]) == DataType["UINT2"]


def test_export_writes_a_loadable_file(tmp_path):
    target = tmp_path / "default.onnx"
    proto = exporter.export_qonnx(SHIPPED, target)
    onnx.checker.check_model(proto)
    assert onnx.load(target) == proto
    assert [p.name for p in tmp_path.iterdir()] == ["default.onnx"]


def test_cli_corrupted_file(tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(SHIPPED.read_bytes()[:500])
    target = tmp_path / "out.onnx"
    result = subprocess.run([sys.executable, "-m", "model.export_qonnx", str(broken),
                             "-o", str(target)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {broken}: not a readable deploy"), \
        result.stderr
    assert not target.exists()


def test_cli_unwritable_output_leaves_nothing(tmp_path, capsys):
    # the target is an existing directory: the rename fails after the temporary file is written
    target = tmp_path / "taken.onnx"
    target.mkdir()
    assert exporter.main([str(SHIPPED), "-o", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot write {target}"), err
    assert [p.name for p in tmp_path.iterdir()] == ["taken.onnx"]
    assert list(target.iterdir()) == []
    missing = tmp_path / "no such folder" / "out.onnx"
    assert exporter.main([str(SHIPPED), "-o", str(missing)]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cli_writes_the_file(tmp_path, capsys):
    target = tmp_path / "default.onnx"
    assert exporter.main([str(SHIPPED), "-o", str(target), "--batch-size", "4"]) == 0
    written = onnx.load(target)
    assert written.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4


def test_argument_validation():
    model = load(SHIPPED)
    with pytest.raises(TypeError):
        exporter.export_qonnx(model, batch_size=2.0)
    with pytest.raises(ValueError):
        exporter.export_qonnx(model, batch_size=0)
    with pytest.raises(TypeError):
        exporter.export_qonnx(42)
