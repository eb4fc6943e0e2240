"""Bad input a user can reach: one line naming the problem, a nonzero exit, nothing half-written.

The deploy-file loader is fuzzed (truncation, flipped byte ranges, hand-edited headers): every
variant either loads as a valid model or raises ``DeployError``, never anything else, never a hang.
"""

import io
import json
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


def run_cli(*argv, timeout=120):
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


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
