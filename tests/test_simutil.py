"""The stream helpers fail a test whose unit stops transferring, instead of hanging it."""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from simutil import run, send, recv


class Dribble(wiring.Component):
    """Passes ``limit`` words from ``i`` to ``o``, then takes and gives nothing."""
    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))

    def __init__(self, limit):
        self.limit = limit
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(self.limit + 1))
        open_ = count < self.limit
        m.d.comb += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid & open_),
                     self.i.ready.eq(self.o.ready & open_)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += count.eq(count + 1)
        return m


def test_recv_fails_when_the_unit_stops_giving():
    dut = Dribble(3)

    async def source(ctx):      # background: never runs out of patience first
        await send(ctx, dut.i, list(range(5)), random.Random(1), 0.3)

    async def sink(ctx):
        await recv(ctx, dut.o, 5, random.Random(2), 0.3, idle_limit=200)

    with pytest.raises(AssertionError, match="gave 3 of 5 items, then none for 200 cycles"):
        run(dut, [sink], "stalled_recv", background=[source])


def test_send_fails_when_the_unit_stops_taking():
    dut = Dribble(3)

    async def source(ctx):
        await send(ctx, dut.i, list(range(5)), random.Random(1), 0.3, idle_limit=200)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)

    with pytest.raises(AssertionError, match="took 3 of 5 items, then none for 200 cycles"):
        run(dut, [source, sink], "stalled_send")
