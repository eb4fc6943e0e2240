"""Pixel-embedding sweep: accuracy against the first layer's cost for d x Q on the shipped network.

    python -m bench.embedding_sweep --train --epochs 10     # train the grid (resumable), then measure
    python -m bench.embedding_sweep                         # measure what is trained so far

The grid is d in {1, 2, 4, 8, 16} and Q in {1, 2}: 10 points. A table entry holds 16 bits
(``contract/config.py``) and the EMBED descriptor at most 15 codes (``emb_d``), so at d = 16 the
compiler splits each pixel's embedding over two table channels
(``firmware/compiler/table_split.py``: the host sends each pixel twice, both looked up in the same
cycle).
Every point is the shipped network (``model/shipped/default.npz``'s ``training.net``) with only d and Q
changed, trained with the same schedule (``--epochs``, ``--seed``), each run in
``RUNS/d<d>_q<Q>/`` (``python -m model.train ... --resume`` continues an interrupted one).

Per point: accuracy by ``model.golden`` on the 10,000 test images (what ``model.train`` recorded in
``metrics.json``), the first layer's cycles per image (EMBED + stem1, from the hardware counters of
the compiled simulator, steady state), the whole network's, and the table's bits. The embedding
unit's logic and block RAM do not change with d and Q (the table is built for the configuration's
widest entry), so the hardware cost of a point is its cycles and the share of the table it uses.
Points not trained yet are measured for cycles and listed as such. Writes the "Embedding sweep"
section of docs/RESULTS.md and ``docs/plots/embedding_sweep.png``.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from contract.config import config_name
from firmware.session import (DEFAULT_MODEL, DEFAULT_BOARD, resolve_config, resolve_backend,
                              load_images, open_transport, board_fmax)

from .first_layer import measure_variant, embed_window, synth_embed_point, synth_shipped_unit
from .report import write_section, plot_path, machine, git_revision, table, run_cli, log, ROOT

TITLE = "Embedding sweep (d x Q)"
D_VALUES = (1, 2, 4, 8, 16)
Q_VALUES = (1, 2)
RUNS = ROOT / "runs" / "sweep_shipped"
RESULTS_DOC = ROOT / "docs" / "RESULTS.md"


def grid():
    """``(d, q)`` points of the sweep, in plot order."""
    return [(d, q) for q in Q_VALUES for d in D_VALUES]


def shipped_net():
    from model import deploy as mdeploy
    return dict(mdeploy.load(DEFAULT_MODEL).header["training"]["net"])


def train_command(d, q, *, runs, epochs, seed, resume=False, compile=False):
    """The ``model.train`` command of one point (what the table prints and ``--train`` runs)."""
    net = shipped_net()
    blocks = ",".join(f"{c}:{s}" for c, s in net["blocks"])
    cmd = [sys.executable, "-m", "model.train", "--variant", "pixel_embedding", "--d", str(d),
           "--q-bits", str(q), "--width", str(net["width"]), "--blocks", blocks,
           "--epochs", str(epochs), "--seed", str(seed), "--threads", "1", "--quiet",
           "--out", str(Path(runs) / f"d{d}_q{q}")]
    return cmd + (["--compile"] if compile else []) + (["--resume"] if resume else [])


def _shown(cmd):
    return " ".join(["python" if c == sys.executable else c for c in cmd if c != "--resume"])


def train_missing(points, *, runs, epochs, seed, compile=False):
    """Train (or finish) every point without a ``metrics.json``; progress on stderr."""
    from tqdm import tqdm
    todo = [(d, q) for d, q in points if not (Path(runs) / f"d{d}_q{q}" / "metrics.json").is_file()]
    for d, q in tqdm(todo, desc="embedding sweep: training", file=sys.stderr):
        resume = (Path(runs) / f"d{d}_q{q}" / "checkpoint.pt").is_file()
        subprocess.run(train_command(d, q, runs=runs, epochs=epochs, seed=seed, resume=resume,
                                     compile=compile), check=True)


def point_deploy(d, q, runs):
    """``(DeployModel, metrics or None)``: the trained point, else an untrained export (cycles)."""
    from model import deploy as mdeploy
    run = Path(runs) / f"d{d}_q{q}"
    if (run / "metrics.json").is_file() and (run / "deploy.npz").is_file():
        return mdeploy.load(run / "deploy.npz"), json.loads((run / "metrics.json").read_text())
    import torch
    from model.nets import net_from_config
    net_config = dict(shipped_net(), d=d, q_embed=q)
    torch.manual_seed(0)
    net = net_from_config(net_config)
    net.eval()
    header, arrays = net.export({"note": "untrained, for cycle counts only"})
    return mdeploy.validate(header, arrays), None


def measure(points, configs, transports, images, runs, *, synth=True):
    """One row per point: accuracy and, per configuration, cycles of the first layer and in all,
    and (``synth``) the cells of the embedding unit specialised to the point (Yosys synth_ecp5)."""
    rows = []
    for d, q in points:
        deploy, metrics = point_deploy(d, q, runs)
        log(f"embedding_sweep: d={d} Q={q} ({'trained' if metrics else 'untrained: cycles only'})")
        row = dict(d=d, q=q, accuracy=(metrics or {}).get("golden_acc"),
                   train_time_s=(metrics or {}).get("train_time_s"), table_bits=256 * d * q,
                   hardware={})
        for config, transport in zip(configs, transports):
            hw = measure_variant(deploy, config, transport, images)
            window = embed_window(hw["compiled"])
            split = hw["compiled"].image_repeat
            row["hardware"][config_name(config)] = dict(
                {key: hw[key] for key in ("cycles", "first_cycles", "golden_equal", "n_images")},
                mode=("window" if window else "plain" if split == 1
                      else f"plain, {split} table channels"))
            if synth:
                cells = synth_embed_point(config, d // split, q, window, channels=split, log=log)
                row["hardware"][config_name(config)].update(
                    lut4=cells["LUT4_eq"], ebr=cells["DP16KD"], ff=cells["TRELLIS_FF"])
        rows.append(row)
    return rows


def plot(rows, png):
    """Accuracy against the first layer's cycles (top) and against the cells of the embedding unit
    specialised to the point (bottom, where measured), one column per configuration."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    configs = list(rows[0]["hardware"])
    costs = [("first_cycles", "first-layer cycles per image on {} (EMBED + stem1)")]
    if all("lut4" in r["hardware"][c] for r in rows for c in configs):
        costs.append(("lut4", "LUT4 of the embedding unit specialised to (d, Q), {}"))
    fig, axes = plt.subplots(len(costs), len(configs), figsize=(5.5 * len(configs), 4.0 * len(costs)),
                             squeeze=False)
    for row_axes, (key, xlabel) in zip(axes, costs):
        for ax, config in zip(row_axes, configs):
            for q, marker in zip(Q_VALUES, ("o", "s")):
                # joined in order of d: each line is the embedding growing at one Q
                pts = sorted((r for r in rows if r["q"] == q and r["accuracy"] is not None),
                             key=lambda r: r["d"])
                xs = [r["hardware"][config][key] for r in pts]
                if pts:
                    ax.plot(xs, [100 * r["accuracy"] for r in pts], marker, linestyle="-",
                            label=f"Q = {q}")
                for r, x in zip(pts, xs):
                    ax.annotate(f"d={r['d']}", (x, 100 * r["accuracy"]), fontsize=7,
                                textcoords="offset points", xytext=(4, -8))
            untrained = [r for r in rows if r["accuracy"] is None]
            if untrained:
                ax.text(0.02, 0.02, "not trained yet: " +
                        ", ".join(f"d{r['d']}Q{r['q']}" for r in untrained),
                        transform=ax.transAxes, fontsize=7)
            ax.set_xlabel(xlabel.format(config))
            ax.set_ylabel("test accuracy, model.golden (%)")
            ax.grid(alpha=0.3)
            if any(r["accuracy"] is not None for r in rows):
                ax.legend(fontsize=8)
    fig.suptitle("Pixel embedding d x Q on the shipped network (cycles: hardware counters; "
                 "cells: Yosys synth_ecp5)", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def section_lines(rows, *, configs, hz, argv, runs, epochs, seed, png_name, compile=False,
                  shipped_units=None):
    """The section; ``shipped_units``: ``{config name: cells}`` of the embedding unit as built."""
    names = [config_name(c) for c in configs]
    body = []
    for r in rows:
        acc = f"{100 * r['accuracy']:.2f} %" if r["accuracy"] is not None else "not trained yet"
        minutes = f"{r['train_time_s'] / 60:.0f} min" if r["train_time_s"] else "-"
        cells = []
        for name in names:
            hw = r["hardware"][name]
            cells += [hw["mode"]] if "mode" in hw else []
            cells += [f"{hw['first_cycles']:,.0f} / {hw['cycles']:,.0f}",
                      f"{hw['golden_equal']}/{hw['n_images']}"]
            if "lut4" in hw:
                cells.append(f"{hw['lut4']:,} / {hw['ebr']}")
        body.append([r["d"], r["q"], f"{r['table_bits']:,}", acc, *cells, minutes])
    header = ["d", "Q", "table bits", "accuracy (golden, 10k)"]
    for name in names:
        header += [f"{name}: EMBED mode"] if rows and "mode" in rows[0]["hardware"][name] else []
        header += [f"{name}: first-layer / all cycles", f"{name}: logits == golden"]
        if rows and "lut4" in rows[0]["hardware"][name]:
            header.append(f"{name}: unit specialised to (d, Q): LUT4 / EBR")
    runs_shown = os.path.relpath(runs, ROOT)
    built = ""
    if shipped_units:
        built = " ".join(f"As built for {name} (d, Q and mode set at run time) the unit takes "
                         f"{cells['LUT4_eq']:,} LUT4 and {cells['DP16KD']} DP16KD for every point."
                         for name, cells in shipped_units.items())
    return [
        f"`python -m bench.embedding_sweep {' '.join(argv)}`".replace(" `", "`"),
        f"(commit {git_revision()}, {machine()}). The shipped network with only the pixel embedding's "
        f"d and Q changed. Training: "
        f"`{_shown(train_command('D', 'Q', runs=runs_shown, epochs=epochs, seed=seed, compile=compile))}` "
        f"(the same schedule for every point). Cycles per image: a steady-state image on the compiled "
        f"simulator (hardware counters). Cells: Yosys `synth_ecp5` of the embedding unit with its "
        f"EMBED mode pinned to the point's d and Q (and the window mode the compiler chose), so that "
        f"Yosys removes what the point does not use: what a build for that one point would cost "
        f"(LUT4 counts a carry cell as 2). {built} EMBED mode: `window` where the compiler lets the "
        f"EMBED write the first conv's k x k windows, which needs the k x d codes of a window row "
        f"to fit the array's input lanes (ARCHITECTURE 3.3; p_i = "
        + ", ".join(f"{c.p_i} on {name}" for c, name in zip(configs, names))
        + "); else `plain`: the first layer then runs as a k x k conv over the embedded map, so it "
        f"takes more cycles and the unit needs no window walker; `plain, 2 table channels` where "
        f"d x Q exceeds a 16-bit table entry or d the descriptor's 15 codes, so that each pixel is "
        f"sent twice and looked up in two table channels at once (ARCHITECTURE 3.6). Table bits = "
        f"256 x d x Q. At "
        f"{hz / 1e6:g} MHz, 1,000 cycles are {1000 / hz * 1e6:.1f} us.",
        "",
        *table(header + ["train time"], body),
        "",
        f"![accuracy vs first-layer cycles](plots/{png_name})",
    ]


def run(argv=None, *, write=True):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m bench.embedding_sweep",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--train", action="store_true", help="train the points not trained yet first")
    ap.add_argument("--epochs", type=int, default=10, help="schedule of every point (default 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", action="store_true",
                    help="train through torch.compile (model.train --compile: about 1.4x faster)")
    ap.add_argument("--runs", default=str(RUNS), help="directory of the d<d>_q<Q>/ runs")
    ap.add_argument("--configs", default="default85,small25",
                    help="accelerator configurations to measure (default: the 85F's and the 25F's)")
    ap.add_argument("--board", default=DEFAULT_BOARD)
    ap.add_argument("--images", type=int, default=2, help="images run on the simulator per point")
    ap.add_argument("--points", default=None, help="only these points, e.g. 8:2,4:1")
    ap.add_argument("--backend", default="auto", choices=("auto", "cxxrtl", "verilator", "pysim"))
    ap.add_argument("--quick", action="store_true", help="(accepted for python -m bench; no effect)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.epochs < 1 or args.images < 1:
        ap.error("--epochs and --images must be >= 1")
    points = grid()
    if args.points:
        try:
            wanted = [tuple(int(v) for v in p.split(":")) for p in args.points.split(",")]
        except ValueError:
            ap.error(f"--points must look like 8:2,4:1, not {args.points!r}")
        unknown = [p for p in wanted if p not in points]
        if unknown:
            ap.error(f"--points: {unknown[0][0]}:{unknown[0][1]} is not in the grid "
                     f"(d in {D_VALUES}, Q in {Q_VALUES})")
        points = wanted
    if args.train:
        train_missing(points, runs=args.runs, epochs=args.epochs, seed=args.seed,
                      compile=args.compile)
    configs = [resolve_config(name) for name in args.configs.split(",")]
    images, _, _ = load_images(args.images)
    transports = [open_transport(config, resolve_backend(args.backend)) for config in configs]
    try:
        rows = measure(points, configs, transports, images, args.runs)
    finally:
        for transport in transports:
            asyncio.run(transport.close())
    shipped_units = {config_name(c): synth_shipped_unit(c, log=log) for c in configs}
    hz = board_fmax(args.board)[0]
    name = "embedding_sweep.png"
    lines = section_lines(rows, configs=configs, hz=hz, argv=argv, runs=args.runs, epochs=args.epochs,
                          seed=args.seed, png_name=name, compile=args.compile,
                          shipped_units=shipped_units)
    if write and not args.no_write:
        plot(rows, plot_path(name))
        write_section(TITLE, lines, doc=RESULTS_DOC)
        log(f"wrote the '{TITLE}' section of docs/RESULTS.md")
    print("\n".join(lines))
    return rows


def main(argv=None):
    def work():
        rows = run(argv)
        exact = all(hw["golden_equal"] == hw["n_images"] for r in rows for hw in r["hardware"].values())
        return 0 if exact else 2
    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
