"""PyTorch integer eval path == golden executor on the exported deploy file, for every variant."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from model import deploy as dp
from model import golden
from model.data import load_fixture
from model.nets import VARIANTS, ERNet


def randomize(net, images, seed):
    """Make a fresh net look trained: random BN affine (some gamma < 0, so direction -1 occurs),
    random quantizer steps, BN statistics from one batch, random head affine."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 1.0
                m.weight.copy_(torch.randn(m.num_features, generator=g) * 0.6 + 0.8)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.5)
        for name, p in net.named_parameters():
            if name.endswith("step") and "embed" not in name:
                p.copy_(torch.rand((), generator=g) * 0.6 + 0.3)
            if name.endswith("alpha"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.2)
            if name == "head_bias":
                p.copy_(torch.randn(p.shape, generator=g))
            if name == "embed.table":
                p.add_(torch.randn(p.shape, generator=g) * 0.8)
        net.train()
        net.forward_float(images)
    net.eval()
    return net


def check_equal(net, images):
    header, arrays = net.export({"test": True})
    model = dp.validate(header, arrays)
    t = net.int_forward(torch.from_numpy(images))
    r = golden.run(model, images)
    np.testing.assert_array_equal(r.logits_int, t["logits_int"].numpy())
    np.testing.assert_array_equal(r.logits, t["logits"].numpy())  # tolerance 0: same float32 ops
    # every intermediate feature map the two share by name
    names = {"s1": "s1", "x0": "x0", "a0": "a0"}
    for i in range(1, len(net.blocks) + 1):
        names.update({f"b{i}_h": f"b{i}_h", f"a{i}": f"a{i}"})
        if f"b{i}_sc" in r.tensors:
            names[f"b{i}_sc"] = f"b{i}_sc"
        if f"x{i}" in r.tensors:
            names[f"x{i}"] = f"x{i}"
    if "e0" in r.tensors:
        names["e0"] = "first"
    checked = 0
    for gname, tname in names.items():
        if gname in r.tensors:
            np.testing.assert_array_equal(r.tensors[gname], t[tname].numpy(), err_msg=gname)
            checked += 1
    assert checked >= 6
    return r, t, model


@pytest.mark.parametrize("variant", VARIANTS)
def test_golden_equals_pytorch_on_fixture(variant):
    images, labels = load_fixture()
    torch.manual_seed(3)
    net = randomize(ERNet(variant, width=32, blocks=[(32, 1), (32, 2), (32, 1)]),
                    torch.from_numpy(images[:64]), 3)
    r, t, model = check_equal(net, images)
    # the codes are not degenerate (a test that could not fail otherwise)
    for name in ("s1", "a0", "a3"):
        assert len(np.unique(r.tensors[name])) == 4, name
    assert any((L["arrays"].get("direction", np.ones(1)) < 0).any() for L in model.layers)
    # the integer path is the float simulation up to threshold ties
    with torch.no_grad():
        pf = net.forward_float(torch.from_numpy(images)).argmax(1).numpy()
    assert (pf == r.predictions).mean() >= 0.97
    # eval-mode forward is the integer path
    with torch.no_grad():
        np.testing.assert_array_equal(net(torch.from_numpy(images)).numpy(), r.logits)


@pytest.mark.parametrize("seed", range(6))
def test_golden_equals_pytorch_random_small_nets(seed):
    rng = np.random.default_rng(seed)
    variant = VARIANTS[seed % 4]
    c = int(rng.choice([1, 3]))
    size = int(rng.choice([12, 16, 32]))
    width = int(rng.choice([8, 16, 32]))
    blocks = [(int(rng.choice([8, 16, 32])), int(rng.choice([1, 2]))) for _ in range(rng.integers(1, 4))]
    net = ERNet(variant, in_channels=c, image_size=size, num_classes=int(rng.integers(2, 11)),
                width=width, d=int(rng.integers(1, 6)), q_embed=int(rng.integers(1, 3)),
                blocks=blocks, init=["thermometer", "linear", "random"][seed % 3])
    images = rng.integers(0, 256, (24, c, size, size)).astype(np.uint8)
    randomize(net, torch.from_numpy(images), seed)
    check_equal(net, images)


