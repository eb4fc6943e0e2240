"""The benchmark code on a TINY configuration with Amaranth's simulator, so that it cannot rot unseen.

``python -m bench`` takes hours on the default configuration; here the report writer, the
utilisation measurement (real SoC, pysim, a small random network) and the section/plot writers of the
other benchmarks run in seconds on small inputs.
"""

import json

import numpy as np
import pytest

from contract.config import TINY
from firmware.compiler import compile_model, CompileError
from model.random_deploy import random_deploy

from bench import report, utilisation as U, first_layer as FL, cpu_compare as CC
from firmware.session import open_transport
from platforms import get_board


def test_write_section_replaces_only_its_own_section(tmp_path):
    doc = tmp_path / "B.md"
    report.write_section("One", ["first body"], doc=doc)
    report.write_section("Two", ["second body"], doc=doc)
    report.write_section("One", ["new body", "", "more"], doc=doc)
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n")
    assert text.count("## One\n") == 1 and text.count("## Two\n") == 1
    assert "first body" not in text and "new body\n\nmore\n" in text and "second body" in text
    assert text.index("## One") < text.index("## Two")      # the section keeps its place


def _tiny_model():
    for seed in range(1, 40):
        dep = random_deploy(seed, channels=1, height=6, width=6, num_classes=10, max_convs=2,
                            chan_choices=(8, 16), first="embed")
        try:
            compile_model(dep, TINY)
            return dep
        except CompileError:
            continue
    raise AssertionError("no random model fits TINY")


def test_utilisation_on_tiny_soc_pysim(tmp_path):
    dep = _tiny_model()
    images = np.random.default_rng(1).integers(0, 256, size=(2, 1, 6, 6), dtype=np.uint8)
    transport = open_transport(TINY, "pysim")
    res = U.measure(dep, TINY, transport, images)

    assert res["n_images"] == 2 and res["n_steady"] == 1
    assert res["golden_equal"] == 2                          # bit-exact against model.golden
    conv = [r for r in res["rows"] if r["kind"] in ("conv", "head")]
    assert [r["layer"] for r in conv] == [L["name"] for L in dep.layers if L["kind"] in ("conv", "head")]
    # MAC_BUSY counts exactly the word-sets the compiler plans (one per array cycle)
    assert res["mac_busy"] == res["ideal_compiler"] == sum(r["ideal_compiler"] for r in conv)
    assert sum(r["cycles"] for r in res["rows"]) <= res["cycles"]
    for r in conv:
        assert 0 < r["util"] <= r["eff"] <= 1
        assert r["util"] == pytest.approx(r["macs"] / (TINY.p_o * TINY.p_i) / r["cycles"])
    assert 0 < res["util"] <= res["busy_frac"] < 1

    png = tmp_path / "u.png"
    U.plot(res, png, "tiny")
    assert png.stat().st_size > 1000
    lines = U.section_lines(res, model_name="random", backend="pysim", argv=[], png_name="u.png",
                            images_source="random", fmax=(50e6, "50 MHz"))
    text = "\n".join(lines)
    assert "2 / 2** images equal" in text and "| desc | layer |" in text
    assert f"{res['cycles']:,.0f}" in text
    doc = tmp_path / "B.md"
    report.write_section(U.TITLE, lines, doc=doc)
    assert doc.read_text().count(f"## {U.TITLE}\n") == 1


