"""First-layer variants on equal footing: accuracy of every variant over two seeds, same net and schedule.

    python -m bench.first_layer_accuracy              # docs/RESULTS.md sections + plots from runs/t1/
    python -m bench.first_layer_accuracy --commands   # the model.train command of every run not finished

Every run is the shipped network, and but for the schedule rows (``*_e40``) the shipped 30-epoch
schedule (``model.train``'s defaults). The first table changes only the first layer (``VARIANTS``);
the second keeps the pixel embedding and changes one lever per row (``CANDIDATES``: distillation
from a teacher, the table's learning rate, a table left at its thermometer initialisation, a wider
embedding (d = 16), a wider first layer, a longer schedule), each checked against float_first on
the same network and schedule. A run lives in ``RUNS/<row>_s<seed>/``: ``checkpoint.pt`` (written
after every epoch; its ``args`` give the command) and, once finished, ``metrics.json`` (accuracy by
``model.golden`` on the 10,000 test images, the check golden == PyTorch, training time). Unfinished
runs are listed with the epoch they reached, never averaged.

Writes two sections of docs/RESULTS.md ("First-layer variants, two seeds" and "The shipped
default: target and ablation"), ``docs/plots/first_layer_curves.png`` and
``docs/plots/default_candidates_curves.png`` (test accuracy per epoch of the runs of each table) and
``docs/plots/embedding_table.png`` (the shipped default's learned table next to its
thermometer initialisation).
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from .report import ROOT, git_revision, log, machine, plot_path, run_cli, table, write_section

RUNS = ROOT / "runs" / "t1"
RESULTS_DOC = ROOT / "docs" / "RESULTS.md"
SHIPPED = ROOT / "model" / "shipped" / "default.npz"
SEEDS = (0, 1)
TEACHER = "runs/t1/float_first_s1/checkpoint.pt"
#: The full-precision teacher (model.float_teacher: no deploy file, float accuracy only).
FLOAT_TEACHER_RUN = "runs/t1/float_teacher_s1"
FLOAT_TEACHER = f"{FLOAT_TEACHER_RUN}/checkpoint.pt"
#: Every run the two sections read: run name (``RUNS/<name>_s<seed>``), what its first layer is, and
#: the ``model.train`` options that make it (beside ``--seed`` and ``--out``).
ROWS = (
    ("pixel_embedding_kdf", "pixel embedding, d = 8, Q = 2, distilled from the float teacher",
     {"variant": "pixel_embedding", "teacher": FLOAT_TEACHER}),
    ("pixel_embedding_kd", "pixel embedding, d = 8, Q = 2, distilled from float_first",
     {"variant": "pixel_embedding", "teacher": TEACHER}),
    ("pixel_embedding_lr1", "pixel embedding, d = 8, Q = 2, table at the base learning rate",
     {"variant": "pixel_embedding", "embed_lr_mult": 1.0}),
    ("pixel_embedding_lr03", "pixel embedding, d = 8, Q = 2, table at 0.3x the base learning rate",
     {"variant": "pixel_embedding", "embed_lr_mult": 0.3}),
    ("pixel_embedding_fixed", "pixel embedding, d = 8, Q = 2, table not trained (thermometer code)",
     {"variant": "pixel_embedding", "embed_lr_mult": 0.0}),
    ("pixel_embedding_lr1_e40", "pixel embedding, d = 8, Q = 2, table at the base learning rate, "
                                "40 epochs", {"variant": "pixel_embedding", "embed_lr_mult": 1.0,
                                              "epochs": 40}),
    ("pixel_embedding_d16", "pixel embedding, d = 16, Q = 2 (two table channels per pixel)",
     {"variant": "pixel_embedding", "d": 16}),
    ("pixel_embedding_stem64", "pixel embedding, d = 8, Q = 2, first layer 64 wide",
     {"variant": "pixel_embedding", "stem_width": 64}),
    ("pixel_embedding", "pixel embedding, d = 8, Q = 2", {"variant": "pixel_embedding"}),
    ("float_first", "float first layer (on the host)", {"variant": "float_first"}),
    ("float_first_e40", "float first layer (on the host), 40 epochs",
     {"variant": "float_first", "epochs": 40}),
    ("float_first_stem64", "float first layer (on the host), 64 wide",
     {"variant": "float_first", "stem_width": 64}),
    ("naive", "pixels cut to 2 bits (`p >> 6`)", {"variant": "naive"}),
    ("uint8_bitserial", "8-bit pixels, bit-serial", {"variant": "uint8_bitserial"}),
)
#: What each row's first layer is, by run name.
LABELS = {name: label for name, label, _ in ROWS}
#: The first-layer table: the four ways into the network, each with the shipped training recipe.
VARIANTS = ("pixel_embedding", "float_first", "naive", "uint8_bitserial")
TITLE = "First-layer variants, two seeds"
TARGET_TITLE = "The shipped default: target and ablation"
TARGET_ACCURACY = 0.925
TARGET_GAP = 0.003


def _train_defaults():
    from model.train import parse_args
    return vars(parse_args([]))


def _shown_path(path):
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def command(args):
    """The ``model.train`` command line of a run, from the ``args`` its checkpoint keeps.

    Options equal to their default are left out; ``--resume`` (how it was continued, not what it
    trained) never appears.
    """
    defaults = _train_defaults()
    parts = ["python -m model.train"]
    for key, default in defaults.items():
        if key in ("resume", "block_list") or key not in args:
            continue
        value = args[key]
        if value == default:
            continue
        flag = "--" + key.replace("_", "-")
        parts.append(flag if value is True else f"{flag} {value}")
    return " ".join(parts)


def load_run(run_dir):
    """What is known of one run: ``None`` if it never started, else a dict with ``args``, ``epoch``,
    ``epochs``, ``history`` and, once finished, ``metrics``."""
    import torch
    run_dir = Path(run_dir)
    metrics_path, checkpoint_path = run_dir / "metrics.json", run_dir / "checkpoint.pt"
    if not checkpoint_path.is_file():
        return None
    checkpoint = torch.load(checkpoint_path, weights_only=False, map_location="cpu")
    state = {"args": checkpoint["args"], "epoch": checkpoint["epoch"],
             "epochs": checkpoint["args"]["epochs"], "history": checkpoint["history"],
             "train_time_s": checkpoint["train_time"], "metrics": None,
             "deploy": run_dir / "deploy.npz"}
    if metrics_path.is_file():
        state["metrics"] = json.loads(metrics_path.read_text())
    return state


def shipped_args(training, out=None):
    """The ``model.train`` arguments a deploy file's ``training`` header records (``out``: the run
    directory that reproduces it; the header does not keep the original one)."""
    net = training["net"]
    args = dict(_train_defaults())
    args.update({key: training[key] for key in ("epochs", "batch_size", "lr", "embed_lr_mult",
                                                "weight_decay", "augment", "seed", "init", "threads")})
    args.update(variant=net["variant"], d=net["d"], q_bits=net["q_embed"], width=net["width"],
                blocks=",".join(f"{c}:{s}" for c, s in net["blocks"]), out=out,
                quiet=True)
    return args


def load_shipped(shipped=SHIPPED, test=None, out=None, deploy=None):
    """The shipped default as a finished run of the plain pixel-embedding row: its deploy header
    records the command (seed 0, the shipped schedule) and the training time, but no checkpoint or
    per-epoch history was kept, so its accuracy is measured here by ``model.golden`` on all 10,000
    test images (``test``: ``(images, labels)``, by default the 10,000) and golden == PyTorch
    cannot be checked. ``deploy``: the file ``shipped`` already loaded, if the caller has it."""
    from model import deploy as mdeploy, golden
    from model.data import load_fashion_mnist
    deploy = mdeploy.load(shipped) if deploy is None else deploy
    training = deploy.header["training"]
    images, labels = load_fashion_mnist("test") if test is None else test
    golden_acc = float((golden.predict(deploy, images) == labels).mean())
    return {"args": shipped_args(training, out), "epoch": training["epochs"], "epochs": training["epochs"],
            "history": [], "train_time_s": training["train_time_s"], "deploy": Path(shipped),
            "metrics": {"golden_acc": golden_acc, "test_images": len(labels)}, "shipped_file": True}


def _row_of(args):
    """The row whose options (and no others) a run's arguments set, else ``None``."""
    defaults = _train_defaults()
    for name, _, options in ROWS:
        wanted = dict(defaults, **options)
        if all(args.get(k) == v for k, v in wanted.items()
               if k not in ("seed", "out", "resume", "threads", "quiet", "compile", "block_list")):
            return name
    return None