@pytest.mark.parametrize("variant", VARIANTS)
def test_stem_width_golden_equals_pytorch(variant):
    """A first layer wider than the residual stream (stem1 48 -> stem2 48 -> 16): golden ==
    PyTorch, the layers' shapes, and the config rebuilds the same network."""
    from model.nets import net_from_config
    images, _ = load_fixture()
    torch.manual_seed(5)
    net = randomize(ERNet(variant, width=16, stem_width=48, blocks=[(16, 1), (32, 2)]),
                    torch.from_numpy(images[:64]), 5)
    _, _, model = check_equal(net, images[:64])
    first = model.layers[1] if variant != "float_first" else model.layers[0]
    stem2 = next(L for L in model.layers if L["name"] == "stem2")
    assert (first.get("cout", first["arrays"]["weight"].shape[0]), stem2["cin"], stem2["cout"]) == (48, 48, 16)
    assert net.config["stem_width"] == 48 and net_from_config(net.config).config == net.config
    assert "stem_width" not in ERNet(variant, width=16).config     # older configs stay as they were


def test_export_bound_and_sizes(tmp_path):
    net = ERNet("pixel_embedding", width=64, blocks=[(64, 1), (64, 2), (64, 1)])
    b = net.int_bound()
    assert max(v for k, v in b.items() if k != "head") == 3648 < 2 ** 15
    header, arrays = net.export()
    dp.save(tmp_path / "m.npz", header, arrays)
    m = dp.load(tmp_path / "m.npz")
    kinds = [L["kind"] for L in m.layers]
    assert kinds[0] == "embed" and kinds[-1] == "head"
    for L in m.layers:
        if L["kind"] == "conv":
            assert L["k"] in (1, 3) and L["pad"] == L["k"] // 2 and L["stride"] in (1, 2)
            assert L["in_bits"] <= 2 and L["cout"] % 32 == 0
    assert (tmp_path / "m.npz").stat().st_size < 200_000
    # ERNet also builds for 32x32x3
    net3 = ERNet("pixel_embedding", in_channels=3, image_size=32)
    h3, _ = net3.export()
    assert h3["input"] == {"channels": 3, "height": 32, "width": 32}


def test_train_cli_tiny_and_resume(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "model.train", "--epochs", "1", "--train-limit", "64",
           "--test-limit", "64", "--blocks", "32:2", "--batch-size", "32", "--quiet",
           "--threads", "1", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    met = json.loads((out / "metrics.json").read_text())
    assert met["golden_pred_equal"] and met["golden_logits_int_equal"]
    assert met["golden_logits_max_abs_diff"] == 0.0
    dp.load(out / "deploy.npz")
    cmd[cmd.index("--epochs") + 1] = "2"
    r = subprocess.run(cmd + ["--resume", "--no-golden"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "resumed" in r.stderr
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 2


def test_train_cli_compile_matches_eager(tmp_path):
    """--compile trains the same network as eager (up to float rounding) and exports it exactly."""
    losses = {}
    for mode in ("eager", "compile"):
        out = tmp_path / mode
        cmd = [sys.executable, "-m", "model.train", "--epochs", "1", "--train-limit", "64",
               "--test-limit", "64", "--blocks", "32:2", "--batch-size", "32", "--quiet",
               "--threads", "1", "--out", str(out)] + (["--compile"] if mode == "compile" else [])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        met = json.loads((out / "metrics.json").read_text())
        assert met["compiled"] == (mode == "compile")
        assert met["golden_pred_equal"] and met["golden_logits_int_equal"]
        losses[mode] = met["history"][0]["train_loss"]
    assert losses["compile"] == pytest.approx(losses["eager"], rel=1e-3)


def test_train_cli_missing_data_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "model.train", "--data-dir", str(tmp_path / "no")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "dataset-fashion-mnist" in lines[0] and "--data-dir" in lines[0]
