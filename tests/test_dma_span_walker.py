"""The DMA's address walk: the addresses of a block, in order, at the pace of random steps."""

import random

from hypothesis import given, settings, strategies as st

from accel.dma_span_walker import DmaSpanWalker
from simutil import run


def block_addresses(mem_addr, rows, count, stride):
    return [(mem_addr + r * stride + c) & 0xFFFF_FFFF for r in range(rows) for c in range(count)]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_dma_span_walker_addresses(seed):
    rng = random.Random(seed)
    dut = DmaSpanWalker()

    async def bench(ctx):
        for _ in range(4):
            rows, count = rng.randrange(1, 5), rng.randrange(1, 6)
            stride = rng.choice([count, rng.randrange(1 << 16)])
            mem_addr = rng.choice([rng.randrange(1 << 12), (1 << 32) - rng.randrange(1, 40)])
            ctx.set(dut.first_addr, mem_addr)
            ctx.set(dut.words, rows * count)
            ctx.set(dut.count_minus_2, (count - 2) & 0xFFFF)
            ctx.set(dut.count_is_1, count == 1)
            ctx.set(dut.mem_stride, stride)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            issued = []
            while ctx.get(dut.more):
                step = rng.random() < 0.6          # the bus is not always free
                ctx.set(dut.step, step)
                if step:
                    issued.append(ctx.get(dut.addr))
                await ctx.tick()
                assert len(issued) <= rows * count
            ctx.set(dut.step, 0)
            assert issued == block_addresses(mem_addr, rows, count, stride), (mem_addr, rows, count, stride)

    run(dut, [bench], "dma_span_walker")
