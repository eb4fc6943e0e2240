"""Run a deploy model on the accelerator: compiled simulator, Amaranth's simulator or a board.

    python -m firmware.run                          # compiled simulator, default config and model
    python -m firmware.run --pysim --config tiny --model M.npz --images 4
    python -m firmware.run --port /dev/ttyUSB0 --board ulx3s --images 100 --check
    python -m firmware.run shirt.png boot.jpg       # image files (converted to the model's input)

Prints the predictions, the accuracy against the Fashion-MNIST labels, cycles per image from the
hardware counters (CYCLES, MAC_BUSY), and images/s *modelled* as fmax / cycles (the board's fmax,
or ``--fmax``). ``--check`` compares every logit with the golden model (``model.golden``). Every
failure is one line on stderr and a nonzero exit.
"""

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np


DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "model" / "shipped" / "default.npz"


class RunError(Exception):
    pass


def _parser():
    ap = argparse.ArgumentParser(prog="python -m firmware.run", description=__doc__.split("\n")[0])
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--sim", action="store_true",
                       help="compiled simulator of the SoC (the default; see --backend)")
    where.add_argument("--pysim", action="store_true",
                       help="Amaranth's Python simulator (slow: use --config tiny)")
    where.add_argument("--port", metavar="DEV", help="a board behind the UART bridge, e.g. /dev/ttyUSB0")
    ap.add_argument("--baud", type=int, default=None, help="UART baud rate (default: the board's)")
    ap.add_argument("--board", help="board name in platforms/ (its configuration and fmax)")
    ap.add_argument("--config", help="accelerator configuration: default, small, tiny, ... "
                                     "(default: the board's, else default)")
    ap.add_argument("--backend", choices=("auto", "cxxrtl", "verilator"), default="auto",
                    help="compiled simulator backend (default auto: Verilator when installed, "
                         "several times faster here, else CXXRTL)")
    ap.add_argument("--fmax", type=float, metavar="MHZ",
                    help="clock for the modelled images/s (default: the board's fmax)")
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="deploy file (.npz)")
    ap.add_argument("--images", type=int, default=None, metavar="N",
                    help="first N Fashion-MNIST test images (default 16 when no files are given)")
    ap.add_argument("--data-dir", help="Fashion-MNIST directory (default: the Debian package's)")
    ap.add_argument("files", nargs="*", help="image files (PNG/JPEG) instead of Fashion-MNIST")
    ap.add_argument("--check", action="store_true", help="compare the logits with model.golden")
    ap.add_argument("--timeout-cycles", type=int, default=50_000_000,
                    help="cycle budget of one image before the run is reported as hung")
    ap.add_argument("--reload-params", action="store_true",
                    help="run the parameter-loading program for every image")
    ap.add_argument("--quiet", action="store_true", help="no per-image lines")
    return ap


def _board(name):
    """``(config, clock_hz, baud)`` of a board in ``platforms/``."""
    try:
        import platforms
    except ImportError as exc:
        raise RunError(f"--board needs the platforms package ({exc})") from None
    try:
        board = platforms.get_board(name)
    except ValueError as exc:
        raise RunError(str(exc)) from None
    # The design clock the board runs at (the PLL's target); a measured fmax wins if recorded.
    clock = getattr(board, "fmax_hz", None) or getattr(board, "target_hz", None)
    return getattr(board, "config", None), clock, getattr(board, "baud", None)


def _configs():
    from contract.config import CONFIGS
    return CONFIGS


def _config(name, board_config):
    from contract.config import AccelConfig
    if name is None:
        if isinstance(board_config, AccelConfig):
            return board_config
        name = board_config or "default"
    configs = _configs()
    if name not in configs:
        raise RunError(f"unknown configuration {name!r} (one of {', '.join(configs)})")
    return configs[name]


