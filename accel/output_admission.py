"""The output unit's input side: when a pixel may enter, so that the pipeline behind never stalls."""

from amaranth.hdl import Module, Signal, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["PixelAdmission"]


class PixelAdmission(wiring.Component):
    """``ready`` for the output unit's input stream.

    A pixel is taken only when it can go all the way through: the group's thresholds are loaded,
    no threshold load is running, the group's last pixel has not been taken yet (``closed``: its
    successor waits for the next group's thresholds), and a pixel that will write code words comes
    at least ``code_words`` cycles after the previous writing pixel (the code writer writes one
    word per cycle). A pixel writes when ``thr_out``, its group has code words left
    (``group * code_words < n_cig_out``), and, with ``pool``, it is the fourth of its window.

    ``ready`` is a register, computed a cycle ahead from the state this cycle's take leaves behind,
    so the consumer's take does not pass through the descriptor-dependent logic here. It is late
    by one cycle only where the state changes without a take (the end of a write gap or of a
    threshold load).

    Parameters
    ----------
    code_words : int
        Code words per writing pixel (``m = p_o / p_i``).

    Members
    -------
    valid, last : ``In(1)``
        The input stream's ``valid`` and its pixel's ``tag.last``.
    ready : ``Out(1)``
    thresholds_loaded, loading : ``In(1)``
        From the threshold loader.
    group_done : ``In(1)``
        The group's last pixel has passed the comparison: the next group may begin.
    thr_out, pool : ``In(1)``; n_cig_out : ``In(6)``
        The layer's mode.
    start : ``In(1)``
        Before a layer.
    """

    def __init__(self, code_words):
        if not isinstance(code_words, int) or isinstance(code_words, bool):
            raise TypeError(f"code_words must be an int, not {code_words!r}")
        if code_words < 1:
            raise ValueError(f"code_words must be at least 1, not {code_words}")
        self.code_words = code_words
        super().__init__({
            "valid": In(1), "last": In(1), "ready": Out(1),
            "thresholds_loaded": In(1), "loading": In(1), "group_done": In(1),
            "thr_out": In(1), "pool": In(1), "n_cig_out": In(6),
            "start": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        mm = self.code_words
        in_phase = Signal(2)      # pool phase of the next pixel taken
        in_rem_pos = Signal()     # the group of the next pixel taken writes code words
        in_rem = Signal(signed(9))
        gap = Signal(range(max(mm, 2)))
        closed = Signal()         # the group's last pixel has been taken; wait for the reload
        will_write = self.thr_out & in_rem_pos & (~self.pool | (in_phase == 3))
        ready = self.ready
        take = self.valid & ready
        take_last = take & self.last
        gap_next_zero = Mux(take & will_write & (mm > 1), 0, gap <= 1)
        phase_next_3 = Mux(take, in_phase == 2, in_phase == 3)
        will_write_next = self.thr_out & in_rem_pos & (~self.pool | phase_next_3)
        m.d.sync += ready.eq(self.thresholds_loaded & ~closed & ~self.loading & ~self.start
                             & ~take_last & (gap_next_zero | ~will_write_next))
        with m.If(gap != 0):
            m.d.sync += gap.eq(gap - 1)
        with m.If(take):
            with m.If(will_write & (mm > 1)):
                m.d.sync += gap.eq(mm - 1)
            with m.If(self.pool):
                m.d.sync += in_phase.eq(in_phase + 1)
            with m.If(self.last):
                m.d.sync += [closed.eq(1), in_rem.eq(in_rem - mm), in_rem_pos.eq(in_rem > mm)]
        with m.If(self.group_done):
            m.d.sync += closed.eq(0)

        with m.If(self.start):
            m.d.sync += [closed.eq(0), in_phase.eq(0), in_rem.eq(self.n_cig_out),
                         in_rem_pos.eq(self.n_cig_out != 0), gap.eq(0)]
        return m
