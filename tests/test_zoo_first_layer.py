"""bench.zoo_first_layer: each SFC-W1A2 variant builds and trains, the embedding's deploy export is
bit-exact (golden == PyTorch integer logits; d = 1: the compiled program on the reference simulator,
d = 2: the compiler refuses it for want of memory).

The data is the committed 256-image fixture written as the four IDX files, so the test does not
depend on the installed dataset; one epoch on it, a few seconds per variant.
"""

import gzip
import json
import struct

import numpy as np
import pytest
import torch

from bench import model_zoo, zoo_first_layer
from contract.config import DEFAULT, DEFAULT85
from firmware.compiler import CompileError, compile_model
from firmware.refsim import run_compiled
from model import golden
from model.data import load_fixture


def _write_idx(path, array):
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    images, labels = load_fixture()
    images = images.reshape(len(images), 28, 28)
    folder = tmp_path_factory.mktemp("fmnist")
    for prefix in ("train", "t10k"):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    metrics = {variant: zoo_first_layer.train(variant, epochs=1, out_dir=out, data_dir=data_dir,
                                              log=lambda *_: None)
               for variant in ("embed_d1q2", "float_input", "embed_d2q2")}
    # the zoo's own network under another seed: its folder and export carry the seed
    metrics["quantizer"] = zoo_first_layer.train("quantizer", seed=1, epochs=1, out_dir=out,
                                                 data_dir=data_dir, log=lambda *_: None)
    return out, metrics


def test_the_variants_feed_the_first_layer_what_they_say():
    torch.manual_seed(0)
    zoo = model_zoo.build_net("sfc_1w2a")
    torch.manual_seed(0)
    embedded = zoo_first_layer.embedded_zoo_net(1, 2)
    torch.manual_seed(0)
    doubled = zoo_first_layer.embedded_zoo_net(2, 2)
    torch.manual_seed(0)
    floating = zoo_first_layer.float_input_zoo_net()
    # same seed, same first-layer weights as the zoo's network (d = 1); d = 2 doubles its inputs
    torch.testing.assert_close(embedded.features[1].weight, zoo.features[2].weight)
    assert doubled.features[1].weight.shape == (256, 2 * 784)
    assert isinstance(floating.features[0], torch.nn.Identity)
    x = torch.rand(3, 1, 28, 28)
    assert embedded(x).shape == floating(x).shape == doubled(x).shape == (3, 10)
    # the embedding sees the pixel values themselves: ToTensor images give back the uint8 index
    pixels = torch.arange(256, dtype=torch.float32).reshape(1, 1, 16, 16).repeat(1, 1, 2, 2)[..., :28, :28]
    np.testing.assert_array_equal(embedded.pixels(pixels / 255.0).numpy(), pixels.numpy())


def test_every_variant_trains_and_records_its_command(trained):
    out, metrics = trained
    for variant, m in metrics.items():
        seed = 1 if variant == "quantizer" else 0
        assert m["train_images"] == 256 and m["epochs"] == 1 and m["seed"] == seed
        assert m["command"] == zoo_first_layer.train_command(variant, 1, seed)
        assert (out / zoo_first_layer.net_name(variant, seed) / "checkpoint.pt").exists()
        assert (m["onnx"] is None) == (variant != "quantizer")
    assert metrics["quantizer"]["onnx"].endswith("sfc_1w2a_seed1/sfc_1w2a_seed1.onnx")
    assert metrics["quantizer"]["command"].endswith("--seed 1")


