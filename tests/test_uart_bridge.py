# amaranth: UnusedElaboratable=no
"""UART and UART-to-Wishbone bridge gateware, against the host codec (contract/protocol.py).

* UART rx/tx at the bit level with random bytes and random gaps, a framing error, baud checks.
* The bridge's CRC network against the bitwise reference.
* FrameBridge at the byte level: random sequences of PING/READ/WRITE frames, some corrupted or
  truncated, with random gaps on rx and random stalls on tx; every response byte is compared with
  the protocol's DeviceModel and the Wishbone SRAM with a Python copy.
* UARTBridge at the bit level (fast divisor) driving accel.wishbone.SRAM through a Decoder, with the
  host codec on both ends: PING, WRITE, READ, a corrupted frame NAKed then retried, a bus error and
  a bus timeout.
"""

import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from amaranth.hdl import Module, Signal, Const, Fragment
from amaranth.lib import wiring
from amaranth.sim import Simulator

from accel import wishbone
from accel.uart import UARTRx, UARTTx, baud_divisor
from accel.uart_bridge import FrameBridge, UARTBridge, crc16_next
from contract import protocol as P


MEM_WORDS = 256
DEAD_BASE = 0x1000_0000     # a region whose target never answers


def run(dut, name, benches, background=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for b in benches:
        sim.add_testbench(b)
    for b in background:
        sim.add_testbench(b, background=True)
    if os.environ.get("PEA_VCD") == "1":
        out = Path("build/vcd")
        out.mkdir(parents=True, exist_ok=True)
        with sim.write_vcd(str(out / f"{name}.vcd")):
            sim.run()
    else:
        sim.run()


# UART -------------------------------------------------------------------------------------------

async def drive_line(ctx, pin, data, divisor, gaps=None, stop_bit=1):
    """Send bytes on a serial line, 8N1, exactly ``divisor`` cycles per bit."""
    for i, byte in enumerate(data):
        bits = [0] + [(byte >> k) & 1 for k in range(8)] + [stop_bit]
        for bit in bits:
            ctx.set(pin, bit)
            await ctx.tick().repeat(divisor)
        ctx.set(pin, 1)
        if gaps:
            await ctx.tick().repeat(gaps[i % len(gaps)] + 1)


class LineDecoder:
    """Background decoder of a serial line (sampling in the middle of each bit)."""
    def __init__(self, pin, divisor):
        self.pin = pin
        self.divisor = divisor
        self.bytes = []
        self.frame_errors = 0

    async def process(self, ctx):
        div = self.divisor
        while True:
            await ctx.tick()
            if ctx.get(self.pin):
                continue
            await ctx.tick().repeat(div // 2)
            value = 0
            for k in range(8):
                await ctx.tick().repeat(div)
                value |= ctx.get(self.pin) << k
            await ctx.tick().repeat(div)
            if ctx.get(self.pin):
                self.bytes.append(value)
            else:
                self.frame_errors += 1
            # Wait out the rest of the stop bit before looking for the next start edge.
            await ctx.tick().repeat(div // 2 - 1)


def test_baud_divisor():
    assert baud_divisor(48_000_000, 1_000_000) == 48
    assert baud_divisor(25_000_000, 115200) == 217
    with pytest.raises(ValueError, match="too fast"):
        baud_divisor(12_000_000, 4_000_000)
    with pytest.raises(ValueError, match="off at"):
        baud_divisor(10_000_000, 1_800_000)   # 10/1.8 = 5.56 -> 6: 7.4% off


@pytest.mark.filterwarnings("ignore::amaranth.hdl._ir.UnusedElaboratable")
def test_uart_bad_divisor():
    with pytest.raises(ValueError, match="divisor"):
        UARTTx(2)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(4, 9), st.lists(st.integers(0, 255), min_size=1, max_size=8),
       st.lists(st.integers(0, 12), min_size=1, max_size=4), st.integers(0, 2**32))
def test_uart_rx(divisor, data, gaps, seed):
    dut = UARTRx(divisor)
    got = []
    rng = random.Random(seed)

    async def sink(ctx):
        # Random ready; a byte held longer than a byte time would be overrun, so stalls are short.
        while True:
            ready = rng.random() < 0.5
            ctx.set(dut.data.ready, ready)
            if ready and ctx.get(dut.data.valid):
                got.append(ctx.get(dut.data.payload))
            assert not ctx.get(dut.overrun) and not ctx.get(dut.frame_error)
            await ctx.tick()

    async def bench(ctx):
        await ctx.tick().repeat(3)
        await drive_line(ctx, dut.rx, data, divisor, gaps)
        await ctx.tick().repeat(4 * divisor)
        assert got == data

    run(dut, "uart_rx", [bench], [sink])


def test_uart_rx_framing_error_and_glitch():
    div = 6
    dut = UARTRx(div)
    got, errors = [], []

    async def sink(ctx):
        ctx.set(dut.data.ready, 1)
        while True:
            if ctx.get(dut.data.valid):
                got.append(ctx.get(dut.data.payload))
            if ctx.get(dut.frame_error):
                errors.append(1)
            await ctx.tick()

    async def bench(ctx):
        await ctx.tick().repeat(3)
        # A one-cycle glitch is not a start bit.
        ctx.set(dut.rx, 0)
        await ctx.tick()
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3 * div)
        await drive_line(ctx, dut.rx, [0x3C], div, stop_bit=0)
        await ctx.tick().repeat(12 * div)      # a break, then a clean byte
        await drive_line(ctx, dut.rx, [0xC3], div)
        await ctx.tick().repeat(3 * div)
        assert errors == [1]
        assert got == [0xC3]

    run(dut, "uart_rx_error", [bench], [sink])


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(4, 9), st.lists(st.integers(0, 255), min_size=1, max_size=8), st.integers(0, 2**32))
def test_uart_tx(divisor, data, seed):
    dut = UARTTx(divisor)
    dec = LineDecoder(dut.tx, divisor)
    rng = random.Random(seed)

    async def bench(ctx):
        for byte in data:
            ctx.set(dut.data.payload, byte)
            ctx.set(dut.data.valid, 1)
            await ctx.tick().until(dut.data.ready)
            ctx.set(dut.data.valid, 0)
            await ctx.tick().repeat(rng.randrange(3) + 1)
        await ctx.tick().repeat(12 * divisor)
        assert dec.bytes == data and dec.frame_errors == 0

    run(dut, "uart_tx", [bench], [dec.process])


