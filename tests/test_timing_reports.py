"""bench.timing_endpoints ranks a routed build's late timing endpoints by signal, and
bench.timing_closure puts a series of builds side by side in BENCHMARKS.md."""

import json


def test_timing_endpoints_groups_by_signal(tmp_path, capsys):
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
    eps = te.endpoints(report)
    assert len(eps) == 4                      # the asynchronous ones are not clocked paths
    assert te.group_endpoints(eps, over=10.0) == [(12.0, 1, "soc.y.bank1"),
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
