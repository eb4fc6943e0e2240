"""The DMA's main-memory address walk over a block of rows."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["DmaSpanWalker"]


class DmaSpanWalker(wiring.Component):
    """Word addresses of a ``rows`` x ``count`` block whose rows are ``mem_stride`` words apart.

    ``start`` loads the first address and the number of words; each ``step`` moves to the next
    word: ``addr + 1`` within a row, ``row start + mem_stride`` after its last word. The
    conditions of the next step are flags kept one step ahead (``more``, and the last column of a
    row), so that the caller's step decision, which enables every address register, is a few LUTs
    from registers.

    Members
    -------
    start : In(1)
        Strobe: begin a block at ``first_addr`` with ``words`` words.
    first_addr : In(32)
    words : In(32)
        ``rows * count``.
    count_minus_2 : In(16)
    count_is_1 : In(1)
        The row length, as the two comparisons the walk needs (held during the walk).
    mem_stride : In(16)
        Words from one row's start to the next (held during the walk).
    step : In(1)
        Strobe (never with ``start``): the word at ``addr`` is issued; go to the next one.
    addr : Out(32)
        Address of the next word.
    more : Out(1)
        Words are left to issue.
    """

    start: In(1)
    first_addr: In(32)
    words: In(32)
    count_minus_2: In(16)
    count_is_1: In(1)
    mem_stride: In(16)
    step: In(1)
    addr: Out(32)
    more: Out(1)

    def elaborate(self, platform):
        m = Module()
        row_start = Signal(32)
        column = Signal(16)
        last_column = Signal()          # column == count - 1
        words_left = Signal(32)

        # start and step come in different cycles; as one if/elif chain per register, Yosys turns
        # both into the flip-flops' clock enable.
        with m.If(self.start):
            m.d.sync += [
                self.addr.eq(self.first_addr),
                row_start.eq(self.first_addr),
                column.eq(0),
                last_column.eq(self.count_is_1),
                words_left.eq(self.words),
                self.more.eq(self.words != 0),
            ]
        with m.Elif(self.step):
            m.d.sync += [words_left.eq(words_left - 1), self.more.eq(words_left != 1)]
            with m.If(last_column):
                m.d.sync += [
                    column.eq(0),
                    last_column.eq(self.count_is_1),
                    row_start.eq(row_start + self.mem_stride),
                    self.addr.eq(row_start + self.mem_stride),
                ]
            with m.Else():
                m.d.sync += [column.eq(column + 1), last_column.eq(column == self.count_minus_2),
                             self.addr.eq(self.addr + 1)]
        return m