# CRC network ------------------------------------------------------------------------------------

@settings(max_examples=3, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 255)), min_size=20, max_size=40))
def test_crc16_network(cases):
    crc, byte = Signal(16), Signal(8)
    out = Signal(16)
    m = Module()
    m.d.comb += out.eq(crc16_next(crc, byte))

    async def bench(ctx):
        for c, b in cases:
            ctx.set(crc, c)
            ctx.set(byte, b)
            assert ctx.get(out) == P.crc16_update_byte(c, b)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


# Bridge, byte level ----------------------------------------------------------------------------

class Top(wiring.Component):
    """Bridge -> Decoder -> {SRAM at 0, a dead region at DEAD_BASE}."""
    def __init__(self, bridge):
        self.bridge = bridge
        self.sram = wishbone.SRAM(MEM_WORDS)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bridge = self.bridge
        m.submodules.sram = self.sram
        m.submodules.dec = dec = wishbone.Decoder([("mem", 0, MEM_WORDS), ("dead", DEAD_BASE, 16)])
        wiring.connect(m, self.bridge.bus, dec.bus)
        wiring.connect(m, dec.mem, self.sram.bus)
        m.d.comb += [dec.dead.ack.eq(0), dec.dead.err.eq(0)]
        return m


class PyMem:
    def __init__(self):
        self.data = [0] * MEM_WORDS

    def read(self, addr):
        if addr >= MEM_WORDS:
            raise P.DeviceModel.BusError()
        return self.data[addr]

    def write(self, addr, value):
        if addr >= MEM_WORDS:
            raise P.DeviceModel.BusError()
        self.data[addr] = value


def _request(draw, seq):
    kind = draw(st.sampled_from(["ping", "read", "write", "write", "read_err"]))
    if kind == "ping":
        return P.Request(P.CMD_PING, seq)
    count = draw(st.integers(1, 6))
    if kind == "read_err":
        return P.Request(P.CMD_READ, seq, draw(st.integers(MEM_WORDS - count + 1, 4 * MEM_WORDS)), count)
    addr = draw(st.integers(0, MEM_WORDS - count))
    if kind == "read":
        return P.Request(P.CMD_READ, seq, addr, count)
    words = tuple(draw(st.lists(st.integers(0, 2**32 - 1), min_size=count, max_size=count)))
    return P.Request(P.CMD_WRITE, seq, addr, count, words)


