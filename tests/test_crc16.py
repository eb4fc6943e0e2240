"""The gateware CRC register against the protocol's CRC-16 in Python."""

import random

from hypothesis import given, settings, strategies as st

from contract import protocol as P
from accel.crc16 import Crc16
from simutil import run


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_crc16_register_matches_protocol(seed):
    rng = random.Random(seed)
    messages = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 30))) for _ in range(4)]
    dut = Crc16()

    async def bench(ctx):
        for message in messages:
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            for byte in message:
                while rng.random() < 0.3:          # cycles without a byte change nothing
                    ctx.set(dut.byte, rng.randrange(256))
                    await ctx.tick()
                ctx.set(dut.byte, byte)
                ctx.set(dut.update, 1)
                await ctx.tick()
                ctx.set(dut.update, 0)
            assert ctx.get(dut.crc) == P.crc16(message), message.hex()

    run(dut, [bench], "crc16")
