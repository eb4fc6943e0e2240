"""MAC-array utilisation of a model on the simulated SoC, from the hardware's own counters.

    python -m bench.utilisation                         # shipped model, default board's config, 64 images
    python -m bench.utilisation --images 8 --no-write
    python -m bench.utilisation --backend pysim --config tiny --model M.npz --images 2

The model is compiled for the configuration and run image by image on the compiled simulator of the
real SoC (``firmware.cxxrtl_sim.CxxrtlTransport``; the build is cached under ``build/cxxrtl/``, the
first one takes minutes). For every image the driver reads ``CYCLES``, ``MAC_BUSY`` and
``LAYER_CYCLES`` of each descriptor. The first image runs the parameter-loading program; the
per-layer figures come from the later images, which run only the per-image program.

Per layer, measured cycles are set against two ideals:

- ``MACs / array``: the layer's network MACs (real channels) divided by ``p_o * p_i``, i.e. the
  cycles of a perfectly used array (activations up to ``a_planes`` bits per pass);
- the compiler's ideal cycles (``LayerPlan.ideal_cycles``: one word-set per cycle, counting channel
  padding to ``p_i``/``p_o`` and ``ceil(bits / a_planes)`` bit-serial passes).

*Utilisation* of a layer is ``(MACs / array) / measured cycles``; over the network it is
``total MACs / (p_o * p_i * CYCLES)`` (every cycle of the run counted: descriptor fetch, EMBED, the
logits STORE). ``MAC_BUSY / CYCLES`` is the fraction of cycles the array accepted a word-set (padding
lanes included). Targets (issue #8): >= 85 % over the network, >= 95 % on 3x3 layers whose input
channels fill the array (``cin`` a multiple of ``p_i``).

Then the same images run again as one batch (``Accelerator.run_batch``: one start, one upload and
one read-back) of the largest size that fits main memory, capped by the number of images; its
``CYCLES`` (the parameter load is a start of its own) give the cycles per image of a batch. Both figures are printed beside the
end-to-end images/s over the board's serial link, modelled from the bridge's frame format
(``firmware.link_model``), at the board's baud rate and its USB-UART adapter's top rate.

Every image's logits are compared with ``model.golden`` bit for bit. The configuration, data,
transport and run helpers are ``firmware.session``'s, shared with ``python -m firmware.run``.
"""

import argparse
import asyncio
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from contract.config import config_name
from firmware.session import (DEFAULT_MODEL, DEFAULT_BOARD, resolve_config, resolve_backend,
                              load_images, open_transport, run_images, golden_check, board_fmax,
                              image_program_descriptors, run_batches, link_bauds, link_report)

from .report import write_section, plot_path, machine, git_revision, table, run_cli, log, ROOT

os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

TITLE = "MAC-array utilisation"
# A network whose every 3x3 layer has 64 channels (fills the default array's 64 rows); trained for
# 2 epochs only (78.6 %): a workload for the utilisation figures, not a model to use.
WIDE_MODEL = ROOT / "model" / "shipped" / "wide64.npz"
WIDE_TITLE = "MAC-array utilisation, 64-wide network"
TARGET_NETWORK = 0.85
TARGET_3X3 = 0.95


def _pct(x):
    return "-" if x is None else f"{100 * x:.1f} %"


# --------------------------------------------------------------------------------------------------
# The measurement