@st.composite
def sessions(draw):
    steps = []
    seq = draw(st.integers(0, 255))
    for _ in range(draw(st.integers(3, 7))):
        req = _request(draw, seq)
        frame = bytearray(P.encode_request(req, max_words=8))
        damage = draw(st.sampled_from(["none", "none", "none", "flip", "truncate", "resend"]))
        if damage == "flip":
            pos = draw(st.integers(1, len(frame) - 1))
            frame[pos] ^= draw(st.integers(1, 255))
        elif damage == "truncate":
            frame = frame[:draw(st.integers(1, len(frame) - 1))]
        steps.append(bytes(frame))
        if damage == "resend" and req.cmd == P.CMD_WRITE:
            steps.append(bytes(frame))     # the same seq again: must not be re-executed
        seq = (seq + 1) & 0xFF
    gaps = draw(st.lists(st.integers(0, 4), min_size=1, max_size=5))
    return steps, gaps, draw(st.integers(0, 2**32))


TIMEOUT = 24


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions())
def test_frame_bridge_against_model(session):
    steps, gaps, seed = session
    rng = random.Random(seed)
    bridge = FrameBridge(max_words=8, timeout_cycles=TIMEOUT, bus_timeout=20, clk_freq=12_345_678)
    dut = Top(bridge)
    mem = PyMem()
    model = P.DeviceModel(mem.read, mem.write, max_words=8, clk_hz=12_345_678)
    got = bytearray()

    async def tx_sink(ctx):
        while True:
            ready = rng.random() < 0.6
            ctx.set(bridge.tx.ready, ready)
            if ready and ctx.get(bridge.tx.valid):
                got.append(ctx.get(bridge.tx.payload))
            await ctx.tick()

    async def bench(ctx):
        await ctx.tick().repeat(2)
        for i, frame in enumerate(steps):
            expected = model.feed(frame) + model.idle()
            got.clear()
            for k, byte in enumerate(frame):
                ctx.set(bridge.rx.payload, byte)
                ctx.set(bridge.rx.valid, 1)
                await ctx.tick().until(bridge.rx.ready)
                ctx.set(bridge.rx.valid, 0)
                if gaps[(i + k) % len(gaps)]:
                    await ctx.tick().repeat(gaps[(i + k) % len(gaps)])
            # A response takes at most the idle timeout, the bus accesses and the sending (with
            # the sink's stalls); then the bridge must be quiet.
            limit = TIMEOUT + 8 * 25 + 40 * len(expected) + 50
            for _ in range(limit):
                if len(got) >= len(expected) and not ctx.get(bridge.tx.valid):
                    break
                await ctx.tick()
            await ctx.tick().repeat(TIMEOUT + 5)
            assert bytes(got) == expected, (i, frame.hex(), P.ResponseParser().feed(bytes(got)),
                                            P.ResponseParser().feed(expected))
        for a in range(MEM_WORDS):
            assert ctx.get(dut.sram.data[a]) == mem.data[a]

    run(dut, "frame_bridge", [bench], [tx_sink])


