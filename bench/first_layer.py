"""First-layer study: pixel embedding on-chip vs a float first layer on the host vs 8-bit bit-serial.

    python -m bench.first_layer                     # trained variants of runs/t1/<variant>_s<seed>/
    python -m bench.first_layer --golden-accuracy --no-write

The same network (the variants differ only in the first layer, ``model/nets.py``) on the same
hardware (DEFAULT configuration, the compiled simulator of the SoC):

- ``pixel_embedding``: EMBED through the embedding unit's table (d x q-bit codes per pixel), then the
  binary stem1 conv on the array;
- ``float_first``: the first conv runs on the host in float (``host_conv``); the host writes its code
  map and the program LOADs it into a code bank (``CompiledModel.host_prepare``);
- ``uint8_bitserial``: EMBED in raw mode (the 8-bit pixel itself), stem1 takes 8 / a_planes
  bit-serial passes over the array;
- ``naive`` (extra row): pixels cut to q bits through a fixed table.

Per variant: accuracy (``model.golden`` on the 10k test images: the ``golden_acc`` that
``model.train`` recorded in ``runs/t1/<variant>_s<seed>/metrics.json``, or recomputed with
``--golden-accuracy``), first-layer and
total cycles per image from the hardware counters (``LAYER_CYCLES``, ``CYCLES``), images/s
*modelled* as fmax / cycles, and for ``float_first`` the host's first-layer time *measured* on this
CPU (numpy, as the driver runs it, and PyTorch) added to the accelerator's modelled time. The input
path's cost comes from Yosys ``synth_ecp5`` of the embedding unit with its mode pinned (results
cached in ``build/bench/first_layer_synth.json``).
"""

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from contract.config import config_name
from firmware.session import (DEFAULT_MODEL, DEFAULT_BOARD, resolve_config, resolve_backend,
                              load_images, open_transport, run_images, golden_check, board_fmax,
                              image_program_descriptors)

from .report import write_section, plot_path, machine, git_revision, table, run_cli, log, ROOT

os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

TITLE = "First-layer study"
VARIANTS = ("pixel_embedding", "float_first", "uint8_bitserial", "naive")
RUNS = ROOT / "runs" / "t1"
#: The runs of bench.first_layer_accuracy's two-seed table; the first seed with a deploy file is used.
SEEDS = (0, 1)
SYNTH_CACHE = ROOT / "build" / "bench" / "first_layer_synth.json"


# --------------------------------------------------------------------------------------------------
# Models

def variant_deploy(variant, runs=RUNS, fallback_net=None):
    """``(DeployModel, source, metrics or None, trained)`` of a variant.

    The trained ``RUNS/<variant>_s<seed>/deploy.npz`` of the first seed that has one, else an
    untrained export of the same network with that first layer (cycles do not depend on the
    weights; accuracy is then n/a).
    """
    from model import deploy as mdeploy
    d = next((Path(runs) / f"{variant}_s{seed}" for seed in SEEDS
              if (Path(runs) / f"{variant}_s{seed}" / "deploy.npz").is_file()),
             Path(runs) / f"{variant}_s{SEEDS[0]}")
    path = d / "deploy.npz"
    metrics = None
    if (d / "metrics.json").is_file():
        try:
            metrics = json.loads((d / "metrics.json").read_text())
        except ValueError:
            metrics = None
    if path.is_file():
        return mdeploy.load(path), os.path.relpath(path, ROOT), metrics, True
    from model.nets import net_from_config
    import torch
    cfg = dict(fallback_net or _default_net())
    cfg["variant"] = variant
    torch.manual_seed(0)
    net = net_from_config(cfg)
    net.eval()
    header, arrays = net.export({"note": "untrained, for cycle counts only"})
    return mdeploy.validate(header, arrays), "untrained export (no trained deploy file yet)", None, False


