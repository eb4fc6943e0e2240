"""Pixel embedding on a network we did not design: the model zoo's SFC-W1A2, three first layers.

SFC-W1A2 (``brevitas_examples.bnn_pynq``: 784 -> 256 -> 256 -> 256 -> 10, binary weights, signed
2-bit narrow activations {-1, 0, +1}) is trained on Fashion-MNIST with ``bench.model_zoo``'s
schedule and seed, changing only what the first binary layer sees::

    python -m bench.zoo_first_layer train --variant quantizer      # (a) the zoo's 2-bit input quantizer
    python -m bench.zoo_first_layer train --variant embed_d1q2     # (b) a pixel embedding, d = 1, Q = 2
    python -m bench.zoo_first_layer train --variant embed_d2q2     #     d = 2: the first layer doubles
    python -m bench.zoo_first_layer train --variant embed_d1q2_clipped  # d = 1, table clipped
    python -m bench.zoo_first_layer train --variant float_input    # (c) pixel/255 unquantized
    python -m bench.zoo_first_layer evaluate --variant quantizer   # (and the others)
    python -m bench.zoo_first_layer report                         # docs/RESULTS.md section

each also with ``--seed 1`` (the second seed; outputs in ``<net>_seed1``). Training is resumable
(``--resume``) and takes ``--threads``.

(a) is ``python -m bench.model_zoo train --net sfc_1w2a`` itself (its input quantizer sees
``2 * pixel / 255 - 1``); its accuracy is the golden model's on the deploy file
``model.import_qonnx`` makes of the QONNX export. (b) replaces the input quantizer by
``model.layers.PixelEmbedding`` (a trainable 256-entry table per pixel value, thermometer
initialised, ``d`` codes of ``Q`` bits per pixel) in front of the zoo's own layers: with d = 1 and
Q = 2 the first layer gets the same bits per pixel and the same MACs. It is written to a deploy file
directly from PyTorch (:func:`export_embedded`: the ``embed`` table, the three binary layers with
integer thresholds read off the network's own batch norm and quantizer at every reachable
accumulator value, the head from the ``TensorNorm``), and its accuracy is the golden model's, with
golden's integer logits checked against the PyTorch network's on all 10,000 test images. (c)
drops the input quantizer (the first binary layer sees ``2 * pixel / 255 - 1`` in float); the
deploy contract's float first layer (``host_conv``) takes kernels up to 15, not this 28x28 fully
connected one with binary weights, so its accuracy is Brevitas' float graph's.

Outputs go to ``build/model_zoo/<net>/`` (``sfc_1w2a`` for (a), ``sfc_1w2a_<variant>`` for the
others): ``bench.model_zoo``'s checkpoint and ``metrics.json``, and ``first_layer.json`` with the
evaluation (with the learned table's codes by pixel value, and for a deploy file that fits the
default board's configuration the compiled program on the reference simulator against golden on
every test image).
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from bench import model_zoo


NET = "sfc_1w2a"
VARIANTS = ("quantizer", "embed_d1q2", "embed_d2q2", "embed_d1q2_clipped", "float_input")
DEFAULT_EPOCHS = 10
RESULTS_TITLE = "Pixel embedding on SFC-W1A2 (a network we did not design)"
RESULTS_DOC = model_zoo.ROOT / "docs" / "RESULTS.md"


def net_name(variant, seed=0):
    """The output folder's name: the zoo's own ``sfc_1w2a`` for the quantizer variant, with
    ``_seed<S>`` for a seed other than the zoo schedule's 0."""
    if variant not in VARIANTS:
        raise model_zoo.ZooError(f"unknown variant {variant!r} (one of {', '.join(VARIANTS)})")
    if not isinstance(seed, int) or seed < 0:
        raise model_zoo.ZooError(f"the seed must be a non-negative integer, not {seed!r}")
    return (NET if variant == "quantizer" else f"{NET}_{variant}") + (f"_seed{seed}" if seed else "")


def embedding_shape(variant):
    """``(d, q)`` of an ``embed_dXqY[_clipped]`` variant."""
    match = re.fullmatch(r"embed_d(\d+)q(\d+)(_clipped)?", variant)
    if match is None:
        raise model_zoo.ZooError(f"{variant!r} is not a pixel-embedding variant")
    return int(match.group(1)), int(match.group(2))