def measure(deploy, config, transport, images, *, progress=None):
    """Run ``images`` (at least 1; 2 or more for steady-state per-layer figures) and compute the
    per-layer table.

    Returns
    -------
    dict
        ``rows`` (per descriptor of the per-image program: ``desc, note, layer, kind, k, cin,
        macs, ideal_array, ideal_compiler, cycles, util, eff``), ``cycles`` (CYCLES per image,
        steady state), ``first_cycles`` (with the parameter load), ``mac_busy``, ``macs``,
        ``util``, ``busy_frac``, ``golden_equal``, ``n_images``, ``batch`` (``_measure_batch``'s
        figures of the batch runs, or None), ``results`` (the RunResults),
        ``compiled``.
    """
    from firmware.compiler import compile_model
    compiled = compile_model(deploy, config)
    images = np.asarray(images)
    results = run_images(transport, compiled, images, progress=progress)
    steady = results[1:] if len(results) > 1 else results
    n_load = sum(1 for d in compiled.descriptors if d["addr"] < compiled.prog_image_addr)
    arr = config.p_o * config.p_i
    layer_by_name = {L["name"]: L for L in _layers(deploy)}

    if steady is results:
        # a single image ran the load program: its LAYER_CYCLES start with the parameter LOADs
        per_desc = np.array([r.layer_cycles[n_load:] for r in steady], dtype=np.float64)
    else:
        per_desc = np.array([r.layer_cycles for r in steady], dtype=np.float64)
    per_desc = per_desc.mean(axis=0)
    rows = []
    for j, (i, note, plan) in enumerate(image_program_descriptors(compiled)):
        cyc = float(per_desc[j]) if j < len(per_desc) else None
        row = dict(desc=i, note=note, layer=plan.name if plan else None,
                   kind=plan.kind if plan else None, cycles=cyc, macs=0, ideal_array=0.0,
                   ideal_compiler=0, util=None, eff=None, k=None, cin=None, cout=None)
        if plan is not None:
            L = layer_by_name.get(plan.name, {})
            row.update(macs=plan.macs, ideal_array=plan.macs / arr, ideal_compiler=plan.ideal_cycles,
                       k=L.get("k", 1 if plan.kind == "head" else None), cin=L.get("cin"),
                       cout=L.get("cout", L.get("classes")))
            if cyc and plan.kind in ("conv", "head"):
                row["util"] = row["ideal_array"] / cyc
                row["eff"] = plan.ideal_cycles / cyc
        rows.append(row)
    cycles = float(np.mean([r.cycles for r in steady]))
    mac_busy = float(np.mean([r.mac_busy for r in steady]))
    macs = compiled.total_macs
    eq, first_bad = golden_check(deploy, images, results)
    batch = _measure_batch(deploy, compiled, transport, images)
    return dict(batch=batch, rows=rows, cycles=cycles, first_cycles=results[0].cycles, mac_busy=mac_busy,
                macs=macs, util=macs / (arr * cycles), busy_frac=mac_busy / cycles,
                ideal_compiler=compiled.ideal_cycles, golden_equal=eq, golden_first_bad=first_bad,
                n_images=len(results), n_steady=len(steady), results=results, compiled=compiled,
                config=config, cycle_spread=(min(r.cycles for r in steady), max(r.cycles for r in steady)))


def _measure_batch(deploy, compiled, transport, images):
    """One batch of the largest size that fits (capped by the images): ``size``,
    ``cycles_per_image`` (its CYCLES / size), ``load_cycles`` (of the load program before it),
    ``golden_equal``, ``n_images``; None when not even one image fits beside the model."""
    from firmware.compiler.batch import max_batch_size
    from firmware.driver import RunResult
    size = min(max_batch_size(compiled), len(images))
    if size < 2:
        return None
    (batch,) = run_batches(transport, compiled, images[:size], size)
    eq, _ = golden_check(deploy, images[:size], [RunResult(row, 0, 0) for row in batch.logits_int])
    return dict(size=size, cycles_per_image=batch.cycles / size, golden_equal=eq, n_images=size,
                load_cycles=batch.load_cycles)


def _layers(deploy):
    layers = getattr(deploy, "layers", None)
    if layers is None:
        layers = deploy.header["layers"]
    return layers


def fills_array(row, config):
    """A 3x3 conv whose input channels fill the array's ``p_i`` lanes (and outputs its ``p_o``)."""
    return (row["kind"] == "conv" and row["k"] == 3 and row["cin"] is not None
            and row["cin"] % config.p_i == 0)