def load_all(runs=RUNS, shipped=SHIPPED, test=None):
    """Every ``(row, seed)`` state; a run missing from ``runs`` whose command is the shipped
    default's (same row, same seed) is taken from the shipped deploy file."""
    states = {(name, seed): load_run(Path(runs) / f"{name}_s{seed}")
              for name, _, _ in ROWS for seed in SEEDS}
    if shipped is not None and Path(shipped).is_file():
        from model import deploy as mdeploy
        deploy = mdeploy.load(shipped)
        args = shipped_args(deploy.header["training"])
        key = (_row_of(args), args["seed"])
        if key in states and states[key] is None:
            out = _shown_path(Path(runs) / f"{key[0]}_s{key[1]}")
            states[key] = load_shipped(shipped, test, out, deploy)
    return states


def epoch_accuracy(record):
    """Test accuracy after one epoch: the integer path where the run recorded it, else its float
    simulation (``model.train`` evaluates only that after each epoch; the two predict the same)."""
    return record.get("test_acc_int", record.get("test_acc_float"))


def accuracy(state):
    """Golden accuracy on the 10,000 test images of a finished run, else ``None``."""
    return state["metrics"]["golden_acc"] if state and state["metrics"] else None


def _cell(state):
    if state is None:
        return "not started"
    if state["metrics"] is None:
        last = epoch_accuracy(state["history"][-1]) if state["history"] else None
        reached = f", {100 * last:.2f} % after it" if last is not None else ""
        return f"running: epoch {state['epoch']}/{state['epochs']}{reached}"
    return f"{100 * accuracy(state):.2f} %"


