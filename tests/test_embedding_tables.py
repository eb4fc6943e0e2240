# amaranth: UnusedElaboratable=no
"""EmbeddingTables: entries written through the one write port land in their channel's table; a
look-up returns every channel's entry, read with ``read_en`` and held with ``hold_en``."""

import random

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from accel.embedding_tables import EmbeddingTables
from contract.config import EMB_ENTRY_BITS
from simutil import run


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channels=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_write_then_look_up(channels, seed):
    dut = EmbeddingTables(channels)
    rng = random.Random(seed)
    table = {}
    writes = [(rng.randrange(channels * 256), rng.randrange(1 << EMB_ENTRY_BITS))
              for _ in range(60)]
    lookups = [[rng.randrange(256) for _ in range(channels)] for _ in range(30)]
    for addr, e in writes:
        table[addr] = e

    async def bench(ctx):
        for addr, e in writes:
            ctx.set(dut.write_addr, addr)
            ctx.set(dut.write_data, e)
            ctx.set(dut.write_en, 1)
            await ctx.tick()
        ctx.set(dut.write_en, 0)
        held = None
        for addrs in lookups:
            for c, a in enumerate(addrs):
                ctx.set(dut.read_addr[c], a)
            ctx.set(dut.read_en, 1)
            await ctx.tick()
            ctx.set(dut.read_en, 0)
            for c in range(channels):          # the read data stays while read_en is low
                ctx.set(dut.read_addr[c], rng.randrange(256))
            stall = rng.randrange(3)
            for _ in range(stall):
                ctx.set(dut.hold_en, 0)
                await ctx.tick()
                if held is not None:           # not loaded without hold_en
                    assert [ctx.get(dut.entries)[c] for c in range(channels)] == held
            ctx.set(dut.hold_en, 1)
            await ctx.tick()
            ctx.set(dut.hold_en, 0)
            held = [table.get(c * 256 + a, 0) for c, a in enumerate(addrs)]
            assert [ctx.get(dut.entries)[c] for c in range(channels)] == held, addrs

    run(dut, [bench], "embedding_tables")


def test_parameters_checked():
    with pytest.raises(TypeError):
        EmbeddingTables(1.5)
    with pytest.raises(ValueError):
        EmbeddingTables(0)
