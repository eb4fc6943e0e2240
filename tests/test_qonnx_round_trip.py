"""QONNX round trip: deploy file -> model.export_qonnx -> model.import_qonnx -> the same network.

The imported deploy file must give golden's predictions, integer logits and float logits of the
original (shipped models on the 256 fixture images, random hardware models on random images) and
keep its layer kinds; the optional contract fields survive with equal predictions and equal codes
into the head (the importer folds a head's input mapping into its scale and bias, which changes
the integer logits by design).
"""

import numpy as np
import pytest

import qonnx  # noqa: F401  (the executor the round trip is checked with)

from model import export_qonnx as exporter  # noqa: E402
from model import golden  # noqa: E402
from model import import_qonnx as importer  # noqa: E402
from model.data import load_fixture  # noqa: E402
from model.deploy import load  # noqa: E402
from model.random_deploy import random_deploy  # noqa: E402
from test_qonnx_export import ROOT, _with_new_fields  # noqa: E402


def _round_trip(model):
    return importer.import_qonnx(exporter.export_qonnx(model), variant=model.variant)


def _kinds(model):
    return [layer["kind"] for layer in model.layers]


def _head_input(model, result):
    return result.tensors[model.layers[-1]["input"]]


def _assert_same_network(original, imported, images):
    assert _kinds(imported) == _kinds(original)
    before, after = golden.run(original, images), golden.run(imported, images)
    assert np.array_equal(after.predictions, before.predictions), "predictions"
    assert np.array_equal(after.logits_int, before.logits_int), "integer logits"
    assert np.array_equal(after.logits, before.logits), "float logits"
    assert np.array_equal(_head_input(imported, after), _head_input(original, before))


@pytest.mark.parametrize("name", ["default", "wide64"])
def test_shipped_model_through_the_command_lines(tmp_path, capsys, name):
    """The two commands of the round trip, on the shipped models and the fixture images."""
    source = ROOT / "model" / "shipped" / f"{name}.npz"
    onnx_path, deploy_path = tmp_path / f"{name}.onnx", tmp_path / f"{name}.npz"
    assert exporter.main([str(source), "-o", str(onnx_path)]) == 0
    assert importer.main([str(onnx_path), "-o", str(deploy_path)]) == 0
    capsys.readouterr()
    images, _ = load_fixture()
    original, imported = load(source), load(deploy_path)
    _assert_same_network(original, imported, images)
    # the shapes of every layer come back too (the embedding's d and q, strides, residuals)
    for a, b in zip(original.layers, imported.layers):
        for field in ("d", "q", "k", "stride", "pad", "cin", "cout", "pool"):
            assert a.get(field) == b.get(field), (a["name"], field)
        if a["kind"] == "conv":
            assert (a["residual"] is None) == (b["residual"] is None), a["name"]


def _features(model):
    """What a random model exercises that the importer has to recognise."""
    found = {model.layers[0]["kind"]}
    if model.layers[0]["kind"] == "embed" and model.layers[0]["d"] > 1:
        found.add("embed d>1")
    for layer in model.layers[1:-1]:
        if layer["residual"] is not None:
            found.add("residual")
        if layer["pool"] == "max2":
            found.add("max2")
        if layer["outputs"]["codes"] is not None and np.any(layer["arrays"]["direction"] < 0):
            found.add("direction-1")
        if layer["outputs"]["codes"] is None:
            found.add("acc only")
    return found


def test_random_hardware_models():
    rng = np.random.default_rng(20)
    covered = set()
    # these seeds include graphs that qonnx's sort orders otherwise than the deploy file (the
    # head before an unread layer: 18, 33; a residual's user before its source: 133, 169) and
    # unread accumulators
    for seed in list(range(40)) + [133, 169]:
        model = random_deploy(seed, hardware=True, first=None if seed % 3 else "raw_input")
        images = rng.integers(0, 256, size=(8,) + model.input_shape, dtype=np.uint8)
        _assert_same_network(model, _round_trip(model), images)
        covered |= _features(model)
    wanted = {"embed", "embed d>1", "raw_input", "residual", "max2", "direction-1", "acc only"}
    assert wanted <= covered, f"not covered: {sorted(wanted - covered)}"


def test_optional_contract_fields():
    """in_gain/in_offset, head k and fully connected convs come back with the same predictions."""
    rng = np.random.default_rng(21)
    for seed in range(6):
        model = _with_new_fields(random_deploy(6000 + seed, hardware=True, height=8, width=8,
                                               first=("embed", "raw_input")[seed % 2]), seed)
        images = rng.integers(0, 256, size=(16,) + model.input_shape, dtype=np.uint8)
        imported = _round_trip(model)
        assert _kinds(imported) == _kinds(model)
        head, new_head = model.layers[-1], imported.layers[-1]
        assert new_head.get("k", 1) == head.get("k", 1)
        before, after = golden.run(model, images), golden.run(imported, images)
        assert np.array_equal(_head_input(imported, after), _head_input(model, before))
        assert np.array_equal(after.predictions, before.predictions)
        # the head's mapping is folded into its scale and bias: equal logits up to rounding
        np.testing.assert_allclose(after.logits, before.logits, rtol=1e-5, atol=1e-4)
        if (head.get("in_gain", 1), head.get("in_offset", 0)) == (1, 0):
            assert np.array_equal(after.logits_int, before.logits_int)


def test_host_conv_is_refused_in_one_line():
    model = random_deploy(3, hardware=False, first="host_conv")
    with pytest.raises(importer.QonnxImportError, match=r"\(Cast\): .*host_conv") as caught:
        _round_trip(model)
    assert "\n" not in str(caught.value)


def test_look_up_needs_pixel_values():
    """The exporter's table is indexed by pixel values: another input scale is refused."""
    model = load(ROOT / "model" / "shipped" / "default.npz")
    with pytest.raises(importer.QonnxImportError, match="input scale is 0.00392157"):
        importer.import_qonnx(exporter.export_qonnx(model), input_scale=1 / 255)


def test_shift_of_a_fraction_of_a_step_is_refused():
    """An input offset must be a whole number of code steps: 0.5 is refused in one line."""
    from onnx import numpy_helper
    model = _with_new_fields(random_deploy(6001, hardware=True, height=8, width=8,
                                           first="raw_input"), 1)
    first = model.layers[1]
    assert first.get("in_offset", 0) != 0
    proto = exporter.export_qonnx(model)
    for index, tensor in enumerate(proto.graph.initializer):
        if tensor.name == f"{first['name']}.in_offset":
            proto.graph.initializer[index].CopyFrom(
                numpy_helper.from_array(np.full(tensor.dims, 0.5, np.float32), tensor.name))
    with pytest.raises(importer.QonnxImportError, match=r"\(Sub\): .*whole number of steps"):
        importer.import_qonnx(proto)