def test_frame_bridge_special_cases():
    bridge = FrameBridge(max_words=8, timeout_cycles=TIMEOUT, bus_timeout=20)
    dut = Top(bridge)
    got = bytearray()

    async def tx_sink(ctx):
        ctx.set(bridge.tx.ready, 1)
        while True:
            if ctx.get(bridge.tx.valid):
                got.append(ctx.get(bridge.tx.payload))
            await ctx.tick()

    async def transact(ctx, frame, cycles=400):
        got.clear()
        for byte in frame:
            ctx.set(bridge.rx.payload, byte)
            ctx.set(bridge.rx.valid, 1)
            await ctx.tick().until(bridge.rx.ready)
        ctx.set(bridge.rx.valid, 0)
        await ctx.tick().repeat(cycles)
        return P.decode_response(bytes(got))

    def raw(cmd, seq, addr, count, payload=b""):
        import struct
        body = struct.pack("<BBIH", cmd, seq, addr, count) + payload
        return bytes([P.SYNC_REQ]) + body + struct.pack("<H", P.crc16(body))

    async def bench(ctx):
        await ctx.tick().repeat(2)
        r = await transact(ctx, P.encode_request(P.Request(P.CMD_READ, 1, DEAD_BASE, 2)))
        assert r == P.Response(P.STATUS_BUS_TIMEOUT, P.CMD_READ, 1, ())
        r = await transact(ctx, P.encode_request(P.Request(P.CMD_WRITE, 2, DEAD_BASE, 1, (5,))))
        assert r == P.Response(P.STATUS_BUS_TIMEOUT, P.CMD_WRITE, 2, ())
        # Frames a correct host never sends: count above max_words, count 0, address overflow,
        # unknown command. Each is drained and NAKed.
        r = await transact(ctx, raw(P.CMD_READ, 3, 0, 9))
        assert r == P.Response(P.STATUS_COUNT, P.CMD_READ, 3, ())
        r = await transact(ctx, raw(P.CMD_WRITE, 4, 0, 0))
        assert r == P.Response(P.STATUS_COUNT, P.CMD_WRITE, 4, ())
        r = await transact(ctx, raw(P.CMD_READ, 5, P.ADDR_LIMIT - 1, 2))
        assert r == P.Response(P.STATUS_ADDR, P.CMD_READ, 5, ())
        r = await transact(ctx, raw(0x7E, 6, 0, 1))
        assert r == P.Response(P.STATUS_CMD, 0x7E, 6, ())
        # And a good frame after all that.
        r = await transact(ctx, P.encode_request(P.Request(P.CMD_PING, 7)))
        assert r.ok and r.words[0] == P.MAGIC and r.words[1] == (P.VERSION << 16) | 8
        # A resent WRITE (same seq right after it) is answered but not performed again; a
        # corrupted copy in between does not make the bridge forget it.
        write = P.encode_request(P.Request(P.CMD_WRITE, 8, 3, 2, (11, 12)))
        assert (await transact(ctx, write)).ok
        ctx.set(dut.sram.data[3], 99)
        bad = bytearray(write)
        bad[-1] ^= 1
        assert (await transact(ctx, bytes(bad))).status == P.STATUS_CRC
        assert (await transact(ctx, write)).ok
        assert ctx.get(dut.sram.data[3]) == 99 and ctx.get(dut.sram.data[4]) == 12
        # After another command, the same frame is a new write.
        assert (await transact(ctx, P.encode_request(P.Request(P.CMD_READ, 9, 3, 1)))).words == (99,)
        assert (await transact(ctx, write)).ok
        assert ctx.get(dut.sram.data[3]) == 11

    run(dut, "frame_bridge_errors", [bench], [tx_sink])


@pytest.mark.filterwarnings("ignore::amaranth.hdl._ir.UnusedElaboratable")
def test_frame_bridge_parameters():
    with pytest.raises(ValueError, match="max_words"):
        FrameBridge(max_words=100, timeout_cycles=10)
    with pytest.raises(ValueError, match="timeout_cycles"):
        FrameBridge(timeout_cycles=1)
    with pytest.raises(ValueError, match="bus_timeout"):
        FrameBridge(timeout_cycles=10, bus_timeout=0)
    with pytest.raises(ValueError, match="clk_freq"):
        UARTBridge(clk_freq=0)
    b1 = UARTBridge(clk_freq=48_000_000, baud=1_000_000)
    # 64 byte times (30,720 cycles) but at least 2 ms (96,000 cycles).
    assert b1.divisor == 48 and b1.timeout_cycles == 96_000
    b2 = UARTBridge(clk_freq=48_000_000, baud=115200)
    assert b2.divisor == 417 and b2.timeout_cycles == 64 * 10 * 417
    b3 = UARTBridge(clk_freq=48_000_000, divisor=7, timeout_bytes=3)
    assert b3.timeout_cycles == 210 and b3.max_words == 256
    for b in (b1, b2, b3):
        Fragment.get(b, None)


# Bridge, bit level ------------------------------------------------------------------------------

