"""bench.first_layer_accuracy: the two-seed first-layer table and the default's target check."""

import json

import torch

from bench import first_layer_accuracy as FLA
from model.train import parse_args


def _run(runs, name, seed, *, accuracy=None, epoch=30, argv=()):
    run_dir = runs / f"{name}_s{seed}"
    run_dir.mkdir(parents=True)
    args = vars(parse_args(["--seed", str(seed), "--threads", "1", "--out", str(run_dir), *argv]))
    history = [{"epoch": e + 1, "test_acc_int": 0.85 + 0.002 * e} for e in range(epoch)]
    torch.save({"args": args, "epoch": epoch, "history": history, "train_time": 1800.0},
               run_dir / "checkpoint.pt")
    if accuracy is not None:
        (run_dir / "metrics.json").write_text(json.dumps(
            {"golden_acc": accuracy, "golden_pred_equal": True, "golden_logits_int_equal": True,
             "golden_logits_max_abs_diff": 0.0}))


def _load(runs):
    """The states of ``runs`` alone (without the shipped file standing in for a missing run)."""
    return FLA.load_all(runs, shipped=None)


def test_command_leaves_out_defaults_and_resume(tmp_path):
    args = vars(parse_args(["--variant", "naive", "--compile", "--threads", "1", "--resume",
                            "--out", "runs/t1/naive_s1", "--seed", "1"]))
    assert FLA.command(args) == ("python -m model.train --variant naive --seed 1 --threads 1 "
                                 "--out runs/t1/naive_s1 --compile")


def test_table_means_only_finished_seeds_and_target(tmp_path):
    runs = tmp_path / "runs"
    teacher = ["--teacher", "t.pt"]
    _run(runs, "pixel_embedding_kd", 0, accuracy=0.9262, argv=teacher)
    _run(runs, "pixel_embedding_kd", 1, accuracy=0.9248, argv=teacher)
    _run(runs, "float_first", 0, accuracy=0.9269, argv=["--variant", "float_first"])
    _run(runs, "float_first", 1, accuracy=0.9261, argv=["--variant", "float_first"])
    _run(runs, "pixel_embedding", 0, accuracy=0.9211)
    _run(runs, "naive", 0, epoch=12, argv=["--variant", "naive"])
    states = _load(runs)
    text = "\n".join(FLA.section_lines(states, argv=[]))
    assert "| float first layer (on the host) | 92.69 % | 92.61 % | **92.65 %** | yes / yes |" in text
    # the first table holds the first-layer variants only; the levers are in the target's table
    assert "distilled" not in text
    # one seed only: no mean; a run in progress shows its epoch and last accuracy, never a mean
    assert "| pixel embedding, d = 8, Q = 2 | 92.11 % | not started | - |" in text
    assert "running: epoch 12/30, 87.20 % after it | not started | - |" in text
    assert "`python -m model.train --variant float_first --threads 1 --out " in text
    # float_first has no plain pixel-embedding mean to compare with yet: no reading lines but the spread
    assert "- Seed 0 against seed 1 of the same row: 0.08 to 0.08 points apart." in text
    assert "points against" not in text
    _run(runs, "pixel_embedding", 1, accuracy=0.9218)
    reading = "\n".join(FLA.reading_lines(_load(runs)))
    assert "- float first layer (on the host): +0.50 points against pixel embedding" in reading
    assert "distilled" not in reading
    assert "`naive_s1`" in text and "`pixel_embedding_kd_s0`" not in text.split("Not finished")[1]
    target = "\n".join(FLA.target_lines(states, teacher_run=tmp_path / "no_teacher"))
    assert "distilled from float_first: +0.40 points" in "\n".join(
        FLA.target_lines(_load(runs), teacher_run=tmp_path / "no_teacher"))
    # 92.55 % >= 92.5 % and 0.10 points behind float_first's 92.65 %
    assert "float first layer (on the host): 92.65 %" in target
    assert "| 92.62 % | 92.48 % | 92.55 % | 92.65 % | +0.10 | **met** |" in target
    assert "| labels only | 92.11 % | not started | - | 92.65 % | - | not decided" in target
    assert "float teacher" in target and target.endswith("not finished.")
    _run(runs, "float_first", 2, accuracy=0.99)              # not a seed of the table: ignored
    assert "**met**" in "\n".join(FLA.target_lines(_load(runs)))