def mean_accuracy(states):
    """Mean over the seeds when every seed finished, else ``None``."""
    values = [accuracy(s) for s in states]
    return None if any(v is None for v in values) else float(np.mean(values))


def _exact(state):
    m = state and state["metrics"]
    if not m or "golden_pred_equal" not in m:
        return "-"
    ok = m["golden_pred_equal"] and m["golden_logits_int_equal"] and m["golden_logits_max_abs_diff"] == 0
    return "yes" if ok else "**no**"


def shipped_run(states, shipped=SHIPPED):
    """``(name, seed)`` of the run whose deploy file is the shipped default, or ``None``."""
    if not Path(shipped).is_file():
        return None
    digest = hashlib.sha256(Path(shipped).read_bytes()).hexdigest()
    for key, state in states.items():
        deploy = state and state["deploy"]
        if deploy and deploy.is_file() and hashlib.sha256(deploy.read_bytes()).hexdigest() == digest:
            return key
    return None


def section_lines(states, *, argv):
    rows, missing = [], []
    shipped = shipped_run(states)
    for name in VARIANTS:
        label = LABELS[name]
        per_seed = [states[(name, s)] for s in SEEDS]
        mean = mean_accuracy(per_seed)
        if shipped and shipped[0] == name:
            label += f" (**shipped default**: seed {shipped[1]})"
        times = ", ".join(f"{s['train_time_s'] / 60:.0f} min" if s and s["metrics"] else "-"
                          for s in per_seed)
        first = next((s for s in per_seed if s), None)
        rows.append([label, *[_cell(s) for s in per_seed],
                     f"**{100 * mean:.2f} %**" if mean is not None else "-",
                     " / ".join(_exact(s) for s in per_seed), times,
                     f"`{command(first['args'])}`" if first else "-"])
        missing += [f"{name}_s{s}" for s, st in zip(SEEDS, per_seed) if not (st and st["metrics"])]
    lines = [
        f"`python -m bench.first_layer_accuracy {' '.join(argv)}`".replace(" `", "`")
        + f" (revision {git_revision()}, {machine()}). The shipped network (`--width 32 --blocks "
        f"32:1,32:1,64:2,64:1`) and schedule (30 epochs, Adam 2e-3 with the table at 10x, cosine to "
        f"0, batch 128, random horizontal flips), seeds 0 and 1, only the first layer changed. "
        f"Accuracy by `model.golden` on all 10,000 test images from each run's deploy file; "
        f"\"golden == PyTorch\" means equal predictions, equal integer logits and float logits "
        f"equal to the last bit on all 10,000. The command is that of the row's first run (the other "
        f"seed's differs in `--seed` and `--out`); "
        f"`--compile` (torch.compile, about 1.4x faster on one thread) changes float rounding in "
        f"training only. Training times are wall time of one thread with two runs sharing the "
        f"2-core machine.", ""]
    lines += table(["first layer", *[f"seed {s}" for s in SEEDS], "mean",
                    "golden == PyTorch (per seed)", "training time (per seed)", "command"], rows)
    from_shipped = [key for key, state in states.items()
                    if state and state.get("shipped_file") and key[0] in VARIANTS]
    for name, seed in from_shipped:
        lines += ["", f"Seed {seed} of `{name}` is the shipped default `model/shipped/default.npz`: "
                      f"the same command, trained at an earlier revision, whose deploy header records "
                      f"the command and training time but whose checkpoint and per-epoch history were "
                      f"not kept. Its accuracy is measured by `model.golden` on the 10,000 test images "
                      f"when this section is written; golden == PyTorch cannot be checked for it."]
    if missing:
        lines += ["", "Not finished: " + ", ".join(f"`{m}`" for m in missing)
                  + " (`python -m bench.first_layer_accuracy --commands` prints their commands; "
                    "a run continues from its checkpoint with `--resume`)."]
    reading = reading_lines(states)
    if reading:
        lines += ["", "Reading (means of the two seeds; the seed-to-seed spread is the scale of the "
                      "noise):", ""] + reading
    lines += ["", "![test accuracy per epoch](plots/first_layer_curves.png)"]
    return lines


