"""The serial bridge's Wishbone initiator: one word at a time, with a timeout."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import wishbone


__all__ = ["BridgeBusMaster"]


class BridgeBusMaster(wiring.Component):
    """Single-word Wishbone reads and writes at consecutive addresses, each with a time limit.

    The bridge loads the first address (``start``), then holds ``read`` or ``write`` high for one
    access until ``ack``, ``err`` or ``timed_out``; every acknowledged access moves to the next
    address. The write data is a register (``latch`` takes ``write_data``), so that the word
    buffer's slow block-RAM output does not drive the bus.

    Parameters
    ----------
    bus_timeout : int
        Cycles an access may wait for ``ack``/``err`` before ``timed_out`` rises.

    Members
    -------
    bus : Out(wishbone.Signature(30, 32))
    start : In(1)
        Strobe: the next access is at ``addr``.
    addr : In(30)
    read, write : In(1)
        High while a read / a write is presented (never together, nor with a strobe).
    restart_timer : In(1)
        Strobe: the time limit restarts (before a write; a read restarts it at each ``ack``).
    latch : In(1)
        Strobe: ``write_data`` becomes the data of the next write.
    write_data : In(32)
    ack, err : Out(1)
        The access ends in this cycle (``bus.ack``, ``bus.err``).
    read_data : Out(32)
        ``bus.dat_r``.
    timed_out : Out(1)
        The access has waited ``bus_timeout`` cycles.
    """

    def __init__(self, *, bus_timeout):
        if not isinstance(bus_timeout, int) or bus_timeout < 2:
            raise ValueError(f"bus_timeout must be an integer >= 2, not {bus_timeout!r}")
        self._bus_timeout = bus_timeout
        super().__init__({
            "bus": Out(wishbone.Signature(30, 32)),
            "start": In(1),
            "addr": In(30),
            "read": In(1),
            "write": In(1),
            "restart_timer": In(1),
            "latch": In(1),
            "write_data": In(32),
            "ack": Out(1),
            "err": Out(1),
            "read_data": Out(32),
            "timed_out": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        address = Signal(30)
        write_data = Signal(32)
        timer = Signal(range(self._bus_timeout + 1))

        m.d.comb += [
            bus.sel.eq(0b1111),
            bus.adr.eq(address),
            bus.dat_w.eq(write_data),
            self.ack.eq(bus.ack),
            self.err.eq(bus.err),
            self.read_data.eq(bus.dat_r),
            self.timed_out.eq(timer == self._bus_timeout),
        ]
        with m.If(self.latch):
            m.d.sync += write_data.eq(self.write_data)
        with m.If(self.read):
            m.d.comb += [bus.cyc.eq(1), bus.stb.eq(1), bus.we.eq(0)]
        with m.If(self.write):
            m.d.comb += [bus.cyc.eq(1), bus.stb.eq(1), bus.we.eq(1)]

        # The strobes come in different cycles; as one if/elif chain per register, Yosys turns
        # them into the flip-flops' clock enable.
        with m.If(self.start):
            m.d.sync += [address.eq(self.addr), timer.eq(0)]
        with m.Elif(self.restart_timer):
            m.d.sync += timer.eq(0)
        with m.Elif(self.read):
            m.d.sync += timer.eq(timer + 1)
            with m.If(bus.ack):
                m.d.sync += [address.eq(address + 1), timer.eq(0)]
        with m.Elif(self.write):
            m.d.sync += timer.eq(timer + 1)
            with m.If(bus.ack):
                m.d.sync += address.eq(address + 1)
        return m
