"""The bridge's request header: fields and checks of random headers, bytes at random times."""

import random
import struct

from hypothesis import given, settings, strategies as st

from contract import protocol as P
from accel.request_header import RequestHeader
from simutil import run

MAX_WORDS = 16


def random_header(rng):
    cmd = rng.choice([P.CMD_PING, P.CMD_READ, P.CMD_WRITE, rng.randrange(256)])
    addr = rng.choice([rng.randrange(1 << 10), P.ADDR_LIMIT - rng.randrange(1, 20), rng.randrange(1 << 32)])
    count = rng.choice([0, 1, MAX_WORDS, MAX_WORDS + 1, rng.randrange(1 << 16)])
    return cmd, rng.randrange(256), addr, count


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_request_header_fields_and_checks(seed):
    rng = random.Random(seed)
    dut = RequestHeader(max_words=MAX_WORDS)

    async def bench(ctx):
        for _ in range(6):
            cmd, seq, addr, count = random_header(rng)
            data = struct.pack("<BBIH", cmd, seq, addr, count)
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            for k, byte in enumerate(data):
                while rng.random() < 0.3:
                    ctx.set(dut.byte, rng.randrange(256))
                    await ctx.tick()
                assert ctx.get(dut.last) == (k == len(data) - 1)
                ctx.set(dut.byte, byte)
                ctx.set(dut.valid, 1)
                await ctx.tick()
                ctx.set(dut.valid, 0)
            await ctx.tick()        # count_minus_1 follows count one cycle later
            got = {name: ctx.get(getattr(dut, name)) for name in
                   ("cmd", "seq", "addr", "count", "count_minus_1", "is_ping", "is_read", "is_write",
                    "bad_count", "bad_addr")}
            assert got == {
                "cmd": cmd, "seq": seq, "addr": addr, "count": count,
                "count_minus_1": (count - 1) & 0xFFFF,
                "is_ping": int(cmd == P.CMD_PING), "is_read": int(cmd == P.CMD_READ),
                "is_write": int(cmd == P.CMD_WRITE),
                "bad_count": int(count == 0 or count > MAX_WORDS),
                "bad_addr": int(addr + count > P.ADDR_LIMIT),
            }, (cmd, seq, addr, count)

    run(dut, [bench], "request_header")
