"""Images/s of the accelerator (modelled from its cycle counters) against the same integer model on
this CPU (PyTorch and the golden numpy model), batch 1 and batch 256, in one run.

    python -m bench.cpu_compare
    python -m bench.cpu_compare --quick --no-write

- accelerator: CYCLES per image (steady state, hardware counter) read from the compiled simulator of
  the SoC, times the board's fmax (``build/<board>/report.json`` if a build is recorded, else its
  target clock): *modelled*, host transfers excluded;
- PyTorch: the trained checkpoint of the deploy file (``runs/*/checkpoint.pt`` whose export equals
  the deploy file's arrays) in eval mode, which runs the integer path (``ERNet.int_forward``); when no
  checkpoint matches, the same architecture with untrained weights (the run time does not depend on
  the weights), said so in the table. Also its float-simulation graph (``forward_float``) as a row;
- golden: ``model.golden.run`` (numpy).

Every CPU figure is wall time measured here (median of a few passes), on a machine shared with
other jobs.
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import numpy as np

from contract.config import config_name
from firmware.session import (DEFAULT_MODEL, DEFAULT_BOARD, resolve_config, resolve_backend,
                              load_images, open_transport, run_images, golden_check, board_fmax)

from .report import write_section, plot_path, machine, git_revision, table, run_cli, log, ROOT

os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

TITLE = "Accelerator vs CPU"


def find_checkpoint(deploy, runs=ROOT / "runs"):
    """``(ERNet in eval mode, description)`` for ``deploy``: its trained checkpoint when one under
    ``runs`` exports exactly the deploy file's arrays, else an untrained net of its architecture."""
    import torch
    from model.nets import net_from_config
    net_cfg = deploy.header["training"].get("net")
    if net_cfg is None:
        raise ValueError("the deploy file records no network configuration (header training.net)")
    for ck in sorted(Path(runs).glob("*/checkpoint.pt")):
        try:
            state = torch.load(ck, map_location="cpu", weights_only=False)
        except Exception:           # a checkpoint being rewritten by a training run: skip it
            continue
        if state.get("config") != net_cfg:
            continue
        net = net_from_config(state["config"])
        net.load_state_dict(state["model"])
        net.eval()
        try:
            _, arrays = net.export()
        except ValueError:
            continue
        if set(arrays) == set(deploy.arrays) and all(
                np.array_equal(np.asarray(arrays[k]), np.asarray(deploy.arrays[k])) for k in arrays):
            return net, f"trained checkpoint `{os.path.relpath(ck, ROOT)}` (exports this deploy file exactly)"
    torch.manual_seed(0)
    net = net_from_config(net_cfg)
    net.eval()
    return net, ("same architecture, untrained weights (no checkpoint under runs/ exports this "
                 "deploy file; run time does not depend on the weights)")


def _timeit(fn, reps):
    """Median ``(wall seconds, CPU seconds of this process)`` of ``fn()`` over ``reps`` calls
    (after one warm-up call). CPU time sums all threads of the process."""
    fn()
    t, c = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        t.append(time.perf_counter() - t0)
        c.append(time.process_time() - c0)
    return float(np.median(t)), float(np.median(c))


def cpu_rates(deploy, net, images, *, n_single, reps, batch=256):
    """Images/s on this CPU: ``{(impl, batch): (images per wall second, images per CPU second)}``,
    the number of images whose PyTorch integer logits equal the golden model's on the net's own
    export, and torch's thread count."""
    import torch
    from model import golden
    x = torch.from_numpy(np.ascontiguousarray(images[:batch]))
    single = images[:n_single]
    out = {}

    def torch_single():
        with torch.no_grad():
            for img in single:
                net(torch.from_numpy(img[None]))

    def torch_batch():
        with torch.no_grad():
            net(x)

    def float_single():
        with torch.no_grad():
            for img in single:
                net.forward_float(torch.from_numpy(img[None]))

    def float_batch():
        with torch.no_grad():
            net.forward_float(x)

    def golden_single():
        for img in single:
            golden.run(deploy, img[None], keep_tensors=False)

    def golden_batch():
        golden.run(deploy, images[:batch], keep_tensors=False, batch_size=batch)

    for key, fn, n in ((("torch_int", 1), torch_single, len(single)),
                       (("torch_int", batch), torch_batch, len(x)),
                       (("torch_float", 1), float_single, len(single)),
                       (("torch_float", batch), float_batch, len(x)),
                       (("golden", 1), golden_single, len(single)),
                       (("golden", batch), golden_batch, len(x))):
        log(f"  timing {key[0]} at batch {key[1]} ...")
        wall, cpu = _timeit(fn, reps)
        out[key] = (n / wall, n / max(cpu, 1e-9))
    # the PyTorch integer path against the golden model run on the same net's export
    from model import deploy as mdeploy
    own = mdeploy.validate(*net.export())
    with torch.no_grad():
        t_li = net.int_forward(x)["logits_int"].numpy()
    g_li = golden.run(own, images[:batch], keep_tensors=False).logits_int
    same = int(np.all(t_li == g_li, axis=1).sum())
    return out, same, torch.get_num_threads()


def accelerator_cycles(deploy, config, transport, images):
    from firmware.compiler import compile_model
    compiled = compile_model(deploy, config)
    results = run_images(transport, compiled, images, profile=False)
    steady = results[1:] if len(results) > 1 else results
    eq, _ = golden_check(deploy, images, results)
    return float(np.mean([r.cycles for r in steady])), eq, len(results)