def _default_net():
    """The network of the trained variants (their checkpoints) or of the shipped default."""
    import torch
    for v in VARIANTS:
        ck = RUNS / f"{v}_s{SEEDS[0]}" / "checkpoint.pt"
        if ck.is_file():
            try:
                return torch.load(ck, map_location="cpu", weights_only=False)["config"]
            except Exception:       # a checkpoint being rewritten: try the next source
                continue
    from model import deploy as mdeploy
    return mdeploy.load(DEFAULT_MODEL).header["training"]["net"]


def accuracy(deploy, metrics, *, quick, test):
    """``(accuracy or None, how)``: with ``quick``, the accuracy model.train recorded (model.golden
    on the test set) when there is one, else ``model.golden`` on ``test`` now."""
    from model import golden
    n = (metrics or {}).get("test_images", "?")
    if quick and metrics and "golden_acc" in metrics:
        return float(metrics["golden_acc"]), (f"model.golden on {n:,} test images, recorded by "
                                              f"model.train (metrics.json golden_acc)")
    if quick and metrics and "test_acc_int" in metrics:
        return float(metrics["test_acc_int"]), (f"PyTorch integer path on {n:,} test images, recorded "
                                                f"by model.train (metrics.json test_acc_int)")
    if test is None:
        return None, "n/a"
    images, labels = test
    pred = golden.predict(deploy, images)
    return float((pred == labels).mean()), f"model.golden on {len(labels):,} test images (this run)"


def first_layer_names(deploy):
    """Names of the layers the variants swap: embed/raw + stem1, or host_conv."""
    layers = deploy.layers
    if layers[0]["kind"] == "host_conv":
        return [layers[0]["name"]]
    return [layers[0]["name"], layers[1]["name"]]


# --------------------------------------------------------------------------------------------------
# Host first layer (float_first)

def host_times(compiled, images, reps=3):
    """Per-image host time (seconds, median of ``reps`` passes over ``images`` at batch 1) of the
    float first layer: ``numpy`` = ``compiled.host_prepare`` (model.golden's float64 conv, thresholds,
    code-bank encoding: what the driver runs), ``torch`` = float32 ``conv2d`` + thresholds in PyTorch
    + the same encoding. Also the fraction of PyTorch codes equal to the numpy ones."""
    import torch
    import torch.nn.functional as F
    from firmware import layout
    L, A = compiled.host_layer, compiled.host_arrays
    name = L["name"]
    w = torch.from_numpy(np.asarray(A[f"{name}.weight"], np.float32))
    b = torch.from_numpy(np.asarray(A[f"{name}.bias"], np.float32))
    T = torch.from_numpy(np.asarray(A[f"{name}.thresholds"], np.float32))
    up = torch.from_numpy(np.asarray(A[f"{name}.direction"]) > 0)[:, None, None, None]
    qmax = (1 << int(L["q"])) - 1
    k, s, p, q = int(L["k"]), int(L["stride"]), int(L["pad"]), int(L["q"])
    cfg = compiled.config

    def torch_prepare(img):
        with torch.no_grad():
            x = torch.from_numpy(img[None]).float().div_(255.0)
            y = F.conv2d(x, w, b, stride=s, padding=p)[0]                 # (Cout, H', W')
            cnt = torch.zeros(y.shape, dtype=torch.int64)
            for j in range(T.shape[1]):
                t = T[:, j][:, None, None]
                cnt += torch.where(up[:, :, :, 0], y >= t, y <= t)
            codes = cnt.clamp_(max=qmax).numpy()
        return layout.encode_codes(codes, q, cfg), codes

    same = []
    for img in images[:16]:
        _, c = torch_prepare(img)
        ref = compiled.host_layer and _golden_codes(compiled, img)
        same.append(float((c == ref).mean()))
    out = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)        # one image's first layer is too small to share; one core each
    try:
        for key, fn in (("numpy", compiled.host_prepare), ("torch", lambda im: torch_prepare(im)[0])):
            fn(images[0])      # warm up
            per, cpu = [], []
            for _ in range(reps):
                t0, c0 = time.perf_counter(), time.process_time()
                for img in images:
                    fn(img)
                per.append((time.perf_counter() - t0) / len(images))
                cpu.append((time.process_time() - c0) / len(images))
            out[key] = float(np.median(per))
            out[key + "_cpu"] = float(np.median(cpu))
    finally:
        torch.set_num_threads(threads)
    out["torch_codes_equal"] = float(np.mean(same))
    out["threads"] = 1
    out["n"] = len(images)
    return out


