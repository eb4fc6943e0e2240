"""Images/s of the shipped model on each ULX3S board: the accelerator alone and end to end over the
board's serial link, at batch 1 and at the largest batch that fits main memory.

    python -m bench.board_throughput                       # the ULX3S boards; writes docs/BENCHMARKS.md
    python -m bench.board_throughput --boards ulx3s-85f --no-write

For every board (``platforms.boards``: its configuration, design clock ``target_hz`` and baud rate,
so a change of clock there changes the table when it is rerun) the shipped model
(``model/shipped/default.npz``) is compiled for the board's configuration; a model that does not
fit says why in its row. It runs on the compiled simulator of the board's SoC through
``firmware.driver.Accelerator``: two images one start each (``run_image``), then the largest batch
(``firmware.compiler.batch.max_batch_size``) from one start (``run_batch``). Cycles per image are
the hardware counters (CYCLES of a start over its images; at batch 1 the second image's, as the
first also runs the parameter load), and every logit is compared with ``model.golden``. The accelerator's images/s are modelled at
the board's clock (clock / cycles); the end-to-end images/s are modelled by
``firmware.link_model.batch_link`` at the board's baud rate: the bytes of every transaction the
driver makes per batch, 10 bit times each, in series with the accelerator's time (the driver's
order), and the overlapped bound.

The link model is checked against the bridge gateware: ``--line-words N`` writes and reads back N
words through ``firmware.serial_transport`` over the UART bridge simulated bit by bit at each
board's clock and baud rate (``firmware.bridge_line_sim``) and reports the payload bytes per
simulated second beside the model's.
"""

import argparse
import asyncio
import random
import sys
import time

import numpy as np

from accel.uart import baud_divisor
from contract import protocol as P
from firmware.link_model import BITS_PER_BYTE, batch_link, transfer_bytes
from platforms import get_board

from .report import write_section, machine, git_revision, table, log

__all__ = ["BOARDS", "TITLE", "measure_board", "measure_line", "section_lines", "main"]

BOARDS = ("ulx3s-85f", "ulx3s-25f", "ulx3s-12f")
TITLE = "Board throughput"


def _link_problem(clock_hz, baud):
    """Why the bridge cannot run ``baud`` at ``clock_hz`` (None when it can)."""
    try:
        baud_divisor(int(round(clock_hz)), baud)
    except ValueError as exc:
        return str(exc)
    return None


def measure_board(name, deploy, images, *, backend="auto", max_batch=None, progress=log):
    """Run ``deploy`` on board ``name``'s simulated SoC at batch 1 and the largest batch.

    Parameters
    ----------
    name : str
        A board of ``platforms``.
    deploy : model.deploy.Deploy
    images : array (N, C, H, W) of uint8
        At least 2 (batch 1 leaves the first image out) and as many as the largest batch.
    backend : str
        ``firmware.session.open_transport``'s backend.
    max_batch : int, optional
        Cap on the largest batch (tests use a small one).

    Returns
    -------
    dict
        ``board``, ``config_name``, ``clock_hz``, ``baud``, ``bridge_words`` and either ``error``
        (the model does not fit: the compiler's one line) or ``input_words``, ``output_words``,
        ``largest`` (the largest batch that fits), ``cases``: ``[(batch, cycles per image)]``,
        ``golden_equal`` and ``n_images`` (logits equal to ``model.golden``'s), ``link_problem``.
    """
    from firmware.compiler import compile_model, CompileError
    from firmware.compiler.batch import max_batch_size
    from firmware.driver import Accelerator
    from firmware.session import open_transport
    from model import golden
    board = get_board(name)
    row = {"board": board.name, "config_name": board.config_name, "config": board.config,
           "clock_hz": board.target_hz, "baud": board.baud, "bridge_words": board.bridge_words,
           "link_problem": _link_problem(board.pll.f_out_hz if board.pll else board.clk_hz,
                                         board.baud)}
    try:
        compiled = compile_model(deploy, board.config)
    except CompileError as exc:
        row["error"] = str(exc).splitlines()[0]
        return row
    largest = max_batch_size(compiled)
    if largest < 1:
        row["error"] = "not even one image's batch fits main memory beside the model"
        return row
    if max_batch is not None:
        largest = min(largest, max_batch)
    if len(images) < max(2, largest):
        raise ValueError(f"{name}: {max(2, largest)} images needed, {len(images)} given")
    row.update(input_words=int(compiled.input_words), output_words=int(compiled.output_words),
               largest=largest, cases=[])
    transport = open_transport(board.config, backend)

    async def session():
        # One accelerator: the first image also runs the parameter load (its CYCLES include
        # it), the second is batch 1's steady state; the batch then runs without a load.
        acc = Accelerator(transport)
        await acc.identify()
        await acc.load(compiled)
        progress(f"{name}: batch 1, 2 images")
        singles = [await acc.run_image(image, compiled, profile=False) for image in images[:2]]
        cases = [(1, float(singles[1].cycles))]
        logits = [singles[0].logits_int, singles[1].logits_int]
        if largest > 1:
            progress(f"{name}: batch {largest}")
            batch = await acc.run_batch(images[:largest], compiled)
            cases.append((largest, batch.cycles / batch.images))
            logits += batch.logits_int
        return cases, logits

    try:
        row["cases"], logits = asyncio.run(session())
    finally:
        asyncio.run(transport.close())
    ran = np.concatenate([images[:2], images[:largest]]) if largest > 1 else images[:2]
    reference = golden.run(deploy, ran, keep_tensors=False).logits_int
    equal = int(np.all(np.array(logits, dtype=np.int64) == reference, axis=1).sum())
    total = len(ran)
    row.update(golden_equal=equal, n_images=total)
    return row


