"""Loads an output-channel group's thresholds into per-row registers, as ``v >= -(stored)`` operands."""

from amaranth.hdl import Module, Signal, Mux, signed
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out

from contract.config import THR_ENTRY_BITS
from .row_copies import row_copies


__all__ = ["ThresholdLoader", "THRESHOLD_BITS", "LOAD_EXTRA_CYCLES"]


THRESHOLD_BITS = 17     # a 16-bit threshold t, stored as -t or t - 1
LOAD_EXTRA_CYCLES = 4   # a load takes rows + 4 cycles: read, data register, -T register, row copies


class ThresholdLoader(wiring.Component):
    """Three thresholds and a negate flag per row, read from the threshold buffer group by group.

    Entry ``thr_base + group * rows + o`` (three signed 16-bit thresholds ``t_k`` at bits
    ``16k``, negate at bit 48) goes to row ``o``. A threshold is stored as ``-T`` with ``T = t``
    (negate 0) or ``T = 1 - t`` (negate 1): ``u >= t`` with ``u = -v if negate else v`` is then
    ``(v >= T) xor negate``, and ``v >= T`` is the sign of ``v + (-T)``, a plain addition
    (:class:`ThresholdCompare`).

    A load starts when the thresholds are not loaded, the pipeline in front of the comparison is
    empty and no ``start`` is pending; it reads one entry per cycle, registers the read data,
    then its ``-T`` values, then a copy of them per eight rows (a carry chain followed by a route
    across the array in one cycle would be the SoC's longest path), and writes row ``o`` with a
    decoded enable per row. ``loaded`` goes high ``rows + LOAD_EXTRA_CYCLES`` cycles after the
    load starts (at once when ``enabled`` is low: no thresholds are needed). The threshold
    registers have no reset: they are read only while ``loaded``.

    Parameters
    ----------
    rows : int
        Output rows (``p_o``).

    Members
    -------
    start : ``In(1)``
        Before a layer: back to group 0, thresholds not loaded.
    enabled : ``In(1)``
        The layer uses thresholds (``thr_out``).
    thr_base : ``In(12)``
        The layer's first entry.
    group_done : ``In(1)``
        The group's last pixel has passed the comparison: load the next group's thresholds.
    pipeline_empty : ``In(1)``
        No pixel is on its way to the comparison.
    read_addr : ``Out(16)``; read_en : ``Out(1)``; read_data : ``In(THR_ENTRY_BITS)``
        The threshold buffer's read port (one cycle latency).
    thresholds : ``Out(ArrayLayout(signed(17), 3 * rows))``
        Element ``3*o + k``: ``-T`` of row ``o``'s threshold ``k``.
    negate : ``Out(rows)``
    loaded : ``Out(1)``
        The current group's thresholds are in place.
    loading : ``Out(1)``
    """

    def __init__(self, rows):
        if not isinstance(rows, int) or isinstance(rows, bool):
            raise TypeError(f"rows must be an int, not {rows!r}")
        if rows < 1:
            raise ValueError(f"rows must be at least 1, not {rows}")
        self.rows = rows
        super().__init__({
            "start": In(1), "enabled": In(1), "thr_base": In(12),
            "group_done": In(1), "pipeline_empty": In(1),
            "read_addr": Out(16), "read_en": Out(1), "read_data": In(THR_ENTRY_BITS),
            "thresholds": Out(data.ArrayLayout(signed(THRESHOLD_BITS), 3 * rows)),
            "negate": Out(rows),
            "loaded": Out(1), "loading": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p_o = self.rows
        thr = [[Signal(signed(THRESHOLD_BITS), name=f"nthr{o}_{k}", reset_less=True)
                for k in range(3)] for o in range(p_o)]
        neg = [Signal(name=f"neg{o}") for o in range(p_o)]
        for o in range(p_o):
            m.d.comb += [self.thresholds[3 * o + k].eq(thr[o][k]) for k in range(3)]
            m.d.comb += self.negate[o].eq(neg[o])
        thr_ok = self.loaded
        loading = self.loading
        ld_cnt = Signal(range(p_o + LOAD_EXTRA_CYCLES))
        ld_row = Signal(range(p_o + 1))
        ld_data_valid = Signal()
        thr_cog = Signal(16)     # group * rows
        # the read address thr_base + thr_cog + ld_cnt as a register (the descriptor's thr_base
        # through a three-operand adder to the block RAM would be the SoC's longest path)
        thr_ptr = Signal(16)

        with m.If(self.group_done):
            m.d.sync += [thr_ok.eq(0), thr_cog.eq(thr_cog + p_o)]
        with m.If(~thr_ok & ~loading & self.pipeline_empty & ~self.start):
            with m.If(self.enabled):
                m.d.sync += [loading.eq(1), ld_cnt.eq(0), thr_ptr.eq(self.thr_base + thr_cog)]
            with m.Else():
                m.d.sync += thr_ok.eq(1)
        m.d.comb += [self.read_addr.eq(thr_ptr), self.read_en.eq(loading & (ld_cnt < p_o))]
        with m.If(loading):
            m.d.sync += [ld_cnt.eq(ld_cnt + 1), ld_data_valid.eq(ld_cnt < p_o), ld_row.eq(ld_cnt),
                         thr_ptr.eq(thr_ptr + 1)]
            with m.If(ld_cnt == p_o + LOAD_EXTRA_CYCLES - 1):
                m.d.sync += [loading.eq(0), thr_ok.eq(1)]
        with m.Else():
            m.d.sync += ld_data_valid.eq(0)
        e = Signal(THR_ENTRY_BITS, reset_less=True)     # the read data, registered
        e_valid = Signal()
        e_row = Signal.like(ld_row)
        m.d.sync += [e.eq(self.read_data), e_valid.eq(ld_data_valid), e_row.eq(ld_row)]
        # -T registered once before the copies (the carry chain, then the routes to the copies
        # spread along the array, in one cycle would be too long)
        ld_t = [Signal(signed(THRESHOLD_BITS), name=f"ld_t{k}", reset_less=True) for k in range(3)]
        ld_neg = Signal(reset_less=True)
        ld_valid = Signal()
        ld_row_t = Signal.like(e_row)
        for k in range(3):
            t = e[16 * k:16 * (k + 1)].as_signed()
            m.d.sync += ld_t[k].eq(Mux(e[48], t - 1, -t))
        m.d.sync += [ld_neg.eq(e[48]), ld_valid.eq(e_valid), ld_row_t.eq(e_row)]
        row_t = [row_copies(m, p_o, f"ld_t{k}", ld_t[k], reset_less=True) for k in range(3)]
        row_neg = row_copies(m, p_o, "ld_neg", ld_neg, reset_less=True)
        row_valid = row_copies(m, p_o, "ld_valid", ld_valid)
        row_row = row_copies(m, p_o, "ld_row", ld_row_t)
        for o in range(p_o):
            # a decoded write enable per row, not one enable for all rows
            with m.If(row_valid[o] & (row_row[o] == o)):
                m.d.sync += [thr[o][k].eq(row_t[k][o]) for k in range(3)]
                m.d.sync += neg[o].eq(row_neg[o])

        with m.If(self.start):
            m.d.sync += [thr_ok.eq(0), loading.eq(0), thr_cog.eq(0)]
        return m
