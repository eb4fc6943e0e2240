# amaranth: UnusedElaboratable=no
"""ThresholdCompare against the reference threshold function, for random values (in and beyond
the 17-bit comparison range), thresholds, negate flags and code widths."""

import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from accel.threshold_compare import ThresholdCompare
from reference import threshold
from simutil import run


def stored(t, negate):
    """A threshold as ThresholdLoader stores it: -T, T = t (negate 0) or 1 - t (negate 1)."""
    return -(1 - t) if negate else -t


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(1, 4), value_bits=st.integers(8, 22), code_bits=st.integers(1, 2),
       seed=st.integers(0, 2**16))
def test_codes_match_reference(rows, value_bits, code_bits, seed):
    dut = ThresholdCompare(rows, value_bits, code_bits)
    rng = random.Random(seed)
    vmax = 1 << (value_bits - 1)
    cases = []
    for _ in range(40):
        thr = [sorted(rng.randrange(-32768, 32768) for _ in range(3)) for _ in range(rows)]
        if rng.random() < 0.5:          # thresholds near the values, so that each count occurs
            thr = [sorted(rng.randrange(-40, 40) for _ in range(3)) for _ in range(rows)]
        neg = [rng.randrange(2) for _ in range(rows)]
        values = [rng.choice([rng.randrange(-vmax, vmax), rng.randrange(-50, 50)])
                  for _ in range(rows)]
        out_bits = rng.randrange(1, 5)
        cases.append((thr, neg, values, out_bits))
    got = []

    async def bench(ctx):
        for thr, neg, values, out_bits in cases:
            for o in range(rows):
                ctx.set(dut.values[o], values[o])
                for k in range(3):
                    ctx.set(dut.thresholds[3 * o + k], stored(thr[o][k], neg[o]))
            ctx.set(dut.negate, sum(n << o for o, n in enumerate(neg)))
            ctx.set(dut.out_bits, out_bits)
            await ctx.tick()
            codes = ctx.get(dut.codes)
            got.append([codes[o] for o in range(rows)])

    run(dut, [bench], "threshold_compare")
    for (thr, neg, values, out_bits), codes in zip(cases, got):
        want = threshold(np.array(values, dtype=np.int64), thr, neg, min(out_bits, 2))
        want = [int(w) & ((1 << code_bits) - 1) for w in want]
        assert codes == want, (thr, neg, values, out_bits)


def test_parameters_checked():
    with pytest.raises(TypeError):
        ThresholdCompare(2, "17", 2)
    with pytest.raises(ValueError):
        ThresholdCompare(0, 17, 2)
