"""accel.toolchain_reports and bench.timing_endpoints rank a routed build's late timing endpoints
by signal, and bench.timing_closure puts a series of builds side by side in BENCHMARKS.md."""

import json


def test_timing_endpoints_groups_by_signal(tmp_path, capsys):
    from accel.toolchain_reports import timing_endpoints, group_endpoints
    from bench import timing_endpoints as te
    report = {"detailed_net_timings": [
        {"net": "a", "endpoints": [
            {"cell": "soc.x.acc_TRELLIS_FF_Q_3", "port": "DI", "event": "posedge clk",
             "delay": [3.0, 11.5]},
            {"cell": "soc.x.acc_TRELLIS_FF_Q_4", "port": "DI", "event": "posedge clk",
             "delay": [3.0, 10.5]},
            {"cell": "soc.y.bank1.0.9", "port": "DIA2", "event": "posedge clk",
             "delay": [1.0, 12.0]},
            {"cell": "soc.z.quiet_TRELLIS_FF_Q", "port": "DI", "event": "posedge clk",
             "delay": [1.0, 4.0]},
            {"cell": "pin_TRELLIS_FF_Q", "port": "DI", "event": "<async>", "delay": [20.0, 20.0]},
        ]},
        # launched by an input pin (a synchroniser's first stage): no period applies
        {"net": "rx_pin", "event": "<async>", "endpoints": [
            {"cell": "uart.sync_rx.stage0_TRELLIS_FF_Q", "port": "M", "event": "posedge clk",
             "delay": [11.4, 11.4]}]}]}
    eps = timing_endpoints(report)
    assert len(eps) == 4                      # the asynchronous ones are not clocked paths
    assert group_endpoints(eps, over=10.0) == [(12.0, 1, "soc.y.bank1"),
                                                (11.5, 2, "soc.x.acc")]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    assert te.main([str(path), "--period", "10"]) == 0
    out = capsys.readouterr().out
    assert "4 endpoints, worst arrival 12.00 ns; 3 later than 10 ns" in out
    path.write_text(json.dumps({"critical_paths": []}))
    assert te.main([str(path)]) == 1
    err = capsys.readouterr().err
    assert "--detailed-timing" in err and err.count("\n") == 1


def test_timing_closure_section(tmp_path, monkeypatch):
    """bench.timing_closure: one row per build directory, with the late endpoints counted."""
    from bench import timing_closure as tc, report as bench_report
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkept\n")
    monkeypatch.setattr(tc, "write_section",
                        lambda title, lines: bench_report.write_section(title, lines, doc=doc))
    out = tmp_path / "b1" / "ulx3s-85f"
    out.mkdir(parents=True)
    (out / "report.json").write_text(json.dumps({
        "clocks": {"clk": {"achieved_mhz": 86.51, "target_mhz": 40}},
        "utilization": {"LUT4": {"used": 48361}, "FF": {"used": 29929}},
        "outreg": {"merged_ffs": 2289},
        "nextpnr_options": "--router router1 --placer static --seed 7"}))
    (out / "top.report.json").write_text(json.dumps({"detailed_net_timings": [{"endpoints": [
        {"cell": "soc.sram.q_TRELLIS_FF_Q_1", "port": "DI", "event": "posedge clk",
         "delay": [1.0, 11.5]},
        {"cell": "soc.x_TRELLIS_FF_Q", "port": "DI", "event": "posedge clk",
         "delay": [1.0, 9.0]}]}]}))
    assert tc.main([f"{tmp_path / 'b1'}=abc123: first", "--note", "a note"]) == 0
    text = doc.read_text()
    assert "## Other\n\nkept" in text and "## Timing closure" in text
    assert ("| abc123: first | 86.5 | 40 | static | 7 | 48,361 | 29,929 | 2,289 | 1 | "
            "`soc.sram.q` 11.5 ns |" in text)
    assert text.rstrip().endswith("a note")
    assert tc.main([f"{tmp_path / 'missing'}=x"]) == 1


