"""The DMA's STORE read-ahead against a local memory with the local bus's read latency, with a
consumer that takes words at random times."""

import random

from hypothesis import given, settings, strategies as st

from accel.dma_read_ahead import DmaReadAhead
from accel.localbus import READ_LATENCY
from simutil import run


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_dma_read_ahead_delivers_words_in_order(seed):
    rng = random.Random(seed)
    memory = [rng.randrange(1 << 32) for _ in range(256)]
    dut = DmaReadAhead()

    async def bench(ctx):
        for _ in range(3):
            first, words, active = rng.randrange(200), rng.randrange(0, 40), rng.random() < 0.8
            ctx.set(dut.first_addr, first)
            ctx.set(dut.words, words)
            ctx.set(dut.active, active)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.enable, 1)
            expected = memory[first:first + words] if active else []
            reads, taken = [], []
            for cycle in range(20 * words + 40):
                # the word read READ_LATENCY cycles ago is on the local bus now
                issued = [a for c, a in reads if c == cycle - READ_LATENCY]
                ctx.set(dut.read_data, memory[issued[0]] if issued else rng.randrange(1 << 32))
                take = ctx.get(dut.available) and rng.random() < 0.4
                ctx.set(dut.take, take)
                if take:
                    taken.append(ctx.get(dut.data))
                if ctx.get(dut.read):
                    reads.append((cycle, ctx.get(dut.addr)))
                # reads in flight and words held never exceed the ring
                assert len(reads) - len(taken) <= DmaReadAhead.DEPTH
                await ctx.tick()
            ctx.set(dut.take, 0)
            ctx.set(dut.enable, 0)
            assert [a for _, a in reads] == list(range(first, first + len(expected)))
            assert taken == expected, (first, words, active)
            await ctx.tick()

    run(dut, [bench], "dma_read_ahead")


def test_dma_read_ahead_stops_reading_on_stop():
    dut = DmaReadAhead()

    async def bench(ctx):
        ctx.set(dut.words, 8)
        ctx.set(dut.active, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.enable, 1)
        ctx.set(dut.stop, 1)
        for _ in range(10):
            assert not ctx.get(dut.read)
            await ctx.tick()

    run(dut, [bench], "dma_read_ahead_stop")
