"""The bridge's response bytes: header fields, PING information and buffer words."""

import random
import struct

from hypothesis import given, settings, strategies as st

from contract import protocol as P
from accel.response_bytes import ResponseBytes
from simutil import run

MAX_WORDS = 64
CLK_FREQ = 12_345_678


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_response_bytes(seed):
    rng = random.Random(seed)
    dut = ResponseBytes(max_words=MAX_WORDS, clk_freq=CLK_FREQ)
    ping_words = [P.MAGIC, (P.VERSION << 16) | MAX_WORDS, CLK_FREQ]

    async def bench(ctx):
        for _ in range(6):
            status, cmd, seq, count = (rng.randrange(256), rng.randrange(256), rng.randrange(256),
                                       rng.randrange(1 << 16))
            for name, value in (("status", status), ("cmd", cmd), ("seq", seq), ("count", count)):
                ctx.set(getattr(dut, name), value)
            header = []
            for k in range(P.RESP_HEADER_BYTES):
                ctx.set(dut.header_index, k)
                header.append(ctx.get(dut.header_byte))
            assert bytes(header) == struct.pack("<BBBBH", P.SYNC_RESP, status, cmd, seq, count)

            ping = rng.random() < 0.5
            ctx.set(dut.ping, ping)
            for index in range(P.PING_WORDS if ping else 4):
                word = rng.randrange(1 << 32)
                ctx.set(dut.word_index, index)
                ctx.set(dut.buffer_data, word)
                ctx.set(dut.latch, 1)
                await ctx.tick()
                ctx.set(dut.latch, 0)
                ctx.set(dut.buffer_data, rng.randrange(1 << 32))   # the word is held from the latch
                sent = []
                for k in range(4):
                    ctx.set(dut.byte_index, k)
                    sent.append(ctx.get(dut.data_byte))
                assert bytes(sent) == struct.pack("<I", ping_words[index] if ping else word)

    run(dut, [bench], "response_bytes")