def section_lines(*, model_name, rates, acc_cycles, fmax, torch_desc, same, n_check, threads,
                  hw_eq, hw_n, argv, png_name, batch, config):
    hz, fmax_label = fmax
    acc_ips = hz / acc_cycles
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "unknown"
    names = {"torch_int": "PyTorch, integer path (`ERNet` eval mode)",
             "torch_float": "PyTorch, float-simulation graph (`forward_float`)",
             "golden": "numpy golden model (`model.golden.run`)"}
    acc_name = f"accelerator, `{config_name(config)}` config ({config.p_o}x{config.p_i}) on the SoC"
    rows = [[acc_name, "1 (one image per run)", f"**{acc_ips:,.0f}**",
             f"{1e6 / acc_ips:,.1f}", f"*modelled*: {acc_cycles:,.0f} cycles/image (CYCLES counter, "
             f"compiled simulator) / {fmax_label}", "-"]]
    for impl in ("torch_int", "golden", "torch_float"):
        for b in (1, batch):
            r, rc = rates[(impl, b)]
            rows.append([names[impl], b, f"{r:,.1f}", f"{1e6 / r:,.0f}",
                         f"measured, wall time; accelerator / this = {acc_ips / r:,.0f}x",
                         f"{rc:,.1f}"])
    lines = [
        f"Measured by `python -m bench.cpu_compare {' '.join(argv)}`".rstrip() + " (or `python -m bench`) "
        f"in one run: model `{model_name}`. PyTorch model: {torch_desc}. CPU: {machine()}, "
        f"torch threads {threads}, shared with other jobs (load average {load}), so wall-time "
        f"figures are pessimistic and noisy; 'images per CPU-second' divides by this process's CPU "
        f"time instead (all threads summed), closer to what an idle core would do. Median of "
        f"several passes. Revision {git_revision()}.",
        "",
        *table(["implementation", "batch", "images/s", "µs / image", "how",
                "images per CPU-second"], rows),
        "",
        f"- the accelerator's figure is modelled (cycles x clock), with no host transfers: over the "
        f"UART bridge the image upload and logits read-back would bound it far lower. Its logits "
        f"equal `model.golden`'s for {hw_eq}/{hw_n} images run on the simulator "
        f"(p_o={config.p_o} x p_i={config.p_i}).",
        f"- PyTorch's integer path and the golden model (run on that net's own export) agree bit for "
        f"bit on {same}/{n_check} images (`logits_int`).",
        "",
        f"![accelerator vs CPU](plots/{png_name})",
    ]
    return lines


def plot(rates, acc_ips, png, batch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = ["accelerator\n(modelled)"]
    vals = [acc_ips]
    colors = ["tab:green"]
    for impl, name in (("torch_int", "PyTorch int"), ("golden", "numpy golden"),
                       ("torch_float", "PyTorch float")):
        for b, c in ((1, "tab:blue"), (batch, "tab:orange")):
            labels.append(f"{name}\nbatch {b}")
            vals.append(rates[(impl, b)][0])
            colors.append(c)
    fig, ax = plt.subplots(figsize=(10, 4))
    x = np.arange(len(vals))
    ax.bar(x, vals, 0.6, color=colors)
    ax.set_yscale("log")
    for xi, v in zip(x, vals):
        ax.text(xi, v * 1.1, f"{v:,.0f}", ha="center", fontsize=8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("images/s (log)")
    ax.set_title("Accelerator (cycles x fmax, modelled) vs this CPU (measured)", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def run(argv=None, *, write=True, acc_cycles=None, transport=None):
    """``acc_cycles``: ``(cycles, golden_equal, n)`` already measured (``python -m bench`` passes the
    utilisation run's), else measured here, on ``transport`` if given (left open)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m bench.cpu_compare", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--config", default=None, help="accelerator configuration (default: the board's)")
    ap.add_argument("--backend", default="auto", choices=("auto", "cxxrtl", "verilator", "pysim"),
                    help="simulator (default auto: Verilator when installed, else CXXRTL)")
    ap.add_argument("--board", default=DEFAULT_BOARD)
    ap.add_argument("--images", type=int, default=4, help="images run on the simulator")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--single", type=int, default=64, help="images timed one by one (batch 1)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer images and passes")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.single, args.reps = min(args.single, 16), 1
    from model import deploy as mdeploy
    if not Path(args.model).is_file():
        raise FileNotFoundError(f"{args.model}: no such model file")
    deploy = mdeploy.load(args.model)
    args.backend = resolve_backend(args.backend)
    config = resolve_config(args.config, args.board)
    images, _, _ = load_images(max(args.batch, args.single, args.images))
    if acc_cycles is None:
        own = transport is None
        if own:
            transport = open_transport(config, args.backend)
        try:
            acc_cycles = accelerator_cycles(deploy, config, transport, images[:args.images])
        finally:
            if own:
                asyncio.run(transport.close())
    cycles, hw_eq, hw_n = acc_cycles
    net, desc = find_checkpoint(deploy)
    log(f"cpu_compare: PyTorch model: {desc}")
    rates, same, threads = cpu_rates(deploy, net, images, n_single=args.single, reps=args.reps,
                                     batch=args.batch)
    fmax = board_fmax(args.board)
    name = "cpu_compare.png"
    plot(rates, fmax[0] / cycles, plot_path(name), args.batch)
    lines = section_lines(model_name=os.path.relpath(args.model, ROOT), rates=rates, acc_cycles=cycles,
                          fmax=fmax, torch_desc=desc, same=same, n_check=args.batch, threads=threads,
                          hw_eq=hw_eq, hw_n=hw_n, argv=argv, png_name=name, batch=args.batch,
                          config=config)
    if write and not args.no_write:
        write_section(TITLE, lines)
        log(f"wrote the '{TITLE}' section of docs/BENCHMARKS.md")
    print("\n".join(lines))
    return rates


def main(argv=None):
    def work():
        run(argv)
        return 0
    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
