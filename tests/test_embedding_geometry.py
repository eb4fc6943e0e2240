# amaranth: UnusedElaboratable=no
"""WindowGeometry against the formulas of window mode's walk limits, two cycles after its inputs."""

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from accel.embedding_geometry import WindowGeometry
from simutil import run


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(max_k=st.integers(1, 4), cases=st.lists(
    st.tuples(st.integers(0, 3), st.integers(1, 3), st.integers(0, 3), st.integers(1, 1023),
              st.integers(1, 1023), st.integers(1, 1023), st.integers(1, 1023)),
    min_size=1, max_size=8))
def test_limits(max_k, cases):
    dut = WindowGeometry(max_k)

    async def bench(ctx):
        for k_pick, stride, pad, h_in, w_in, h_out, w_out in cases:
            k = 1 + k_pick % max_k
            for name, v in (("win_k", k), ("stride", stride), ("pad", pad), ("h_in", h_in),
                            ("w_in", w_in), ("h_out", h_out), ("w_out", w_out)):
                ctx.set(getattr(dut, name), v)
            await ctx.tick().repeat(2)
            got = {name: ctx.get(getattr(dut, name)) for name in (
                "last_column", "last_row", "image_last_column", "image_last_row", "row_words",
                "row_words_minus_stride")}
            assert got == {
                "last_column": max(pad + w_in - 1, (w_out - 1) * stride + k - 1),
                "last_row": max(pad + h_in - 1, (h_out - 1) * stride + k - 1),
                "image_last_column": pad + w_in - 1,
                "image_last_row": pad + h_in - 1,
                "row_words": w_out * k,
                "row_words_minus_stride": (w_out * k - stride) % (1 << 20),   # 20-bit wrap
            }, (k, stride, pad, h_in, w_in, h_out, w_out)

    run(dut, [bench], "embedding_geometry")


def test_parameters_checked():
    with pytest.raises(TypeError):
        WindowGeometry(None)
    with pytest.raises(ValueError):
        WindowGeometry(16)
