"""Run a deploy model on the accelerator: compiled simulator, Amaranth's simulator or a board.

    python -m firmware.run                          # compiled simulator, default board and model
    python -m firmware.run --pysim --config tiny --model M.npz --images 4
    python -m firmware.run --port /dev/ttyUSB0 --board ulx3s --images 100 --check
    python -m firmware.run shirt.png boot.jpg       # image files (converted to the model's input)
    python -m firmware.run --images 64 --batch 1    # one start per image (no batch program)

Without ``--board`` the run is the default board's (``platforms.DEFAULT_BOARD``, the ULX3S-85F):
its configuration, clock and baud rate. Prints the predictions, the accuracy against the
Fashion-MNIST labels, cycles per image from the hardware counters (CYCLES, MAC_BUSY), and images/s
*modelled* as fmax / cycles (the board's clock, or ``--fmax``), beside the end-to-end images/s over
the board's serial link modelled from the bridge's frame format (``firmware.link_model``) for a
batch of 1 and the largest batch. Images run in batches of many per start
(``Accelerator.run_batch``): by default the largest batch that fits main memory, capped by the
number of images; ``--batch 1`` starts the accelerator once per image. ``--check`` compares every logit with the golden model (``model.golden``). Every
failure is one line on stderr and a nonzero exit.
"""

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np

from .session import (SessionError, DEFAULT_MODEL, DEFAULT_BOARD, board_settings, resolve_config,
                      load_images, load_image_file, open_transport, resolve_backend,
                      resolve_batch_size, run_batches, link_bauds, link_report, predictions)


def _parser():
    ap = argparse.ArgumentParser(prog="python -m firmware.run", description=__doc__.split("\n")[0])
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--sim", action="store_true",
                       help="compiled simulator of the SoC (the default; see --backend)")
    where.add_argument("--pysim", action="store_true",
                       help="Amaranth's Python simulator (slow: use --config tiny)")
    where.add_argument("--port", metavar="DEV", help="a board behind the UART bridge, e.g. /dev/ttyUSB0")
    ap.add_argument("--baud", type=int, default=None, help="UART baud rate (default: the board's)")
    ap.add_argument("--board", default=DEFAULT_BOARD,
                    help=f"board name in platforms/: its configuration, clock and baud rate "
                         f"(default {DEFAULT_BOARD})")
    ap.add_argument("--config", help="accelerator configuration: default, default85, small, tiny, ... "
                                     "(default: the board's)")
    ap.add_argument("--backend", choices=("auto", "cxxrtl", "verilator"), default="auto",
                    help="compiled simulator backend (default auto: Verilator when installed, "
                         "several times faster here, else CXXRTL)")
    ap.add_argument("--fmax", type=float, metavar="MHZ",
                    help="clock for the modelled images/s (default: the board's clock)")
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="deploy file (.npz)")
    ap.add_argument("--images", type=int, default=None, metavar="N",
                    help="first N Fashion-MNIST test images (default 16 when no files are given)")
    ap.add_argument("--data-dir", help="Fashion-MNIST directory (default: the Debian package's)")
    ap.add_argument("files", nargs="*", help="image files (PNG/JPEG) instead of Fashion-MNIST")
    ap.add_argument("--check", action="store_true", help="compare the logits with model.golden")
    ap.add_argument("--timeout-cycles", type=int, default=50_000_000,
                    help="cycle budget of one image before the run is reported as hung")
    ap.add_argument("--reload-params", action="store_true",
                    help="run the parameter-loading program for every image (every batch)")
    ap.add_argument("--batch", type=int, default=None, metavar="N",
                    help="images per start of the accelerator (default: the largest batch that "
                         "fits main memory, capped by the number of images; 1: one start each)")
    ap.add_argument("--quiet", action="store_true", help="no per-image lines")
    return ap


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SessionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # Known one-line errors of the stack below (compiler, deploy loader, driver, transports).
        names = {"CompileError", "DeployError", "DataError", "AcceleratorError", "BoardResetError",
                 "TransportError", "CxxrtlError", "SerialException", "OSError",
                 "FileNotFoundError", "ValueError", "TypeError"}
        if type(exc).__name__ in names or isinstance(exc, OSError):
            print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                  file=sys.stderr)
            return 1
        raise