def _golden_codes(compiled, img):
    from firmware.compiler import host_conv_codes
    return host_conv_codes(compiled.host_layer, compiled.host_arrays, img)


# --------------------------------------------------------------------------------------------------
# Input path cost (synthesis)

# The shipped default's embedding (model/shipped/default.npz): the "embed" input path's mode.
EMBED_D, EMBED_Q = 8, 2


def embed_window(compiled):
    """The EMBED window mode (``k, stride, pad, h_out, w_out``) the compiler chose for a compiled
    model, or None (plain mode)."""
    return next((t.window for t in compiled.tensors.values() if t.window), None)


def _pinned_unit(config, mode, window=None, d=EMBED_D, q=EMBED_Q, channels=1):
    """The embedding unit inside a wrapper that ties its mode inputs to constants, so that Yosys
    removes what that mode does not use. ``mode``: ``"shipped"`` (runtime mode, all channels: the
    unit as built), ``"raw"`` (1-channel 8-bit pixels, nsub = 8 / a_planes: the uint8_bitserial
    input path), ``"embed"`` (``channels`` table channels, ``d`` and ``q`` (default EMBED_D, EMBED_Q), nsub=1, and ``window`` (see
    :func:`embed_window`) when the compiled network uses the window mode: the default network's
    path)."""
    from amaranth.hdl import Elaboratable, Module, Signal
    from accel.embedding import EmbeddingUnit
    from amaranth.lib import wiring
    unit = EmbeddingUnit(config)
    if mode == "shipped":
        return unit, None

    class Pinned(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            m.submodules.unit = unit
            const = dict(raw=1, emb_c=1, emb_d=1, emb_q=8, nsub=-(-8 // config.a_planes),
                         win_k=0, stride=0, pad=0) \
                if mode == "raw" else dict(raw=0, emb_c=channels, emb_d=d, emb_q=q, nsub=1,
                                           win_k=window["k"] if window else 0,
                                           stride=window["stride"] if window else 0,
                                           pad=window["pad"] if window else 0)
            for k, v in const.items():
                m.d.comb += getattr(unit, k).eq(v)
            return m
    top = Pinned()
    # every other port of the unit becomes a port of the wrapper
    skip = {"raw", "emb_c", "emb_d", "emb_q", "nsub", "win_k", "stride", "pad"}
    ports = []
    for name, member in unit.signature.members.items():
        if name in skip:
            continue
        v = getattr(unit, name)
        if hasattr(v, "as_value") and not hasattr(v, "payload"):
            ports.append(v.as_value())
        else:
            for _, _, sub in _flatten(v):
                ports.append(sub)
    return top, ports


def _flatten(obj):
    from amaranth.lib import wiring
    if isinstance(obj, wiring.PureInterface) or hasattr(obj, "signature"):
        for path, member, value in obj.signature.flatten(obj):
            yield path, member, value.as_value() if hasattr(value, "as_value") else value
    else:
        yield (), None, obj


def _synth_cached(key_text, make_forms, *, log=log, force=False):
    """Yosys synth_ecp5 cell counts of the forms ``make_forms()`` returns (``{name: (top, ports)}``),
    cached in SYNTH_CACHE under a key of the embedding unit's source and ``key_text`` (a cache hit
    elaborates nothing)."""
    from accel.build import resolve_tool
    from accel.toolchain_reports import ECP5_CELLS, parse_yosys_stat
    from amaranth.back import rtlil
    src = (ROOT / "accel" / "embedding.py").read_text()
    key = hashlib.sha256((src + key_text).encode()).hexdigest()[:16]
    cache = {}
    if SYNTH_CACHE.is_file():
        try:
            cache = json.loads(SYNTH_CACHE.read_text())
        except ValueError:
            cache = {}
    if not force and key in cache:
        return cache[key]
    out = SYNTH_CACHE.parent / "synth"
    out.mkdir(parents=True, exist_ok=True)
    res = {}
    for name, (top, ports) in make_forms().items():
        il = out / f"input_{name}.il"
        il.write_text(rtlil.convert(top, name="top", **({} if ports is None else {"ports": ports})))
        script = (f"read_rtlil {il.name}; synth_ecp5 -top top -run :map_luts; setattr -unset keep; "
                  f"opt_clean -purge; synth_ecp5 -top top -run map_luts:; stat")
        t0 = time.time()
        log(f"  synth_ecp5 of the input path ({name}) ...")
        subprocess.run(["nice", "-n", "10", resolve_tool("yosys"), "-q", "-l", f"input_{name}.log", "-p", script],
                       cwd=out, check=True, stdout=subprocess.DEVNULL)
        c = parse_yosys_stat((out / f"input_{name}.log").read_text(), ECP5_CELLS)
        c["LUT4_eq"] = c["LUT4"] + 2 * c["CCU2C"]
        c["seconds"] = round(time.time() - t0, 1)
        res[name] = c
    cache = json.loads(SYNTH_CACHE.read_text()) if SYNTH_CACHE.is_file() else {}
    cache[key] = res
    SYNTH_CACHE.parent.mkdir(parents=True, exist_ok=True)
    SYNTH_CACHE.write_text(json.dumps(cache, indent=1) + "\n")
    return res


def synth_input_paths(config, window=None, *, log=log, force=False):
    """Yosys synth_ecp5 of the three pinned forms (``window``: the embedding's window mode, see
    :func:`embed_window`); cached by the unit's source, the config and the window. The result
    names the window it was synthesised with (``"window"``)."""
    key_text = repr(config) + f"d{EMBED_D}q{EMBED_Q}w{sorted((window or {}).items())}"
    forms = lambda: {mode: _pinned_unit(config, mode, window) for mode in ("shipped", "raw", "embed")}
    res = dict(_synth_cached(key_text, forms, log=log, force=force))
    res["window"] = window
    return res


def synth_shipped_unit(config, *, log=log, force=False):
    """Yosys synth_ecp5 of the embedding unit as built (d, Q and the mode set at run time)."""
    forms = lambda: {"shipped": _pinned_unit(config, "shipped")}
    return _synth_cached(repr(config) + "shipped unit", forms, log=log, force=force)["shipped"]


def synth_embed_point(config, d, q, window=None, *, channels=1, log=log, force=False):
    """Yosys synth_ecp5 of the embedding unit specialised to one EMBED mode: pinned to constants
    (``channels`` table channels of ``d`` codes of ``q`` bits, ``window``), so that Yosys removes
    what other modes need. Cached like :func:`synth_input_paths`."""
    key_text = repr(config) + f"point d{d}q{q}w{sorted((window or {}).items())}"
    key_text += f"c{channels}" if channels != 1 else ""
    forms = lambda: {f"embed_d{d}_q{q}": _pinned_unit(config, "embed", window, d=d, q=q,
                                                      channels=channels)}
    return _synth_cached(key_text, forms, log=log, force=force)[f"embed_d{d}_q{q}"]


# --------------------------------------------------------------------------------------------------
# The study

def measure_variant(deploy, config, transport, images):
    """Hardware run of one variant: ``dict(cycles, first_cycles, rows, golden_equal, compiled)``."""
    from firmware.compiler import compile_model
    compiled = compile_model(deploy, config)
    results = run_images(transport, compiled, images)
    steady = results[1:] if len(results) > 1 else results
    names = set(first_layer_names(deploy))
    rows = image_program_descriptors(compiled)
    n_load = sum(1 for d in compiled.descriptors if d["addr"] < compiled.prog_image_addr)
    off = 0 if steady is not results else n_load
    per = np.mean([r.layer_cycles[off:] for r in steady], axis=0)
    first = sum(float(c) for (i, note, plan), c in zip(rows, per)
                if note.split(" (")[0] in names)
    eq, _ = golden_check(deploy, images, results)
    return dict(cycles=float(np.mean([r.cycles for r in steady])), first_cycles=first,
                mac_busy=float(np.mean([r.mac_busy for r in steady])), golden_equal=eq,
                n_images=len(results), compiled=compiled,
                input_words=compiled.input_words)


def study(config, transport, *, images, test, quick, runs=RUNS, fallback_net=None, synth=True,
          host_images=None):
    """All variants; returns a list of row dicts plus the synthesis results."""
    rows = []
    for v in VARIANTS:
        deploy, source, metrics, trained = variant_deploy(v, runs, fallback_net)
        log(f"first_layer: {v} ({source})")
        acc, how = accuracy(deploy, metrics, quick=quick, test=test) if trained else (None, "not trained")
        hw = measure_variant(deploy, config, transport, images)
        row = dict(variant=v, source=source, trained=trained, accuracy=acc, accuracy_how=how,
                   recorded_acc=(metrics or {}).get("golden_acc"), epochs=(metrics or {}).get("epochs"),
                   net=deploy.header["training"].get("net"),
                   first_kind=deploy.layers[0]["kind"], **hw)
        if deploy.layers[0]["kind"] == "host_conv":
            row["host"] = host_times(hw["compiled"], host_images if host_images is not None else images)
        rows.append(row)
    syn = None
    if synth:
        try:
            pe = next((r for r in rows if r["variant"] == "pixel_embedding"), None)
            syn = synth_input_paths(config, embed_window(pe["compiled"]) if pe else None)
        except (subprocess.CalledProcessError, FileNotFoundError, OSError) as exc:
            log(f"  synthesis skipped: {exc}")
    return rows, syn


def images_per_s(row, hz):
    """``(serial, overlapped)`` images/s: accelerator cycles / fmax (modelled), plus for a host
    first layer its measured time, either in series or overlapped with the accelerator."""
    t_acc = row["cycles"] / hz
    if "host" not in row:
        return 1 / t_acc, 1 / t_acc
    t_host = host_time(row["host"])
    return 1 / (t_acc + t_host), 1 / max(t_acc, t_host)


def host_time(h):
    """The host first layer's time per image used for images/s: the faster implementation's CPU
    time (this process, one thread), which is what an otherwise idle core takes; the wall time on
    the shared machine is reported beside it."""
    return min(h.get("numpy_cpu", h["numpy"]), h.get("torch_cpu", h["torch"]))


def section_lines(rows, syn, *, config, fmax, argv, png_name, n_images):
    hz, fmax_label = fmax
    by = {r["variant"]: r for r in rows}
    head = ["variant", "first layer", "accuracy", "first-layer cycles", "cycles / image",
            "images/s (modelled)", "input path (ECP5 synth)"]
    body = []
    cost = {"pixel_embedding": "embed", "uint8_bitserial": "raw", "naive": "embed"}
    for r in rows:
        acc = "n/a (not trained)" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f} %"
        if r["accuracy"] is not None and r.get("epochs"):
            acc += f" ({r['epochs']} epochs)"   # the variants' schedules may differ: say so
        ser, ovl = images_per_s(r, hz)
        if "host" in r:
            h = r["host"]
            t_host = host_time(h)
            first = (f"{r['first_cycles']:,.0f} (LOAD of the host's codes) + host first layer "
                     f"{1e6 * h.get('numpy_cpu', h['numpy']):.0f} µs numpy / "
                     f"{1e6 * h.get('torch_cpu', h['torch']):.0f} µs PyTorch (CPU time; wall "
                     f"{1e6 * h['numpy']:.0f} / {1e6 * h['torch']:.0f} µs)")
            ips = (f"{ser:,.0f} in series, {ovl:,.0f} overlapped (accelerator *modelled* + host "
                   f"{1e6 * t_host:.0f} µs *measured*)")
            what = "float 3x3 s2 conv on the host CPU"
            path = "nothing on chip (DMA LOAD); host float conv"
        else:
            first = f"{r['first_cycles']:,.0f}"
            ips = f"{ser:,.0f}"
            what = {"embed": "EMBED (table) + stem1 binary conv", "raw_input":
                    "EMBED raw (8-bit) + stem1, 4 bit-serial passes"}[r["first_kind"]]
            if r["variant"] == "naive":
                what = "EMBED (fixed table, p >> 6) + stem1"
            path = "-"
            if syn:
                s = syn[cost[r["variant"]]]
                path = f"{s['LUT4_eq']:,} LUT4-eq, {s['DP16KD']} EBR"
        body.append([r["variant"], what, acc, first, f"{r['cycles']:,.0f}", ips, path])

    lines = [
        f"Measured by `python -m bench.first_layer {' '.join(argv)}`".rstrip() + " (or `python -m bench`). "
        f"Same network for every variant (only the first layer differs, `model/nets.py`; net "
        f"{_net_text(rows)}), compiled for the `{config_name(config)}` configuration "
        f"(p_o={config.p_o} x "
        f"p_i={config.p_i}) and run on the compiled simulator of the SoC; cycles are the hardware "
        f"counters (`LAYER_CYCLES` of the first layer's descriptors, `CYCLES` per image) averaged over "
        f"{max(1, n_images - 1)} images after the parameter-loading one. images/s are *modelled*: "
        f"cycles / fmax at {fmax_label}; host-bus transfers are not included. Revision "
        f"{git_revision()}, {machine()}.",
        "",
        *table(head, body),
        "",
        "Accuracy: " + "; ".join(f"{r['variant']}: {r['accuracy_how']} ({r['source']})" for r in rows) + ".",
    ]
    for r in rows:
        if r["accuracy"] is not None and r.get("recorded_acc") is not None and \
                "this run" in r["accuracy_how"] and abs(r["accuracy"] - r["recorded_acc"]) > 1e-9:
            lines.append(f"- note: {r['variant']}'s metrics.json records {100 * r['recorded_acc']:.2f} %.")
    bad = [r for r in rows if r["golden_equal"] != r["n_images"]]
    lines.append("- hardware logits equal `model.golden`'s for "
                 + ", ".join(f"{r['variant']} {r['golden_equal']}/{r['n_images']}" for r in rows)
                 + (" images." if not bad else " images (**mismatch**)."))
    if "float_first" in by:
        h = by["float_first"]["host"]
        lines.append(
            f"- float_first host time is *measured* on this CPU ({machine()}, shared with other jobs, "
            f"so the CPU time of the measuring process (one thread) is used for images/s, the wall "
            f"time given beside it; median of 3 passes over {h.get('n', '?')} images, batch 1): the first layer plus the "
            f"code-bank encoding the driver writes (`CompiledModel.host_prepare`, numpy float64) or "
            f"the same in PyTorch float32 (its codes equal numpy's for {100 * h['torch_codes_equal']:.2f} % "
            f"of values). 'In series' = host time + accelerator time per image; 'overlapped' = the host "
            f"prepares image n+1 while the accelerator runs image n. Its input is "
            f"{by['float_first']['input_words']} words per image (the code map) against "
            f"{by.get('pixel_embedding', by['float_first'])['input_words']} for the raw image.")
    if syn:
        s, r_, e = syn["shipped"], syn["raw"], syn["embed"]
        lines.append(
            f"- input path cost: Yosys `synth_ecp5` (logic only) of `accel/embedding.py` at this "
            f"configuration with its mode inputs tied to constants: raw 8-bit only (the uint8_bitserial "
            f"path) {r_['LUT4_eq']:,} LUT4-eq and {r_['DP16KD']} EBR; embedding only (1 channel, "
            f"d={EMBED_D}, q={EMBED_Q}"
            + (f", window mode k={w['k']} stride {w['stride']} pad {w['pad']}"
               if (w := syn.get("window")) else "")
            + f") {e['LUT4_eq']:,} LUT4-eq and {e['DP16KD']} EBR; the unit as "
            f"built (both modes, {config.emb_channels} channels, any d/q) {s['LUT4_eq']:,} LUT4-eq and "
            f"{s['DP16KD']} EBR (LUT4-eq = LUT4 + 2 x CCU2C). The embedding's extra cost over the "
            f"bit-serial input is {e['LUT4_eq'] - r_['LUT4_eq']:+,} LUT4-eq and "
            f"{e['DP16KD'] - r_['DP16KD']:+} EBR; float_first needs no input logic on chip (a DMA LOAD) "
            f"but a CPU.")
    lines += _claim(by, hz)
    lines += ["", f"![first-layer study](plots/{png_name})"]
    return lines


def _net_text(rows):
    n = rows[0].get("net") or {}
    if not n:
        return "?"
    return f"width {n.get('width')}, blocks {n.get('blocks')}"


def _claim(by, hz):
    """Whether we see the papers' > 1.7x over the float first layer, and why."""
    if "pixel_embedding" not in by or "float_first" not in by:
        return []
    pe, ff = by["pixel_embedding"], by["float_first"]
    pe_ips = images_per_s(pe, hz)[0]
    ser, ovl = images_per_s(ff, hz)
    t_host = host_time(ff["host"])
    acc_only = hz / ff["cycles"]
    out = ["",
           f"**The papers' > 1.7x over a float first layer.** pixel_embedding runs "
           f"{pe_ips:,.0f} images/s (modelled), float_first {ser:,.0f} in series / {ovl:,.0f} "
           f"overlapped: pixel_embedding is **{pe_ips / ser:.2f}x** (series) / **{pe_ips / ovl:.2f}x** "
           f"(overlapped) faster. "]
    seen = pe_ips / ser > 1.7
    t_pe, t_ff = pe["cycles"] / hz, ff["cycles"] / hz
    need = 1.7 * t_pe - t_ff          # host time at which float_first (in series) is 1.7x slower
    why = [f"We {'see' if seen else 'do not see'} it. The on-chip first layer costs "
           f"{pe['first_cycles']:,.0f} cycles ({1e6 * pe['first_cycles'] / hz:.1f} µs) of "
           f"{pe['cycles']:,.0f} ({1e6 * t_pe:.0f} µs per image); float_first replaces it by a "
           f"{ff['first_cycles']:,.0f}-cycle LOAD of the host's codes (the accelerator alone would "
           f"run {acc_only:,.0f} images/s) and spends {1e6 * t_host:.0f} µs of CPU per image on the "
           f"float conv and the code-bank encoding. The ratio is therefore set by the host: the "
           f"float path is 1.7x slower (in series) once the host needs more than "
           f"{1e6 * max(need, 0):.0f} µs per image; this one needs {1e6 * t_host:.0f} µs"
           + (": one CPU core at batch 1 is slow next to the array, so the float first layer "
              "becomes the bottleneck (the papers' argument)." if seen else
              ": fast enough that moving the first layer to the CPU costs less than that.")
           + (f" Overlapped (the host prepares the next image while the accelerator runs) the float "
              f"path runs at the slower of the two, {pe_ips / ovl:.2f}x.")]
    bs = by.get("uint8_bitserial")
    if bs:
        why.append(f"uint8_bitserial keeps everything on chip but its stem1 needs "
                   f"{bs['first_cycles']:,.0f} first-layer cycles ({bs['first_cycles'] / max(pe['first_cycles'], 1):.1f}x "
                   f"the embedding's): 8-bit pixels take 8 / a_planes passes (and as many sub-words "
                   f"through EMBED), while the embedding's q-bit codes fit one pass; with one image "
                   f"channel both use few of the p_i input lanes (d codes vs 1 pixel).")
    out[-1] += " ".join(why)
    return out


def plot(rows, png, hz):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["variant"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(rows))
    first = [r["first_cycles"] for r in rows]
    rest = [r["cycles"] - r["first_cycles"] for r in rows]
    a1.bar(x, first, 0.6, label="first layer (on chip)", color="tab:orange")
    a1.bar(x, rest, 0.6, bottom=first, label="rest of the network", color="tab:blue")
    host = [host_time(r["host"]) * hz if "host" in r else 0 for r in rows]
    a1.bar(x, host, 0.6, bottom=[r["cycles"] for r in rows], label="host first layer (measured, as cycles)",
           color="tab:red", alpha=0.6)
    a1.set_xticks(x, names, rotation=15, fontsize=8)
    a1.set_ylabel("cycles per image (hardware counters)")
    a1.legend(fontsize=7)
    ips = [images_per_s(r, hz)[0] for r in rows]
    accs = [100 * r["accuracy"] if r["accuracy"] is not None else np.nan for r in rows]
    a2.bar(x, ips, 0.6, color="tab:green")
    a2.set_xticks(x, names, rotation=15, fontsize=8)
    a2.set_ylabel(f"images/s, modelled at {hz / 1e6:.0f} MHz (series)")
    for xi, v, a in zip(x, ips, accs):
        a2.text(xi, v, f"{v:,.0f}\n" + ("acc n/a" if np.isnan(a) else f"{a:.1f} %"), ha="center",
                va="bottom", fontsize=7)
    a2.set_ylim(0, max(ips) * 1.25)
    fig.suptitle("First-layer variants: same network, DEFAULT configuration", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def run(argv=None, *, write=True, transport=None):
    """The command line's work; ``transport``: an open one to use (and leave open)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m bench.first_layer", description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=None, help="accelerator configuration (default: the board's)")
    ap.add_argument("--images", type=int, default=4, help="images run on the simulator per variant")
    ap.add_argument("--backend", default="auto", choices=("auto", "cxxrtl", "verilator", "pysim"),
                    help="simulator (default auto: Verilator when installed, else CXXRTL)")
    ap.add_argument("--board", default=DEFAULT_BOARD)
    ap.add_argument("--runs", default=str(RUNS), help="directory with <variant>_s<seed>/ training runs")
    ap.add_argument("--quick", action="store_true", help="(accepted for python -m bench; no effect)")
    ap.add_argument("--golden-accuracy", action="store_true",
                    help="run model.golden on the 10k test images instead of taking the accuracy "
                         "model.train recorded with it in runs/t1/<variant>_s<seed>/metrics.json")
    ap.add_argument("--no-synth", action="store_true", help="skip the input-path synthesis")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    args.backend = resolve_backend(args.backend)
    config = resolve_config(args.config, args.board)
    images, _, _ = load_images(max(args.images, 1))
    timgs, tlabels, _ = load_images(None)
    test = (timgs, tlabels)
    host_imgs, _, _ = load_images(64)
    own = transport is None
    if own:
        transport = open_transport(config, args.backend)
    try:
        rows, syn = study(config, transport, images=images, test=test, quick=not args.golden_accuracy,
                          runs=args.runs, synth=not args.no_synth, host_images=host_imgs)
    finally:
        if own:
            asyncio.run(transport.close())
    fmax = board_fmax(args.board)
    name = "first_layer.png"
    plot(rows, plot_path(name), fmax[0])
    lines = section_lines(rows, syn, config=config, fmax=fmax, argv=argv, png_name=name,
                          n_images=len(images))
    if write and not args.no_write:
        write_section(TITLE, lines)
        log(f"wrote the '{TITLE}' section of docs/BENCHMARKS.md")
    print("\n".join(lines))
    return rows, syn


def main(argv=None):
    def work():
        rows, _ = run(argv)
        return 0 if all(r["golden_equal"] == r["n_images"] for r in rows) else 2
    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