def embedded_zoo_net(d, q, clip_table=False):
    """SFC-W1A2 with its input quantizer replaced by a ``PixelEmbedding(1, d, q)``.

    The zoo network is built first (so its weights draw the same random numbers as (a)); with
    ``d > 1`` its first binary layer is rebuilt for ``d * 784`` inputs. The module takes
    ``ToTensor`` images, recovers the pixel values ``round(255 * x)`` and feeds the embedding's
    codes (``0..2^q-1``, flattened channel-major: ``j * 784 + y * 28 + x``) to the zoo's layers
    after its input quantizer (dropout, the binary layers, ``TensorNorm``).

    With ``clip_table`` its ``clip_weights`` (called after every step) also clamps the table to
    the quantizer's range ``[0, (2^q - 1) * step]``, as the zoo clamps its latent weights: an entry
    pushed beyond it gets no gradient through the quantizer's clamp and would stay there, and
    clipping changes no code.
    """
    import torch
    from brevitas.nn import QuantLinear
    from brevitas_examples.bnn_pynq.models.common import CommonWeightQuant
    from model.layers import PixelEmbedding

    zoo = model_zoo.build_net(NET)
    features = torch.nn.ModuleList(list(zoo.features)[1:])
    if d > 1:
        first = features[1]
        features[1] = QuantLinear(first.in_features * d, first.out_features, bias=False,
                                  weight_bit_width=1, weight_quant=CommonWeightQuant)
        torch.nn.init.uniform_(features[1].weight.data, -1, 1)

    class EmbeddedSFC(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = PixelEmbedding(1, d, q)
            self.features = features

        def pixels(self, x):
            return torch.round(x.reshape(x.shape[0], 1, 28, 28) * 255.0)

        def forward(self, x):
            y = self.embedding(self.pixels(x)).reshape(x.shape[0], -1)
            for module in self.features:
                y = module(y)
            return y

        def clip_weights(self, min_val, max_val):
            for module in self.features:
                if isinstance(module, QuantLinear):
                    module.weight.data.clamp_(min_val, max_val)
            if clip_table:
                top = self.embedding.act.qmax * self.embedding.act.effective_step().item()
                self.embedding.table.data.clamp_(0.0, top)

    return EmbeddedSFC()


def float_input_zoo_net():
    """SFC-W1A2 without its input quantizer: ``2 * x - 1`` goes to the first binary layer in float."""
    import torch
    net = model_zoo.build_net(NET)
    net.features[0] = torch.nn.Identity()
    return net


def builder(variant):
    """The network factory ``bench.model_zoo.train`` calls after seeding."""
    if variant == "quantizer":
        return lambda: model_zoo.build_net(NET)
    if variant == "float_input":
        return float_input_zoo_net
    d, q = embedding_shape(variant)
    return lambda: embedded_zoo_net(d, q, clip_table=variant.endswith("_clipped"))


def train_command(variant, epochs, seed=0):
    return (f"python -m bench.zoo_first_layer train --variant {variant} --epochs {epochs}"
            + (f" --seed {seed}" if seed else ""))


def train(variant, *, epochs=DEFAULT_EPOCHS, seed=0, out_dir=model_zoo.DEFAULT_OUT, resume=False,
          threads=1, train_limit=None, data_dir=None, log=print):
    """Train one variant with ``bench.model_zoo.train``'s schedule; its metrics dict."""
    return model_zoo.train(net_name(variant, seed), epochs=epochs, out_dir=out_dir, data_dir=data_dir,
                           seed=seed, resume=resume, threads=threads, log=log, build=builder(variant),
                           export_onnx=variant == "quantizer", train_limit=train_limit,
                           command=train_command(variant, epochs, seed))


def load_trained(variant, out_dir=model_zoo.DEFAULT_OUT, seed=0):
    """The trained network of a variant from its checkpoint, in eval mode."""
    import torch
    path = Path(out_dir) / net_name(variant, seed) / "checkpoint.pt"
    if not path.exists():
        raise model_zoo.ZooError(f"{path}: not trained; run '{train_command(variant, DEFAULT_EPOCHS, seed)}'")
    net = builder(variant)()
    state = torch.load(path, weights_only=False)
    net.load_state_dict(state["model"])
    net.eval()
    return net, state


# --------------------------------------------------------------------------------------------------
# The embedding variant as a deploy file

def _threshold_layer(linear, norm, quantizer, a_min, a_max):
    """Integer thresholds of ``quantizer(norm(linear(a)))`` as codes ``signed + 1`` (0..2), found
    by running the network's own batch norm and quantizer on every reachable accumulator value."""
    import torch
    from model.streamline import accumulator_range, thresholds_from_codes
    bits = (linear.quant_weight().value.detach() >= 0).to(torch.uint8).numpy()
    lo, hi = accumulator_range(bits[:, :, None, None], a_min, a_max, padded=False)
    v = torch.arange(int(lo.min()), int(hi.max()) + 1, dtype=torch.float32)
    with torch.no_grad():
        signed = quantizer(norm(v[:, None].repeat(1, bits.shape[0])))
    signed = getattr(signed, "value", signed)
    codes = torch.round(signed).to(torch.int64).numpy() + 1
    if codes.min() < 0 or codes.max() > 2:
        raise model_zoo.ZooError("the activation quantizer is not the zoo's signed narrow 2-bit one")
    thresholds = np.empty((bits.shape[0], 3), np.int32)
    direction = np.empty(bits.shape[0], np.int8)
    for o in range(bits.shape[0]):
        t, direction[o] = thresholds_from_codes(codes[:, o], int(lo.min()), 2)
        thresholds[o] = t
    return bits, thresholds, direction


def export_embedded(net, variant):
    """The deploy model of a trained embedding variant, straight from the PyTorch network.

    Layers: ``embed`` (the merged table, ``d`` codes of ``q`` bits), three fully connected
    ``conv`` layers (the first a 28x28 kernel over the ``d`` embedding channels, the others 1x1 on
    the 256 codes; each reads codes ``c`` as ``c - 1`` for the zoo's {-1, 0, +1} activations
    after the first), and the ``head`` with ``TensorNorm``'s per-tensor affine as every class's
    scale and bias (weights negated when that scale is negative).
    """
    import torch
    from brevitas.nn import QuantIdentity, QuantLinear
    from model.deploy import FORMAT, VERSION, pack_bits, validate
    d, q = embedding_shape(variant)
    modules = [m for m in net.features if not isinstance(m, torch.nn.Dropout)]
    linears = [i for i, m in enumerate(modules) if isinstance(m, QuantLinear)]
    if len(linears) != 4 or not all(isinstance(modules[i + 2], QuantIdentity) for i in linears[:3]):
        raise model_zoo.ZooError("not the SFC layout: linear, batch norm, quantizer three times, a head")
    layers = [{"name": "embed", "kind": "embed", "input": "image", "d": d, "q": q,
               "outputs": {"codes": "embed_codes"}}]
    arrays = {"embed.table": net.embedding.merge()}
    source, a_min, a_max, in_bits = "embed_codes", 0, (1 << q) - 1, q
    for n, i in enumerate(linears[:3], start=1):
        bits, thresholds, direction = _threshold_layer(modules[i], modules[i + 1], modules[i + 2],
                                                       a_min, a_max)
        k = 28 if n == 1 else 1
        cin = bits.shape[1] // (k * k)
        layer = {"name": f"fc{n}", "kind": "conv", "input": source, "cin": cin, "cout": bits.shape[0],
                 "k": k, "stride": 1, "pad": 0, "in_bits": in_bits, "residual": None, "q": 2,
                 "pool": None, "outputs": {"acc": None, "codes": f"fc{n}_codes"}}
        if n > 1:
            layer["in_offset"] = 1
        layers.append(layer)
        arrays[f"fc{n}.weight"] = pack_bits(bits.reshape(bits.shape[0], cin, k, k))
        arrays[f"fc{n}.thresholds"], arrays[f"fc{n}.direction"] = thresholds, direction
        source, a_min, a_max, in_bits = f"fc{n}_codes", -1, 1, 2
    head, norm = modules[linears[3]], modules[linears[3] + 1]
    bits = (head.quant_weight().value.detach() >= 0).to(torch.uint8).numpy()
    scale = norm.weight.item() / torch.sqrt(norm.running_var + norm.eps).item()
    bias = norm.bias.item() - norm.running_mean.item() * scale
    if scale < 0:
        bits, scale = 1 - bits, -scale
    classes = bits.shape[0]
    layers.append({"name": "head", "kind": "head", "input": source, "cin": bits.shape[1],
                   "classes": classes, "in_bits": 2, "in_offset": 1, "outputs": {"logits": "logits"}})
    arrays["head.weight"] = pack_bits(bits[:, :, None, None])
    arrays["head.scale"] = np.full(classes, scale, np.float32)
    arrays["head.bias"] = np.full(classes, bias, np.float32)
    header = {"format": FORMAT, "version": VERSION, "input": {"channels": 1, "height": 28, "width": 28},
              "num_classes": classes, "variant": f"{NET}_{variant}", "layers": layers,
              "training": {"source": "bench.zoo_first_layer", "net": NET, "variant": variant}}
    return validate(header, arrays)


def torch_integer_logits(net, images, batch=500):
    """The head's integer sums of the PyTorch network (its last binary layer's output), signed as
    the deploy head's (negated when ``TensorNorm``'s scale is negative)."""
    import torch
    from brevitas.nn import QuantLinear
    head = [m for m in net.features if isinstance(m, QuantLinear)][-1]
    norm = net.features[-1]
    sign = 1 if norm.weight.item() >= 0 else -1
    captured = []
    hook = head.register_forward_hook(lambda module, args, out: captured.append(
        getattr(out, "value", out).detach()))
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch):
                net(torch.from_numpy(model_zoo.as_float_images(images[i:i + batch], NET)))
    finally:
        hook.remove()
    return sign * torch.round(torch.cat(captured)).to(torch.int64).numpy()


