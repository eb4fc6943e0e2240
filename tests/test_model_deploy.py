"""Deploy file: round-trip, validation and rejection of malformed files (docs/ARCHITECTURE.md 2)."""

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from model import deploy as dp
from model.random_deploy import random_deploy
from model.deploy import DeployError


def _write(path, header, arrays):
    """Write an archive bypassing validation (to build malformed files)."""
    enc = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, header=enc, **arrays)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.booleans())
def test_round_trip(tmp_path_factory, seed, hardware):
    m = random_deploy(seed, hardware=hardware)
    path = tmp_path_factory.mktemp("rt") / "m.npz"
    dp.save(path, m.header, m.arrays)
    m2 = dp.load(path)
    assert m2.header == m.header
    assert set(m2.arrays) == set(m.arrays)
    for k in m.arrays:
        assert m2.arrays[k].dtype == m.arrays[k].dtype
        np.testing.assert_array_equal(m2.arrays[k], m.arrays[k])
    assert list(m2.tensors) == list(m.tensors)


def test_pack_bits_layout():
    bits = np.zeros((2, 3, 1, 1), np.uint8)
    bits[0, 0, 0, 0] = 1   # flat index 0 -> bit 0 of byte 0
    bits[1, 2, 0, 0] = 1   # flat index 5 -> bit 5 of byte 0
    assert dp.pack_bits(bits).tolist() == [0b100001]
    np.testing.assert_array_equal(dp.unpack_bits(dp.pack_bits(bits), bits.shape), bits)


def test_hardware_models_respect_limits():
    for seed in range(60):
        m = random_deploy(seed, hardware=True)
        assert m.layers[0]["kind"] in ("embed", "raw_input")
        first_conv = True
        for layer in m.layers:
            if layer["kind"] == "embed":
                assert layer["d"] * layer["q"] <= 16 and layer["q"] <= 2
            if layer["kind"] == "conv":
                assert layer["k"] in (1, 3) and layer["pad"] == layer["k"] // 2
                assert layer["stride"] in (1, 2)
                assert layer["q"] in (None, 1, 2)
                assert layer["in_bits"] <= 2 or (first_conv and layer["in_bits"] == 8)
                first_conv = False
                if "thresholds" in layer["arrays"]:
                    assert np.abs(layer["arrays"]["thresholds"]).max() <= 32767


@pytest.fixture
def good(tmp_path):
    m = random_deploy(7, hardware=True, first="embed")
    return m, tmp_path


def _expect(path, fragment):
    with pytest.raises(DeployError) as ei:
        dp.load(path)
    msg = str(ei.value)
    assert "\n" not in msg
    assert fragment in msg, msg


def test_truncated(good):
    m, tmp = good
    path = tmp / "m.npz"
    dp.save(path, m.header, m.arrays)
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 5):
        bad = tmp / f"t{cut}.npz"
        bad.write_bytes(data[:cut])
        _expect(bad, "t%d.npz" % cut)


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.npz", "no such file")


def test_wrong_version(good):
    m, tmp = good
    for v in (2, 0, "1", True):
        h = dict(m.header, version=v)
        _write(tmp / "v.npz", h, m.arrays)
        _expect(tmp / "v.npz", "version")


def test_wrong_format_tag(good):
    m, tmp = good
    _write(tmp / "f.npz", dict(m.header, format="something-else"), m.arrays)
    _expect(tmp / "f.npz", "format")


def test_wrong_dtype_and_shape(good):
    m, tmp = good
    arr = dict(m.arrays)
    arr["embed.table"] = m.arrays["embed.table"].astype(np.int16)
    _write(tmp / "d.npz", m.header, arr)
    _expect(tmp / "d.npz", "dtype")
    arr = dict(m.arrays)
    arr["embed.table"] = m.arrays["embed.table"][:, :255]
    _write(tmp / "s.npz", m.header, arr)
    _expect(tmp / "s.npz", "shape")
    arr = dict(m.arrays)
    arr["head.weight"] = np.concatenate([m.arrays["head.weight"], [0]]).astype(np.uint8)
    _write(tmp / "w.npz", m.header, arr)
    _expect(tmp / "w.npz", "head.weight")


def test_pickled_object_array(good):
    m, tmp = good
    arr = dict(m.arrays)
    arr["head.scale"] = np.array([{"evil": 1}] * len(m.arrays["head.scale"]), dtype=object)
    np.savez(tmp / "p.npz", header=np.frombuffer(json.dumps(m.header).encode(), np.uint8),
             **arr)
    _expect(tmp / "p.npz", "p.npz")


def test_header_not_json_or_wrong_dtype(good):
    m, tmp = good
    np.savez(tmp / "h.npz", header=np.frombuffer(b"\xff\xfe{", np.uint8), **m.arrays)
    _expect(tmp / "h.npz", "header")
    np.savez(tmp / "h2.npz", header=np.zeros(4, np.int32), **m.arrays)
    _expect(tmp / "h2.npz", "header")
    np.savez(tmp / "h3.npz", **m.arrays)
    _expect(tmp / "h3.npz", "header")


def test_not_a_zip(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"hello world, not a zip")
    _expect(tmp_path / "x.npz", "x.npz")


def _mutate(m, fn):
    h = json.loads(json.dumps(m.header))
    fn(h)
    return h


@pytest.mark.parametrize("fn,fragment", [
    (lambda h: h["layers"][1].update(cin=h["layers"][1]["cin"] + 1), "cin"),
    (lambda h: h["layers"][1].update(k=2.0), "'k'"),
    (lambda h: h["layers"][1].update(input="nowhere"), "input"),
    (lambda h: h["layers"][1].update(kind="deconv"), "kind"),
    (lambda h: h["layers"][1].update(extra=1), "unknown field"),
    (lambda h: h["layers"].pop(), "head"),
    (lambda h: h["layers"][-1].update(classes=h["num_classes"] + 1), "classes"),
    (lambda h: h["layers"][0].update(q=9), "'q'"),
    (lambda h: h.pop("training"), "training"),
    (lambda h: h["input"].update(channels=0), "channels"),
])
def test_bad_header_fields(good, fn, fragment):
    m, tmp = good
    _write(tmp / "b.npz", _mutate(m, fn), m.arrays)
    _expect(tmp / "b.npz", fragment)


def test_bad_values(good):
    m, tmp = good
    arr = dict(m.arrays)
    arr["head.scale"] = -np.abs(m.arrays["head.scale"])
    _write(tmp / "n.npz", m.header, arr)
    _expect(tmp / "n.npz", "> 0")
    arr = dict(m.arrays)
    arr["embed.table"] = np.full_like(m.arrays["embed.table"], 255)
    _write(tmp / "e.npz", m.header, arr)
    _expect(tmp / "e.npz", "2^q")
    conv = next(l for l in m.layers if "thresholds" in l["arrays"])["name"]
    arr = dict(m.arrays)
    arr[f"{conv}.direction"] = np.zeros_like(m.arrays[f"{conv}.direction"])
    _write(tmp / "dir.npz", m.header, arr)
    _expect(tmp / "dir.npz", "direction")
    arr = dict(m.arrays, stray=np.zeros(3, np.uint8))
    _write(tmp / "x.npz", m.header, arr)
    _expect(tmp / "x.npz", "unknown array")


def test_save_rejects_invalid(tmp_path):
    m = random_deploy(3)
    with pytest.raises(DeployError):
        dp.save(tmp_path / "bad.npz", dict(m.header, version=2), m.arrays)
    assert not (tmp_path / "bad.npz").exists()
