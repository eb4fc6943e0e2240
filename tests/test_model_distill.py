"""Knowledge distillation (model/distill.py) and model.train --teacher."""

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from model import deploy as dp
from model.distill import distillation_loss, load_teacher
from model.data import DataError


def test_loss_alpha_zero_is_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(16, 10, generator=gen), torch.randn(16, 10, generator=gen)
    labels = torch.randint(0, 10, (16,), generator=gen)
    assert torch.equal(distillation_loss(student, teacher, labels, 0.0, 4.0),
                       F.cross_entropy(student, labels))


def test_loss_soft_term_vanishes_when_student_equals_teacher_and_pulls_towards_it():
    gen = torch.Generator().manual_seed(1)
    teacher = torch.randn(8, 10, generator=gen)
    labels = teacher.argmax(1)
    same = distillation_loss(teacher.clone(), teacher, labels, 1.0, 3.0)
    assert abs(same.item()) < 1e-6
    student = torch.zeros(8, 10, requires_grad=True)
    distillation_loss(student, teacher, labels, 1.0, 3.0).backward()
    # a gradient step moves the student's softened distribution towards the teacher's
    moved = (student - 0.5 * student.grad).detach()
    before = F.kl_div(F.log_softmax(student.detach() / 3, 1), F.log_softmax(teacher / 3, 1),
                      reduction="batchmean", log_target=True)
    after = F.kl_div(F.log_softmax(moved / 3, 1), F.log_softmax(teacher / 3, 1),
                     reduction="batchmean", log_target=True)
    assert after < before


@pytest.mark.parametrize("alpha, temperature", [(-0.1, 4.0), (1.5, 4.0), (0.5, 0.0)])
def test_loss_rejects_bad_parameters(alpha, temperature):
    with pytest.raises(ValueError):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long),
                          alpha, temperature)


def test_load_teacher_missing_and_malformed(tmp_path):
    with pytest.raises(DataError, match="no checkpoint"):
        load_teacher(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"something": 1}, bad)
    with pytest.raises(DataError, match="not a model.train checkpoint"):
        load_teacher(bad)


def _train(out, *extra):
    cmd = [sys.executable, "-m", "model.train", "--epochs", "1", "--train-limit", "64",
           "--test-limit", "64", "--blocks", "32:2", "--batch-size", "32", "--quiet",
           "--threads", "1", "--out", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_train_with_teacher_records_it_and_stays_bit_exact(tmp_path):
    # The student trains compiled, so the compiled teacher forward runs too.
    teacher = tmp_path / "teacher"
    r = _train(teacher, "--variant", "float_first", "--no-golden")
    assert r.returncode == 0, r.stderr
    student = tmp_path / "student"
    r = _train(student, "--teacher", str(teacher / "checkpoint.pt"), "--distill-alpha", "0.7",
               "--distill-temperature", "2", "--compile")
    assert r.returncode == 0, r.stderr
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["compiled"]
    assert metrics["teacher"] == {"checkpoint": str(teacher / "checkpoint.pt"), "alpha": 0.7,
                                  "temperature": 2.0}
    assert metrics["golden_pred_equal"] and metrics["golden_logits_int_equal"]
    assert dp.load(student / "deploy.npz").header["training"]["teacher"]["alpha"] == 0.7


def test_train_teacher_errors_are_one_line(tmp_path):
    r = _train(tmp_path / "s", "--teacher", str(tmp_path / "none.pt"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [l for l in r.stderr.strip().splitlines() if "--teacher" in l]
    assert not (tmp_path / "s").exists()
    r = _train(tmp_path / "s", "--teacher", "x.pt", "--distill-alpha", "2")
    assert r.returncode != 0 and "--distill-alpha must be in 0..1" in r.stderr