def test_seed_sweep_command_line():
    """bench.seed_sweep: the build's nextpnr command with another seed, outputs per seed."""
    from bench.seed_sweep import seed_command
    argv = ["--quiet", "--report", "top.report.json", "--router", "router1", "--placer", "static",
            "--seed", "7", "--log", "top.tim", "--json", "top.json", "--textcfg", "top.config"]
    assert seed_command(argv, 3, "seed3") == [
        "--quiet", "--report", "seed3/top.report.json", "--router", "router1", "--placer",
        "static", "--log", "seed3/top.tim", "--json", "top.json", "--textcfg",
        "seed3/top.config", "--seed", "3"]
    heap = seed_command(argv, 5, "seed5", placer="heap")
    assert "--placer" not in heap and heap[-2:] == ["--seed", "5"]
    assert seed_command(argv, 5, "s", placer="sa")[-2:] == ["--placer", "sa"]


FAKE_NEXTPNR = '''\
import json, sys
a = sys.argv[1:]
seed = int(a[a.index("--seed") + 1])
if seed == 13:
    sys.exit("ERROR: placement failed")
open(a[a.index("--textcfg") + 1], "w").write("config")
json.dump({"fmax": {"clk": {"achieved": 80.0 + seed, "constraint": 100.0}},
           "utilization": {"TRELLIS_COMB": {"used": 100, "available": 1000},
                           "TRELLIS_FF": {"used": 50, "available": 1000}},
           "detailed_net_timings": [{"endpoints": [
               {"cell": "soc.x_TRELLIS_FF_Q", "port": "DI", "event": "posedge clk",
                "delay": [1.0, 14.0 - seed / 2]}]}]},
          open(a[a.index("--report") + 1], "w"))
'''


def test_seed_sweep_runs_each_seed(tmp_path, monkeypatch, capsys):
    """The sweep runs nextpnr (here a stand-in script) once per seed on the build's netlist,
    ranks the seeds by fmax, reports a failed seed and writes a report bench.timing_closure
    reads."""
    import os
    import stat
    import sys
    from bench import seed_sweep, timing_closure
    exe = tmp_path / "fake-nextpnr"
    exe.write_text(f"#!{sys.executable}\n" + FAKE_NEXTPNR)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("NEXTPNR_ECP5", str(exe))
    build = tmp_path / "build" / "ulx3s-85f"
    build.mkdir(parents=True)
    (build / "top.json").write_text("{}")
    (build / "report.json").write_text(json.dumps({
        "board": "ulx3s-85f", "family": "ecp5", "clocks": {"clk": {"achieved_mhz": 80.0,
                                                                     "target_mhz": 100.0}},
        "utilization": {"LUT4": {"used": 100}, "FF": {"used": 50}}}))
    (build / "build_top.json").write_text(json.dumps({"commands": [
        ["yosys", "top.ys"],
        ["nextpnr-ecp5", "--report", "top.report.json", "--seed", "7", "--json", "top.json",
         "--textcfg", "top.config"],
        ["ecppack", "--input", "top.config", "--bit", "top.bit"]]}))
    assert seed_sweep.main([str(build), "--seeds", "2", "13", "5", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    rows = [ln.split() for ln in out.splitlines()[1:]]
    assert [r[:2] for r in rows] == [["5", "85.0"], ["2", "82.0"], ["13", "failed"]]
    assert rows[0][2] == "1" and "soc.x 11.5 ns" in out
    summary = timing_closure.summarise(build / "seed5", "ulx3s-85f", 10.0)
    assert summary["fmax"] == 85.0 and summary["late"] == 1 and "--seed 5" in summary["seed"]
    assert (build / "top.report.json").exists() is False     # the build's own files untouched
    # while the build's own nextpnr still runs (no report.json yet): the board from the name
    (build / "report.json").unlink()
    assert seed_sweep.main([str(build), "--seeds", "4"]) == 0
    assert json.loads((build / "seed4" / "report.json").read_text())["clocks"]["clk"] == {
        "achieved_mhz": 84.0, "target_mhz": 100.0, "passed": False}
    capsys.readouterr()
    assert seed_sweep.main([str(tmp_path / "nothing"), "--seeds", "1"]) == 1
    err = capsys.readouterr().err
    assert "no build_top.json" in err and err.count("\n") == 1
    assert os.environ["NEXTPNR_ECP5"] == str(exe)