# --------------------------------------------------------------------------------------------------
# Evaluation

def table_runs(table):
    """The learned table ``(256, d)`` as runs of equal codes: ``[[first pixel, [codes]], ...]``."""
    starts = [0] + [p for p in range(1, len(table)) if not np.array_equal(table[p], table[p - 1])]
    return [[p, table[p].tolist()] for p in starts]


def compile_fit(deploy, images, logits_int):
    """Whether the compiler fits a deploy model into the default board's configuration
    (``default85``): its MACs and ideal cycles per image and on how many ``images`` the compiled
    program on the reference simulator (``firmware.refsim``) gives golden's ``logits_int``, or
    the compiler's one-line refusal."""
    from contract.config import DEFAULT85
    from firmware.compiler import CompileError, compile_model
    from firmware.refsim import run_compiled
    try:
        compiled = compile_model(deploy, DEFAULT85)
    except CompileError as exc:
        return {"fits": False, "refusal": str(exc)}
    simulated, _, _ = run_compiled(compiled, images)
    return {"fits": True, "macs": compiled.total_macs, "ideal_cycles": compiled.ideal_cycles,
            "input": compiled.input_kind, "images": len(images),
            "refsim_equals_golden": int((simulated == logits_int).all(axis=1).sum())}


def evaluate(variant, *, seed=0, out_dir=model_zoo.DEFAULT_OUT, test_limit=None, data_dir=None,
             threads=1, log=print):
    """Accuracy of a trained variant on the test images; the dict written to ``first_layer.json``."""
    import torch
    from model import golden
    from model.data import load_fashion_mnist
    torch.set_num_threads(threads)
    name = net_name(variant, seed)
    out = Path(out_dir) / name
    metrics_path = out / "metrics.json"
    if not metrics_path.exists():
        raise model_zoo.ZooError(f"{metrics_path}: not trained; "
                                 f"run '{train_command(variant, DEFAULT_EPOCHS, seed)}'")
    metrics = json.loads(metrics_path.read_text())
    images, labels = load_fashion_mnist("test", data_dir)
    if test_limit is not None:
        images, labels = images[:test_limit], labels[:test_limit]
    result = {"variant": variant, "net": name, "epochs": metrics["epochs"], "seed": metrics["seed"],
              "train_seconds": metrics["train_seconds"], "train_command": metrics["command"],
              "float_graph_accuracy": metrics["float_graph_accuracy"], "images": len(images),
              "evaluate_command": f"python -m bench.zoo_first_layer evaluate --variant {variant}"
                                  + (f" --seed {seed}" if seed else "")}
    t0 = time.time()
    net, _ = load_trained(variant, out_dir, seed)
    if variant == "quantizer":
        from model.import_qonnx import import_qonnx
        deploy = import_qonnx(out / f"{name}.onnx", input_scale=1 / 255)
        result["accuracy_by"] = "golden model (deploy file imported from the QONNX export)"
    elif variant.startswith("embed"):
        deploy = export_embedded(net, variant)
        result["accuracy_by"] = "golden model (deploy file exported from PyTorch)"
    else:
        deploy = None
        result["accuracy_by"] = "Brevitas float graph (no deploy file: float input)"
        result["accuracy"] = model_zoo.accuracy(net, images, labels, NET)
    if deploy is not None:
        deploy.save(out / f"{name}.npz")
        result["deploy"] = model_zoo._rel(out / f"{name}.npz")
        reference = golden.run(deploy, images, keep_tensors=False)
        result["accuracy"] = float((reference.predictions == labels).mean())
        result["layers"] = [model_zoo._layer_text(L) for L in deploy.header["layers"]]
        result["default85"] = compile_fit(deploy, images, reference.logits_int)
        first = deploy.header["layers"][0]
        if first["kind"] == "embed":
            result["table_runs"] = table_runs(deploy.arrays[f"{first['name']}.table"][0])
            result["table_q"] = first["q"]
        if variant.startswith("embed"):
            logits = torch_integer_logits(net, images)
            result["golden_equals_torch_integer_logits"] = int((logits == reference.logits_int).all(axis=1).sum())
            result["torch_accuracy"] = model_zoo.accuracy(net, images, labels, NET)
    result["first_layer_macs"] = 784 * (embedding_shape(variant)[0] if variant.startswith("embed") else 1) * 256
    result["seconds"] = round(time.time() - t0, 1)
    log(f"{name}: accuracy {100 * result['accuracy']:.2f} % on {len(images)} images by {result['accuracy_by']}"
        + (f"; golden == PyTorch integer logits on {result['golden_equals_torch_integer_logits']}"
           f"/{len(images)}" if "golden_equals_torch_integer_logits" in result else ""))
    model_zoo._write_json(out / "first_layer.json", result)
    fit = result.get("default85") or {}
    if fit.get("fits") and fit["refsim_equals_golden"] != fit["images"]:
        raise model_zoo.ZooError(f"{name}: the compiled program's logits differ from golden's on "
                                 f"{fit['images'] - fit['refsim_equals_golden']} images")
    if result.get("golden_equals_torch_integer_logits", len(images)) != len(images):
        raise model_zoo.ZooError(f"{name}: golden's integer logits differ from PyTorch's on "
                                 f"{len(images) - result['golden_equals_torch_integer_logits']} images")
    return result


