"""Run helpers shared by ``python -m firmware.run`` and the benchmarks (``bench/``).

The defaults are the default board's (``platforms.DEFAULT_BOARD``, the ULX3S-85F): its
configuration, its clock and its baud rate, so that a simulation and a board run the same design
unless told otherwise. The helpers:

- ``board_settings`` and ``resolve_config``: a board's configuration, clock and baud rate, and the
  configuration a run uses (by name, else the board's);
- ``board_fmax``: the design clock for modelled images/s (a recorded build's fmax, else the
  board's target);
- ``load_images`` and ``load_image_file``: Fashion-MNIST (or its committed fixture) and image files
  in the model's input shape;
- ``open_transport`` and ``resolve_backend``: the compiled simulator, Amaranth's simulator or a
  board's serial port;
- ``run_images``: images one start each through a fresh ``firmware.driver.Accelerator``;
- ``resolve_batch_size`` and ``run_batches``: images in batches of many per start
  (``Accelerator.run_batch``);
- ``link_bauds`` and ``link_report``: the link model's images/s over the board's serial link
  (``firmware.link_model``) beside the accelerator's;
- ``golden_check``, ``predictions`` and ``image_program_descriptors``: what the results mean.

Bad input raises :class:`SessionError` with a one-line message.
"""

import asyncio
import json
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np

from platforms import DEFAULT_BOARD, get_board


__all__ = ["SessionError", "ROOT", "DEFAULT_MODEL", "DEFAULT_BOARD", "BACKENDS", "BoardSettings",
           "board_settings", "resolve_config", "board_fmax", "load_images", "load_image_file",
           "open_transport", "resolve_backend", "run_images", "resolve_batch_size", "run_batches",
           "link_bauds", "link_report", "golden_check", "predictions", "image_program_descriptors"]


ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "model" / "shipped" / "default.npz"
# Where a run happens: "auto" is the faster compiled simulator this machine has.
BACKENDS = ("auto", "cxxrtl", "verilator", "pysim")
# Images in model/fixtures (load_images falls back to them without the dataset).
FIXTURE_IMAGES = 256


class SessionError(Exception):
    """A run cannot start: unknown board or configuration, missing data, unreadable image."""


BoardSettings = namedtuple("BoardSettings", "name config config_name clock_hz baud")
BoardSettings.__doc__ = """A board's run settings: its ``AccelConfig`` (and name), the design clock
it runs at (``target_hz``, the PLL's output) and its UART baud rate."""


def board_settings(board=None):
    """The :class:`BoardSettings` of ``board`` (a name in ``platforms``; default the default board)."""
    try:
        b = get_board(DEFAULT_BOARD if board is None else board)
    except ValueError as exc:
        raise SessionError(str(exc)) from None
    return BoardSettings(b.name, b.config, b.config_name, b.target_hz, b.baud)


def resolve_config(name=None, board=None):
    """The ``AccelConfig`` a run uses: the configuration called ``name`` (``contract.config.CONFIGS``),
    else the board's (the default board's when ``board`` is None)."""
    from contract.config import config_by_name
    if name is None:
        return board_settings(board).config
    try:
        return config_by_name(name)
    except ValueError as exc:
        raise SessionError(str(exc)) from None


def board_fmax(board=DEFAULT_BOARD):
    """``(hz, label)``: the design clock's fmax from ``build/<board>/report.json`` if a build is
    recorded there, else the board's target clock, labelled."""
    path = ROOT / "build" / board / "report.json"
    if path.is_file():
        try:
            rep = json.loads(path.read_text())
            clocks = rep.get("clocks") or {}
            # the design clock: the one with the highest target (the UART-side clocks are slower)
            best = max(clocks.values(), key=lambda c: c.get("target_mhz", 0), default=None)
            if best and best.get("achieved_mhz"):
                mhz, target = float(best["achieved_mhz"]), float(best.get("target_mhz", 0))
                return mhz * 1e6, (f"{mhz:.1f} MHz: nextpnr fmax of the {board} build "
                                   f"(build/{board}/report.json, target {target:.0f} MHz)")
        except (OSError, ValueError, TypeError):
            pass
    hz = float(board_settings(board).clock_hz)
    return hz, f"{hz / 1e6:.0f} MHz: the {board} target clock (no build/{board}/report.json yet)"


