"""The output unit's residual write port: each pixel's value (``res_out``) or each group's sums (``sum``)."""

from amaranth.hdl import Module, Signal, Cat, signed
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out

from .row_copies import row_copies


__all__ = ["ResidualWriter"]


class ResidualWriter(wiring.Component):
    """Writes ``v`` back to the pixel's residual word, or adds it into per-row sums.

    With ``res_out``, a pixel's values (truncated to ``res_bits``) go to its residual word
    ``raddr``. With ``sum``, each pixel's values are added into one sum per row, and after the
    group's ``last`` pixel the sums go to residual word ``res_base + group`` and are cleared.
    (The engine rejects ``res_out`` with ``sum``: the port is never wanted twice.) The write is
    presented from registers the cycle after the pixel: the adder and the route to the residual
    buffer's block RAMs would not fit one cycle with the sums' addition.

    The sums are 0 outside sum mode and cleared after each group's write, so ``sums + v`` is both
    the next sum and, outside sum mode, ``v`` itself: one adder and no multiplexer in front of the
    write port. They have no reset: ``start`` clears them one cycle late, from a local register
    (their clear is their flip-flops' synchronous reset, kept off the chip-wide reset and start
    nets); the first pixel arrives long after. Their enables come from register copies per eight
    rows, aligned with the pixel by taking the pipeline stage in front of it (``next_valid``,
    ``next_last``).

    Parameters
    ----------
    rows : int
    res_bits : int
        Width of a row's residual.
    value_bits : int
        Width of the signed values.

    Members
    -------
    values : ``In(ArrayLayout(signed(value_bits), rows))``; valid : ``In(1)``
        A pixel's values, valid for one cycle.
    raddr : ``In(16)``; last : ``In(1)``
        Its residual word, and whether it ends its output-channel group.
    next_valid, next_last : ``In(1)``
        ``valid`` and ``last`` one cycle ahead (the stage in front).
    res_out, sum : ``In(1)``
        The layer's mode.
    start : ``In(1)``
        Before a layer: the sums restart at word ``res_base``.
    res_base : ``In(16)``
    res_waddr : ``Out(16)``; res_wdata : ``Out(rows * res_bits)``; res_wen : ``Out(1)``
    """

    def __init__(self, rows, res_bits, value_bits):
        for name, v in (("rows", rows), ("res_bits", res_bits), ("value_bits", value_bits)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int, not {v!r}")
            if v < 1:
                raise ValueError(f"{name} must be at least 1, not {v}")
        self.rows, self.res_bits, self.value_bits = rows, res_bits, value_bits
        super().__init__({
            "values": In(data.ArrayLayout(signed(value_bits), rows)), "valid": In(1),
            "raddr": In(16), "last": In(1),
            "next_valid": In(1), "next_last": In(1),
            "res_out": In(1), "sum": In(1),
            "start": In(1), "res_base": In(16),
            "res_waddr": Out(16), "res_wdata": Out(rows * res_bits), "res_wen": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p_o, rb = self.rows, self.res_bits
        sums = [Signal(signed(rb), name=f"sum{o}", reset_less=True) for o in range(p_o)]
        start_q = Signal()
        m.d.sync += start_q.eq(self.start)
        # res_base + the group of the sum being written, a register (res_base comes from the
        # sequencer's descriptor across the die: no adder after that route)
        sum_addr = Signal(16)
        sum_next = [Signal(signed(rb), name=f"sum_next{o}") for o in range(p_o)]
        for o in range(p_o):
            m.d.comb += sum_next[o].eq(sums[o] + self.values[o])
        # No read needs a word in the cycle its write lands: a pixel's residual is read once, as
        # it enters the output unit, and written as it leaves; a sum is written over the first
        # pixel of its own group, read long before.
        res_wen = Signal()
        res_waddr = Signal.like(self.res_waddr)
        m.d.comb += [res_wen.eq(0), res_waddr.eq(self.raddr)]
        res_waddr_q = Signal.like(self.res_waddr, reset_less=True)
        res_wdata_q = Signal.like(self.res_wdata, reset_less=True)
        m.d.sync += [self.res_wen.eq(res_wen), res_waddr_q.eq(res_waddr),
                     res_wdata_q.eq(Cat(*sum_next))]
        m.d.comb += [self.res_waddr.eq(res_waddr_q), self.res_wdata.eq(res_wdata_q)]
        with m.If(self.valid):
            with m.If(self.res_out):
                m.d.comb += res_wen.eq(1)
            with m.If(self.sum & self.last):
                m.d.comb += [res_wen.eq(1), res_waddr.eq(sum_addr)]
            with m.If(self.last):
                m.d.sync += sum_addr.eq(sum_addr + 1)
        # The sums' enables from register copies per eight rows (one enable for all sums'
        # flip-flops is a route across the array).
        sum_go = row_copies(m, p_o, "sum_go", self.next_valid & self.sum)
        sum_last = row_copies(m, p_o, "sum_last", self.next_last)
        for o in range(p_o):
            with m.If(sum_go[o]):
                with m.If(sum_last[o]):
                    m.d.sync += sums[o].eq(0)
                with m.Else():
                    m.d.sync += sums[o].eq(sum_next[o])

        with m.If(self.start):
            m.d.sync += sum_addr.eq(self.res_base)
        with m.If(start_q):
            m.d.sync += [sums[o].eq(0) for o in range(p_o)]
        return m