# --------------------------------------------------------------------------------------------------
# Report

ROW_LABELS = {"quantizer": "(a) the zoo's 2-bit input quantizer on pixel/255",
              "embed_d1q2": "(b) pixel embedding, d = 1, Q = 2",
              "embed_d2q2": "(b') pixel embedding, d = 2, Q = 2 (first layer doubles)",
              "embed_d1q2_clipped": "(b'') pixel embedding, d = 1, Q = 2, table clipped to the quantizer's "
                                    "range after each step",
              "float_input": "(c) float input (pixel/255, no quantizer)"}


NOISE_POINTS = 0.5
SEEDS = (0, 1)


def _fit_text(fit):
    if fit is None:
        return "n/a (no deploy file)"
    if fit["fits"]:
        return (f"yes: {fit['macs']:,} MACs, {fit['ideal_cycles']:,} ideal cycles/image; the compiled "
                f"program on the reference simulator == golden on {fit['refsim_equals_golden']:,}"
                f"/{fit['images']:,}")
    return f"no: `{fit['refusal']}`"


def _table_text(runs, q):
    """One line on a table of ``q``-bit codes given as runs ``[[first pixel, codes], ...]``: per
    dimension the codes it uses, whether it never decreases with the pixel, and where it changes."""
    parts = []
    for j in range(len(runs[0][1])):
        column = [(pixel, codes[j]) for pixel, codes in runs]
        column = [c for i, c in enumerate(column) if i == 0 or c[1] != column[i - 1][1]]
        values = [code for _, code in column]
        shape = ("monotone" if values == sorted(values) else "not monotone")
        where = (", ".join(f"{code} from {pixel}" for pixel, code in column) if len(column) <= 6 else
                 f"{len(column) - 1} changes, the last at pixel {column[-1][0]} (to {column[-1][1]})")
        extremes = (" (only the two extreme codes: one bit per pixel)"
                    if q > 1 and set(values) <= {0, (1 << q) - 1} else "")
        parts.append(f"{'dimension ' + str(j) + ': ' if len(runs[0][1]) > 1 else ''}codes "
                     f"{', '.join(map(str, sorted(set(values))))}{extremes}, {shape}: {where}")
    return "; ".join(parts)