def load_images(n=None, split="test", *, data_dir=None, shape=None):
    """The first ``n`` (all when None) Fashion-MNIST images of a split: ``(images, labels, source)``.

    Falls back to the committed 256-image fixture (with a note on stderr) when the dataset is not
    installed and ``n`` fits (all of the fixture when ``n`` is None), but not when ``data_dir`` names a
    directory: a user who points at the data wants that data, so a missing or broken one is an error.
    ``shape``: the model's input shape ``(C, H, W)``, checked.
    """
    from model import data
    if n is not None and n <= 0:
        raise SessionError(f"the number of images must be positive, not {n}")
    try:
        images, labels = data.load_fashion_mnist(split, data_dir)
        source = f"Fashion-MNIST {split} set"
    except data.DataError as exc:
        if data_dir is not None or (n is not None and n > FIXTURE_IMAGES):
            raise SessionError(str(exc)) from None
        print(f"note: {exc}; using the committed {FIXTURE_IMAGES}-image fixture", file=sys.stderr,
              flush=True)
        images, labels = data.load_fixture()
        source = "Fashion-MNIST test fixture (model/fixtures)"
    if shape is not None and tuple(images.shape[1:]) != tuple(shape):
        raise SessionError(f"the model takes {tuple(shape)} images, Fashion-MNIST is "
                           f"{tuple(images.shape[1:])}")
    if n is not None:
        if n > len(images):
            raise SessionError(f"{n} images asked for, only {len(images)} available")
        images, labels = images[:n], labels[:n]
    return images, labels, source