def link_rows(row):
    """``[(batch, cycles per image, LinkBatch)]`` of a measured board row, modelled at its clock
    and baud rate."""
    out = []
    for batch, per_image in row.get("cases", []):
        model = batch_link(batch, row["input_words"], row["output_words"], baud=row["baud"],
                           cycles=int(round(batch * per_image)), clock_hz=row["clock_hz"],
                           max_words=row["bridge_words"])
        out.append((batch, per_image, model))
    return out


def measure_line(clock_hz, baud, words, *, max_words=P.DEFAULT_MAX_WORDS, seed=0):
    """Payload bytes per second of a WRITE and a READ of ``words`` random words through
    ``SerialTransport`` over the bridge gateware simulated bit by bit (host bytes back to back).

    Returns
    -------
    dict
        ``clock_hz``, ``baud``, ``divisor``, ``words``, ``payload_bytes``, ``wire_bytes``,
        ``seconds`` (simulated, first byte sent to last byte received), ``payload_per_s`` and
        the link model's ``model_seconds`` / ``model_payload_per_s`` for the same transactions.
    """
    from firmware.bridge_line_sim import SimulatedSerialLine
    from firmware.serial_transport import SerialTransport
    mem_words = 1 << max(10, (words - 1).bit_length())
    line = SimulatedSerialLine(clk_hz=int(round(clock_hz)), baud=baud, mem_words=mem_words,
                               max_words=max_words)
    transport = SerialTransport("simulated line", baud=baud, serial=line, timeout=3600.0,
                                recovery=0.0)
    rng = random.Random(seed)
    data = [rng.getrandbits(32) for _ in range(words)]
    line.mark()
    asyncio.run(transport.write_words(0, data))
    back = asyncio.run(transport.read_words(0, words))
    if back != data or transport.retries_used:
        raise RuntimeError(f"the simulated line at {baud} baud, {clock_hz / 1e6:g} MHz did not "
                           f"return the words written ({transport.retries_used} retries)")
    write, read = transfer_bytes(P.CMD_WRITE, words, max_words), transfer_bytes(P.CMD_READ, words,
                                                                                max_words)
    wire = write[0] + write[1] + read[0] + read[1]
    if wire != line.bytes_sent + line.bytes_received:
        raise RuntimeError(f"{line.bytes_sent + line.bytes_received} bytes on the simulated line, "
                           f"the link model counts {wire}")
    payload = 2 * 4 * words
    model_seconds = wire * BITS_PER_BYTE / baud
    return {"clock_hz": clock_hz, "baud": baud, "divisor": line.divisor, "words": words,
            "payload_bytes": payload, "wire_bytes": wire, "seconds": line.seconds,
            "payload_per_s": payload / line.seconds, "model_seconds": model_seconds,
            "model_payload_per_s": payload / model_seconds}


def _mbaud(baud):
    return f"{baud / 1e6:g} Mbaud"


