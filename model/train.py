"""Train an ERN-style W1A2 network on Fashion-MNIST and write its deploy file.

Usage::

    python -m model.train --variant pixel_embedding --epochs 15 --out runs/default

Writes ``OUT/checkpoint.pt`` after every epoch (``--resume`` continues from it), and at the end
``OUT/deploy.npz`` (docs/ARCHITECTURE.md section 2) and ``OUT/metrics.json``. The final test
accuracy is that of the integer path; the golden executor is run on the whole test set and must
give the same predictions and logits (reported in metrics.json).

``--variant float_teacher`` trains :class:`model.float_teacher.FloatERNet` (the same topology in
float, a teacher for ``--teacher``) with the same loop; it has no integer form, so it writes no
deploy file and its metrics.json records the float test accuracy only.

CPU only, plain PyTorch. Under ``torchrun`` (``WORLD_SIZE`` set) a gloo process group is created,
the model is wrapped in DistributedDataParallel and each rank trains on its shard; rank 0 evaluates
and writes the files.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import deploy as dp
from . import golden
from .data import DataError, load_fashion_mnist
from .distill import distillation_loss, load_teacher
from .float_teacher import KIND as FLOAT_TEACHER, FloatERNet
from .nets import VARIANTS, ERNet


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n")[0])
    p.add_argument("--variant", default="pixel_embedding", choices=VARIANTS + (FLOAT_TEACHER,),
                   help="first layer of the W1A2 network, or float_teacher: the same topology in "
                        "float (no deploy file; a teacher for --teacher)")
    p.add_argument("--d", type=int, default=8, help="embedding dimension (pixel_embedding)")
    p.add_argument("--q-bits", type=int, default=2,
                   help="embedding code bits (pixel_embedding) / input bits (naive)")
    p.add_argument("--init", default="thermometer", choices=("thermometer", "linear", "random"))
    p.add_argument("--width", type=int, default=32, help="stem channels")
    p.add_argument("--stem-width", type=int, default=None,
                   help="channels of the first layer's output (stem1; default --width)")
    p.add_argument("--blocks", default="32:1,32:1,64:2,64:1",
                   help="ERN blocks as cout:stride,... (default 32:1,32:1,64:2,64:1)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--embed-lr-mult", type=float, default=10.0,
                   help="learning-rate multiplier of the embedding table (its entries must move "
                        "by ~0.5 step to change a code)")
    p.add_argument("--augment", default="flip", choices=("flip-crop", "flip", "none"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--data-dir", default=None,
                   help="directory with the Fashion-MNIST IDX .gz files "
                        "(default /usr/share/datasets/fashion-mnist)")
    p.add_argument("--train-limit", type=int, default=0,
                   help="use only the first N training images (quick runs)")
    p.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test images")
    p.add_argument("--out", default="runs/default", help="output directory")
    p.add_argument("--deploy", default=None, help="deploy file path (default OUT/deploy.npz)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--no-golden", action="store_true",
                   help="skip the golden-executor check on the test set")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile (about 1.4x faster per step on one CPU "
                        "thread after a minute of compiling; float rounding may differ from eager, "
                        "the exported integer network is checked against golden as always)")
    p.add_argument("--teacher", default=None,
                   help="distil from this run's checkpoint.pt (e.g. a float_first run)")
    p.add_argument("--distill-alpha", type=float, default=0.5,
                   help="weight of the teacher's soft targets, 0..1 (with --teacher)")
    p.add_argument("--distill-temperature", type=float, default=4.0,
                   help="softening temperature T > 0 (with --teacher)")
    args = p.parse_args(argv)
    if not 0.0 <= args.distill_alpha <= 1.0:
        p.error("--distill-alpha must be in 0..1")
    if args.distill_temperature <= 0:
        p.error("--distill-temperature must be > 0")
    if args.variant == FLOAT_TEACHER and args.deploy is not None:
        p.error("--deploy: a float_teacher run has no integer form and writes no deploy file")
    if args.stem_width is not None and args.stem_width < 1:
        p.error("--stem-width must be >= 1")
    if args.stem_width is not None and args.variant == FLOAT_TEACHER:
        p.error("--stem-width: the float teacher keeps the stem at --width")
    for name in ("d", "width", "epochs", "batch_size", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if not 1 <= args.q_bits <= 8:
        p.error("--q-bits must be 1..8")
    try:
        args.block_list = [tuple(int(v) for v in b.split(":")) for b in args.blocks.split(",")]
        assert all(len(b) == 2 and b[0] >= 1 and b[1] in (1, 2) for b in args.block_list)
    except (ValueError, AssertionError):
        p.error(f"--blocks must look like 32:1,64:2,64:1, not {args.blocks!r}")
    return args


def augment(x, mode, gen):
    """Random horizontal flip and +-2 pixel translation (zero fill) of a uint8 batch."""
    if mode == "none":
        return x
    n, c, h, w = x.shape
    if mode in ("flip", "flip-crop"):
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if mode == "flip-crop":
        pad = 2
        xp = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        rows = (torch.arange(h)[None, :] + dy[:, None])  # (n, h)
        cols = (torch.arange(w)[None, :] + dx[:, None])  # (n, w)
        ni = torch.arange(n)[:, None, None, None]
        ci = torch.arange(c)[None, :, None, None]
        x = xp[ni, ci, rows[:, None, :, None], cols[:, None, None, :]]
    return x


@torch.no_grad()
def evaluate(net, images, labels, batch=1000):
    """(accuracy of the integer path, accuracy of the float-simulation path, int predictions)."""
    net.eval()
    preds_i, preds_f = [], []
    for i in range(0, len(images), batch):
        xb = images[i:i + batch]
        preds_i.append(net.int_forward(xb)["logits"].argmax(1))
        preds_f.append(net.forward_float(xb).argmax(1))
    pi, pf = torch.cat(preds_i), torch.cat(preds_f)
    return (pi == labels).float().mean().item(), (pf == labels).float().mean().item(), pi


@torch.no_grad()
def evaluate_float(net, images, labels, batch=1000):
    """Accuracy of a network that has only a float path (:class:`FloatERNet`), in eval mode."""
    net.eval()
    preds = torch.cat([net.forward_float(images[i:i + batch]).argmax(1)
                       for i in range(0, len(images), batch)])
    return (preds == labels).float().mean().item()


def _atomic_save(obj, path):
    tmp = Path(str(path) + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = 0
    if "WORLD_SIZE" in os.environ:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        rank = dist.get_rank()
    # The data first: a missing data set must not leave an empty output directory behind.
    xtr, ytr = load_fashion_mnist("train", args.data_dir)
    xte, yte = load_fashion_mnist("test", args.data_dir)
    teacher = load_teacher(args.teacher) if args.teacher else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    deploy_path = Path(args.deploy) if args.deploy else out / "deploy.npz"
    if args.train_limit:
        xtr, ytr = xtr[:args.train_limit], ytr[:args.train_limit]
    if args.test_limit:
        xte, yte = xte[:args.test_limit], yte[:args.test_limit]
    xtr, ytr = torch.from_numpy(xtr), torch.from_numpy(ytr)
    xte_t, yte_t = torch.from_numpy(xte), torch.from_numpy(yte)

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    float_only = args.variant == FLOAT_TEACHER
    if float_only:
        net = FloatERNet(in_channels=1, image_size=28, num_classes=10, width=args.width,
                         blocks=args.block_list)
    else:
        net = ERNet(args.variant, in_channels=1, image_size=28, num_classes=10, width=args.width,
                    d=args.d, q_embed=args.q_bits, init=args.init, blocks=args.block_list,
                    stem_width=args.stem_width)
    model = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net)
    teacher_forward = teacher.forward_float if teacher is not None else None
    if args.compile:
        # Only the training forwards are compiled: evaluation and export use the eager integer path.
        model = torch.compile(model)
        if teacher_forward is not None:
            teacher_forward = torch.compile(teacher_forward)
    table = [p for n, p in net.named_parameters() if n == "embed.table"]
    rest = [p for n, p in net.named_parameters() if n != "embed.table"]
    groups = [{"params": rest}]
    if table:
        groups.append({"params": table, "lr": args.lr * args.embed_lr_mult})
    opt = torch.optim.Adam(groups, lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(xtr) / world / args.batch_size)
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    gen = torch.Generator().manual_seed(args.seed + 1000 * rank)
    start_epoch, history, train_time = 0, [], 0.0
    ckpt_path = out / "checkpoint.pt"
    if args.resume:
        if not ckpt_path.exists():
            raise DataError(f"--resume: no checkpoint at {ckpt_path}")
        ck = torch.load(ckpt_path, weights_only=False)
        if ck["config"] != net.config:
            raise DataError(f"--resume: {ckpt_path} was trained with a different --variant/--width")
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        gen.set_state(ck["gen"])
        torch.set_rng_state(ck["torch_rng"])
        start_epoch, history, train_time = ck["epoch"], ck["history"], ck["train_time"]
        print(f"resumed from {ckpt_path} after epoch {start_epoch}", file=sys.stderr)

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    for epoch in range(start_epoch, args.epochs):
        net.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=gen)[rank::world]
        it = range(steps_per_epoch)
        bar = None
        if tqdm is not None and not args.quiet and rank == 0:
            bar = tqdm(it, desc=f"epoch {epoch + 1}/{args.epochs}", mininterval=5, leave=False,
                       file=sys.stderr)
            it = bar
        tot_loss = tot_ok = tot_n = 0.0
        for s in it:
            idx = perm[s * args.batch_size:(s + 1) * args.batch_size]
            if len(idx) == 0:
                continue
            xb = augment(xtr[idx], args.augment, gen)
            yb = ytr[idx]
            logits = model(xb)
            if teacher is None:
                loss = F.cross_entropy(logits, yb)
            else:
                with torch.no_grad():
                    teacher_logits = teacher_forward(xb)
                loss = distillation_loss(logits, teacher_logits, yb, args.distill_alpha,
                                         args.distill_temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += loss.item() * len(idx)
            tot_ok += (logits.argmax(1) == yb).sum().item()
            tot_n += len(idx)
            if bar is not None and s % 50 == 0:
                bar.set_postfix(loss=f"{tot_loss / tot_n:.3f}", acc=f"{tot_ok / tot_n:.3f}")
        train_time += time.time() - t0
        rec = {"epoch": epoch + 1, "train_loss": tot_loss / max(tot_n, 1),
               "train_acc": tot_ok / max(tot_n, 1), "epoch_time_s": time.time() - t0}
        if rank == 0:
            # After each epoch only the float path (for a quantized net, the float simulation of
            # its integer arithmetic): the integer path costs 2.6x as much per image. Both paths
            # and golden are evaluated, and compared, on the final net below.
            rec.update(test_acc_float=evaluate_float(net, xte_t, yte_t))
            history.append(rec)
            print(json.dumps(rec), flush=True)
            _atomic_save({"model": net.state_dict(), "opt": opt.state_dict(),
                          "sched": sched.state_dict(), "gen": gen.get_state(),
                          "torch_rng": torch.get_rng_state(), "epoch": epoch + 1,
                          "history": history, "train_time": train_time, "args": vars(args),
                          "config": net.config}, ckpt_path)
    if rank != 0:
        return 0

    training = {"dataset": "fashion-mnist", "epochs": args.epochs, "batch_size": args.batch_size,
                "lr": args.lr, "embed_lr_mult": args.embed_lr_mult, "optimizer": "adam",
                "schedule": "cosine",
                "weight_decay": args.weight_decay, "augment": args.augment, "seed": args.seed,
                "init": args.init,
                "teacher": ({"checkpoint": str(args.teacher), "alpha": args.distill_alpha,
                             "temperature": args.distill_temperature} if teacher else None),
                "train_images": int(len(xtr)), "test_images": int(len(xte)),
                "train_time_s": round(train_time, 1), "threads": args.threads,
                "world_size": world, "torch": torch.__version__, "compiled": args.compile}
    if float_only:
        metrics = dict(training, init=None, test_acc_float=evaluate_float(net, xte_t, yte_t),
                       variant=args.variant, d=None, q_bits=None, width=args.width,
                       blocks=args.blocks, history=history, deploy=None, golden_acc=None)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
        print(f"{args.variant}: float network, no integer form: wrote no deploy file, only "
              f"{out / 'checkpoint.pt'} and {out / 'metrics.json'}", file=sys.stderr)
        print(json.dumps({k: v for k, v in metrics.items() if k != "history"}), flush=True)
        return 0
    acc_i, acc_f, preds = evaluate(net, xte_t, yte_t)
    net.eval()
    training.update(test_acc_int=acc_i, test_acc_float_sim=acc_f)
    header, arrays = net.export(training)
    dp.save(deploy_path, header, arrays)
    metrics = dict(training, variant=args.variant, d=args.d, q_bits=args.q_bits, width=args.width,
                   stem_width=args.stem_width, blocks=args.blocks,
                   history=history, deploy=str(deploy_path),
                   deploy_bytes=deploy_path.stat().st_size)
    if not args.no_golden:
        t0 = time.time()
        with torch.no_grad():
            ref_li, ref_lf = [], []
            for i in range(0, len(xte), 1000):
                t = net.int_forward(xte_t[i:i + 1000])
                ref_li.append(t["logits_int"].numpy())
                ref_lf.append(t["logits"].numpy())
        ref_li, ref_lf = np.concatenate(ref_li), np.concatenate(ref_lf)
        g = golden.run(dp.load(deploy_path), xte, keep_tensors=False)
        metrics.update(
            golden_acc=float((g.predictions == yte).mean()),
            golden_pred_equal=bool((g.predictions == preds.numpy()).all()),
            golden_logits_int_equal=bool((g.logits_int == ref_li).all()),
            golden_logits_max_abs_diff=float(np.abs(g.logits - ref_lf).max()),
            golden_time_s=round(time.time() - t0, 1))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}), flush=True)
    return 0


def cli(argv=None):
    try:
        return main(argv)
    except (DataError, dp.DeployError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli())