def test_first_layer_and_cpu_sections_format(tmp_path):
    base = dict(trained=True, accuracy=0.9, accuracy_how="test", source="x", recorded_acc=0.9,
                net={"width": 32, "blocks": [[32, 1]]}, golden_equal=2, n_images=2, input_words=196)
    rows = [dict(base, variant="pixel_embedding", first_kind="embed", cycles=10000.0, first_cycles=2000.0),
            dict(base, variant="float_first", first_kind="host_conv", cycles=8000.0, first_cycles=400.0,
                 input_words=392, host=dict(numpy=1e-4, torch=2e-4, torch_codes_equal=1.0, threads=1)),
            dict(base, variant="uint8_bitserial", first_kind="raw_input", cycles=14000.0,
                 first_cycles=6000.0, accuracy=None)]
    rows[1]["epochs"] = 20       # a variant trained on another schedule says so
    # 100 MHz: 10k cycles = 100 us; float_first 80 us + 100 us host in series, max(80, 100) overlapped
    assert FL.images_per_s(rows[0], 100e6) == pytest.approx((1e4, 1e4))
    assert FL.images_per_s(rows[1], 100e6) == pytest.approx((1 / 180e-6, 1 / 100e-6))
    syn = {m: dict(LUT4_eq=n, DP16KD=e) for m, n, e in (("shipped", 1600, 4), ("raw", 440, 0),
                                                         ("embed", 485, 1))}
    text = "\n".join(FL.section_lines(rows, syn, config=TINY, fmax=(100e6, "100 MHz"), argv=[],
                                      png_name="f.png", n_images=2))
    assert "**1.80x** (series)" in text and "+45 LUT4-eq and +1 EBR" in text
    assert "n/a (not trained)" in text
    assert "90.00 % (20 epochs)" in text and text.count("epochs)") == 1
    FL.plot(rows, tmp_path / "f.png", 100e6)

    rates = {(k, b): (10.0 * b, 20.0 * b) for k in ("torch_int", "torch_float", "golden") for b in (1, 4)}
    lines = CC.section_lines(model_name="m", rates=rates, acc_cycles=20000.0, fmax=(100e6, "100 MHz"),
                             torch_desc="d", same=4, n_check=4, threads=1, hw_eq=2, hw_n=2, argv=[],
                             png_name="c.png", batch=4, config=TINY)
    text = "\n".join(lines)
    assert "**5,000**" in text and "accelerator / this = 500x" in text
    CC.plot(rates, 5000.0, tmp_path / "c.png", 4)


def test_embedding_sweep_grid_rows_and_plot(tmp_path):
    from bench import embedding_sweep as ES
    # d = 16 runs with its table split over two table channels (firmware/compiler/table_split.py)
    assert ES.grid() == [(1, 1), (2, 1), (4, 1), (8, 1), (16, 1), (1, 2), (2, 2), (4, 2), (8, 2),
                         (16, 2)]
    cmd = ES.train_command(4, 2, runs=tmp_path, epochs=3, seed=5)
    assert cmd[cmd.index("--d") + 1] == "4" and cmd[cmd.index("--q-bits") + 1] == "2"
    assert cmd[cmd.index("--blocks") + 1] == "32:1,32:1,64:2,64:1" and cmd[-1].endswith("d4_q2")
    assert "--compile" not in cmd
    assert ES.train_command(4, 2, runs=tmp_path, epochs=3, seed=5, compile=True)[-1] == "--compile"
    deploy, metrics = ES.point_deploy(2, 1, tmp_path)        # not trained: an untrained export
    assert metrics is None and deploy.layers[0]["kind"] == "embed"
    assert (deploy.layers[0]["d"], deploy.layers[0]["q"]) == (2, 1)
    hardware = {"default85": dict(cycles=17672.0, first_cycles=1734.0, golden_equal=2, n_images=2,
                                  mode="window", lut4=812, ebr=1, ff=300),
                "small25": dict(cycles=69991.0, first_cycles=2561.0, golden_equal=2, n_images=2,
                                mode="plain", lut4=640, ebr=1, ff=250)}
    rows = [dict(d=1, q=1, accuracy=0.9012, train_time_s=600.0, table_bits=256, hardware=hardware),
            dict(d=8, q=2, accuracy=None, train_time_s=None, table_bits=4096, hardware=hardware)]
    from contract.config import DEFAULT85, SMALL25
    text = "\n".join(ES.section_lines(rows, configs=[DEFAULT85, SMALL25], hz=40e6, argv=[],
                                      runs=tmp_path, epochs=10, seed=0, png_name="e.png",
                                      shipped_units={"default85": {"LUT4_eq": 1500, "DP16KD": 2}}))
    assert ("| 1 | 1 | 256 | 90.12 % | window | 1,734 / 17,672 | 2/2 | 812 / 1 | plain | 2,561 / 69,991 "
            "| 2/2 | 640 / 1 | 10 min |") in text
    assert "| default85: EMBED mode | default85: first-layer / all cycles |" in text
    assert "p_i = 32 on default85, 16 on small25)" in text
    assert "As built for default85 (d, Q and mode set at run time) the unit takes 1,500 LUT4" in text
    assert "| 8 | 2 | 4,096 | not trained yet |" in text
    ES.plot(rows, tmp_path / "e.png")
    assert (tmp_path / "e.png").stat().st_size > 1000