def print_rows(rows, lines_measured):
    """The results on stdout."""
    for row in rows:
        head = (f"{row['board']} ({row['config_name']}, {row['clock_hz'] / 1e6:g} MHz, "
                f"{_mbaud(row['baud'])})")
        if "error" in row:
            print(f"{head}: the shipped model does not fit: {row['error']}")
            continue
        print(f"{head}: logits of {row['golden_equal']}/{row['n_images']} images equal "
              f"model.golden's")
        for batch, per_image, m in link_rows(row):
            print(f"  batch {batch:>3}: {per_image:,.0f} cycles/image; images/s (modelled): "
                  f"accelerator {m.images_per_s_accelerator:,.0f}, end to end over the link "
                  f"{m.images_per_s_series:,.1f} (overlapped bound {m.images_per_s_overlapped:,.1f})")
        if row["link_problem"]:
            print(f"  note: the bridge cannot run this baud rate at this clock: {row['link_problem']}")
    for m in lines_measured:
        print(f"simulated line at {_mbaud(m['baud'])}, {m['clock_hz'] / 1e6:g} MHz (divisor "
              f"{m['divisor']}), WRITE + READ of {m['words']} words: {m['payload_per_s']:,.0f} "
              f"payload bytes/s measured, {m['model_payload_per_s']:,.0f} modelled "
              f"({100 * m['payload_per_s'] / m['model_payload_per_s']:.1f} %)")


def section_lines(rows, lines_measured, *, model_name, backend, argv):
    """The "Board throughput" section of docs/BENCHMARKS.md."""
    out = [f"Measured by `python -m bench.board_throughput{' ' + ' '.join(argv) if argv else ''}` at "
           f"revision {git_revision()} on {machine()}: the shipped model (`{model_name}`) on the "
           f"compiled simulator ({backend}) of each ULX3S board's SoC, with the board's "
           f"configuration, design clock and baud rate from `platforms/boards.py` (rerun it after "
           f"a change of clock). Cycles per image are the hardware counters (CYCLES of a start "
           f"over its images; at batch 1 the second image's, as the first also runs the parameter "
           f"load); the largest batch is the largest that fits main memory beside the model. "
           f"All images/s are **modelled**: the accelerator's at the board's clock (clock / "
           f"cycles), the end-to-end ones with `firmware/link_model.py` at the board's baud rate "
           f"(every byte of the driver's transactions per batch, 10 bit times each, in series "
           f"with the accelerator's time as the driver runs them; \"overlapped\" is the bound if "
           f"the next batch's upload ran during the computation). The USB adapter's latency per "
           f"round trip and the host's own time are left out, so the end-to-end figures are upper "
           f"bounds.", ""]
    body = []
    for row in rows:
        name = [row["board"], row["config_name"], f"{row['clock_hz'] / 1e6:g} MHz",
                _mbaud(row["baud"])]
        if "error" in row:
            body.append(name + ["-", f"the shipped model does not fit: {row['error']}", "-", "-",
                                "-", "-"])
            continue
        for batch, per_image, m in link_rows(row):
            body.append(name + [batch, f"{per_image:,.0f}", f"{m.images_per_s_accelerator:,.0f}",
                         f"{m.images_per_s_series:,.1f}", f"{m.images_per_s_overlapped:,.1f}",
                         f"{row['golden_equal']} / {row['n_images']}"])
    out += table(["board", "configuration", "clock", "baud", "batch", "cycles / image",
                  "accelerator images/s (modelled)", "end-to-end images/s (modelled, series)",
                  "overlapped bound (modelled)", "logits equal golden"], body)
    out.append("")
    for r in rows:
        if "error" in r:
            continue
        image_bytes = 4 * (r["input_words"] + r["output_words"])
        ceiling = r["baud"] / BITS_PER_BYTE / image_bytes
        best = max(m.images_per_s_series for _, _, m in link_rows(r))
        out.append(f"- {r['board']}: the link carries at most {ceiling:,.0f} images/s "
                   f"({r['baud'] / BITS_PER_BYTE:,.0f} bytes/s over {image_bytes:,} bytes of input "
                   f"and logits per image), whatever the batch; the accelerator alone runs "
                   f"{r['clock_hz'] / min(c for _, c in r['cases']):,.0f}, and the driver's "
                   f"series of transactions reaches {best:,.1f} end to end.")
    problems = [r for r in rows if r.get("link_problem")]
    for r in problems:
        out += [f"- {r['board']}: the bridge cannot run {_mbaud(r['baud'])} at "
                    f"{r['clock_hz'] / 1e6:g} MHz ({r['link_problem']}): its end-to-end figures "
                    f"are what the link gives once the clock makes that rate."]
    if lines_measured:
        out += ["", "The link model against the bridge gateware: a WRITE and a READ of the same "
                    "words through `firmware.serial_transport` (the driver's framing) over the UART "
                    "bridge simulated bit by bit (`firmware/bridge_line_sim.py`, the host's bytes "
                    "back to back, an SRAM behind the bridge), payload bytes over the simulated "
                    "time from the first byte sent to the last byte received:", ""]
        out += table(["clock", "baud (divisor)", "words each way", "bytes on the line",
                      "payload bytes/s, simulated line", "payload bytes/s, link model",
                      "simulated / model"],
                     [[f"{m['clock_hz'] / 1e6:g} MHz", f"{_mbaud(m['baud'])} ({m['divisor']})",
                       m["words"], f"{m['wire_bytes']:,}", f"{m['payload_per_s']:,.0f}",
                       f"{m['model_payload_per_s']:,.0f}",
                       f"{100 * m['payload_per_s'] / m['model_payload_per_s']:.1f} %"]
                      for m in lines_measured])
    return out