def reading_lines(states, reference="pixel_embedding", names=VARIANTS):
    """Each finished row of ``names`` against the plain pixel embedding, and the spread between
    seeds."""
    means = {name: mean_accuracy([states[(name, s)] for s in SEEDS]) for name in names}
    out = []
    if means[reference] is not None:
        for name in names:
            if name != reference and means[name] is not None:
                out.append(f"- {LABELS[name]}: {100 * (means[name] - means[reference]):+.2f} points "
                           f"against {LABELS[reference]}.")
    spreads = [abs(accuracy(states[(name, SEEDS[0])]) - accuracy(states[(name, SEEDS[1])]))
               for name in names if means[name] is not None]
    if spreads:
        out.append(f"- Seed {SEEDS[0]} against seed {SEEDS[1]} of the same row: "
                   f"{100 * min(spreads):.2f} to {100 * max(spreads):.2f} points apart.")
    return out


#: Candidates for the shipped default (the pixel-embedding rows): what each changes against the
#: plain one, and the float_first row with the same schedule that it must come within the gap of.
CANDIDATES = (("pixel_embedding", "labels only", "float_first"),
              ("pixel_embedding_kd", "+ distillation from float_first (`--teacher`, alpha 0.5, T = 4)",
               "float_first"),
              ("pixel_embedding_kdf", "+ distillation from the float teacher (`--teacher`, alpha 0.5, "
                                      "T = 4)", "float_first"),
              ("pixel_embedding_lr1", "table at the base learning rate (`--embed-lr-mult 1`, "
                                      "default 10)", "float_first"),
              ("pixel_embedding_lr03", "table at 0.3x the base learning rate "
                                       "(`--embed-lr-mult 0.3`)", "float_first"),
              ("pixel_embedding_fixed", "table not trained: ERN's generalized thermometer code, its "
                                        "initialisation (`--embed-lr-mult 0`)", "float_first"),
              ("pixel_embedding_d16", "d = 16 instead of 8: 32 bits per pixel, split over two table "
                                      "channels (`--d 16`)", "float_first"),
              ("pixel_embedding_stem64", "first layer 64 wide instead of 32 (stem1 8 -> 64, stem2 "
                                         "64 -> 32: `--stem-width 64`; fits the 25F)",
               "float_first_stem64"),
              ("pixel_embedding_lr1_e40", "table at the base learning rate and 40 epochs instead of "
                                          "30 (`--embed-lr-mult 1 --epochs 40`)", "float_first_e40"))