def test_embedding_sweep_no_write_writes_nothing(tmp_path, monkeypatch):
    """``--no-write`` leaves docs/ alone: neither the section nor the plot (the measurement itself,
    simulators and Yosys, is stood in for; test_embedding_sweep_grid_rows_and_plot covers its rows)."""
    from bench import embedding_sweep as ES

    class Closed:
        async def close(self):
            pass

    written = []
    monkeypatch.setattr(ES, "load_images", lambda n: (None, None, None))
    monkeypatch.setattr(ES, "open_transport", lambda config, backend: Closed())
    monkeypatch.setattr(ES, "measure", lambda points, configs, *rest, **kw: [])
    monkeypatch.setattr(ES, "synth_shipped_unit", lambda config, log: {"LUT4_eq": 1, "DP16KD": 1})
    monkeypatch.setattr(ES, "plot", lambda rows, png: written.append(png))
    monkeypatch.setattr(ES, "write_section", lambda *a, **kw: written.append(a))
    ES.run(["--no-write", "--points", "8:2", "--runs", str(tmp_path)])
    assert written == []
    ES.run(["--points", "8:2", "--runs", str(tmp_path)], write=True)
    assert len(written) == 2


def test_board_throughput_on_the_smallest_board(tmp_path, capsys):
    """bench.board_throughput on the ULX3S-12F (its TINY12 SoC in pysim) with a random model that
    fits it and a batch of 2, the shipped model that does not fit it, and the simulated line at
    3 Mbaud with 4 words each way: rows, the link model's images/s, and the section."""
    from bench import board_throughput as BT
    from contract.config import TINY12
    from firmware.link_model import batch_link
    from model import deploy as mdeploy
    from firmware.session import DEFAULT_MODEL
    dep = None
    for seed in range(1, 40):
        candidate = random_deploy(seed, channels=1, height=6, width=6, num_classes=10, max_convs=2,
                                  chan_choices=(8, 16), first="embed")
        try:
            compiled = compile_model(candidate, TINY12)
        except CompileError:
            continue
        dep = candidate
        break
    assert dep is not None
    images = np.random.default_rng(3).integers(0, 256, size=(2, 1, 6, 6), dtype=np.uint8)
    row = BT.measure_board("ulx3s-12f", dep, images, backend="pysim", max_batch=2,
                           progress=lambda msg: None)
    assert row["clock_hz"] == get_board("ulx3s-12f").target_hz and row["baud"] == 3_000_000
    assert row["golden_equal"] == row["n_images"] == 4        # batch 1 (2 images), batch 2
    (b1, c1), (b2, c2) = row["cases"]
    assert (b1, b2) == (1, 2) and 0 < c2 < c1                  # a batch saves a start's cost
    (_, _, m1), (_, _, m2) = BT.link_rows(row)
    assert m1.images_per_s_accelerator == pytest.approx(row["clock_hz"] / c1)
    assert m2.images_per_s_series == pytest.approx(batch_link(
        2, compiled.input_words, compiled.output_words, baud=3_000_000,
        cycles=int(round(2 * c2)), clock_hz=row["clock_hz"]).images_per_s_series)
    assert m1.images_per_s_series < m1.images_per_s_accelerator

    too_big = BT.measure_board("ulx3s-12f", mdeploy.load(DEFAULT_MODEL), images)
    assert "thr_depth" in too_big["error"] and "cases" not in too_big

    line = BT.measure_line(60_000_000, 3_000_000, 4)
    assert line["divisor"] == 20 and line["wire_bytes"] == 70 and line["payload_bytes"] == 32
    # the bridge's turnaround costs a few cycles per word: within 3 % of the model
    assert 0.97 * line["model_payload_per_s"] < line["payload_per_s"] < line["model_payload_per_s"]

    BT.print_rows([row, too_big], [line])
    out = capsys.readouterr().out
    clock_mhz = get_board("ulx3s-12f").target_hz / 1e6
    assert f"ulx3s-12f (tiny12, {clock_mhz:g} MHz, 3 Mbaud): logits of 4/4" in out
    assert "the shipped model does not fit: layer" in out
    lines = BT.section_lines([row, too_big], [line], model_name="random", backend="pysim", argv=[])
    text = "\n".join(lines)
    header = next(ln for ln in lines if ln.startswith("| board |"))
    assert all(ln.count("|") == header.count("|") for ln in lines
               if ln.startswith("| ulx3s-12f |"))
    assert f"| ulx3s-12f | tiny12 | {clock_mhz:g} MHz | 3 Mbaud | 2 | {c2:,.0f} |" in text
    assert "**modelled**" in text and "| 60 MHz | 3 Mbaud (20) | 4 | 70 |" in text
    doc = tmp_path / "B.md"
    report.write_section(BT.TITLE, lines, doc=doc)
    assert doc.read_text().count(f"## {BT.TITLE}\n") == 1


