"""The DMA's read-ahead of local words for a STORE."""

from amaranth.hdl import Module, Signal, Mux, Cat, Array
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .localbus import READ_LATENCY


__all__ = ["DmaReadAhead"]


class DmaReadAhead(wiring.Component):
    """Reads local words ahead of the bus and holds them in a small ring until they are taken.

    The local read data is registered (``READ_LATENCY + 1`` cycles after ``read``) before it
    enters the ring: the engine's read-back multiplexer behind a block RAM's output, then this
    unit's selection, would otherwise be one path. Reads in flight and words held together never
    exceed the ring's depth. Four words over the ``READ_LATENCY + 1`` cycles of the read path are
    4/7 of a word per cycle, more than the bus takes (a transfer every three cycles at best).

    Members
    -------
    start : In(1)
        Strobe (never with ``enable``): begin at local address ``first_addr`` with ``words`` words
        to read when ``active``
        (none otherwise); the ring is emptied.
    first_addr : In(24)
    words : In(32)
    active : In(1)
    enable : In(1)
        High while the transfer runs: reads are issued and the ring is filled and taken from.
    stop : In(1)
        No new read in this cycle (the transfer is ending in a bus error).
    take : In(1)
        The word ``data`` is taken in this cycle (only when ``available``).
    read : Out(1)
        A local read of ``addr`` is issued in this cycle.
    addr : Out(24)
        Local address of the next read.
    read_data : In(32)
        The local bus's read data (``READ_LATENCY`` cycles after ``read``).
    available : Out(1)
        The ring holds a word.
    data : Out(32)
        The oldest word held.
    """

    DEPTH = 4

    start: In(1)
    first_addr: In(24)
    words: In(32)
    active: In(1)
    enable: In(1)
    stop: In(1)
    take: In(1)
    read: Out(1)
    addr: Out(24)
    read_data: In(32)
    available: Out(1)
    data: Out(32)

    def elaborate(self, platform):
        m = Module()
        depth = self.DEPTH
        words_left = Signal(32)
        more = Signal()                                # words_left != 0, one step ahead
        in_flight = Signal(READ_LATENCY)               # bit k: a read issued k + 1 cycles ago
        arrived_data = Signal(32)
        arrived = Signal()
        m.d.sync += [in_flight.eq(Cat(self.read, in_flight[:-1])),
                     arrived_data.eq(self.read_data), arrived.eq(in_flight[-1])]

        ring = Array(Signal(32, name=f"ahead{k}", reset_less=True) for k in range(depth))
        write_index = Signal(range(depth))
        read_index = Signal(range(depth))
        level = Signal(range(depth + 1))               # words held
        reserved = Signal(range(depth + 1))            # words held or in flight
        m.d.comb += [self.available.eq(level != 0), self.data.eq(ring[read_index])]

        # start and enable come in different cycles; as one if/elif chain per register, Yosys
        # turns both into the flip-flops' clock enable.
        with m.If(self.enable):
            m.d.comb += self.read.eq(more & (reserved != depth) & ~self.stop)
        with m.If(self.start):
            m.d.sync += [
                self.addr.eq(self.first_addr),
                words_left.eq(Mux(self.active, self.words, 0)),
                more.eq(self.active & (self.words != 0)),
                write_index.eq(0), read_index.eq(0), level.eq(0), reserved.eq(0),
            ]
        with m.Elif(self.enable):
            with m.If(arrived):
                m.d.sync += [ring[write_index].eq(arrived_data),
                             write_index.eq(Mux(write_index == depth - 1, 0, write_index + 1))]
            with m.If(self.take):
                m.d.sync += read_index.eq(Mux(read_index == depth - 1, 0, read_index + 1))
            m.d.sync += [level.eq(level + arrived - self.take),
                         reserved.eq(reserved + self.read - self.take)]
            with m.If(self.read):
                m.d.sync += [self.addr.eq(self.addr + 1), words_left.eq(words_left - 1),
                             more.eq(words_left != 1)]
        return m
