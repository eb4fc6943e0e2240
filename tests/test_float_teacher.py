"""The full-precision teacher (model/float_teacher.py), model.train --variant float_teacher and
distillation from it."""

import json

import pytest
import torch
import torch.nn as nn

from model.distill import load_teacher
from model.float_teacher import FloatERNet
from model.nets import ERNet, net_from_config
# the tiny model.train run (64 images, one 32:2 block, one thread) of the distillation tests
from test_model_distill import _train


def _images(n, channels=1, size=28, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), generator=gen, dtype=torch.uint8)


def test_default_net_has_the_topology_of_ernet():
    net = FloatERNet()
    student = ERNet("float_first")
    assert [(b.cin, b.cout, b.stride, b.down is not None) for b in net.blocks] == \
        [(b.cin, b.cout, b.stride, b.down is not None) for b in student.blocks]
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    # stem1, stem2, two per block, one downsample, head: no binary layer anywhere
    assert len(convs) == 2 + 2 * 3 + 1 + 1
    assert net.stem1.stride == (2, 2) and net.blocks[1].down.kernel_size == (1, 1)
    logits = net(_images(5))
    assert logits.shape == (5, 10) and logits.dtype == torch.float32
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(_images(3)), net.forward_float(_images(3)))


def test_small_net_shapes_and_config_round_trip():
    net = FloatERNet(in_channels=3, image_size=32, num_classes=7, width=8,
                     blocks=[(8, 1), (16, 2), (16, 2)])
    images = _images(4, 3, 32)
    x = net.stem2(torch.relu(net.bn1(net.stem1(images.float() / 255))))
    assert x.shape == (4, 8, 16, 16)
    for block, size in zip(net.blocks, (16, 8, 4)):
        x = block(x)
        assert x.shape[2:] == (size, size)
    assert net(images).shape == (4, 7)
    config = json.loads(json.dumps(net.config))
    assert config["kind"] == "float_teacher"
    rebuilt = net_from_config(config)
    assert isinstance(rebuilt, FloatERNet) and rebuilt.config == net.config
    rebuilt.load_state_dict(net.state_dict())
    net.eval()
    rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(images), net(images))


def test_bad_arguments_and_unknown_kind():
    with pytest.raises(ValueError):
        FloatERNet(width=0)
    with pytest.raises(TypeError):
        FloatERNet(width=8.0)
    with pytest.raises(ValueError):
        FloatERNet(width=8, blocks=[(8, 3)])
    with pytest.raises(ValueError, match="unknown network kind"):
        net_from_config(dict(FloatERNet(width=8).config, kind="other"))


def test_train_float_teacher_resume_and_distil_from_it(tmp_path):
    teacher_dir = tmp_path / "teacher"
    r = _train(teacher_dir, "--variant", "float_teacher")
    assert r.returncode == 0, r.stderr
    assert "no deploy file" in r.stderr
    assert not (teacher_dir / "deploy.npz").exists()
    metrics = json.loads((teacher_dir / "metrics.json").read_text())
    assert metrics["variant"] == "float_teacher"
    assert metrics["deploy"] is None and metrics["golden_acc"] is None
    assert 0.0 <= metrics["test_acc_float"] <= 1.0 and metrics["test_images"] == 64
    assert "test_acc_int" not in metrics
    assert [set(h) >= {"train_loss", "test_acc_float"} and "test_acc_int" not in h
            for h in metrics["history"]] == [True]

    r = _train(teacher_dir, "--variant", "float_teacher", "--resume", "--epochs", "2")
    assert r.returncode == 0, r.stderr
    assert "resumed" in r.stderr
    assert [h["epoch"] for h in json.loads((teacher_dir / "metrics.json").read_text())["history"]] \
        == [1, 2]
    assert not (teacher_dir / "deploy.npz").exists()

    checkpoint = teacher_dir / "checkpoint.pt"
    teacher = load_teacher(checkpoint)
    assert isinstance(teacher, FloatERNet) and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())

    student_dir = tmp_path / "student"
    r = _train(student_dir, "--teacher", str(checkpoint))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((student_dir / "metrics.json").read_text())
    assert metrics["variant"] == "pixel_embedding"
    assert metrics["teacher"]["checkpoint"] == str(checkpoint)
    assert metrics["golden_pred_equal"] and metrics["golden_logits_int_equal"]
    assert metrics["golden_logits_max_abs_diff"] == 0.0


def test_train_float_teacher_rejects_deploy_path(tmp_path):
    r = _train(tmp_path / "t", "--variant", "float_teacher", "--deploy", str(tmp_path / "d.npz"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "--deploy" in r.stderr.strip().splitlines()[-1]