def targets(res):
    """``(network_ok, full_3x3_rows, full_3x3_ok)`` against the issue's targets."""
    full = [r for r in res["rows"] if fills_array(r, res["config"]) and r["util"] is not None]
    return (res["util"] >= TARGET_NETWORK, full,
            bool(full) and all(r["util"] >= TARGET_3X3 for r in full))


# --------------------------------------------------------------------------------------------------
# Output

def plot(res, png, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in res["rows"] if r["cycles"]]
    names = [r["layer"] or r["note"].split(" ")[0] for r in rows]
    x = np.arange(len(rows))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True,
                                 gridspec_kw=dict(height_ratios=[3, 2]))
    w = 0.28
    a1.bar(x - w, [r["cycles"] for r in rows], w, label="measured (LAYER_CYCLES)", color="tab:blue")
    a1.bar(x, [r["ideal_compiler"] for r in rows], w, label="compiler ideal (word-sets, padding)",
           color="tab:orange")
    a1.bar(x + w, [r["ideal_array"] for r in rows], w, label="MACs / array", color="tab:green")
    a1.set_ylabel("cycles per image")
    a1.legend(fontsize=8)
    a1.set_title(title, fontsize=10)
    util = [100 * r["util"] if r["util"] is not None else 0 for r in rows]
    colors = ["tab:green" if fills_array(r, res["config"]) else "tab:gray" for r in rows]
    a2.bar(x, util, 0.6, color=colors)
    for xi, u, r in zip(x, util, rows):
        if r["util"] is not None:
            a2.text(xi, u + 1, f"{u:.0f}", ha="center", fontsize=7)
    a2.axhline(100 * TARGET_3X3, color="tab:green", ls="--", lw=1, label="95 % target (3x3, full cin)")
    a2.axhline(100 * res["util"], color="tab:blue", ls=":", lw=1,
               label=f"network {100 * res['util']:.1f} % (target 85 %)")
    a2.set_ylim(0, 110)
    a2.set_ylabel("utilisation %\n(MACs / array / cycles)")
    a2.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    a2.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def section_lines(res, *, model_name, backend, argv, png_name, images_source, fmax,
                  board=DEFAULT_BOARD):
    c = res["config"]
    arr = c.p_o * c.p_i
    net_ok, full, full_ok = targets(res)
    rows = []
    for r in res["rows"]:
        rows.append([r["desc"], r["layer"] or "-", r["note"], f"{r['macs']:,}" if r["macs"] else "-",
                     f"{r['ideal_array']:,.0f}" if r["macs"] else "-",
                     f"{r['ideal_compiler']:,}" if r["ideal_compiler"] else "-",
                     f"{r['cycles']:,.0f}" if r["cycles"] is not None else "-",
                     _pct(r["util"]), _pct(r["eff"]),
                     f"{r['cycles'] - r['ideal_compiler']:+,.0f}" if r["cycles"] is not None
                     and r["ideal_compiler"] else "-",
                     _target_cell(r, c)])
    hz, fmax_label = fmax
    lo, hi = res["cycle_spread"]
    lines = [
        f"Measured by `python -m bench.utilisation {' '.join(argv)}`".rstrip() + f" (or `python -m bench`): "
        f"model `{model_name}` compiled for the `{config_name(c)}` configuration (p_o={c.p_o} x p_i={c.p_i} = "
        f"{arr} binary MACs per cycle on {c.a_planes}-bit activations), run on the compiled simulator "
        f"of the SoC (`{backend}`, `accel/soc.py`). Cycle figures are the hardware's counters read "
        f"by the driver: `CYCLES`, `MAC_BUSY` and `LAYER_CYCLES` per descriptor, averaged over "
        f"{res['n_steady']} images running the per-image program (the first of {res['n_images']} "
        f"{images_source} images ran the parameter load). Revision {git_revision()}, {machine()}.",
        "",
        *table(["desc", "layer", "descriptor", "MACs", "MACs / array", "compiler ideal", "measured",
                "utilisation", "vs compiler ideal", "measured - ideal", ""], rows),
        "",
        "utilisation = (MACs / array) / measured cycles; vs compiler ideal = compiler ideal / measured "
        "(how close the engine comes to one word-set per cycle; the gap to utilisation is channel "
        "padding and bit-serial passes); measured - ideal = the cycles a layer spends beyond one "
        "word-set per cycle (descriptor fetch, pipeline fill and drain, stalls).",
        "",
        f"- cycles per image: **{res['cycles']:,.0f}** (min {lo:,}, max {hi:,}); first image with the "
        f"parameter load: {res['first_cycles']:,}. Compiler ideal of the conv layers: "
        f"{res['ideal_compiler']:,}; MACs / array: {res['macs'] / arr:,.0f}.",
        f"- over the network: utilisation **{100 * res['util']:.1f} %** "
        f"({res['macs']:,} MACs / ({arr} x {res['cycles']:,.0f} cycles)); `MAC_BUSY / CYCLES` = "
        f"{100 * res['busy_frac']:.1f} % ({res['mac_busy']:,.0f} busy cycles"
        + (", exactly the compiler's planned word-sets" if res["mac_busy"] == res["ideal_compiler"]
           else f", the compiler plans {res['ideal_compiler']:,} word-sets") + ").",
        f"- target >= 85 % over the network: **{'met' if net_ok else 'not met'}** "
        f"({100 * res['util']:.1f} % by useful MACs, {100 * res['busy_frac']:.1f} % by MAC_BUSY).",
    ]
    if full:
        worst = min(full, key=lambda r: r["util"])
        lines.append(f"- target >= 95 % on 3x3 layers whose input channels fill the array "
                     f"({len(full)} layers): **{'met' if full_ok else 'not met'}** (lowest "
                     f"{worst['layer']} {100 * worst['util']:.1f} %).")
        both = [r for r in full if r["cout"] is not None and r["cout"] % c.p_o == 0]
        if len(both) < len(full):
            lines.append(f"  {len(full) - len(both)} of them have fewer output channels than the "
                         f"array's {c.p_o} rows (or not a multiple), which caps their utilisation; "
                         + (f"of the {len(both)} that fill both dimensions the lowest is "
                            f"{100 * min(r['util'] for r in both):.1f} %." if both else
                            "none fills both dimensions."))
    else:
        lines.append("- no 3x3 layer of this model has input channels filling the array.")
    conv = [r for r in res["rows"] if r["kind"] in ("conv", "head") and r["cycles"]]
    if conv:
        over = sorted(r["cycles"] - r["ideal_compiler"] for r in conv)
        med = over[len(over) // 2]
        lines.append(f"- every conv/head descriptor spends a roughly fixed {over[0]:,.0f} to "
                     f"{over[-1]:,.0f} cycles (median {med:,.0f}) beyond its word-sets, whatever its "
                     f"size, so small layers lose most: a layer needs about "
                     f"{med * TARGET_3X3 / (1 - TARGET_3X3):,.0f} word-set cycles to reach 95 % of its "
                     f"ideal. (Reading `accel/engine.py`: the per-layer set-up computes the "
                     f"descriptor's products with a radix-4 shift-add multiplier, about 20 cycles, "
                     f"before the first word-set, then the MAC/output pipeline fills and drains; "
                     f"the sequencer fetches the next descriptor while a layer runs.)")
    lines.append(f"- images/s *modelled* = fmax / cycles per image: **{hz / res['cycles']:,.0f}** "
                 f"at {fmax_label}; host transfers not included.")
    batch = res.get("batch")
    if batch:
        lines.append(f"- in a batch of {batch['size']} (one start, one upload and one read-back): "
                     f"**{batch['cycles_per_image']:,.0f}** cycles per image (its CYCLES / "
                     f"{batch['size']}; the load program before it: {batch['load_cycles']:,}); "
                     f"logits of {batch['golden_equal']} / {batch['n_images']} images equal "
                     f"`model.golden`'s.")
        cases = [(1, res["cycles"]), (batch["size"], batch["cycles_per_image"])]
        lines += ["- " + line.strip() for line in link_report(res["compiled"], cases, hz,
                                                             link_bauds(board))]
    lines.append(f"- logits of **{res['golden_equal']} / {res['n_images']}** images equal "
                 f"`model.golden`'s bit for bit"
                 + ("." if res["golden_first_bad"] is None else
                    f" (first difference: image {res['golden_first_bad']})."))
    lines += ["", f"![per-layer cycles and utilisation](plots/{png_name})"]
    return lines


def _target_cell(r, c):
    if not (fills_array(r, c) and r["util"] is not None):
        return ""
    text = "target 95 %: " + ("met" if r["util"] >= TARGET_3X3 else "**missed**")
    if r["cout"] is not None and r["cout"] % c.p_o:
        text += f" (cout {r['cout']} on {c.p_o} rows: at most {100 * r['cout'] / (-(-r['cout'] // c.p_o) * c.p_o):.0f} %)"
    return text


def run(argv=None, *, write=True, transport=None):
    """The command line's work; ``transport``: an open one of the right configuration to use (and
    leave open) instead of building a new one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m bench.utilisation", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="deploy file (.npz)")
    ap.add_argument("--config", default=None, help="accelerator configuration (default: the board's)")
    ap.add_argument("--images", type=int, default=64, help="Fashion-MNIST test images (>= 2)")
    ap.add_argument("--backend", default="auto", choices=("auto", "cxxrtl", "verilator", "pysim"),
                    help="simulator (default auto: Verilator when installed, else CXXRTL)")
    ap.add_argument("--board", default=DEFAULT_BOARD, help="board whose fmax models images/s")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/BENCHMARKS.md or its plot")
    ap.add_argument("--section", default=TITLE,
                    help=f"BENCHMARKS.md section to write (default '{TITLE}'; another model gets "
                         f"its own section and plot)")
    args = ap.parse_args(argv)
    if args.images < 1:
        raise ValueError(f"--images must be >= 1, not {args.images}")
    from model import deploy as mdeploy
    if not Path(args.model).is_file():
        raise FileNotFoundError(f"{args.model}: no such model file")
    deploy = mdeploy.load(args.model)
    args.backend = resolve_backend(args.backend)
    config = resolve_config(args.config, args.board)
    images, labels, source = load_images(args.images)
    log(f"utilisation: {Path(args.model).name} on {config_name(config)}/{args.backend}, "
        f"{len(images)} images")
    t0 = time.monotonic()
    own = transport is None
    if own:
        transport = open_transport(config, args.backend)
    log(f"  simulator ready in {time.monotonic() - t0:.0f} s")
    try:
        res = measure(deploy, config, transport, images,
                      progress=lambda i, n: log(f"  image {i}/{n}") if i % 16 == 0 or i == n else None)
    finally:
        if own:
            asyncio.run(transport.close())
    fmax = board_fmax(args.board)
    name = ("utilisation.png" if args.section == TITLE else
            "utilisation_" + re.sub(r"[^a-z0-9]+", "_", args.section.lower()).strip("_") + ".png")
    lines = section_lines(res, model_name=os.path.relpath(args.model, ROOT), backend=args.backend,
                          argv=argv, png_name=name, images_source=source, fmax=fmax,
                          board=args.board)
    if write and not args.no_write:
        png = plot_path(name)
        plot(res, png, f"{Path(args.model).name} on {config_name(config)} ({config.p_o}x"
                       f"{config.p_i}): per-layer cycles (hardware counters, "
                       f"{backend_label(args.backend)})")
        write_section(args.section, lines)
        log(f"wrote the '{args.section}' section of docs/BENCHMARKS.md and {png}")
    print("\n".join(lines))
    return res


def backend_label(backend):
    return {"cxxrtl": "CXXRTL", "verilator": "Verilator", "pysim": "Amaranth pysim"}.get(backend, backend)


def main(argv=None):
    def work():
        res = run(argv)
        batch = res["batch"]
        ok = res["golden_equal"] == res["n_images"] and (
            batch is None or batch["golden_equal"] == batch["n_images"])
        return 0 if ok else 2
    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
