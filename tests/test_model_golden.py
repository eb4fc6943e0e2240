"""Golden executor against a direct, loop-based reading of docs/ARCHITECTURE.md section 1."""

import numpy as np
from hypothesis import given, settings, strategies as st

from model import deploy as dp
from model.random_deploy import random_deploy
from model import golden


def _ref_conv(a, bits, s, p):
    """acc[o,y,x] = sum w*a over taps, out-of-image taps 0, in plain int64 loops over taps."""
    n, cin, h, w = a.shape
    cout, _, k, _ = bits.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    wpm = bits.astype(np.int64) * 2 - 1
    acc = np.zeros((n, cout, ho, wo), np.int64)
    a = a.astype(np.int64)
    for ky in range(k):
        for kx in range(k):
            for y in range(ho):
                for x in range(wo):
                    iy, ix = y * s + ky - p, x * s + kx - p
                    if 0 <= iy < h and 0 <= ix < w:
                        acc[:, :, y, x] += a[:, :, iy, ix] @ wpm[:, :, ky, kx].T
    return acc


def _ref_codes(v, t, d, q):
    out = np.zeros(v.shape, np.int64)
    for o in range(v.shape[1]):
        for j in range(t.shape[1]):
            out[:, o] += (v[:, o] >= t[o, j]) if d[o] == 1 else (v[:, o] <= t[o, j])
    return np.minimum(out, 2**q - 1)


def reference(m, images):
    """Slow reference executor: returns (logits_int, logits, tensors)."""
    t = {"image": images}
    for L in m.layers:
        x, la, out = t[L["input"]], L["arrays"], L["outputs"]
        if L["kind"] == "embed":
            C, d = la["table"].shape[0], L["d"]
            o = np.zeros((len(x), C * d) + x.shape[2:], np.int64)
            for c in range(C):
                for j in range(d):
                    o[:, c * d + j] = la["table"][c, :, j][x[:, c]]
            t[out["codes"]] = o
        elif L["kind"] == "raw_input":
            t[out["codes"]] = x.astype(np.int64)
        elif L["kind"] == "host_conv":
            import torch
            y = torch.nn.functional.conv2d(
                torch.from_numpy((x.astype(np.float32) / np.float32(255)).astype(np.float64)),
                torch.from_numpy(la["weight"].astype(np.float64)),
                torch.from_numpy(la["bias"].astype(np.float64)), stride=L["stride"],
                padding=L["pad"]).numpy()
            t[out["codes"]] = _ref_codes(y, la["thresholds"].astype(np.float64), la["direction"],
                                         L["q"])
        elif L["kind"] == "conv":
            v = _ref_conv(x, la["weight_bits"], L["stride"], L["pad"])
            if L["residual"]:
                v = v + t[L["residual"]]
            if out["acc"]:
                t[out["acc"]] = v
            if out["codes"]:
                c = _ref_codes(v, la["thresholds"], la["direction"], L["q"])
                if L["pool"] == "max2":
                    n, ch, h, w = c.shape
                    c = np.maximum.reduce([c[:, :, dy::2, dx::2] for dy in (0, 1) for dx in (0, 1)])
                t[out["codes"]] = c
        else:
            acc = _ref_conv(x, la["weight_bits"], 1, 0)
            li = acc.sum(axis=(2, 3))
            t[out["logits"]] = li
            lf = (la["scale"] * li.astype(np.float32) + la["bias"]).astype(np.float32)
    return li, lf, t


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.booleans(), st.integers(1, 5))
def test_golden_matches_reference(seed, hardware, n):
    m = random_deploy(seed, hardware=hardware)
    rng = np.random.default_rng(seed + 1)
    images = rng.integers(0, 256, size=(n,) + m.input_shape).astype(np.uint8)
    r = golden.run(m, images, batch_size=2)
    li, lf, t = reference(m, images)
    np.testing.assert_array_equal(r.logits_int, li)
    np.testing.assert_array_equal(r.logits, lf)
    assert r.logits.dtype == np.float32 and r.logits_int.dtype == np.int64
    assert set(r.tensors) == set(t)
    for name in t:
        np.testing.assert_array_equal(r.tensors[name], t[name], err_msg=name)
        info = m.tensors[name]
        if info.kind == "codes":
            assert r.tensors[name].dtype == np.uint8
            assert r.tensors[name].max() < 2 ** info.bits
        if info.kind in ("codes", "ints"):
            assert r.tensors[name].shape[1:] == info.shape


def test_random_models_produce_varied_codes():
    """Thresholds of random models are centred so that codes are not constant (tests can fail)."""
    varied = 0
    for seed in range(20):
        m = random_deploy(seed)
        images = np.random.default_rng(seed).integers(0, 256, (4,) + m.input_shape, dtype=np.uint8)
        r = golden.run(m, images)
        for name, info in m.tensors.items():
            if info.kind == "codes" and info.producer and info.producer.startswith("conv"):
                varied += len(np.unique(r.tensors[name])) > 1
    assert varied >= 20


def test_golden_loads_path_and_rejects_bad_images(tmp_path):
    m = random_deploy(11)
    dp.save(tmp_path / "m.npz", m.header, m.arrays)
    images = np.zeros((2,) + m.input_shape, np.uint8)
    r = golden.run(tmp_path / "m.npz", images)
    assert r.logits.shape == (2, m.num_classes)
    import pytest
    with pytest.raises(TypeError):
        golden.run(m, images.astype(np.int32))
    with pytest.raises(ValueError):
        golden.run(m, images[:, :, :-1])


def test_threshold_semantics_by_hand():
    v = np.array([-5, -1, 0, 1, 2, 3, 7]).reshape(1, 1, 1, -1)
    t = np.array([[0, 2, 3]])
    np.testing.assert_array_equal(golden.apply_thresholds(v, t, np.array([1]), 2).ravel(),
                                  [0, 0, 1, 1, 2, 3, 3])
    np.testing.assert_array_equal(golden.apply_thresholds(v, t, np.array([-1]), 2).ravel(),
                                  [3, 3, 3, 2, 2, 1, 0])
    np.testing.assert_array_equal(golden.apply_thresholds(v, t[:, :1], np.array([1]), 1).ravel(),
                                  [0, 0, 1, 1, 1, 1, 1])