def test_uart_bridge_bit_level():
    div = 5
    bridge = UARTBridge(clk_freq=1_000_000, divisor=div, max_words=16, timeout_bytes=3,
                        bus_timeout=30)
    dut = Top(bridge)
    dec = LineDecoder(bridge.tx, div)
    parser = P.ResponseParser()

    async def transact(ctx, frame, expect_cycles):
        start = len(dec.bytes)
        await drive_line(ctx, bridge.rx, frame, div, gaps=[0, 1, 3])
        for _ in range(expect_cycles):
            await ctx.tick()
            responses = parser.feed(bytes(dec.bytes[start:]))
            start = len(dec.bytes)
            if responses:
                assert len(responses) == 1
                return responses[0]
        raise AssertionError("no response")

    async def bench(ctx):
        await ctx.tick().repeat(5)
        r = await transact(ctx, P.encode_request(P.Request(P.CMD_PING, 1)), 2000)
        assert r == P.Response(0, P.CMD_PING, 1, (P.MAGIC, (P.VERSION << 16) | 16, 1_000_000))
        words = (0x01234567, 0x89ABCDEF, 0xFFFFFFFF, 0)
        r = await transact(ctx, P.encode_request(P.Request(P.CMD_WRITE, 2, 100, 4, words)), 1000)
        assert r == P.Response(0, P.CMD_WRITE, 2, ())
        for i, w in enumerate(words):
            assert ctx.get(dut.sram.data[100 + i]) == w
        r = await transact(ctx, P.encode_request(P.Request(P.CMD_READ, 3, 99, 6)), 2500)
        assert r == P.Response(0, P.CMD_READ, 3, (0,) + words + (0,))
        # A corrupted write is NAKed after the line goes quiet and does not touch memory.
        bad = bytearray(P.encode_request(P.Request(P.CMD_WRITE, 4, 100, 1, (0xBAD,))))
        bad[10] ^= 0x10
        r = await transact(ctx, bytes(bad), 1500)
        assert r == P.Response(P.STATUS_CRC, P.CMD_WRITE, 4, ())
        assert ctx.get(dut.sram.data[100]) == words[0]
        r = await transact(ctx, P.encode_request(P.Request(P.CMD_WRITE, 4, 100, 1, (0xBAD,))), 1000)
        assert r.ok and ctx.get(dut.sram.data[100]) == 0xBAD
        # Bus error outside every region.
        r = await transact(ctx, P.encode_request(P.Request(P.CMD_READ, 5, 0x2000_0000, 1)), 1000)
        assert r == P.Response(P.STATUS_BUS, P.CMD_READ, 5, ())
        assert dec.frame_errors == 0 and parser.crc_errors == 0

    run(dut, "uart_bridge", [bench], [dec.process])


# Bridge at 3 Mbaud through the driver's framing ---------------------------------------------------

def test_baud_divisor_at_3_mbaud():
    # The ULX3S's FT231X runs at 3 Mbaud: exact at 60 and 75 MHz, 2.6 % off at 40 MHz.
    assert baud_divisor(60_000_000, 3_000_000) == 20
    assert baud_divisor(75_000_000, 3_000_000) == 25
    with pytest.raises(ValueError, match="2.6% off at 40 MHz"):
        baud_divisor(40_000_000, 3_000_000)


@pytest.mark.parametrize("clk_hz", [60_000_000, 75_000_000])
def test_bridge_at_3_mbaud_through_serial_transport(clk_hz):
    """The UART bridge at 3 Mbaud, simulated bit by bit at the boards' clocks, driven by the
    driver's own framing (firmware.serial_transport) with random idle gaps between the host's
    bytes: PING, a WRITE and a READ of random words round trip, the bytes on the line are the
    link model's, and the line's time is the wire time plus the gaps and the bridge's turnaround."""
    import asyncio
    from firmware.bridge_line_sim import SimulatedSerialLine
    from firmware.link_model import transfer_bytes
    from firmware.serial_transport import SerialTransport

    rng = random.Random(clk_hz)
    baud = 3_000_000
    line = SimulatedSerialLine(clk_hz=clk_hz, baud=baud, mem_words=1024, max_gap_cycles=40,
                               seed=clk_hz)
    assert line.divisor == clk_hz // baud
    transport = SerialTransport("sim", baud=baud, serial=line, timeout=3600, recovery=0)
    assert transport.device_clk_hz == clk_hz and transport.max_words == P.DEFAULT_MAX_WORDS
    count = rng.randrange(16, 33)
    addr = rng.randrange(0, 1024 - count)
    words = [rng.getrandbits(32) for _ in range(count)]
    line.mark()
    asyncio.run(transport.write_words(addr, words))
    assert asyncio.run(transport.read_words(addr, count)) == words
    assert transport.retries_used == 0

    sent = transfer_bytes(P.CMD_WRITE, count)[0] + transfer_bytes(P.CMD_READ, count)[0]
    received = transfer_bytes(P.CMD_WRITE, count)[1] + transfer_bytes(P.CMD_READ, count)[1]
    assert (line.bytes_sent, line.bytes_received) == (sent, received)
    wire_s = (sent + received) * 10 / baud
    # at most 40 idle cycles after each byte the host sends, and the bridge's turnaround: two
    # transactions, each under 8 byte times from the request's last byte to the response's first
    slack_s = (40 * sent + 2 * 8 * 10 * line.divisor) / clk_hz
    assert wire_s < line.seconds < wire_s + slack_s, (line.seconds, wire_s, slack_s)
