"""The Brevitas model zoo's W1A2 networks on Fashion-MNIST: train, export to QONNX, bring them here.

``brevitas_examples.bnn_pynq`` (inside the brevitas wheel) defines the topologies; its pretrained
weights are downloads, so they are trained here on Fashion-MNIST with a short schedule::

    python -m bench.model_zoo train --net tfc_1w2a --epochs 10
    python -m bench.model_zoo train --net sfc_1w2a --epochs 10
    python -m bench.model_zoo train --net cnv_1w2a --epochs 2     # 32x32: images zero-padded

Each run writes ``build/model_zoo/<net>/``: ``checkpoint.pt`` (resumable with ``--resume``), the
QONNX export ``<net>.onnx`` (``brevitas.export.export_qonnx``) and ``metrics.json`` with Brevitas'
own float-graph accuracy on the 10,000 test images, the schedule and the training time.

The schedule (the same for every net): Adam, learning rate 0.02 with a cosine decay to 0, batch 100,
cross-entropy loss, weights clipped to [-1, 1] after each step (as the model zoo's trainer does),
seed 0. The networks see ``ToTensor``'s [0, 1] images (pixel / 255), as the model zoo's training
does; the importer is told so with ``--input-scale 1/255``.

Then the rest of the pipeline, on the default board's configuration::

    python -m bench.model_zoo run --net tfc_1w2a                  # 256 images on the simulator
    python -m bench.model_zoo run --net sfc_1w2a --images 10000
    python -m bench.model_zoo run --onnx TFC_1W2A.onnx --name public_tfc_1w2a
    python -m bench.model_zoo run --net cnv_1w2a --untrained      # the compiler's refusal
    python -m bench.model_zoo report                              # docs/BENCHMARKS.md section

``run`` imports the export (``model.import_qonnx``, input scale 1/255), compiles it for the
configuration the default board builds (``contract.config.DEFAULT85``), runs the 10,000 test
images through the golden model and through qonnx's executor on the export itself (batched: its
flatten's batch dimension set to the batch; checked against one-image runs), then the first
``--images`` of them on the compiled simulator of the SoC through the driver. It checks the
integer logits: simulator == golden on every image, and golden == the executor's float logits
mapped back through the head's affine (``rint((logits - bias) / scale)``), and reports golden's
accuracy beside Brevitas' float-graph accuracy (``metrics.json``), cycles per image from the
hardware's CYCLES counter, the MAC-array utilisation (network MACs / (p_o * p_i * CYCLES), and
MAC_BUSY / CYCLES), and images per second modelled at the board's clock
(``bench.utilisation.board_fmax``). Results go to ``build/model_zoo/<name>/run.json``; a network
the compiler refuses ends with its one-line error (exit status 2), recorded there too.
"""

import argparse
import json
import math
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


NETS = ("tfc_1w2a", "sfc_1w2a", "cnv_1w2a")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "model_zoo"
BATCH = 100
LEARNING_RATE = 0.02


class ZooError(RuntimeError):
    """A one-line failure of a model-zoo step."""


class CompileRefusal(ZooError):
    """The compiler refused the network (its one-line error)."""


