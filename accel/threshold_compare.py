"""Per-row threshold comparison: values to output codes, one register stage."""

from amaranth.hdl import Module, Signal, Const, Mux, signed
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out

from .threshold_loader import THRESHOLD_BITS


__all__ = ["ThresholdCompare"]


class ThresholdCompare(wiring.Component):
    """``code = min(#{k: u >= t_k}, maximum)`` per row, registered, with ``u = -v if negate else v``.

    The thresholds come as :class:`ThresholdLoader` stores them (``-T``, see there), so each
    comparison is the sign of one 17-bit addition. A value outside the signed 17-bit range is above
    or below every threshold. ``maximum`` is 3 for ``out_bits >= 2``, else 1. The codes register
    has no reset: it is read only behind the pipeline's valid flag.

    Parameters
    ----------
    rows : int
    value_bits : int
        Width of the signed values.
    code_bits : int
        Width of the codes (the configuration's ``max_out_bits``).

    Members
    -------
    values : ``In(ArrayLayout(signed(value_bits), rows))``
    thresholds : ``In(ArrayLayout(signed(17), 3 * rows))``; negate : ``In(rows)``
    out_bits : ``In(4)``
    codes : ``Out(ArrayLayout(code_bits, rows))``
        One cycle after ``values``.
    """

    def __init__(self, rows, value_bits, code_bits):
        for name, v in (("rows", rows), ("value_bits", value_bits), ("code_bits", code_bits)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int, not {v!r}")
            if v < 1:
                raise ValueError(f"{name} must be at least 1, not {v}")
        self.rows, self.value_bits, self.code_bits = rows, value_bits, code_bits
        super().__init__({
            "values": In(data.ArrayLayout(signed(value_bits), rows)),
            "thresholds": In(data.ArrayLayout(signed(THRESHOLD_BITS), 3 * rows)),
            "negate": In(rows),
            "out_bits": In(4),
            "codes": Out(data.ArrayLayout(code_bits, rows)),
        })

    def elaborate(self, platform):
        m = Module()
        vbits, cb = self.value_bits, self.code_bits
        maxc = Signal(2)
        m.d.comb += maxc.eq(Mux(self.out_bits >= 2, 3, 1))
        for o in range(self.rows):
            v = self.values[o]
            if vbits > THRESHOLD_BITS:
                top = v[THRESHOLD_BITS - 1:]
                in_range = (top == 0) | (top == (1 << len(top)) - 1)
            else:
                in_range = Const(1, 1)
            low = v[:THRESHOLD_BITS].as_signed()
            ge = [~(low + self.thresholds[3 * o + k])[THRESHOLD_BITS] for k in range(3)]
            passed = [Mux(in_range, ge[k], ~v[vbits - 1]) ^ self.negate[o] for k in range(3)]
            count = passed[0] + passed[1] + passed[2]
            code = Mux(count > maxc, maxc, count)
            registered = Signal(cb, name=f"code{o}", reset_less=True)
            m.d.sync += registered.eq(code[:cb])
            m.d.comb += self.codes[o].eq(registered)
        return m