def _main(args):
    from tqdm import tqdm
    from model import deploy as mdeploy, golden
    from firmware.compiler import compile_model
    from contract.config import config_name

    board = board_settings(args.board)
    config = resolve_config(args.config, args.board)
    # The board's clock models images/s only for the design the board builds.
    fmax_hz = args.fmax * 1e6 if args.fmax else (board.clock_hz if config == board.config else None)
    baud = args.baud or board.baud

    if not Path(args.model).is_file():
        raise SessionError(f"{args.model}: no such model file (train one, or pass --model)")
    deploy = mdeploy.load(args.model)
    compiled = compile_model(deploy, config)
    shape = tuple(compiled.input_shape)

    if args.files:
        if args.images is not None:
            raise SessionError("give either --images N or image files, not both")
        images = np.stack([load_image_file(f, shape) for f in args.files])
        labels = None
        from model.data import CLASSES
        names = list(CLASSES)
        tags = list(args.files)
    else:
        n = 16 if args.images is None else args.images
        if n <= 0:
            raise SessionError(f"--images must be positive, not {n}")
        images, labels, _ = load_images(n, data_dir=args.data_dir, shape=shape)
        from model.data import CLASSES
        names = list(CLASSES)
        tags = [f"test[{i}]" for i in range(len(images))]
    if len(names) != deploy.num_classes:
        names = None

    batch_size = resolve_batch_size(compiled, args.batch, len(images))
    backend = resolve_backend("pysim" if args.pysim else args.backend)
    transport = open_transport(config, backend, port=args.port, baud=baud, fmax_hz=fmax_hz,
                               quiet=False)
    if fmax_hz is None:
        fmax_hz = getattr(transport, "fmax_hz", None)
    where = ("board on " + args.port) if args.port else ("Amaranth pysim" if args.pysim else
                                                         f"compiled simulator ({backend})")
    start = time.monotonic()
    with tqdm(total=len(images), desc=f"{where}", unit="img", file=sys.stderr,
              disable=len(images) < 2) as progress:
        try:
            batches = run_batches(transport, compiled, images, batch_size,
                                  reload_params=args.reload_params,
                                  timeout_cycles=args.timeout_cycles,
                                  progress=lambda done, total: progress.update(done - progress.n))
            total_cycles = None if args.port else getattr(transport, "cycles", None)
        except BaseException:
            progress.leave = False        # erased, so that the error is the only line left
            raise
        finally:
            asyncio.run(transport.close())
    wall = time.monotonic() - start

    logits_int = np.array([row for b in batches for row in b.logits_int], dtype=np.int64)
    preds = predictions(deploy, logits_int)
    # Per start (image or batch): its images, CYCLES and MAC_BUSY.
    sizes = np.array([b.images for b in batches])
    cycles = np.array([b.cycles for b in batches])
    mac_busy = np.array([b.mac_busy for b in batches])
    image_cycles = np.repeat(cycles / sizes, sizes)

    if not args.quiet:
        for i, (tag, p) in enumerate(zip(tags, preds)):
            label = "" if labels is None else f"  label {_name(names, labels[i])}"
            mark = "" if labels is None else ("  ok" if p == labels[i] else "  WRONG")
            what = "cycles" if batch_size == 1 else "cycles, its batch's mean"
            print(f"{tag}: {_name(names, p)}{label}{mark}  ({image_cycles[i]:.0f} {what})")

    c = config
    print(f"model {args.model} on {where}, config {config_name(c)} p_o={c.p_o} p_i={c.p_i} "
          f"a_planes={c.a_planes}")
    if labels is not None:
        correct = int((preds == labels).sum())
        print(f"accuracy: {correct}/{len(labels)} = {100.0 * correct / len(labels):.2f}%")
    # Steady state. With --batch 1 the first image's CYCLES (every image's with --reload-params)
    # include the parameter load; a batch's never do (the load program is a start of its own).
    first = 1 if batch_size == 1 and len(cycles) > 1 and not args.reload_params else 0
    per_image = float(np.sum(cycles[first:]) / np.sum(sizes[first:]))
    util = float(np.sum(mac_busy[first:])) / max(1, int(np.sum(cycles[first:])))
    if batch_size == 1:
        load_note = f"first image, with the parameter load: {cycles[0]}"
    else:
        load_note = f"the parameter load before the first batch: {batches[0].load_cycles}"
    print(f"batch: {batch_size} image(s) per start, {len(batches)} batch(es)")
    resets = sum(b.board_resets for b in batches)
    if resets:
        print(f"board resets: {resets}, each recovered by loading the model again and rerunning")
    print(f"cycles/image: {per_image:.0f} ({load_note}); "
          f"MAC array busy {100 * util:.1f}% of cycles")
    if fmax_hz:
        print(f"images/s at {fmax_hz / 1e6:.1f} MHz: {fmax_hz / per_image:.1f} "
              f"(accelerator, modelled: fmax / cycles, host transfers excluded)")
        from .compiler.batch import max_batch_size
        cases = sorted({(1, per_image), (max(1, max_batch_size(compiled)), per_image)})
        bauds = [baud] + [b for b in link_bauds(args.board) if b != baud]
        for line in link_report(compiled, cases, fmax_hz, bauds):
            print(line)
    else:
        print("images/s: pass --fmax MHZ, or a --board that builds this configuration, to model it "
              "(fmax / cycles)")
    if total_cycles:
        print(f"simulated {total_cycles} cycles in {wall:.1f} s ({total_cycles / wall:,.0f} cycles/s "
              f"including host transfers)")

    if args.check:
        ref = golden.run(deploy, images, keep_tensors=False)
        bad = [i for i in range(len(images)) if not np.array_equal(ref.logits_int[i], logits_int[i])]
        if bad:
            i = bad[0]
            print(f"check: {len(bad)}/{len(images)} images differ from model.golden; first "
                  f"{tags[i]}: hardware {logits_int[i].tolist()} golden {ref.logits_int[i].tolist()}")
            return 2
        print(f"check: logits of all {len(images)} images equal model.golden's")
    return 0


def _name(names, k):
    k = int(k)
    return f"{k} {names[k]}" if names else str(k)


if __name__ == "__main__":
    sys.exit(main())