def test_target_not_met_when_gap_too_large_or_unfinished(tmp_path):
    runs = tmp_path / "runs"
    for seed, acc in ((0, 0.9252), (1, 0.9254)):
        _run(runs, "pixel_embedding_kd", seed, accuracy=acc, argv=["--teacher", "t.pt"])
    _run(runs, "float_first", 0, accuracy=0.9300, argv=["--variant", "float_first"])
    assert "**met**" not in "\n".join(FLA.target_lines(_load(runs)))
    _run(runs, "float_first", 1, accuracy=0.9290, argv=["--variant", "float_first"])
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "metrics.json").write_text(json.dumps({"test_acc_float": 0.9391}))
    target = "\n".join(FLA.target_lines(_load(runs), teacher_run=teacher))
    assert "| 92.52 % | 92.54 % | 92.53 % | 92.95 % | +0.42 | not met |" in target
    assert "93.91 % (float, 10,000 test images)" in target


def test_longer_schedule_is_judged_against_float_first_on_that_schedule(tmp_path):
    runs = tmp_path / "runs"
    e40 = ["--embed-lr-mult", "1", "--epochs", "40"]
    for seed, acc in ((0, 0.9262), (1, 0.9258)):
        _run(runs, "pixel_embedding_lr1_e40", seed, accuracy=acc, epoch=40, argv=e40)
        _run(runs, "float_first", seed, accuracy=0.9260, argv=["--variant", "float_first"])
    states = _load(runs)
    assert FLA._row_of(states[("pixel_embedding_lr1_e40", 0)]["args"]) == "pixel_embedding_lr1_e40"
    row = next(line for line in FLA.target_lines(states) if "40 epochs instead of 30" in line)
    # within the gap of the 30-epoch float_first, but that is not the same schedule
    assert row.endswith("| 92.62 % | 92.58 % | 92.60 % | not finished | - | not decided (a run has "
                        "not finished) |")
    _run(runs, "float_first_e40", 0, accuracy=0.9300, epoch=40,
         argv=["--variant", "float_first", "--epochs", "40"])
    assert ("float first layer (on the host), 40 epochs: no mean yet, 93.00 % (seed 0)"
            in FLA.target_lines(_load(runs))[0])
    for seed, acc in ((1, 0.9296),):
        _run(runs, "float_first_e40", seed, accuracy=acc, epoch=40,
             argv=["--variant", "float_first", "--epochs", "40"])
    target = FLA.target_lines(_load(runs))
    row = next(line for line in target if "40 epochs instead of 30" in line)
    assert row.endswith("| 92.60 % | 92.98 % | +0.38 | not met |")
    assert "float first layer (on the host), 40 epochs: 92.98 %" in target[0]
    # every finished candidate run against every float_first run a candidate is judged against
    assert ("- All 2 finished pixel-embedding runs above, whatever the lever and seed: 92.58 to "
            "92.62 % (mean 92.60 %); all 4 finished float_first runs they are judged against: "
            "92.60 to 93.00 % (mean 92.79 %).") in target
    _run(runs, "pixel_embedding", 0, accuracy=0.9211)
    pooled = FLA.pooled_lines(_load(runs))[0]
    assert pooled.endswith("92.11 to 92.62 % (mean 92.44 %); all 4 finished float_first runs they "
                           "are judged against: 92.60 to 93.00 % (mean 92.79 %).")
    _run(runs, "pixel_embedding", 1, accuracy=0.9280)      # above the worst float_first run
    assert "points below the worst" not in FLA.pooled_lines(_load(runs))[0]
    (runs / "pixel_embedding_s1").rename(runs / "ignored")
    (runs / "pixel_embedding_lr1_e40_s0").rename(runs / "ignored0")
    (runs / "pixel_embedding_lr1_e40_s1").rename(runs / "ignored1")
    assert FLA.pooled_lines(_load(runs))[0].endswith(
        "The best pixel-embedding run is 0.49 points below the worst float_first run.")
    FLA.plot_curves(_load(runs), tmp_path / "c.png", names=["pixel_embedding_lr1_e40", "float_first_e40"])
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_epoch_accuracy_from_either_path(tmp_path):
    runs = tmp_path / "runs"
    _run(runs, "naive", 0, epoch=2, argv=["--variant", "naive"])
    checkpoint = torch.load(runs / "naive_s0" / "checkpoint.pt", weights_only=False)
    # model.train records only the float simulation after each epoch
    checkpoint["history"] += [{"epoch": 3, "test_acc_float": 0.8765}]
    checkpoint["epoch"] = 3
    torch.save(checkpoint, runs / "naive_s0" / "checkpoint.pt")
    state = _load(runs)[("naive", 0)]
    assert [FLA.epoch_accuracy(h) for h in state["history"]] == [0.85, 0.852, 0.8765]
    assert "running: epoch 3/30, 87.65 % after it" in "\n".join(FLA.section_lines(_load(runs), argv=[]))
    FLA.plot_curves(_load(runs), tmp_path / "c.png")