@pytest.mark.parametrize("variant", ["embed_d1q2", "embed_d2q2"])
def test_embedding_export_is_bit_exact(trained, data_dir, variant):
    out, _ = trained
    result = zoo_first_layer.evaluate(variant, out_dir=out, data_dir=data_dir, log=lambda *_: None)
    assert result["golden_equals_torch_integer_logits"] == result["images"] == 256
    assert result["accuracy"] == pytest.approx(result["torch_accuracy"], abs=1 / 256)
    d, _ = zoo_first_layer.embedding_shape(variant)
    assert result["first_layer_macs"] == d * 784 * 256
    assert result["default85"]["fits"] == (d == 1)
    if d == 1:
        assert result["default85"]["refsim_equals_golden"] == 256
    assert json.loads((out / zoo_first_layer.net_name(variant) / "first_layer.json").read_text())["variant"] \
        == variant
    # the deploy file runs on the compiler's host-side look-up and FC first layer, bit for bit
    deploy_path = out / zoo_first_layer.net_name(variant) / f"{zoo_first_layer.net_name(variant)}.npz"
    from model.deploy import load
    deploy = load(deploy_path)
    assert deploy.header["layers"][0]["kind"] == "embed" and deploy.header["layers"][0]["d"] == d
    images, _ = load_fixture()
    images = images[:8]
    if d == 2:
        # the doubled first layer does not fit the default board: its weights (392 words of
        # 32 x 32 bits) overflow the 512-word weight buffer (and with 64 output rows the memory
        # image, 18,890 words, overflows main memory's 16,384)
        with pytest.raises(CompileError, match="fc1: weights need 392 words"):
            compile_model(deploy, DEFAULT85)
        with pytest.raises(CompileError, match="main memory has 16384 words"):
            compile_model(deploy, DEFAULT)
        return
    compiled = compile_model(deploy, DEFAULT85)   # the default board's, as bench.model_zoo run
    assert compiled.input_kind == "host_embed" and compiled.host_flat
    logits_int, _, _ = run_compiled(compiled, images)
    np.testing.assert_array_equal(logits_int, golden.run(deploy, images).logits_int)


def test_float_input_is_measured_by_the_float_graph(trained, data_dir):
    out, _ = trained
    result = zoo_first_layer.evaluate("float_input", out_dir=out, data_dir=data_dir, log=lambda *_: None)
    assert result["accuracy_by"].startswith("Brevitas float graph") and "deploy" not in result


def test_bad_input_is_one_line(capsys, tmp_path):
    assert zoo_first_layer.main(["evaluate", "--variant", "embed_d1q2", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench.zoo_first_layer: ") and "not trained" in err and "\n" not in err
    with pytest.raises(model_zoo.ZooError, match="unknown variant"):
        zoo_first_layer.net_name("embed_d9")


def test_report_writes_its_section_with_what_finished(trained, data_dir, tmp_path):
    out, _ = trained
    for variant in ("embed_d1q2", "float_input"):
        zoo_first_layer.evaluate(variant, out_dir=out, data_dir=data_dir, log=lambda *_: None)
    doc = tmp_path / "RESULTS.md"
    doc.write_text("# Results\n\n## Another section\n\nkept\n")
    zoo_first_layer.report(out, doc=doc)
    text = doc.read_text()
    assert "## Another section\n\nkept\n" in text
    section = text[text.index(f"## {zoo_first_layer.RESULTS_TITLE}"):]
    assert zoo_first_layer.ROW_LABELS["embed_d1q2"] in section
    assert zoo_first_layer.ROW_LABELS["float_input"] in section
    # the zoo's own row did not run here: the section says how to finish it, and has no reading
    assert "`python -m bench.zoo_first_layer train --variant quantizer --epochs 10`" in section
    assert "Reading" not in section


def test_the_zoo_network_is_measured_through_its_qonnx_export(trained, data_dir):
    out, _ = trained
    result = zoo_first_layer.evaluate("quantizer", seed=1, out_dir=out, data_dir=data_dir, log=lambda *_: None)
    assert result["accuracy_by"].startswith("golden model (deploy file imported from the QONNX export)")
    assert result["layers"][0] == "L0 embed d=1 q=2" and result["default85"]["fits"]
    assert result["evaluate_command"].endswith("--variant quantizer --seed 1")


def test_the_clipped_table_stays_in_the_quantizers_range_and_keeps_its_codes():
    for variant, clipped in (("embed_d1q2_clipped", True), ("embed_d1q2", False)):
        torch.manual_seed(0)
        net = zoo_first_layer.builder(variant)()
        with torch.no_grad():
            net.embedding.table.mul_(3).sub_(2)     # thermometer codes 0..3 -> -2..7
        before = net.embedding.table.detach().clone()
        codes = net.embedding.merge()
        net.clip_weights(-1, 1)
        table = net.embedding.table.detach()
        if clipped:
            assert table.min() == 0 and table.max() == 3 * net.embedding.act.effective_step().item()
        else:
            torch.testing.assert_close(table, before)
        np.testing.assert_array_equal(net.embedding.merge(), codes)
    assert zoo_first_layer.embedding_shape("embed_d1q2_clipped") == (1, 2)