def _monotone(runs):
    """Whether every dimension of a table given as runs never decreases with the pixel value."""
    return all([codes[j] for _, codes in runs] == sorted(codes[j] for _, codes in runs)
               for j in range(len(runs[0][1])))


def _mean_accuracy(runs):
    return 100 * float(np.mean([r["accuracy"] for r in runs.values()]))


def _reading(results):
    """Sentences comparing each row with the zoo's own input quantizer, in points (the mean over
    the seeds both rows ran)."""
    if "quantizer" not in results:
        return []
    out = []
    for variant, runs in results.items():
        if variant == "quantizer":
            continue
        seeds = sorted(set(runs) & set(results["quantizer"]))
        diff = (_mean_accuracy({s: runs[s] for s in seeds})
                - _mean_accuracy({s: results["quantizer"][s] for s in seeds}))
        verdict = ("no difference this schedule can resolve" if abs(diff) < NOISE_POINTS
                   else ("better" if diff > 0 else "worse") + " by more than the noise")
        out.append(f"- {ROW_LABELS[variant]}: {diff:+.2f} points against (a) (mean over seed"
                   f"{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}): {verdict}.")
    tables = [runs[s]["table_runs"] for v, runs in results.items() if v.startswith("embed")
              for s in runs]
    if tables and not any(_monotone(t) for t in tables):
        out.append("- No learned table is monotone in the pixel value (the list above): at this "
                   "schedule the tables train noisy.")
    spreads = [abs(runs[0]["accuracy"] - runs[1]["accuracy"]) * 100
               for runs in results.values() if 0 in runs and 1 in runs]
    if spreads:
        out.append(f"- Seed 0 against seed 1 of the same row: {min(spreads):.2f} to {max(spreads):.2f} "
                   f"points apart, the scale of the noise.")
    return out


