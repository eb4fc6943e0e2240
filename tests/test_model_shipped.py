"""The shipped default deploy file: valid, small, hardware-shaped, and accurate on the fixture."""

from pathlib import Path

import numpy as np

from model import deploy as dp
from model import golden
from model.data import load_fixture

SHIPPED = Path(__file__).resolve().parent.parent / "model" / "shipped" / "default.npz"


def test_shipped_default():
    assert SHIPPED.stat().st_size < 200_000
    m = dp.load(SHIPPED)
    assert m.variant == "pixel_embedding"
    assert m.input_shape == (1, 28, 28) and m.num_classes == 10
    assert m.layers[0]["kind"] == "embed" and m.layers[-1]["kind"] == "head"
    for L in m.layers:
        if L["kind"] == "conv":
            assert L["k"] in (1, 3) and L["pad"] == L["k"] // 2 and L["stride"] in (1, 2)
            assert L["q"] in (None, 2) and L["in_bits"] == 2 and L["cout"] % 32 == 0
            if "thresholds" in L["arrays"]:
                assert np.abs(L["arrays"]["thresholds"]).max() <= 32767
    bound = m.header["training"]["int_bound"]
    assert max(v for k, v in bound.items() if k != "head") < 2 ** 15
    images, labels = load_fixture()
    r = golden.run(m, images, keep_tensors=False)
    acc = (r.predictions == labels).mean()
    assert acc >= 0.89, acc  # 0.922 for the shipped 20-epoch model (90.69% on the full test set)
