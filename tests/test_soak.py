"""The soak (``bench/soak.py``): a sample of random networks on two configurations' compiled
simulators, with wait states, bit-exact against the golden model; and the soak's own reporting.

The sample's seeds (0..29) cover every first-layer kind, layer option and compiler option in
``COVERAGE_KEYS``; the test checks that they still do, so that a change of the generator cannot
quietly shrink what the sample exercises.
"""

import pytest

from bench import soak as soak_module
from bench.soak import COVERAGE_KEYS, Soak, main, network_parameters, soak
from contract.config import CONFIGS
from model import golden


SAMPLE_SEEDS = range(30)
SAMPLE_CONFIGS = ("tiny", "small25")


@pytest.fixture(scope="module")
def sample():
    return soak(SAMPLE_SEEDS, configs=SAMPLE_CONFIGS, images=2, wait_states=192, progress=False)


def test_sample_is_bit_exact_without_hangs(sample):
    report = sample.as_dict()
    assert not sample.failures, "\n".join(
        f"seed {f['seed']} ({f['config']}, {f['kind']}): {f['message']}; rerun: {f['rerun']}"
        for f in sample.failures)
    assert report["mismatches"] == report["refsim_mismatches"] == 0
    assert report["hangs"] == report["errors"] == report["crashes"] == 0
    assert report["networks"] == len(SAMPLE_SEEDS)
    # the generator is shaped per configuration: most networks compile
    assert report["refused"] <= len(SAMPLE_SEEDS) // 5, report["refused_reasons"]
    assert report["images"] == 2 * report["compiled"]
    assert report["cycles_simulated"] > 0
    assert all(report["per_config"][name]["images"] > 0 for name in SAMPLE_CONFIGS)


def test_sample_covers_every_kind_and_option(sample):
    assert [key for key in COVERAGE_KEYS if not sample.coverage[key]] == []


def test_parameters_fit_the_configuration():
    for name in SAMPLE_CONFIGS:
        config = CONFIGS[name]
        for seed in range(200):
            generator, _, largest = network_parameters(seed, config)
            assert generator["channels"] <= config.emb_channels
            assert generator["channels"] * generator["max_embed_d"] <= config.p_i
            if largest:
                side = soak_module.largest_image_side(config, generator["first"],
                                                      generator["channels"],
                                                      generator["max_embed_d"])
                assert generator["height"] == generator["width"] == side


def test_a_wrong_result_is_reported_with_its_seed(monkeypatch):
    """The soak's comparison can fail: golden logits off by one make every path report a mismatch,
    the hardware's as well as the reference simulator's, with a command to rerun the seed."""
    real_run = golden.run

    def off_by_one(*args, **kwargs):
        result = real_run(*args, **kwargs)
        result.logits_int[...] += 1
        return result

    monkeypatch.setattr(golden, "run", off_by_one)
    seed = next(s for s in range(100) if network_parameters(s, CONFIGS["tiny"])[0]["height"] <= 8)
    for refsim, kind in ((True, "refsim_mismatch"), (False, "mismatch")):
        result = soak([seed], configs=("tiny",), images=1, refsim=refsim, progress=False)
        assert [f["kind"] for f in result.failures] == [kind]
        assert result.first_failing_seed == seed
        assert f"--only-seed {seed}" in result.failures[0]["rerun"]
        assert "first failing seed: " + str(seed) in result.summary()
        # the cycles of a failed run still count (and the accelerator restarts afterwards)
        assert (result.cycles > 0) == (not refsim)


def test_bad_arguments_are_one_line(capsys):
    for argv in (["--configs", "nonsense"], ["--networks", "0"], ["--wait-states", "300"],
                 ["--images", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_soak_rejects_bad_parameters():
    with pytest.raises(ValueError):
        Soak(())
    with pytest.raises(ValueError):
        Soak(("tiny",), wait_states=256)
    with pytest.raises(ValueError):
        Soak(("tiny",), images=0)


def test_a_crash_is_reported_not_raised(monkeypatch):
    """An exception inside a network's run (here the compiler's) is one failure of kind
    ``crash``; the soak goes on with the next network."""
    import firmware.compiler

    def broken(*args, **kwargs):
        raise ValueError("broken on purpose")

    monkeypatch.setattr(firmware.compiler, "compile_model", broken)
    result = soak([0, 1], configs=("tiny",), images=1, progress=False)
    assert [(f["seed"], f["kind"]) for f in result.failures] == [(0, "crash"), (1, "crash")]
    assert "broken on purpose" in result.failures[0]["message"]
    assert result.as_dict()["crashes"] == 2