def teacher_accuracy(run=ROOT / FLOAT_TEACHER_RUN):
    """Float test accuracy of the finished float-teacher run, else ``None``."""
    path = Path(run) / "metrics.json"
    return json.loads(path.read_text())["test_acc_float"] if path.is_file() else None


def _unfinished_mean(states, name):
    """What is known of a row without a mean: its finished seeds, or that it has none."""
    done = [f"{100 * accuracy(states[(name, s)]):.2f} % (seed {s})" for s in SEEDS
            if accuracy(states[(name, s)]) is not None]
    return f"no mean yet, {', '.join(done)}" if done else "not finished"


def target_lines(states, *, teacher_run=ROOT / FLOAT_TEACHER_RUN):
    """The default's target, checked for every candidate against float_first, as an ablation table
    (each row changes one lever of the plain pixel-embedding row)."""
    references = dict.fromkeys(ref for _, _, ref in CANDIDATES)
    for ref in references:
        references[ref] = mean_accuracy([states[(ref, s)] for s in SEEDS])
    lines = [f"Target: a default of at least {100 * TARGET_ACCURACY:.1f} % with binary weights in "
             f"every layer and 2-bit activations, within {100 * TARGET_GAP:.1f} points of float_first "
             f"on the same network, schedule and seeds (means of seeds {SEEDS[0]} and {SEEDS[1]}; "
             + "; ".join(f"{LABELS[ref]}: " + (f"{100 * mean:.2f} %" if mean is not None
                                               else _unfinished_mean(states, ref))
                         for ref, mean in references.items())
             + "). Each row changes one lever of the plain pixel embedding; every other setting is "
               "the same.", ""]
    body = []
    for name, label, ref in CANDIDATES:
        per_seed = [states[(name, s)] for s in SEEDS]
        mean, reference = mean_accuracy(per_seed), references[ref]
        if mean is None or reference is None:
            verdict, gap = "not decided (a run has not finished)", "-"
        else:
            met = mean >= TARGET_ACCURACY and reference - mean <= TARGET_GAP
            verdict, gap = ("**met**" if met else "not met"), f"{100 * (reference - mean):+.2f}"
        body.append([label, *[_cell(s) for s in per_seed],
                     f"{100 * mean:.2f} %" if mean is not None else "-",
                     f"{100 * reference:.2f} %" if reference is not None else "not finished",
                     gap, verdict])
    lines += table(["pixel embedding, d = 8, Q = 2", *[f"seed {s}" for s in SEEDS], "mean",
                    "float_first, same schedule (mean)", "points behind it", "target"], body)
    reading = reading_lines(states, names=[name for name, _, _ in CANDIDATES]) + pooled_lines(states)
    if reading:
        lines += ["", "Reading:", ""] + reading
    lines += ["", "![test accuracy per epoch](plots/default_candidates_curves.png)"]
    teacher = teacher_accuracy(teacher_run)
    lines += ["", "The float teacher (`--variant float_teacher`: the same topology with float "
                  "weights and ReLU, no deploy file; seed 1): "
              + (f"{100 * teacher:.2f} % (float, 10,000 test images)." if teacher is not None
                 else "not finished.")]
    return lines


def pooled_lines(states):
    """Every finished run of the candidates, whatever its lever and seed, against every finished
    float_first run that a candidate is judged against: how far apart the two groups lie."""
    def finished(names):
        return [accuracy(state) for (name, _), state in states.items()
                if name in names and accuracy(state) is not None]
    embedding = finished({name for name, _, _ in CANDIDATES})
    float_first = finished({ref for _, _, ref in CANDIDATES})
    if not embedding or not float_first:
        return []
    line = (f"- All {len(embedding)} finished pixel-embedding runs above, whatever the lever and "
            f"seed: {100 * min(embedding):.2f} to {100 * max(embedding):.2f} % (mean "
            f"{100 * np.mean(embedding):.2f} %); all {len(float_first)} finished float_first runs "
            f"they are judged against: {100 * min(float_first):.2f} to {100 * max(float_first):.2f} % "
            f"(mean {100 * np.mean(float_first):.2f} %).")
    if max(embedding) < min(float_first):
        line += (f" The best pixel-embedding run is {100 * (min(float_first) - max(embedding)):.2f} "
                 f"points below the worst float_first run.")
    return [line]