def test_board_throughput_bad_board_is_one_line(capsys):
    from bench import board_throughput as BT
    assert BT.main(["--boards", "ulx3s-99f", "--no-write"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ulx3s-99f" in err


def test_embedding_unit_specialised_to_a_point_is_synthesised_and_cached(tmp_path, monkeypatch):
    from contract.config import SMALL25
    monkeypatch.setattr(FL, "SYNTH_CACHE", tmp_path / "synth.json")
    small = FL.synth_embed_point(SMALL25, 1, 1, log=lambda *_: None)
    large = FL.synth_embed_point(SMALL25, 8, 2, log=lambda *_: None)
    built = FL.synth_shipped_unit(SMALL25, log=lambda *_: None)
    # pinning d and Q lets Yosys drop the other modes: both specialised units are smaller than the
    # unit as built, which keeps every mode
    assert 0 < small["LUT4_eq"] < built["LUT4_eq"] and 0 < large["LUT4_eq"] < built["LUT4_eq"]
    assert small["DP16KD"] >= 1 and built["DP16KD"] >= small["DP16KD"]
    cached = json.loads((tmp_path / "synth.json").read_text())
    assert len(cached) == 3
    monkeypatch.setattr(FL, "_pinned_unit", None)            # a cache hit elaborates nothing
    assert FL.synth_embed_point(SMALL25, 1, 1, log=lambda *_: None) == small


def test_first_layer_study_reads_the_two_seed_runs(tmp_path):
    """bench.first_layer takes a variant's deploy file from the first seed of the two-seed table
    that has one, and an untrained export of the same network otherwise."""
    import shutil
    from model import deploy as mdeploy
    run = tmp_path / "pixel_embedding_s1"
    run.mkdir()
    shutil.copy(FL.DEFAULT_MODEL, run / "deploy.npz")
    (run / "metrics.json").write_text(json.dumps({"golden_acc": 0.9218}))
    deploy, source, metrics, trained = FL.variant_deploy("pixel_embedding", tmp_path)
    assert trained and source.endswith("pixel_embedding_s1/deploy.npz") and metrics["golden_acc"] == 0.9218
    net = mdeploy.load(FL.DEFAULT_MODEL).header["training"]["net"]
    deploy, source, metrics, trained = FL.variant_deploy("naive", tmp_path, fallback_net=net)
    assert not trained and metrics is None and source.startswith("untrained export")
