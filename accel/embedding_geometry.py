"""The window walk's limits, derived from an EMBED descriptor's geometry in two register stages."""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["WindowGeometry", "check_max_k"]


def check_max_k(max_k):
    """Validate the largest window size of the embedding unit's window mode (``win_k`` is 4 bits)."""
    if not isinstance(max_k, int) or isinstance(max_k, bool):
        raise TypeError(f"max_k must be an int, not {max_k!r}")
    if not 1 <= max_k <= 15:
        raise ValueError(f"max_k must be 1..15 (win_k is 4 bits), not {max_k}")


def _times_small(x, y, bits):
    """``x * y`` for a ``bits``-bit ``y``, as shifts and adds (no multiplier)."""
    return sum(Mux(y[b], x << b, 0) for b in range(bits))


class WindowGeometry(wiring.Component):
    """Limits of the zero-padded image walk of window mode, two cycles after the geometry.

    The products by ``stride`` (1..3) and ``win_k`` (1..``max_k``) are shifts and adds, spread over
    two register stages that follow the (stable) inputs every cycle: from the descriptor to the
    walker's limits in one cycle would be the longest path of the SoC. Outputs are meaningful for
    valid window geometries (``stride >= 1``, ``1 <= win_k <= max_k``, ``w_out, h_out >= 1``).

    Parameters
    ----------
    max_k : int
        The largest window size (the embedding unit's table count).

    Members
    -------
    win_k : ``In(4)``
    stride, pad : ``In(2)``
    h_in, w_in, h_out, w_out : ``In(10)``
    last_column, last_row : ``Out(12)``
        Last virtual column (row) the walk visits:
        ``max(pad + w_in - 1, (w_out - 1) * stride + win_k - 1)``.
    image_last_column, image_last_row : ``Out(12)``
        ``pad + w_in - 1`` (``pad + h_in - 1``): the last virtual column (row) inside the image.
        One cycle ahead of the others.
    row_words : ``Out(20)``
        ``w_out * win_k``: code-bank words of one row of windows.
    row_words_minus_stride : ``Out(20)``
        ``w_out * win_k - stride``: from a window row's destination to the one of the window above.
    """

    def __init__(self, max_k):
        check_max_k(max_k)
        self.max_k = max_k
        super().__init__({
            "win_k": In(4), "stride": In(2), "pad": In(2),
            "h_in": In(10), "w_in": In(10), "h_out": In(10), "w_out": In(10),
            "last_column": Out(12), "last_row": Out(12),
            "image_last_column": Out(12), "image_last_row": Out(12),
            "row_words": Out(20), "row_words_minus_stride": Out(20),
        })

    def elaborate(self, platform):
        m = Module()
        k_bits = max(1, self.max_k.bit_length())
        # stage 1
        w_cover_m1 = Signal(12)   # (w_out - 1) * stride + k - 1: last virtual column windows cover
        h_cover_m1 = Signal(12)
        xh_m1 = self.image_last_column
        yh_m1 = self.image_last_row
        wk_a = Signal(20)
        m.d.sync += [w_cover_m1.eq(_times_small(self.w_out - 1, self.stride, 2) + self.win_k - 1),
                     h_cover_m1.eq(_times_small(self.h_out - 1, self.stride, 2) + self.win_k - 1),
                     xh_m1.eq(self.pad + self.w_in - 1), yh_m1.eq(self.pad + self.h_in - 1),
                     wk_a.eq(_times_small(self.w_out, self.win_k, k_bits))]
        # stage 2
        m.d.sync += [self.last_column.eq(Mux(xh_m1 > w_cover_m1, xh_m1, w_cover_m1)),
                     self.last_row.eq(Mux(yh_m1 > h_cover_m1, yh_m1, h_cover_m1)),
                     self.row_words.eq(wk_a), self.row_words_minus_stride.eq(wk_a - self.stride)]
        return m
