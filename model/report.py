"""Figures and tables for docs/RESULTS.md from training runs.

Usage::

    python -m model.report --runs runs --docs docs

Reads ``RUNS/var_<variant>/metrics.json`` (first-layer variant table) and
``RUNS/sweep_d<d>_q<q>/metrics.json`` (embedding sweep), writes ``DOCS/embedding_tables.png``
(learned tables of the shipped default next to their thermometer initialisation) and
``DOCS/embedding_sweep.png`` (accuracy vs first-layer bit-operations), and prints Markdown tables.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import deploy as dp
from .layers import thermometer_table


def first_layer_bitops(m):
    """Bit-operations of the first layer per image: binary-weight MACs x input code bits.

    For ``float_first`` the float MACs are returned separately (no bit-operation count).
    """
    d = m["d"] if m["variant"] == "pixel_embedding" else 1
    bits = {"pixel_embedding": m["q_bits"], "naive": m["q_bits"], "uint8_bitserial": 8}.get(
        m["variant"])
    width = m["width"]
    ho = wo = 14
    macs = ho * wo * width * d * 9
    return macs, (macs * bits if bits else None)


def load_runs(runs):
    out = {}
    for p in sorted(Path(runs).glob("*/metrics.json")):
        out[p.parent.name] = json.loads(p.read_text())
    return out


def plot_tables(deploy_path, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    m = dp.load(deploy_path)
    emb = next(L for L in m.layers if L["kind"] == "embed")
    table = emb["arrays"]["table"][0]  # (256, d)
    d, q = emb["d"], emb["q"]
    init = thermometer_table(d, q)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    x = np.arange(256)
    for ax, tab, title in ((axes[0], init, f"thermometer initialisation (d={d}, Q={q})"),
                           (axes[1], table, "learned (shipped default)")):
        for j in range(d):
            ax.step(x, tab[:, j] + 0.06 * (j - (d - 1) / 2), where="post", label=f"dim {j}")
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


def plot_sweep(runs, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pts = []
    for name, m in runs.items():
        if name.startswith("sweep_"):
            _, bo = first_layer_bitops(m)
            pts.append((m["d"], m["q_bits"], bo, 100 * m["test_acc_int"]))
    if not pts:
        return []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for q, mk in ((1, "o"), (2, "s")):
        sel = sorted([p for p in pts if p[1] == q], key=lambda p: p[2])
        if sel:
            ax.plot([p[2] for p in sel], [p[3] for p in sel], marker=mk, label=f"Q = {q}")
            for p in sel:
                ax.annotate(f"d={p[0]}", (p[2], p[3]), textcoords="offset points", xytext=(4, 4),
                            fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("first-layer bit-operations per image (binary MACs x Q)")
    ax.set_ylabel("test accuracy (%), integer path")
    ax.set_title("Pixel embedding sweep (short schedule)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return sorted(pts)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m model.report")
    p.add_argument("--runs", default="runs")
    p.add_argument("--docs", default="docs")
    p.add_argument("--deploy", default="model/shipped/default.npz")
    a = p.parse_args(argv)
    runs = load_runs(a.runs)
    docs = Path(a.docs)
    if Path(a.deploy).exists():
        plot_tables(a.deploy, docs / "embedding_tables.png")
    pts = plot_sweep(runs, docs / "embedding_sweep.png")
    print("| variant | test acc (int) | float-sim | epochs | train time | golden == torch |")
    print("|---|---|---|---|---|---|")
    for v in ("pixel_embedding", "float_first", "naive", "uint8_bitserial"):
        m = runs.get(f"var_{v}")
        if m:
            print(f"| {v} | {100 * m['test_acc_int']:.2f} | {100 * m['test_acc_float_sim']:.2f} | "
                  f"{m['epochs']} | {m['train_time_s'] / 60:.1f} min | "
                  f"{m.get('golden_pred_equal')} / {m.get('golden_logits_int_equal')} |")
    print()
    print("| d | Q | first-layer bit-ops | test acc (int) |")
    print("|---|---|---|---|")
    for d, q, bo, acc in pts:
        print(f"| {d} | {q} | {bo} | {acc:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
