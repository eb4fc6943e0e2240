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
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np


NETS = ("tfc_1w2a", "sfc_1w2a", "cnv_1w2a")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "model_zoo"
BATCH = 100
LEARNING_RATE = 0.02


class ZooError(RuntimeError):
    """A one-line failure of a model-zoo step."""


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


def train(name, *, epochs, out_dir, data_dir=None, seed=0, resume=False, threads=1, log=print):
    """Train ``name`` on Fashion-MNIST; returns the metrics dict (also written to metrics.json)."""
    import torch
    from tqdm import tqdm
    from model.data import load_fashion_mnist
    if epochs <= 0:
        raise ZooError(f"--epochs must be positive, not {epochs}")
    torch.set_num_threads(threads)
    xtr, ytr = load_fashion_mnist("train", data_dir)
    xte, yte = load_fashion_mnist("test", data_dir)
    out = Path(out_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    net = build_net(name)
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
    onnx_path = export(name, net, out)
    metrics = {"net": name, "epochs": epochs, "seed": seed, "batch": BATCH,
               "learning_rate": LEARNING_RATE, "schedule": "Adam, cosine to 0, weights clipped to [-1, 1]",
               "float_graph_accuracy": history[-1]["test_accuracy"], "train_seconds": round(seconds, 1),
               "history": history, "onnx": str(onnx_path.relative_to(ROOT)) if onnx_path.is_relative_to(ROOT)
               else str(onnx_path),
               "command": f"python -m bench.model_zoo train --net {name} --epochs {epochs}"}
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
    args = parser.parse_args(argv)
    from model.data import DataError
    try:
        if args.command == "train":
            metrics = train(args.net, epochs=args.epochs, out_dir=args.out, data_dir=args.data_dir,
                            seed=args.seed, resume=args.resume, threads=args.threads)
            print(json.dumps({k: v for k, v in metrics.items() if k != "history"}))
    except (ZooError, DataError, OSError) as exc:
        print(f"bench.model_zoo: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