def _line_cases(boards, line_clocks):
    """``[(clock_hz, baud, max_words)]`` to measure the simulated line at: each board's clock that
    makes its baud rate, or the clocks of ``line_clocks`` ("60,75", MHz) at the first board's
    baud rate and frame size."""
    cases = []
    if line_clocks is None:
        for name in boards:
            board = get_board(name)
            clock = int(round(board.pll.f_out_hz if board.pll else board.clk_hz))
            cases.append((clock, board.baud, board.bridge_words))
    else:
        first = get_board(boards[0])
        for text in line_clocks.split(","):
            try:
                mhz = float(text)
            except ValueError:
                raise ValueError(f"--line-clocks takes MHz values such as 60,75, not "
                                 f"{line_clocks!r}") from None
            if mhz <= 0:
                raise ValueError(f"--line-clocks: {text} MHz is not a clock")
            cases.append((int(round(mhz * 1e6)), first.baud, first.bridge_words))
    unique = []
    for case in cases:
        problem = _link_problem(case[0], case[1])
        if problem:
            log(f"note: no simulated line at {case[0] / 1e6:g} MHz: {problem}")
        elif case not in unique:
            unique.append(case)
    return unique


def _shown_path(path):
    """``path`` relative to the repository when it lies inside it."""
    from pathlib import Path
    from .report import ROOT
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def main(argv=None):
    from firmware.session import (DEFAULT_MODEL, FIXTURE_IMAGES, SessionError, load_images,
                                  resolve_backend)
    parser = argparse.ArgumentParser(prog="python -m bench.board_throughput",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--boards", default=",".join(BOARDS),
                        help=f"boards, comma-separated (default {','.join(BOARDS)})")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="deploy file (.npz)")
    parser.add_argument("--backend", default="auto",
                        help="compiled simulator: auto (default), cxxrtl, verilator; or pysim")
    parser.add_argument("--max-batch", type=_positive, default=None,
                        help="cap on the largest batch (default: none)")
    parser.add_argument("--line-words", type=_positive, default=256,
                        help="words each way on the simulated line (default 256, one frame; 0: "
                             "no line measurement)")
    parser.add_argument("--line-clocks", default=None, metavar="MHZ,...",
                        help="clocks to measure the simulated line at, e.g. 60,75 (default: the "
                             "boards' clocks that make their baud rate)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave the docs")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    shown_argv = list(argv if argv is not None else sys.argv[1:])
    try:
        from model import deploy as mdeploy
        names = [n.strip() for n in args.boards.split(",") if n.strip()]
        boards = [get_board(n).name for n in names]
        backend = resolve_backend(args.backend)
        line_cases = _line_cases(boards, args.line_clocks) if args.line_words else []
        deploy = mdeploy.load(args.model)
        started = time.monotonic()
        # as many images as the committed fixture has (enough for the largest batch of the
        # ULX3S boards: 26 on the 85F)
        images, _, _ = load_images(FIXTURE_IMAGES, shape=tuple(deploy.input_shape))
        rows = []
        for name in boards:
            rows.append(measure_board(name, deploy, images, backend=backend,
                                      max_batch=args.max_batch))
        measured = []
        if args.line_words:
            for clock, baud, max_words in line_cases:
                log(f"simulated line at {_mbaud(baud)}, {clock / 1e6:g} MHz, "
                    f"{args.line_words} words each way")
                measured.append(measure_line(clock, baud, args.line_words, max_words=max_words))
        print_rows(rows, measured)
        log(f"done in {time.monotonic() - started:.0f} s")
        if not args.no_write:
            write_section(TITLE, section_lines(rows, measured, model_name=_shown_path(args.model),
                                               backend=backend, argv=shown_argv))
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (SessionError, ValueError, OSError, RuntimeError) as exc:
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
