"""The compiler package's public seams: the command line's configurations, the passes run one by
one, the host-side input preparation through ``model.golden.run_layers``."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from contract.config import CONFIGS, DEFAULT
from firmware import layout
from firmware.compiler import (CompileError, TensorPlacement, compile_model, host_conv_codes, main)
from firmware.compiler.analysis import analyse_network
from firmware.compiler.buffers import allocate_buffers
from firmware.compiler.memory_image import build_compiled_model
from firmware.compiler.packing import pack_parameters
from model import golden
from model.random_deploy import random_deploy


ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "model" / "shipped" / "default.npz"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_cli_accepts_every_configuration(name, capsys):
    status = main([str(SHIPPED), "--config", name])
    out, err = capsys.readouterr()
    if status == 0:
        assert f"p_o={CONFIGS[name].p_o} p_i={CONFIGS[name].p_i}" in out
    else:
        # the shipped network does not fit the smallest configurations: a fit error, not a usage one
        assert status == 1 and err.startswith("error: layer ") and len(err.strip().splitlines()) == 1


def test_cli_unknown_configuration_is_one_line():
    r = subprocess.run([sys.executable, "-m", "firmware.compiler", str(SHIPPED), "--config", "nope"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == \
        [f"error: unknown configuration 'nope' (one of {', '.join(CONFIGS)})"]


@pytest.mark.parametrize("seed", range(6))
def test_passes_one_by_one_equal_compile_model(seed):
    m = random_deploy(seed)
    want = compile_model(m, DEFAULT, dump=True)
    network = analyse_network(m.header, m.arrays, DEFAULT)
    buffers = allocate_buffers(network)
    params = pack_parameters(network, buffers)
    got = build_compiled_model(network, buffers, params, 0, dump=True)
    np.testing.assert_array_equal(got.memory, want.memory)
    assert got.allocation_table() == want.allocation_table() and got.dumps == want.dumps
    assert all(isinstance(t, TensorPlacement) for t in got.tensors.values())


@pytest.mark.parametrize("seed", range(8))
def test_run_layers_is_run_on_one_batch(seed):
    m = random_deploy(seed, hardware=seed % 2 == 0)
    images = np.random.default_rng(seed).integers(0, 256, size=(3, *m.input_shape), dtype=np.uint8)
    logits_int, logits, tensors = golden.run_layers(m.layers, images)
    want = golden.run(m, images)
    np.testing.assert_array_equal(logits_int, want.logits_int)
    np.testing.assert_array_equal(logits, want.logits)
    assert tensors.keys() == want.tensors.keys()
    for name in tensors:
        np.testing.assert_array_equal(tensors[name], want.tensors[name], err_msg=name)
    assert golden.run_layers(m.layers, images, keep_tensors=False)[2] == {}


def test_host_input_is_the_golden_first_layer_in_code_bank_layout():
    compiled_models = 0
    for seed in range(40):
        m = random_deploy(seed, hardware=False, channels=1, chan_choices=(4, 8, 24), first="host_conv")
        try:
            cm = compile_model(m, DEFAULT)
        except CompileError:
            continue
        compiled_models += 1
        assert cm.input_kind == "host_codes"
        first = m.layers[0]
        images = np.random.default_rng(seed).integers(0, 256, size=(2, *m.input_shape), dtype=np.uint8)
        want = golden.run(m, images).tensors[first["outputs"]["codes"]]
        for image, codes in zip(images, want):
            np.testing.assert_array_equal(host_conv_codes(cm.host_layer, cm.host_arrays, image), codes)
            words = cm.prepare_input(image)
            assert len(words) == cm.input_words
            np.testing.assert_array_equal(words, layout.encode_codes(codes.astype(np.int64), first["q"], DEFAULT))
        with pytest.raises(ValueError, match="image must be uint8"):
            cm.prepare_input(images[0].astype(np.int16))
        if compiled_models == 3:
            break
    assert compiled_models == 3
