"""The sequencer's descriptor address, the run's main-memory window and the address's check
against it."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract import isa


__all__ = ["DescriptorWindow"]


class DescriptorWindow(wiring.Component):
    """Word address of the current descriptor and whether its words lie inside the window.

    A descriptor's words ``[addr, addr + DESCRIPTOR_WORDS)`` must lie inside
    ``[window_base, window_limit)`` before the sequencer reads them. The window is latched at
    ``start`` (``run_window_base``, ``run_window_limit``) and every check after the first uses the
    latched copy, as does the DMA: a host that writes WINDOW_BASE or WINDOW_LIMIT during a run
    changes the next run, never this one (nor an outstanding bus request). Every check is a register
    written together with the address: the comparators' carry chains would otherwise sit in front
    of the sequencer's error registers. The next descriptor's check (``next_in_window``, from the
    registers ``addr + 8`` and ``addr + 16``) is computed every cycle and registered, so that
    ``advance`` only copies registers.

    Members
    -------
    prog_addr : In(32)
        Word address of the first descriptor, loaded by ``start``.
    window_base, window_limit : In(32)
        The main-memory window in word addresses (limit exclusive), loaded by ``start``.
    start : In(1)
        Strobe: the run starts at ``prog_addr`` in the window given now.
    advance : In(1)
        Strobe: go on to the next descriptor (``addr + DESCRIPTOR_WORDS``).
    addr : Out(32)
        Word address of the current descriptor.
    next_addr : Out(33)
        ``addr + DESCRIPTOR_WORDS``, not wrapped (a register).
    in_window : Out(1)
        The current descriptor lies inside the window (a register, valid from the cycle after
        ``start`` or ``advance``).
    next_in_window : Out(1)
        The next descriptor lies inside the run's window (combinational, from registers).
    run_window_base, run_window_limit : Out(32)
        The run's window: ``window_base`` and ``window_limit`` as they were at ``start``.
    """

    prog_addr: In(32)
    window_base: In(32)
    window_limit: In(32)
    start: In(1)
    advance: In(1)
    addr: Out(32)
    next_addr: Out(33)
    in_window: Out(1)
    next_in_window: Out(1)
    run_window_base: Out(32)
    run_window_limit: Out(32)

    def elaborate(self, platform):
        m = Module()
        step = isa.DESCRIPTOR_WORDS
        after_next = Signal(34)          # addr + 2 * DESCRIPTOR_WORDS, end of the next descriptor
        next_ok = Signal()               # next_in_window, registered

        def inside(first, end, base, limit):
            return (first >= base) & (end <= limit)

        m.d.comb += self.next_in_window.eq(inside(self.next_addr, after_next,
                                                  self.run_window_base, self.run_window_limit))
        m.d.sync += next_ok.eq(self.next_in_window)

        with m.If(self.start):
            # The first check reads the inputs, which are the window being latched.
            m.d.sync += [
                self.run_window_base.eq(self.window_base),
                self.run_window_limit.eq(self.window_limit),
                self.addr.eq(self.prog_addr),
                self.in_window.eq(inside(self.prog_addr, self.prog_addr + step,
                                         self.window_base, self.window_limit)),
                self.next_addr.eq(self.prog_addr + step),
                after_next.eq(self.prog_addr + 2 * step),
            ]
        with m.Elif(self.advance):
            m.d.sync += [
                self.addr.eq(self.next_addr[:32]),
                self.in_window.eq(next_ok),
                self.next_addr.eq(self.next_addr[:32] + step),
                after_next.eq(self.next_addr[:32] + 2 * step),
            ]
        return m