def test_missing_commands_start_or_resume(tmp_path):
    runs = tmp_path / "runs"
    _run(runs, "naive", 0, epoch=3, argv=["--variant", "naive", "--compile"])
    commands = FLA.missing_commands(_load(runs), runs)
    assert any(c.endswith("--compile --resume") and "--variant naive" in c for c in commands)
    seed1 = [c for c in commands if "naive_s1" in c]
    assert len(seed1) == 1 and "--seed 1" in seed1[0] and "--resume" not in seed1[0]
    kd = [c for c in commands if "pixel_embedding_kd_s0" in c]
    assert len(kd) == 1 and f"--teacher {FLA.TEACHER}" in kd[0]
    assert len(commands) == 2 * len(FLA.ROWS)


def test_plots(tmp_path):
    runs = tmp_path / "runs"
    _run(runs, "pixel_embedding", 0, accuracy=0.92)
    FLA.plot_curves(_load(runs), tmp_path / "c.png")
    changed, total = FLA.plot_table(FLA.SHIPPED, tmp_path / "t.png")
    assert 0 < changed < total == 256 * 8
    assert (tmp_path / "c.png").stat().st_size > 1000 and (tmp_path / "t.png").stat().st_size > 1000


def test_shipped_file_stands_in_for_its_missing_run(tmp_path):
    from model import deploy as mdeploy, golden
    from model.data import load_fixture
    runs = tmp_path / "runs"
    _run(runs, "pixel_embedding", 1, accuracy=0.9218)
    images, labels = load_fixture()
    states = FLA.load_all(runs, test=(images, labels))
    training = mdeploy.load(FLA.SHIPPED).header["training"]
    assert training["seed"] == 0 and training["net"]["variant"] == "pixel_embedding"
    state = states[("pixel_embedding", 0)]
    expected = float((golden.predict(mdeploy.load(FLA.SHIPPED), images) == labels).mean())
    assert state["shipped_file"] and state["metrics"]["golden_acc"] == expected
    assert FLA.command(state["args"]) == (f"python -m model.train --threads 1 "
                                          f"--out {runs / 'pixel_embedding_s0'} --quiet")
    assert FLA.shipped_run(states) == ("pixel_embedding", 0)
    text = "\n".join(FLA.section_lines(states, argv=[]))
    assert "shipped default**: seed 0" in text and "golden == PyTorch cannot be checked" in text
    assert f"{100 * expected:.2f} %" in text
    assert not any("pixel_embedding_s0" in c for c in FLA.missing_commands(states, runs))
    # a run of that row and seed on disk is what counts; the shipped file only fills a gap
    _run(runs, "pixel_embedding", 0, accuracy=0.9300)
    assert not FLA.load_all(runs, test=(images, labels))[("pixel_embedding", 0)].get("shipped_file")