def _load_image_file(path, shape):
    """An image file as uint8 ``(C, H, W)`` of the model's input shape (with a printed note when it
    had to be converted)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise RunError("reading image files needs Pillow (pip install Pillow)") from None
    c, h, w = shape
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise RunError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise RunError(f"{path}: not a readable image ({exc})") from None
    mode = {1: "L", 3: "RGB"}.get(c)
    if mode is None:
        raise RunError(f"{path}: the model takes {c}-channel images; only 1 or 3 can be read from files")
    notes = []
    if img.mode != mode:
        notes.append(f"{img.mode} -> {mode}")
    if img.size != (w, h):
        notes.append(f"{img.size[0]}x{img.size[1]} -> {w}x{h}")
    if notes:
        print(f"note: {path}: converted {', '.join(notes)} for the model's input", file=sys.stderr)
    img = img.convert(mode).resize((w, h), Image.BILINEAR)
    a = np.asarray(img, dtype=np.uint8)
    a = a[None] if c == 1 else a.transpose(2, 0, 1)
    return np.ascontiguousarray(a)


def _dataset(n, data_dir, shape):
    from model import data
    try:
        images, labels = data.load_fashion_mnist("test", data_dir)
    except data.DataError as exc:
        if n > 256:
            raise RunError(str(exc)) from None
        print(f"note: {exc}; using the committed 256-image fixture", file=sys.stderr)
        images, labels = data.load_fixture()
    if tuple(images.shape[1:]) != tuple(shape):
        raise RunError(f"the model takes {shape} images, Fashion-MNIST is {images.shape[1:]}")
    if n > len(images):
        raise RunError(f"--images {n}: only {len(images)} images available")
    return images[:n], labels[:n], list(data.CLASSES)


def _head_affine(deploy):
    """Per-class ``(scale, bias)`` of the head, to turn ``logits_int`` into predictions."""
    for layer in deploy.layers:
        if layer["kind"] == "head":
            return (np.asarray(layer["arrays"]["scale"], np.float32),
                    np.asarray(layer["arrays"]["bias"], np.float32))
    raise RunError("the model has no head layer")


def _transport(args, config, fmax_hz, baud):
    if args.port:
        try:
            from .serial_transport import SerialTransport
        except ImportError as exc:
            raise RunError(f"the serial transport is not available ({exc})") from None
        kwargs = {}
        if baud:
            kwargs["baud"] = baud
        if fmax_hz:
            kwargs["fmax_hz"] = fmax_hz
        return SerialTransport(args.port, **kwargs)
    if args.pysim:
        from .sim_transport import PySimTransport
        return PySimTransport(config)
    from .cxxrtl_sim import CxxrtlTransport, default_backend
    if args.backend == "auto":
        args.backend = default_backend()
    return CxxrtlTransport(config, backend=args.backend)


async def _run(acc, compiled, images, args, progress):
    info = await acc.identify()
    await acc.load(compiled)
    results = []
    for img in images:
        results.append(await acc.run_image(img, compiled, reload_params=args.reload_params,
                                           timeout_cycles=args.timeout_cycles, profile=False))
        progress.update(1)
    return info, results


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # Known one-line errors of the stack below (compiler, deploy loader, driver, transports).
        names = {"CompileError", "DeployError", "DataError", "AcceleratorError", "TransportError",
                 "CxxrtlError", "SerialException", "OSError", "FileNotFoundError", "ValueError",
                 "TypeError"}
        if type(exc).__name__ in names or isinstance(exc, OSError):
            print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                  file=sys.stderr)
            return 1
        raise


def _main(args):
    from tqdm import tqdm
    from model import deploy as mdeploy, golden
    from firmware.compiler import compile_model
    from firmware.driver import Accelerator

    board_config = board_fmax = board_baud = None
    if args.board:
        board_config, board_fmax, board_baud = _board(args.board)
    config = _config(args.config, board_config)
    fmax_hz = args.fmax * 1e6 if args.fmax else board_fmax
    baud = args.baud or board_baud

    if not Path(args.model).is_file():
        raise RunError(f"{args.model}: no such model file (train one, or pass --model)")
    deploy = mdeploy.load(args.model)
    compiled = compile_model(deploy, config)
    shape = tuple(compiled.input_shape)

    if args.files:
        if args.images is not None:
            raise RunError("give either --images N or image files, not both")
        images = np.stack([_load_image_file(f, shape) for f in args.files])
        labels, names = None, None
        try:
            from model.data import CLASSES
            names = list(CLASSES) if deploy.num_classes == len(CLASSES) else None
        except ImportError:
            pass
        tags = list(args.files)
    else:
        n = 16 if args.images is None else args.images
        if n <= 0:
            raise RunError(f"--images must be positive, not {n}")
        images, labels, names = _dataset(n, args.data_dir, shape)
        tags = [f"test[{i}]" for i in range(len(images))]
    if names is not None and len(names) != deploy.num_classes:
        names = None

    transport = _transport(args, config, fmax_hz, baud)
    if fmax_hz is None:
        fmax_hz = getattr(transport, "fmax_hz", None)
    acc = Accelerator(transport, timeout_cycles=args.timeout_cycles)
    where = ("board on " + args.port) if args.port else ("Amaranth pysim" if args.pysim else
                                                         f"compiled simulator ({args.backend})")
    start = time.monotonic()
    with tqdm(total=len(images), desc=f"{where}", unit="img", file=sys.stderr,
              disable=len(images) < 2) as progress:
        try:
            info, results = asyncio.run(_run(acc, compiled, images, args, progress))
            total_cycles = None if args.port else getattr(transport, "cycles", None)
        finally:
            asyncio.run(transport.close())
    wall = time.monotonic() - start

    scale, bias = _head_affine(deploy)
    logits_int = np.array([r.logits_int for r in results], dtype=np.int64)
    preds = np.argmax(scale[None] * logits_int.astype(np.float32) + bias[None], axis=1)
    cycles = np.array([r.cycles for r in results])
    mac_busy = np.array([r.mac_busy for r in results])

    if not args.quiet:
        for i, (tag, p, r) in enumerate(zip(tags, preds, results)):
            label = "" if labels is None else f"  label {_name(names, labels[i])}"
            mark = "" if labels is None else ("  ok" if p == labels[i] else "  WRONG")
            print(f"{tag}: {_name(names, p)}{label}{mark}  ({r.cycles} cycles)")

    c = config
    print(f"model {args.model} on {where}, config p_o={c.p_o} p_i={c.p_i} a_planes={c.a_planes}")
    if labels is not None:
        correct = int((preds == labels).sum())
        print(f"accuracy: {correct}/{len(labels)} = {100.0 * correct / len(labels):.2f}%")
    steady = cycles[1:] if len(cycles) > 1 and not args.reload_params else cycles
    per_image = float(np.mean(steady))
    util = float(np.sum(mac_busy[1:] if steady is not cycles else mac_busy)) / max(1, int(np.sum(steady)))
    print(f"cycles/image: {per_image:.0f} (first image, with parameter load: {cycles[0]}); "
          f"MAC array busy {100 * util:.1f}% of cycles")
    if fmax_hz:
        print(f"images/s at {fmax_hz / 1e6:.1f} MHz: {fmax_hz / per_image:.1f} "
              f"(modelled: fmax / cycles, host transfers excluded)")
    else:
        print("images/s: pass --board or --fmax MHZ to model it (fmax / cycles)")
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