def build_net(name):
    """The untrained model-zoo network ``name`` for one-channel 28x28 (FC) or 32x32 (CNV) input."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg
    from brevitas_examples.bnn_pynq.models.CNV import cnv
    from brevitas_examples.bnn_pynq.models.FC import fc
    if name not in NETS:
        raise ZooError(f"unknown net {name!r} (one of {', '.join(NETS)})")
    _, cfg = model_with_cfg(name, pretrained=False)
    cfg.set("MODEL", "IN_CHANNELS", "1")
    return (cnv if name.startswith("cnv") else fc)(cfg)


def input_shape(name):
    return (1, 32, 32) if name.startswith("cnv") else (1, 28, 28)


def as_float_images(images, name):
    """uint8 ``(N, 1, 28, 28)`` -> float32 in [0, 1], zero-padded to 32x32 for CNV."""
    x = images.astype(np.float32) / 255.0
    if name.startswith("cnv"):
        x = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    return x


def accuracy(net, images, labels, name, batch=500):
    import torch
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(as_float_images(images[i:i + batch], name))
            correct += int((net(x).argmax(1).numpy() == labels[i:i + batch]).sum())
    return correct / len(images)


def train(name, *, epochs, out_dir, data_dir=None, seed=0, resume=False, threads=1, log=print,
          build=None, export_onnx=True, train_limit=None, command=None):
    """Train ``name`` on Fashion-MNIST; returns the metrics dict (also written to metrics.json).

    ``build`` (a function of no arguments, called after seeding) makes a variant of a zoo network
    in place of ``build_net(name)``: it must take ``ToTensor`` images, as the zoo networks do, and
    have their ``clip_weights``. ``export_onnx`` False skips the QONNX export (for variants
    Brevitas cannot export); ``train_limit`` trains on the first images only (quick checks);
    ``command`` is the metrics' command line (the zoo's own by default).
    """
    import torch
    from tqdm import tqdm
    from model.data import load_fashion_mnist
    if epochs <= 0:
        raise ZooError(f"--epochs must be positive, not {epochs}")
    torch.set_num_threads(threads)
    xtr, ytr = load_fashion_mnist("train", data_dir)
    xte, yte = load_fashion_mnist("test", data_dir)
    if train_limit is not None:
        if train_limit < 1:
            raise ZooError(f"the train limit must be positive, not {train_limit}")
        xtr, ytr = xtr[:train_limit], ytr[:train_limit]
    out = Path(out_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    net = build_net(name) if build is None else build()
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    steps = epochs * math.ceil(len(xtr) / BATCH)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    generator = torch.Generator().manual_seed(seed + 1)
    checkpoint = out / "checkpoint.pt"
    start, history, seconds = 0, [], 0.0
    if resume:
        if not checkpoint.exists():
            raise ZooError(f"--resume: no checkpoint at {checkpoint}")
        state = torch.load(checkpoint, weights_only=False)
        if state["epochs"] != epochs:
            raise ZooError(f"--resume: {checkpoint} was started with --epochs {state['epochs']}")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        start, history, seconds = state["epoch"], state["history"], state["seconds"]
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(start, epochs):
        net.train()
        t0 = time.time()
        order = torch.randperm(len(xtr), generator=generator).numpy()
        for i in tqdm(range(0, len(order), BATCH), desc=f"{name} epoch {epoch + 1}/{epochs}",
                      leave=False, file=sys.stderr):
            idx = order[i:i + BATCH]
            x = torch.from_numpy(as_float_images(xtr[idx], name))
            loss = loss_fn(net(x), torch.from_numpy(ytr[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            net.clip_weights(-1, 1)
        seconds += time.time() - t0
        history.append({"epoch": epoch + 1, "test_accuracy": accuracy(net, xte, yte, name),
                        "seconds": round(seconds, 1)})
        log(f"{name}: epoch {epoch + 1}/{epochs}: test accuracy "
            f"{100 * history[-1]['test_accuracy']:.2f} % ({seconds / 60:.1f} min)")
        torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(), "generator": generator.get_state(),
                    "epoch": epoch + 1, "epochs": epochs, "history": history,
                    "seconds": seconds}, checkpoint)
    onnx_path = export(name, net, out) if export_onnx else None
    metrics = {"net": name, "epochs": epochs, "seed": seed, "batch": BATCH,
               "learning_rate": LEARNING_RATE, "schedule": "Adam, cosine to 0, weights clipped to [-1, 1]",
               "float_graph_accuracy": history[-1]["test_accuracy"], "train_seconds": round(seconds, 1),
               "history": history, "onnx": None if onnx_path is None else _rel(onnx_path),
               "train_images": len(xtr),
               "command": command or f"python -m bench.model_zoo train --net {name} --epochs {epochs}"}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def export(name, net, out):
    """The QONNX export of ``net`` (Brevitas' own exporter) as ``out/<name>.onnx``."""
    import torch
    from brevitas.export import export_qonnx
    net.eval()
    path = Path(out) / f"{name}.onnx"
    export_qonnx(net, torch.zeros((1, *input_shape(name))), export_path=str(path))
    return path


# --------------------------------------------------------------------------------------------------
# Import, compile, run

class BatchedExecutor:
    """qonnx's executor on a Brevitas export, ``batch`` images per call: a copy of the graph whose
    input and flatten (a Reshape to ``[1, -1]``) carry the batch dimension, shapes inferred again."""

    def __init__(self, path, batch):
        from qonnx.transformation.infer_shapes import InferShapes
        from model.import_qonnx import load_qonnx
        self.path, self.batch = path, batch
        self.single = load_qonnx(path)
        self.input = self.single.graph.input[0].name
        self.output = self.single.graph.output[0].name
        model = load_qonnx(path)
        for node in model.graph.node:
            if node.op_type == "Reshape":
                shape = model.get_initializer(node.input[1])
                if shape is not None and shape.size and shape[0] == 1:
                    model.set_initializer(node.input[1], np.array([batch, *shape[1:]], dtype=shape.dtype))
        in_shape = model.get_tensor_shape(self.input)
        out_shape = model.get_tensor_shape(self.output)
        model.set_tensor_shape(self.input, [batch, *in_shape[1:]])
        del model.graph.value_info[:]
        model.set_tensor_shape(self.output, [batch, *out_shape[1:]])
        self.batched = model.transform(InferShapes())

    def _run(self, model, images, input_scale):
        from qonnx.core.onnx_exec import execute_onnx
        from model.import_qonnx import pixels_to_graph_input
        out = execute_onnx(model, {self.input: pixels_to_graph_input(images, input_scale)})[self.output]
        return np.asarray(out, dtype=np.float64).reshape(len(images), -1)

    def one_by_one(self, images, input_scale):
        """The graph's outputs, one image per call (the export as it is)."""
        return np.concatenate([self._run(self.single, images[i:i + 1], input_scale)
                               for i in range(len(images))])

    def __call__(self, images, input_scale):
        """The graph's outputs ``(N, classes)`` float64 for uint8 ``(N, C, H, W)`` images."""
        out = []
        for i in range(0, len(images), self.batch):
            part = images[i:i + self.batch]
            if len(part) < self.batch:
                pad = np.zeros((self.batch - len(part),) + part.shape[1:], part.dtype)
                out.append(self._run(self.batched, np.concatenate([part, pad]), input_scale)[:len(part)])
            else:
                out.append(self._run(self.batched, part, input_scale))
        return np.concatenate(out)


def executor_integer_logits(deploy, logits):
    """The executor's float logits mapped back to integers through the head's affine:
    ``rint((logits - bias) / scale)`` (exact while the graph's rounding stays below scale / 2)."""
    head = deploy.layers[-1]["arrays"]
    scale = head["scale"].astype(np.float64)
    bias = head["bias"].astype(np.float64)
    return np.rint((logits - bias) / scale).astype(np.int64)


def onnx_path_for(name, out_dir, untrained=False, log=print):
    """The export of model-zoo net ``name``: the trained one, or with ``untrained`` the freshly
    initialised network exported to ``<name>_untrained.onnx`` (enough for the compiler's fit)."""
    out = Path(out_dir) / name
    if untrained:
        path = out / f"{name}_untrained.onnx"
        if not path.exists():
            import torch
            torch.manual_seed(0)
            out.mkdir(parents=True, exist_ok=True)
            log(f"{name}: exporting the untrained network to {path}")
            export(f"{name}_untrained", build_net(name), out)
        return path
    path = out / f"{name}.onnx"
    if not path.exists():
        raise ZooError(f"{path}: no export; run 'python -m bench.model_zoo train --net {name}' first")
    return path


def run(name, onnx_path, *, n_images=256, golden_images=10000, input_scale=1 / 255, out_dir=DEFAULT_OUT,
        board=None, float_accuracy=None, log=print):
    """Import, compile, run on golden, the executor and the simulator; the results dict.

    Raises
    ------
    ZooError
        A mismatch between the simulator and golden, or a network the compiler refuses (the
        result is written to ``run.json`` first; the message is the compiler's line).
    """
    from bench.utilisation import DEFAULT_BOARD, board_config_name, board_fmax, get_config
    from bench.utilisation import load_images, make_transport, run_images
    from firmware.compiler import CompileError, compile_model
    from model import golden
    from model.import_qonnx import import_qonnx
    board = board or DEFAULT_BOARD
    out = Path(out_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    config_name = board_config_name(board)
    config = get_config(config_name)
    result = {"net": name, "onnx": _rel(onnx_path), "input_scale": input_scale, "board": board,
              "config": config_name, "float_graph_accuracy": float_accuracy,
              "command": " ".join(["python -m bench.model_zoo"] + sys.argv[1:]) if sys.argv[1:] else None}
    t0 = time.time()
    deploy = import_qonnx(onnx_path, input_scale=input_scale)
    deploy.save(out / f"{name}.npz")
    result["deploy"] = _rel(out / f"{name}.npz")
    result["layers"] = [_layer_text(L) for L in deploy.header["layers"]]
    log(f"{name}: imported {onnx_path} ({time.time() - t0:.1f} s): " + "; ".join(result["layers"]))
    try:
        compiled = compile_model(deploy, config)
    except CompileError as exc:
        result["compile_error"] = str(exc)
        _write_json(out / "run.json", result)
        raise CompileRefusal(f"{name}: {exc}") from None
    result["compiled"] = {"descriptors": len(compiled.descriptors), "memory_words": compiled.window_limit
                          - compiled.window_base, "input_kind": compiled.input_kind,
                          "input_words": compiled.input_words, "macs": compiled.total_macs,
                          "ideal_cycles": compiled.ideal_cycles}
    log(compiled.summary())
    log(compiled.layer_table())

    images, labels, source = load_images(golden_images)
    result["images_source"] = source
    t0 = time.time()
    ref = golden.run(deploy, images, keep_tensors=False)
    result["golden"] = {"images": len(images), "accuracy": float((ref.predictions == labels).mean()),
                        "seconds": round(time.time() - t0, 1)}
    log(f"{name}: golden accuracy {100 * result['golden']['accuracy']:.2f} % on {len(images)} images")

    t0 = time.time()
    executor = BatchedExecutor(onnx_path, batch=500)
    logits = executor(images, input_scale)
    single = executor.one_by_one(images[:16], input_scale)
    ints = executor_integer_logits(deploy, logits)
    result["executor"] = {
        "images": len(images), "batched_equals_one_by_one_on": 16,
        "batched_equals_one_by_one": bool(np.array_equal(single, logits[:16])),
        "integer_logits_equal_golden": int((ints == ref.logits_int).all(axis=1).sum()),
        "predictions_equal_golden": int((logits.argmax(axis=1) == ref.predictions).sum()),
        # classes whose float logits tie in exact arithmetic (equal scales, biases differing by a
        # multiple of the scale) differ by float32 rounding only, in golden and in the graph each
        # its own way: the differing predictions at such near-ties
        "predictions_differing_at_tied_logits": int(((logits.argmax(axis=1) != ref.predictions)
                                                     & _tied(deploy, ref.logits_int)).sum()),
        "max_abs_float_difference": float(np.abs(logits - ref.logits).max()),
        "accuracy": float((logits.argmax(axis=1) == labels).mean()),
        "seconds": round(time.time() - t0, 1)}
    log(f"{name}: executor: integer logits == golden on {result['executor']['integer_logits_equal_golden']}"
        f"/{len(images)} images, predictions on {result['executor']['predictions_equal_golden']} (the others "
        f"at tied logits: {result['executor']['predictions_differing_at_tied_logits']})")

    n = min(n_images, len(images))
    t0 = time.time()
    transport = make_transport(config)
    try:
        runs = run_images(transport, compiled, images[:n],
                          progress=lambda i, total: i % 64 == 0 and log(f"{name}: simulator {i}/{total}"))
    finally:
        import asyncio
        asyncio.run(transport.close())
    sim = np.array([r.logits_int for r in runs], dtype=np.int64)
    cycles = np.array([r.cycles for r in runs[1:]] or [runs[0].cycles], dtype=np.float64)
    busy = np.array([r.mac_busy for r in runs[1:]] or [runs[0].mac_busy], dtype=np.float64)
    hz, clock = board_fmax(board)
    per_image = float(cycles.mean())
    result["simulator"] = {
        "images": n, "seconds": round(time.time() - t0, 1),
        "logits_equal_golden": int((sim == ref.logits_int[:n]).all(axis=1).sum()),
        "logits_equal_executor": int((sim == ints[:n]).all(axis=1).sum()),
        "first_image_cycles": int(runs[0].cycles),
        "cycles_per_image": per_image, "cycles_min": int(cycles.min()), "cycles_max": int(cycles.max()),
        "mac_busy_per_cycle": float(busy.sum() / cycles.sum()),
        "utilisation": compiled.total_macs / (config.p_o * config.p_i * per_image),
        "clock_hz": hz, "clock": clock, "images_per_second": hz / per_image,
        "accuracy": float((sim.argmax(axis=1) == labels[:n]).mean()),
        # LAYER_CYCLES of the second image's per-image program, by descriptor note
        "layer_cycles": _layer_cycles(compiled, runs[-1])}
    log(f"{name}: simulator: {n} images, logits == golden on {result['simulator']['logits_equal_golden']}, "
        f"{per_image:.0f} cycles/image, utilisation {100 * result['simulator']['utilisation']:.1f} %, "
        f"{result['simulator']['images_per_second']:.0f} images/s at {hz / 1e6:.0f} MHz")
    _write_json(out / "run.json", result)
    if result["simulator"]["logits_equal_golden"] != n:
        raise ZooError(f"{name}: the simulator's logits differ from golden's on "
                       f"{n - result['simulator']['logits_equal_golden']} of {n} images")
    return result


def _layer_cycles(compiled, run_result):
    """``[note, cycles]`` per descriptor of the per-image program (END excluded)."""
    notes = [d["note"] for d in compiled.descriptors if d["addr"] >= compiled.prog_image_addr]
    return [[note, int(c)] for note, c in zip(notes, run_result.layer_cycles) if note != "end"]


def _tied(deploy, logits_int):
    """Per image: do the two largest logits ``scale * logits_int + bias`` (in float64) lie within
    float32 rounding of each other (8 ulps of their operands ``|scale * logits_int| + |bias|``)?"""
    head = deploy.layers[-1]["arrays"]
    scale, bias = head["scale"].astype(np.float64), head["bias"].astype(np.float64)
    exact = scale * logits_int + bias
    size = np.abs(scale * logits_int) + np.abs(bias)
    order = np.argsort(exact, axis=1)[:, -2:]
    rows = np.arange(len(exact))[:, None]
    gap = exact[rows, order[:, 1:]] - exact[rows, order[:, :1]]
    return gap[:, 0] <= 8 * np.finfo(np.float32).eps * size[rows, order].max(axis=1)


def _layer_text(layer):
    k = layer["kind"]
    if k == "embed":
        return f"{layer['name']} embed d={layer['d']} q={layer['q']}"
    if k in ("conv", "head"):
        cout = layer.get("cout", layer.get("classes"))
        extra = "".join(f" {f}={layer[f]}" for f in ("in_gain", "in_offset") if f in layer)
        return (f"{layer['name']} {k} {layer['cin']}->{cout} k={layer.get('k', 1)}"
                f"{' pool' if layer.get('pool') else ''}{extra}")
    return f"{layer['name']} {k}"


def _rel(path):
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _write_json(path, data):
    Path(path).write_text(json.dumps(data, indent=1, default=float))


REPORT_TITLE = "Bring your own model: the Brevitas model zoo"


def report(out_dir=DEFAULT_OUT):
    """The ``docs/BENCHMARKS.md`` section from every ``build/model_zoo/*/run.json``."""
    from bench.report import table, write_section, machine, git_revision
    rows, refused, notes = [], [], []
    for path in sorted(Path(out_dir).glob("*/run.json")):
        r = json.loads(path.read_text())
        if "compile_error" in r:
            refused.append(f"- `{r['net']}`: refused by the compiler: `{r['compile_error']}`")
            continue
        g, e, s = r["golden"], r["executor"], r["simulator"]
        fa = r.get("float_graph_accuracy")
        rows.append([f"`{r['net']}`", f"{100 * fa:.2f} %" if fa is not None else "n/a",
                     f"{100 * g['accuracy']:.2f} % ({g['images']})",
                     f"{e['integer_logits_equal_golden']}/{e['images']}",
                     f"{e['predictions_equal_golden']} ({e['predictions_differing_at_tied_logits']})",
                     f"{s['logits_equal_golden']}/{s['images']}", f"{s['logits_equal_executor']}/{s['images']}",
                     f"{r['compiled']['macs']:,}", f"{s['cycles_per_image']:.0f}",
                     f"{100 * s['utilisation']:.1f} %", f"{100 * s['mac_busy_per_cycle']:.1f} %",
                     f"{s['images_per_second']:,.0f}"])
        split = ", ".join(f"{note} {c}" for note, c in s.get("layer_cycles", []))
        notes.append(f"- `{r['net']}`: {'; '.join(r['layers'])}; input `{r['compiled']['input_kind']}` "
                     f"({r['compiled']['input_words']} words), {r['compiled']['descriptors']} descriptors, "
                     f"{r['compiled']['memory_words']} memory words; clock: {s['clock']}. "
                     f"Cycles per descriptor (LAYER_CYCLES): {split}; ideal (one word-set per cycle) "
                     f"{r['compiled']['ideal_cycles']}.")
    lines = [f"Measured by `python -m bench.model_zoo run --net NAME` (then `report`), revision "
             f"{git_revision()}, on {machine()}: each export imported (input scale 1/255), compiled "
             f"for the default board's configuration, the Fashion-MNIST test images through the golden "
             f"model and qonnx's executor, the first N on the compiled simulator of the SoC through "
             f"the driver. Cycles per image from the CYCLES counter (images after the first, which "
             f"also loads the parameters); utilisation = network MACs / (p_o * p_i * CYCLES).", ""]
    lines += table(["net", "Brevitas float graph", "golden accuracy (images)", "executor int logits == golden",
                    "executor predictions == golden (others at tied logits)",
                    "simulator == golden", "simulator == executor", "MACs/image", "cycles/image",
                    "MAC utilisation", "MAC_BUSY/CYCLES", "images/s (modelled)"], rows)
    lines += [""] + notes + refused
    write_section(REPORT_TITLE, lines)
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.model_zoo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train a model-zoo net on Fashion-MNIST and export it")
    p_train.add_argument("--net", required=True, choices=NETS)
    p_train.add_argument("--epochs", type=int, default=10)
    p_train.add_argument("--seed", type=int, default=0)
    p_train.add_argument("--threads", type=int, default=1)
    p_train.add_argument("--data-dir", default=None)
    p_train.add_argument("--out", default=str(DEFAULT_OUT))
    p_train.add_argument("--resume", action="store_true")
    p_run = sub.add_parser("run", help="import, compile and run an export (golden, executor, simulator)")
    which = p_run.add_mutually_exclusive_group(required=True)
    which.add_argument("--net", choices=NETS)
    which.add_argument("--onnx", help="any Brevitas/FINN QONNX export (with --name)")
    p_run.add_argument("--name", help="the result's name for --onnx (default: the file's stem)")
    p_run.add_argument("--untrained", action="store_true",
                       help="use the freshly initialised network (for the compiler's fit check)")
    p_run.add_argument("--images", type=int, default=256, help="images on the simulator (default 256)")
    p_run.add_argument("--golden-images", type=int, default=10000)
    p_run.add_argument("--input-scale", default="1/255")
    p_run.add_argument("--out", default=str(DEFAULT_OUT))
    p_report = sub.add_parser("report", help="write the docs/BENCHMARKS.md section from the run.json files")
    p_report.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args(argv)
    from model.data import DataError
    try:
        if args.command == "train":
            metrics = train(args.net, epochs=args.epochs, out_dir=args.out, data_dir=args.data_dir,
                            seed=args.seed, resume=args.resume, threads=args.threads)
            print(json.dumps({k: v for k, v in metrics.items() if k != "history"}))
        elif args.command == "run":
            return _run_command(args)
        elif args.command == "report":
            print("\n".join(report(args.out)))
    except CompileRefusal as exc:
        print(f"bench.model_zoo: {exc}", file=sys.stderr)
        return 2
    except (ZooError, DataError, OSError) as exc:
        print(f"bench.model_zoo: {exc}", file=sys.stderr)
        return 1
    return 0


def _run_command(args):
    from model.import_qonnx import QonnxImportError
    try:
        scale = float(Fraction(args.input_scale))
        if scale <= 0:
            raise ValueError
    except (ValueError, ZeroDivisionError):
        raise ZooError(f"--input-scale {args.input_scale!r} is not a number or a fraction") from None
    if args.images < 1 or args.golden_images < args.images:
        raise ZooError(f"--images must be 1..--golden-images ({args.golden_images}), not {args.images}")
    if args.net:
        name = args.net + ("_untrained" if args.untrained else "")
        path = onnx_path_for(args.net, args.out, untrained=args.untrained, log=_log)
        metrics = Path(args.out) / args.net / "metrics.json"
        accuracy_ = None if args.untrained or not metrics.exists() else \
            json.loads(metrics.read_text())["float_graph_accuracy"]
    else:
        path = Path(args.onnx)
        if not path.is_file():
            raise ZooError(f"{path}: no such file")
        name, accuracy_ = args.name or path.stem.lower(), None
    try:
        result = run(name, path, n_images=args.images, golden_images=args.golden_images, input_scale=scale,
                     out_dir=args.out, float_accuracy=accuracy_, log=_log)
    except QonnxImportError as exc:
        raise ZooError(str(exc)) from None
    print(json.dumps({k: result[k] for k in ("net", "golden", "executor", "simulator")}, default=float))
    return 0


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