def load_image_file(path, shape):
    """An image file as uint8 ``(C, H, W)`` of the model's input shape (with a note on stderr when
    it had to be converted)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise SessionError("reading image files needs Pillow (pip install Pillow)") from None
    channels, height, width = shape
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise SessionError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise SessionError(f"{path}: not a readable image ({exc})") from None
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise SessionError(f"{path}: the model takes {channels}-channel images; only 1 or 3 can be "
                           f"read from files")
    notes = []
    if img.mode != mode:
        notes.append(f"{img.mode} -> {mode}")
    if img.size != (width, height):
        notes.append(f"{img.size[0]}x{img.size[1]} -> {width}x{height}")
    if notes:
        print(f"note: {path}: converted {', '.join(notes)} for the model's input", file=sys.stderr)
    img = img.convert(mode).resize((width, height), Image.BILINEAR)
    pixels = np.asarray(img, dtype=np.uint8)
    pixels = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels)


def open_transport(config, backend="auto", *, port=None, baud=None, fmax_hz=None, quiet=True):
    """A ``Transport`` to the SoC of ``config``.

    Parameters
    ----------
    config : AccelConfig
    backend : str
        ``"auto"`` (Verilator when installed, else CXXRTL), ``"cxxrtl"``, ``"verilator"`` (the
        compiled simulator, ``firmware.cxxrtl_sim``) or ``"pysim"`` (Amaranth's simulator).
    port : str, optional
        A serial device: the board behind the UART bridge instead of a simulator.
    baud, fmax_hz : optional
        The serial link's rate and the board's clock (default: the transport's).
    quiet : bool
        No message while the compiled simulator is being built.
    """
    if port is not None:
        from .serial_transport import SerialTransport
        kwargs = {}
        if baud:
            kwargs["baud"] = baud
        if fmax_hz:
            kwargs["fmax_hz"] = fmax_hz
        return SerialTransport(port, **kwargs)
    backend = resolve_backend(backend)
    if backend == "pysim":
        from .sim_transport import PySimTransport
        return PySimTransport(config)
    from .cxxrtl_sim import CxxrtlTransport
    return CxxrtlTransport(config, backend=backend, quiet=quiet)


def resolve_backend(backend):
    """The simulator ``backend`` names: ``"auto"`` becomes the faster compiled simulator this
    machine has (``firmware.cxxrtl_sim.default_backend``), the others stay."""
    if backend not in BACKENDS:
        raise SessionError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    if backend == "auto":
        from .cxxrtl_sim import default_backend
        return default_backend()
    return backend


def run_images(transport, compiled, images, *, profile=True, reload_params=False,
               timeout_cycles=50_000_000, progress=None):
    """Run ``images`` one after the other on a fresh ``Accelerator``; a list of ``RunResult``.

    The first image runs the parameter-loading program (``prog_load_addr``), the others the
    per-image program (``prog_image_addr``) unless ``reload_params``, as a batch would.
    ``progress(done, total)`` is called after each image.
    """
    from .driver import Accelerator

    async def session():
        acc = Accelerator(transport, timeout_cycles=timeout_cycles)
        await acc.identify()
        await acc.load(compiled)
        results = []
        for image in images:
            results.append(await acc.run_image(image, compiled, profile=profile,
                                               reload_params=reload_params))
            if progress is not None:
                progress(len(results), len(images))
        return results
    return asyncio.run(session())


def resolve_batch_size(compiled, batch, n_images):
    """The images per start of a run: ``batch``, or when None the largest batch that fits main
    memory (``firmware.compiler.batch.max_batch_size``, at least 1) capped by ``n_images``.

    Raises
    ------
    SessionError
        ``batch`` is not positive, or more than fits (one line naming the memory needed).
    """
    from .compiler import CompileError
    from .compiler.batch import compile_batch, max_batch_size
    if batch is None:
        return max(1, min(max_batch_size(compiled), n_images))
    if not isinstance(batch, int) or batch < 1:
        raise SessionError(f"the batch size must be a positive integer, not {batch!r}")
    if batch > 1:
        try:
            compile_batch(compiled, batch)
        except CompileError as exc:
            raise SessionError(str(exc)) from None
    return batch


def run_batches(transport, compiled, images, batch_size, *, reload_params=False,
                timeout_cycles=50_000_000, progress=None):
    """Run ``images`` in batches of ``batch_size`` per start (the last one may be shorter) on a
    fresh ``Accelerator``; a list of ``firmware.driver.BatchResult``.

    The load program runs before the first batch (every batch with ``reload_params``), as a start
    of its own: the batches' CYCLES count images only (``BatchResult.load_cycles`` has the load's).
    A batch size of 1 runs each image as ``run_image`` does (no batch program; the first image's
    CYCLES include the parameter load). ``progress(done, total)`` is called
    after each batch. ``timeout_cycles`` is per image.
    """
    from .driver import Accelerator, BatchResult

    async def session():
        acc = Accelerator(transport, timeout_cycles=timeout_cycles)
        await acc.identify()
        await acc.load(compiled)
        results = []
        done = 0
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            if batch_size == 1:
                # run_image's CYCLES include the parameter load when it runs that program.
                r = await acc.run_image(chunk[0], compiled, profile=False,
                                        reload_params=reload_params)
                results.append(BatchResult([r.logits_int], r.cycles, r.mac_busy,
                                           board_resets=r.board_resets))
            else:
                results.append(await acc.run_batch(chunk, compiled, reload_params=reload_params))
            done += len(chunk)
            if progress is not None:
                progress(done, len(images))
        return results
    return asyncio.run(session())


# USB-UART adapters whose top rate is above the board's default baud rate (the FT231X on the ULX3S).
_ADAPTER_MAX_BAUD = {"ulx3s": 3_000_000}


def link_bauds(board=None):
    """Baud rates to model a board's link at: its default, and its USB-UART adapter's top rate
    where that is higher."""
    settings = board_settings(board)
    rates = [settings.baud]
    family = settings.name.split("-")[0]
    if _ADAPTER_MAX_BAUD.get(family, 0) > settings.baud:
        rates.append(_ADAPTER_MAX_BAUD[family])
    return rates


def link_report(compiled, cases, clock_hz, bauds, *, max_words=None):
    """Lines comparing the accelerator's images/s with the end-to-end images/s over the link.

    Parameters
    ----------
    compiled : CompiledModel
    cases : list of (int, float)
        ``(batch size, cycles per image)`` (from the hardware counters).
    clock_hz : float
        The board's clock.
    bauds : list of int
    max_words : int, optional
        The bridge's frame size (default ``contract.protocol.DEFAULT_MAX_WORDS``).
    """
    from contract import protocol as P
    from .link_model import batch_link
    max_words = max_words or P.DEFAULT_MAX_WORDS
    lines = [f"images/s at {clock_hz / 1e6:.1f} MHz, end to end over the serial link *modelled* "
             f"from the frame format ({max_words}-word frames, 8N1, USB latency and host time "
             f"left out; the driver uploads, runs and reads back in series):"]
    for size, per_image in cases:
        for baud in bauds:
            m = batch_link(size, int(compiled.input_words), int(compiled.output_words), baud=baud,
                           cycles=int(round(size * per_image)), clock_hz=clock_hz,
                           max_words=max_words)
            lines.append(
                f"  batch {size:>3} at {baud / 1e6:g} Mbaud: accelerator {m.images_per_s_accelerator:,.0f}, "
                f"link in series {m.images_per_s_series:,.1f}, overlapped (bound) "
                f"{m.images_per_s_overlapped:,.1f} images/s; {m.total_bytes:,} bytes and "
                f"{m.transactions} round trips per batch, framing efficiency "
                f"{100 * m.efficiency:.1f} %")
    return lines


def golden_check(deploy, images, results):
    """``(equal_count, first_bad_index or None)`` of hardware vs ``model.golden`` logits."""
    from model import golden
    reference = golden.run(deploy, images, keep_tensors=False).logits_int
    hardware = np.array([r.logits_int for r in results], dtype=np.int64)
    equal = np.all(hardware == reference, axis=1)
    bad = np.flatnonzero(~equal)
    return int(equal.sum()), (int(bad[0]) if bad.size else None)


def predictions(deploy, logits_int):
    """Predicted classes of integer logits (``(N, classes)``), through the head's per-class
    ``scale * logit + bias``."""
    for layer in deploy.layers:
        if layer["kind"] == "head":
            scale = np.asarray(layer["arrays"]["scale"], np.float32)
            bias = np.asarray(layer["arrays"]["bias"], np.float32)
            logits = np.asarray(logits_int, dtype=np.int64).astype(np.float32)
            return np.argmax(scale[None] * logits + bias[None], axis=1)
    raise SessionError("the model has no head layer")


def image_program_descriptors(compiled):
    """Per descriptor of the per-image program (END excluded): ``(descriptor index, note, layer)``.

    ``LAYER_CYCLES`` index ``i`` of a per-image run is descriptor ``n_load + i`` of
    ``compiled.descriptors``. ``layer`` is the ``LayerPlan`` whose own descriptor it is, else None
    (input LOADs of a host layer, residual copies, the logits STORE).
    """
    from contract import isa
    own = {p.desc_index: p for p in compiled.layers if p.desc_index is not None}
    rows = []
    for i, d in enumerate(compiled.descriptors):
        if d["addr"] < compiled.prog_image_addr or d["fields"].get("op") == isa.Op.END:
            continue
        rows.append((i, d["note"], own.get(i)))
    return rows