def plot_curves(states, png, names=VARIANTS, title="First-layer variants, shipped network, "
                                                   "30-epoch schedule", ylim=(85, 94)):
    """Test accuracy per epoch of the rows ``names``, both seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    colours = dict(zip(names, [f"C{i}" for i in range(10)] + ["k", "m", "y"]))
    for (name, seed), state in states.items():
        if name not in colours or not state or not state["history"]:
            continue
        epochs = [h["epoch"] for h in state["history"]]
        acc = [100 * epoch_accuracy(h) for h in state["history"]]
        ax.plot(epochs, acc, color=colours[name], linestyle="-" if seed == SEEDS[0] else "--",
                label=f"{name} seed {seed}")
    ax.set_ylim(*ylim)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%) after the epoch")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def plot_table(deploy_path, png):
    """The learned table of a deploy file's embed layer beside its thermometer initialisation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from model import deploy as mdeploy
    from model.layers import thermometer_table
    embed = next(layer for layer in mdeploy.load(deploy_path).layers if layer["kind"] == "embed")
    learned, d, q = embed["arrays"]["table"][0], embed["d"], embed["q"]
    init = thermometer_table(d, q)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    x = np.arange(256)
    for ax, values, title in ((axes[0], init, f"thermometer initialisation (d={d}, Q={q})"),
                              (axes[1], learned, "learned (shipped default)")):
        for j in range(d):
            ax.step(x, values[:, j] + 0.06 * (j - (d - 1) / 2), where="post", label=f"dim {j}")
        ax.set_title(title)
        ax.set_xlabel("pixel value")
        ax.set_xlim(0, 255)
        ax.set_yticks(range(2 ** q))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("code")
    axes[1].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    changed = int((learned != init).sum())
    return changed, learned.size


def missing_commands(states, runs=RUNS):
    """The command that finishes (``--resume``) or starts every run without ``metrics.json``."""
    out = []
    for (name, seed), state in states.items():
        if state and state["metrics"]:
            continue
        if state:
            out.append(f"{command(state['args'])} --resume")
            continue
        template = next((s["args"] for (n, _), s in states.items() if n == name and s), None)
        if template is None:
            options = next(o for n, _, o in ROWS if n == name)
            template = dict(_train_defaults(), threads=1, quiet=True, compile=True, **options)
        out.append(command(dict(template, seed=seed, out=_shown_path(Path(runs) / f"{name}_s{seed}"))))
    return out


def run(argv=None, *, runs=RUNS, doc=RESULTS_DOC, write=True):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m bench.first_layer_accuracy",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--runs", default=str(runs), help="directory of the <row>_s<seed>/ runs")
    ap.add_argument("--commands", action="store_true", help="print the commands of unfinished runs")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    states = load_all(args.runs)
    if args.commands:
        print("\n".join(missing_commands(states, args.runs)))
        return states
    lines = section_lines(states, argv=argv)
    target = target_lines(states)
    if write and not args.no_write:
        plot_curves(states, plot_path("first_layer_curves.png"))
        plot_curves(states, plot_path("default_candidates_curves.png"),
                    names=[name for name, _, _ in CANDIDATES]
                    + list(dict.fromkeys(reference for _, _, reference in CANDIDATES)),
                    title="Candidates for the default against float_first", ylim=(89, 93.5))
        changed, total = plot_table(SHIPPED, plot_path("embedding_table.png"))
        log(f"shipped default's table: {changed} of {total} entries differ from the initialisation")
        write_section(TITLE, lines, doc=doc)
        write_section(TARGET_TITLE, target, doc=doc)
        log(f"wrote the '{TITLE}' and '{TARGET_TITLE}' sections of {doc.name}")
    print("\n".join(lines + [""] + target))
    return states


def main(argv=None):
    return run_cli(lambda: (run(argv), 0)[1])


if __name__ == "__main__":
    sys.exit(main())