def report(out_dir=model_zoo.DEFAULT_OUT, doc=RESULTS_DOC, seeds=SEEDS):
    """The ``docs/RESULTS.md`` section from the variants' ``first_layer.json`` files."""
    from bench.report import git_revision, machine, table, write_section
    rows, missing, results = [], [], {}
    for variant in VARIANTS:
        runs = {}
        for seed in seeds:
            path = Path(out_dir) / net_name(variant, seed) / "first_layer.json"
            if path.exists():
                runs[seed] = json.loads(path.read_text())
            else:
                missing.append((variant, seed))
        if 0 not in runs:
            continue
        results[variant] = runs
        r = runs[0]
        per_seed = [f"{100 * runs[s]['accuracy']:.2f} %" if s in runs else "not run" for s in seeds]
        check = ", ".join(f"{runs[s]['golden_equals_torch_integer_logits']:,}/{runs[s]['images']:,}"
                          for s in runs if "golden_equals_torch_integer_logits" in runs[s]) or "n/a"
        rows.append([ROW_LABELS[variant], *per_seed, f"{_mean_accuracy(runs):.2f} %", r["accuracy_by"],
                     ", ".join(f"{100 * runs[s]['float_graph_accuracy']:.2f} %" for s in runs), check,
                     f"{r['first_layer_macs']:,}", _fit_text(r.get("default85")),
                     ", ".join(f"{runs[s]['train_seconds'] / 60:.1f} min" for s in runs),
                     f"`{r['train_command']}`"])
    lines = [f"SFC-W1A2 from the Brevitas model zoo (`brevitas_examples.bnn_pynq`: 784 -> 256 -> 256 -> "
             f"256 -> 10, binary weights, signed 2-bit narrow activations {{-1, 0, +1}}), trained on "
             f"Fashion-MNIST with `bench.model_zoo`'s schedule for every row (10 epochs, Adam, learning "
             f"rate 0.02 with a cosine decay to 0, batch 100, weights clipped to [-1, 1], one thread; "
             f"seed 0 as the zoo's runs, seed 1 with `--seed 1`), changing only what its first binary "
             f"layer sees. Accuracy on all 10,000 test images; then `python -m bench.zoo_first_layer "
             f"evaluate --variant V [--seed 1]` for each run and `report` (revision {git_revision()}, "
             f"{machine()}; training times measured at nice 15 on a machine shared with FPGA builds). "
             f"The pixel embedding's deploy file is written straight from PyTorch (`embed` table, then "
             f"the fully connected layers with thresholds read off the network's own batch norms and "
             f"quantizers), and golden's integer logits are compared with the PyTorch network's on "
             f"every test image; the zoo's own network goes through its QONNX export and "
             f"`model.import_qonnx` ((a)'s seed-0 command is the zoo's own: `train --variant quantizer` "
             f"makes the same call and gives the same network). (a)'s signed narrow 2-bit quantizer "
             f"has three levels; the embedding's Q = 2 codes have four. The embedding table trains "
             f"with the rest of the network at the schedule's learning rate, 0.02 (`model.train` "
             f"gives its own tables 2e-3 x 10, the same). \"Last-epoch float graph / PyTorch\" is "
             f"each training run's own accuracy after its last epoch.", ""]
    lines += table(["first layer input", *[f"seed {s}" for s in seeds], "mean", "measured by",
                    "last-epoch float graph / PyTorch", "golden == PyTorch integer logits",
                    "first-layer MACs/image", "fits the default board (`default85`)", "training time",
                    "command (seed 0)"], rows)
    tables = [f"- {ROW_LABELS[v]}, seed {s}: {_table_text(runs[s]['table_runs'], runs[s]['table_q'])}"
              for v, runs in results.items() for s in runs if "table_runs" in runs[s]]
    if tables:
        lines += ["", "The first layer's input codes as a function of the pixel value (the deploy "
                      "files' `embed` tables; (a)'s is its imported quantizer, codes 0, 1, 2 standing "
                      "for -1, 0, +1; the runs in `first_layer.json`):", ""] + tables
    reading = _reading(results)
    if reading:
        lines += ["", f"Reading (at this 10-epoch schedule differences under ~{NOISE_POINTS} points "
                      f"are noise):", ""] + reading
    if missing:
        lines += ["", "Not finished: " + ", ".join(
            f"`{train_command(v, DEFAULT_EPOCHS, s)}` then `evaluate --variant {v}"
            f"{f' --seed {s}' if s else ''}`" for v, s in missing) + "."]
    write_section(RESULTS_TITLE, lines, doc=doc)
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.zoo_first_layer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train one variant with bench.model_zoo's schedule")
    p_train.add_argument("--variant", required=True, choices=VARIANTS)
    p_train.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    p_train.add_argument("--seed", type=int, default=0)
    p_train.add_argument("--threads", type=int, default=1)
    p_train.add_argument("--resume", action="store_true")
    p_train.add_argument("--train-limit", type=int, default=None, help="train on the first N images only")
    p_train.add_argument("--data-dir", default=None)
    p_train.add_argument("--out", default=str(model_zoo.DEFAULT_OUT))
    p_eval = sub.add_parser("evaluate", help="accuracy of a trained variant on the test images")
    p_eval.add_argument("--variant", required=True, choices=VARIANTS)
    p_eval.add_argument("--seed", type=int, default=0)
    p_eval.add_argument("--test-limit", type=int, default=None)
    p_eval.add_argument("--threads", type=int, default=1)
    p_eval.add_argument("--data-dir", default=None)
    p_eval.add_argument("--out", default=str(model_zoo.DEFAULT_OUT))
    p_report = sub.add_parser("report", help="write the docs/RESULTS.md section")
    p_report.add_argument("--out", default=str(model_zoo.DEFAULT_OUT))
    args = parser.parse_args(argv)
    from model.data import DataError
    from model.deploy import DeployError
    from model.import_qonnx import QonnxImportError
    try:
        if args.command == "train":
            metrics = train(args.variant, epochs=args.epochs, seed=args.seed, out_dir=args.out,
                            resume=args.resume, threads=args.threads, train_limit=args.train_limit,
                            data_dir=args.data_dir)
            print(json.dumps({k: v for k, v in metrics.items() if k != "history"}))
        elif args.command == "evaluate":
            if args.test_limit is not None and args.test_limit < 1:
                raise model_zoo.ZooError(f"--test-limit must be positive, not {args.test_limit}")
            print(json.dumps(evaluate(args.variant, seed=args.seed, out_dir=args.out,
                                      test_limit=args.test_limit, data_dir=args.data_dir,
                                      threads=args.threads)))
        else:
            print("\n".join(report(args.out)))
    except (model_zoo.ZooError, DataError, DeployError, QonnxImportError, OSError) as exc:
        print(f"bench.zoo_first_layer: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
