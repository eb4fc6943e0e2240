"""accel.build: the command line, Verilog for the boards with the SoC, the report parsers, and one
small build through Yosys + nextpnr + the packer (iCEBreaker, bridge + SRAM top)."""

import json

import pytest

from accel import build as B
from accel.toolchain_reports import parse_nextpnr_report, parse_nextpnr_log, parse_yosys_log
from platforms import get_board, BOARDS


# Command line ----------------------------------------------------------------------------------

def test_cli_unknown_board(capsys):
    assert B.main(["--board", "ulx3s-99f", "--verilog-only"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ulx3s-99f" in err and "icebreaker" in err
    assert "Traceback" not in err


def test_cli_list_boards(capsys):
    assert B.main(["--list-boards"]) == 0
    out = capsys.readouterr().out
    for name in BOARDS:
        assert name in out
    assert "ecp5" in out


def test_cli_missing_tool(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("YOSYS", "/nonexistent/yosys")
    assert B.main(["--board", "icebreaker", "--top", "bridge", "--build-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "YOSYS=/nonexistent/yosys: no such program" in err
    assert not (tmp_path / "icebreaker").exists()       # nothing written for a refused build


def test_cli_bad_frequency(capsys, tmp_path):
    # 500 MHz is beyond the ECP5 PLL: a one-line error before any tool runs.
    assert B.main(["--board", "ulx3s-25f", "--freq", "500MHz", "--verilog-only",
                   "--build-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "f_out_hz" in err


def test_cli_unknown_placer(capsys, tmp_path):
    assert B.main(["--board", "ulx3s-25f", "--placer", "magic", "--verilog-only",
                   "--build-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown placer 'magic'" in err and "static" in err


def test_cli_soc_that_does_not_fit(capsys, tmp_path):
    assert B.main(["--board", "icebreaker", "--build-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not fit" in err and "--top bridge" in err


def test_parse_freq():
    assert B._parse_freq("75MHz") == 75_000_000
    assert B._parse_freq("100") == 100_000_000
    assert B._parse_freq("48000000Hz") == 48_000_000


# Verilog of the boards with the SoC ------------------------------------------------------------

def _verilog_only(name, tmp_path, top="soc"):
    report = B.build(get_board(name), build_dir=tmp_path, verilog_only=True, top=top,
                     log=lambda msg: None)
    text = (tmp_path / name / "top.v").read_text()
    assert "module top(" in text
    return report, text


@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-12f"])
def test_verilog_small_boards_with_soc(name, tmp_path):
    report, text = _verilog_only(name, tmp_path)
    assert report["top"] == "soc"
    # The SoC's parts are in (the sequencer and the bridge), and the PLL when the board uses one.
    assert "sequencer" in text and "bridge" in text
    assert ("EHXPLLL" in text) == get_board(name).uses_pll


# Every board with its own configuration; DEFAULT takes minutes to elaborate, so this runs from
# bench/ (python -m bench.builds --verilog-only) and with `pytest -m slow`.
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(BOARDS) - {"icebreaker", "ulx3s-12f"}))
def test_verilog_all_boards_with_soc(name, tmp_path):
    report, text = _verilog_only(name, tmp_path)
    assert report["top"] == "soc" and "sequencer" in text


# Report parsers --------------------------------------------------------------------------------

NEXTPNR_REPORT = {
    "utilization": {
        "TRELLIS_COMB": {"used": 1038, "available": 24288},
        "TRELLIS_FF": {"used": 410, "available": 24288},
        "DP16KD": {"used": 17, "available": 56},
        "MULT18X18D": {"used": 0, "available": 28},
        "EHXPLLL": {"used": 1, "available": 2},
    },
    "fmax": {"$glbnet$clk": {"achieved": 82.04, "constraint": 50.0}},
}

NEXTPNR_LOG = """
Info: Device utilisation:
Info:             TRELLIS_IO:       9/    197     4%
Info:                 DP16KD:      17/     56    30%
Info:             MULT18X18D:       0/     28     0%
Info:           TRELLIS_COMB:    1038/  24288     4%
Info:             TRELLIS_FF:     410/  24288     1%
Info: Max frequency for clock '$glbnet$clk': 70.10 MHz (PASS at 50.00 MHz)
Info: Max frequency for clock '$glbnet$clk': 82.04 MHz (PASS at 50.00 MHz)
Info: Max frequency for clock '$glbnet$other': 40.00 MHz (FAIL at 50.00 MHz)
"""


def test_parse_nextpnr_report_and_log():
    util, fmax = parse_nextpnr_report(NEXTPNR_REPORT, "ecp5")
    assert util["LUT4"] == {"used": 1038, "available": 24288, "cell": "TRELLIS_COMB"}
    assert util["BRAM"]["used"] == 17 and util["MULT"]["available"] == 28
    assert fmax == {"$glbnet$clk": {"achieved_mhz": 82.04, "target_mhz": 50.0}}
    util2, fmax2 = parse_nextpnr_log(NEXTPNR_LOG, "ecp5")
    for row in ("LUT4", "FF", "BRAM", "MULT"):
        assert util2[row] == util[row]
    # The last report of a clock wins (after routing).
    assert fmax2["$glbnet$clk"] == fmax["$glbnet$clk"]
    assert fmax2["$glbnet$other"] == {"achieved_mhz": 40.0, "target_mhz": 50.0}


def test_parse_yosys_log():
    text = """
=== top ===
       35 cells
       20   $scopeinfo
       10   SB_RAM40_4K
      800   SB_LUT4
=== design hierarchy ===
       35 top
      999 wires
       20   $scopeinfo
        4   SB_IO
      177   SB_CARRY
       80   SB_DFF
      282   SB_DFFESR
      801   SB_LUT4
"""
    assert parse_yosys_log(text) == {"SB_IO": 4, "SB_CARRY": 177, "SB_DFF": 80,
                                     "SB_DFFESR": 282, "SB_LUT4": 801}


# One real build --------------------------------------------------------------------------------

def test_small_build_through_nextpnr(tmp_path):
    """iCEBreaker with the bridge + SRAM top (1,024 words): Yosys, nextpnr-ice40 and icepack from
    PyPI, then the report is checked against what this design must use."""
    board = get_board("icebreaker")
    lines = []
    report = B.build(board, build_dir=tmp_path, top="bridge", log=lines.append)
    out = tmp_path / "icebreaker"
    assert (out / "top.bin").stat().st_size > 0
    saved = json.loads((out / "report.json").read_text())
    assert saved["utilization"] == report["utilization"]
    util = report["utilization"]
    # 1,024 x 32 main memory = 8 SB_RAM40_4K (1024x4 each), the bridge's 64 x 32 buffer = 2.
    assert util["BRAM"]["used"] == 10 and util["BRAM"]["available"] == 30
    assert 300 < util["LUT4"]["used"] < util["LUT4"]["available"]
    assert 100 < util["FF"]["used"] < util["LUT4"]["used"]
    assert util["MULT"]["used"] == 0
    (clock,) = report["clocks"].values()
    assert clock["target_mhz"] == pytest.approx(12.0, abs=0.01)
    assert clock["achieved_mhz"] > 12.0 and clock["passed"] and report["timing_pass"]
    assert set(report["times_s"]) >= {"elaborate", "verilog", "yosys", "nextpnr", "icepack", "total"}
    md = (out / "report.md").read_text()
    assert "| LUT4 (ICESTORM_LC) |" in md and "PASS" in md
    assert "--report top.report.json" in report["nextpnr_options"]
    assert any(line.startswith("[nextpnr] done in") for line in lines)


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0"], "at least 1, not 0"),
    (["--seeds", "two"], "count or a comma-separated list of integers, not 'two'"),
    (["--seeds", "3,x"], "count or a comma-separated list of integers"),
    (["--seeds", "3,-1"], "non-negative"),
    (["--seeds", "3,3"], "repeats a seed"),
    (["--seeds", "2", "--seed", "4"], "either --seed or --seeds"),
    (["--seeds", "2", "--jobs", "0"], "--jobs takes a positive integer, not 0"),
    (["--seeds", "2", "--jobs", "many"], "--jobs takes a positive integer, not 'many'"),
])
def test_cli_bad_seeds(argv, message, capsys, tmp_path):
    assert B.main(["--board", "icebreaker", "--top", "bridge", "--build-dir", str(tmp_path)]
                  + argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "icebreaker").exists()        # rejected before anything was built


def test_seed_list_starts_with_the_boards_seed():
    from accel.seed_sweep import parse_seeds, seed_list
    assert seed_list(3) == [1, 2, 3]
    assert seed_list(3, first=2) == [2, 1, 3]
    assert parse_seeds("4", first=7) == [7, 1, 2, 3]
    assert parse_seeds("11, 3,7") == [11, 3, 7]
    with pytest.raises(TypeError):
        seed_list(2.0)


FAILING_NEXTPNR = """\
import sys
a = sys.argv[1:]
open(a[a.index("--log") + 1], "w").write("ERROR: Failed to route (seed %s)\\n" % a[a.index("--seed") + 1])
sys.exit(1)
"""


def test_seed_sweep_where_every_seed_fails_is_one_error(tmp_path):
    """nextpnr failing for every seed is a BuildError naming each seed's error (a seed that
    routes but misses timing is a result: the test above)."""
    import sys
    exe = tmp_path / "failing-nextpnr"
    exe.write_text(f"#!{sys.executable}\n" + FAILING_NEXTPNR)
    exe.chmod(0o755)
    argv = [str(exe), "--log", "top.tim", "--json", "top.json", "--asc", "top.asc"]
    report = {"nextpnr_options": ""}
    with pytest.raises(B.BuildError) as info:
        B._run_seeds(tmp_path, argv, [3, 5], 2, "ice40", None, report, lambda msg: None)
    message = str(info.value)
    assert "\n" not in message and "nextpnr failed for every seed" in message
    assert "seed 3: ERROR: Failed to route (seed 3)" in message and "seed 5:" in message
    assert [r["seed"] for r in report["seeds"]] == [3, 5]


def test_seed_sweep_build_keeps_the_fastest_seed(tmp_path, capsys):
    """``--seeds 1,2 --jobs 2``: Yosys once, nextpnr-ice40 per seed, the fastest seed's placement
    packed as the build's bitstream, every seed in the report and the printed table."""
    assert B.main(["--board", "icebreaker", "--top", "bridge", "--build-dir", str(tmp_path),
                   "--seeds", "1,2", "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "icebreaker"
    report = json.loads((out / "report.json").read_text())
    rows = report["seeds"]
    assert [r["seed"] for r in rows] == [1, 2]
    for r in rows:
        assert "error" not in r and r["fmax_mhz"] > 12.0 and r["passed"]
        assert r["target_mhz"] == pytest.approx(12.0, abs=0.01)
        # each seed placed and routed on its own, from the one netlist
        assert (out / f"seed{r['seed']}" / "top.asc").stat().st_size > 0
    best = max(rows, key=lambda r: r["fmax_mhz"])
    assert report["seed"] == best["seed"] and f"--seed {best['seed']}" in report["nextpnr_options"]
    # the build's placement, timing and bitstream are the kept seed's
    assert (out / "top.asc").read_bytes() == (out / f"seed{best['seed']}" / "top.asc").read_bytes()
    (clock,) = report["clocks"].values()
    assert clock["achieved_mhz"] == pytest.approx(best["fmax_mhz"])
    assert (out / "top.bin").stat().st_size > 0 and report["timing_pass"]
    for text in (printed, (out / "report.md").read_text()):
        for r in rows:
            kept = " (kept)" if r["seed"] == best["seed"] else ""
            assert f"| {r['seed']}{kept} | {r['fmax_mhz']:.1f} | 12 | PASS |" in text


def test_bench_builds_section(tmp_path, monkeypatch):
    """bench.builds writes one table row per board, failures included, into its own section."""
    from bench import builds, report as bench_report
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkept\n")
    monkeypatch.setattr(builds, "write_section",
                        lambda title, lines: bench_report.write_section(title, lines, doc=doc))
    util, fmax = parse_nextpnr_report(NEXTPNR_REPORT, "ecp5")
    ok = {"board": "ulx3s-25f", "device": "LFE5U-25F", "config_name": "small25", "top": "soc",
          "utilization": util, "timing_pass": True,
          "clocks": {k: dict(v, passed=True) for k, v in fmax.items()},
          "times_s": {"elaborate": 10.0, "verilog": 2.0, "yosys": 60.0, "nextpnr": 200.0,
                      "total": 272.0}}
    bad = {"board": "icebreaker", "device": "iCE40UP5K", "config_name": "micro", "top": "soc",
           "error": "nextpnr failed: does not fit", "total_s": 100.0}
    builds.write_doc({"ulx3s-25f": ok, "icebreaker": bad}, {"yosys": "0.70"})
    text = doc.read_text()
    assert "## Other\n\nkept" in text and "## Builds" in text
    assert "| ulx3s-25f | LFE5U-25F | small25 | soc | 1,038 / 24,288 (4%) |" in text
    assert "| 82.0 / 50 | pass | 4.5 min (10 s + 2 s + 60 s + 3.3 min) |" in text
    assert "| icebreaker | iCE40UP5K | micro | soc | failed: nextpnr failed: does not fit |" in text


def test_program_with_system_tools_but_no_openfpgaloader_on_path_is_one_error(monkeypatch, tmp_path):
    from accel import program as P
    monkeypatch.setattr(P.shutil, "which", lambda name, path=None: None)
    bit = tmp_path / "top.bit"
    bit.write_bytes(b"\xff")
    with pytest.raises(P.ProgramError, match="openFPGALoader is not on PATH"):
        P.program_bitstream(get_board("ulx3s-85f"), bit, system_tools=True, log=lambda _: None)
