"""Quantized layers: pixel embedding merge, STE gradients, thermometer init, threshold folding."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from model.layers import (ActQuant, BinaryConv2d, PixelEmbedding, binarize, fold_float_thresholds,
                          fold_thresholds, thermometer_table)


def _all_values(c):
    """uint8 images (1, C, 16, 16) holding every pixel value 0..255 in every channel."""
    return torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).repeat(1, c, 1, 1)


@pytest.mark.parametrize("init", ["thermometer", "linear", "random"])
@pytest.mark.parametrize("c,d,q", [(1, 4, 2), (3, 5, 1), (2, 8, 2), (1, 1, 3)])
def test_merge_equals_forward_all_256_values(init, c, d, q):
    torch.manual_seed(0)
    emb = PixelEmbedding(c, d, q, init=init)
    x = _all_values(c)
    for trial in range(3):
        for mode in (True, False):
            emb.train(mode)
            codes = emb(x)  # (1, C*d, 16, 16)
            table = emb.merge()
            assert table.dtype == np.uint8 and table.shape == (c, 256, d)
            assert table.max() < 2 ** q
            for ci in range(c):
                for j in range(d):
                    got = codes[0, ci * d + j].flatten().detach().numpy()
                    np.testing.assert_array_equal(got, table[ci, :, j].astype(np.float32))
        # perturb like training does: move the table and the step
        with torch.no_grad():
            emb.table.add_(torch.randn_like(emb.table) * 0.7)
            emb.act.step.mul_(1.3)


def test_thermometer_formula_and_example():
    # k = 2, l = 2: the codes rise one element at a time: 00, 01, 11, 12, 22, 23, 33 (ERN paper,
    # written with the element that rises first on the right)
    t = thermometer_table(2, 2)
    seq = []
    for row in t:
        s = f"{row[1]}{row[0]}"
        if not seq or seq[-1] != s:
            seq.append(s)
    assert seq == ["00", "01", "11", "12", "22", "23", "33"]
    for d, q in [(4, 2), (10, 2), (5, 1), (3, 3)]:
        t = thermometer_table(d, q)
        s = max(1, 255 // (((1 << q) - 1) * d))
        for x in range(256):
            for i in range(d):
                y = x / (s * d) + 1 - (i + 1) / d
                z = min(max(int(np.floor(y + 1e-12)), 0), (1 << q) - 1)
                assert t[x, i] == z
        emb = PixelEmbedding(1, d, q)
        np.testing.assert_array_equal(emb.merge()[0], t)


def test_gradients_reach_table_through_ste():
    torch.manual_seed(1)
    emb = PixelEmbedding(1, 4, 2, init="linear")
    x = _all_values(1)
    out = emb(x)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    g = emb.table.grad
    assert g is not None and g.shape == emb.table.shape
    # every table entry inside the clamp range receives the straight-through gradient w / step
    inside = (emb.table.detach() / emb.act.effective_step() >= 0) & \
             (emb.table.detach() / emb.act.effective_step() <= 3)
    assert inside.sum() > 500
    expected = w[0].permute(1, 2, 0).reshape(256, 4) / emb.act.effective_step().detach()
    np.testing.assert_allclose(g[0][inside[0]].numpy(), expected[inside[0]].detach().numpy(),
                               rtol=1e-5)
    assert torch.all(g[~inside] == 0)
    assert emb.act.step.grad is not None and emb.act.step.grad.abs() > 0


def test_binary_weight_ste_and_bits():
    w = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.5], requires_grad=True)
    b = binarize(w)
    assert b.tolist() == [-1, -1, 1, 1, 1]
    b.sum().backward()
    assert w.grad.tolist() == [0, 1, 1, 1, 0]
    conv = BinaryConv2d(3, 4, 3, 1)
    bits = conv.weight_bits()
    assert set(np.unique(bits)) <= {0, 1}
    np.testing.assert_array_equal(bits.astype(np.int8) * 2 - 1, conv.binary_weight().detach().numpy())
    x = torch.randint(0, 4, (2, 3, 5, 5)).float()
    acc = conv.acc(x)
    assert torch.equal(acc, acc.round())
    assert conv.weight.grad is None
    conv(x).sum().backward()
    assert conv.weight.grad is not None and conv.alpha.grad is not None


def test_act_quant_codes_and_rounding():
    a = ActQuant(2, step=0.5)
    a.eval()
    x = torch.tensor([-1.0, 0.24, 0.25, 0.74, 0.75, 1.24, 1.25, 9.0])
    assert a(x).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError):
        ActQuant(0)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 3))
def test_fold_thresholds_equals_float_quantizer(seed, q):
    rng = np.random.default_rng(seed)
    C = 16
    A = rng.normal(0, 0.05, C) * rng.choice([1, 1, 1, 0], C)  # some A == 0 channels
    B = rng.normal(0.3, 1.0, C)
    step = float(rng.uniform(0.2, 1.5))
    T, d = fold_thresholds(A, B, step, q)
    assert T.dtype == np.int32 and T.shape == (C, 2 ** q - 1) and np.abs(T).max() <= 32767
    v = np.arange(-3000, 3001)
    y = A[:, None] * v[None, :] + B[:, None]
    want = np.clip(np.floor(y / step + 0.5), 0, 2 ** q - 1)
    cnt = np.zeros_like(want)
    for k in range(T.shape[1]):
        cnt += np.where(d[:, None] > 0, v[None] >= T[:, k:k + 1], v[None] <= T[:, k:k + 1])
    np.testing.assert_array_equal(np.minimum(cnt, 2 ** q - 1), want)
    Tf, df = fold_float_thresholds(A, B, step, q)
    yv = rng.normal(0, 30, (C, 500))
    want = np.clip(np.floor((A[:, None] * yv + B[:, None]) / step + 0.5), 0, 2 ** q - 1)
    cnt = np.zeros_like(want)
    for k in range(Tf.shape[1]):
        cnt += np.where(df[:, None] > 0, yv >= Tf[:, k:k + 1], yv <= Tf[:, k:k + 1])
    assert (np.minimum(cnt, 2 ** q - 1) == want).mean() > 0.999
