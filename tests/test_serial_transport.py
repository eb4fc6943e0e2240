"""SerialTransport over a fake serial port: a loopback into the protocol's DeviceModel (the byte-level
model the gateware bridge is checked against in tests/test_uart_bridge.py), with injected line
faults: corrupted, dropped and truncated frames in both directions, lost responses."""

import asyncio
import random

import pytest
from hypothesis import given, settings, strategies as st

from contract import protocol as P
from firmware.serial_transport import SerialTransport, STATUS_WORD, STATUS_DONE, STATUS_ERROR
from firmware.transport import TransportError
from simulated_serial import DeviceModelSerial, FrameBridgeSerial


MEM_WORDS = 4096


class FakeSerial(DeviceModelSerial):
    """A ``DeviceModelSerial`` on main memory and a STATUS register, with injected line faults: in
    a fraction ``p_fault`` of the frames crossing the line in one of ``directions``, a fault of one
    of ``kinds`` (``"flip"``, ``"drop_byte"``, ``"truncate"``, ``"lose"``).
    """
    def __init__(self, *, max_words=64, clk_hz=50_000_000, rng=None, p_fault=0.0, kinds=(),
                 directions=("to_device", "to_host")):
        super().__init__(max_words=max_words, clk_hz=clk_hz)
        self.mem = [0] * MEM_WORDS
        self.status = 0
        self.rng = rng or random.Random(0)
        self.p_fault = p_fault
        self.kinds = kinds
        self.directions = directions
        self.faults = 0
        self.frames_written = 0
        self.status_reads = 0
        self.done_after = None

    def bus_read(self, addr):
        if addr == STATUS_WORD:
            self.status_reads += 1
            if self.done_after is not None and self.status_reads >= self.done_after:
                return self.status | STATUS_DONE
            return self.status
        if addr >= MEM_WORDS:
            raise P.DeviceModel.BusError()
        return self.mem[addr]

    def bus_write(self, addr, value):
        if addr >= MEM_WORDS:
            raise P.DeviceModel.BusError()
        self.mem[addr] = value

    def through_line(self, data, direction):
        if (not data or direction not in self.directions or self.rng.random() >= self.p_fault
                or not self.kinds):
            return data
        self.faults += 1
        kind = self.rng.choice(self.kinds)
        data = bytearray(data)
        if kind == "flip":
            data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
        elif kind == "drop_byte":
            del data[self.rng.randrange(len(data))]
        elif kind == "truncate":
            data = data[:self.rng.randrange(len(data))]
        elif kind == "lose":
            data = bytearray()
        return bytes(data)

    def deliver(self, data):
        self.frames_written += 1
        super().deliver(data)


def run(coro):
    return asyncio.run(coro)


def make(fake, **kw):
    kw.setdefault("recovery", 0.0)
    kw.setdefault("timeout", 0.05)
    return SerialTransport("fake0", baud=1_000_000, serial=fake, **kw)


def test_open_ping_learns_the_device():
    fake = FakeSerial(max_words=64, clk_hz=48_000_000)
    t = make(fake)
    assert t.max_words == 64 and t.fmax_hz == 48e6
    assert make(FakeSerial(), fmax_hz=75e6).fmax_hz == 75e6
    run(t.close())
    assert fake.closed


def test_read_write_split_into_frames():
    fake = FakeSerial(max_words=16)
    t = make(fake)
    words = [(i * 0x9E3779B9) & 0xFFFFFFFF for i in range(100)]
    before = fake.frames_written
    run(t.write_words(10, words))
    assert fake.frames_written - before == 7          # ceil(100 / 16)
    assert fake.mem[10:110] == words
    assert run(t.read_words(5, 110)) == [0] * 5 + words + [0] * 5
    assert run(t.read_word(10)) == words[0]
    assert t.retries_used == 0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([("flip",), ("drop_byte",), ("truncate",), ("lose",),
                                               ("flip", "drop_byte", "truncate", "lose")]),
       st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=80), st.integers(0, 3000))
def test_noisy_line_never_corrupts_data(seed, kinds, words, addr):
    """With a fault in 15% of the frames in each direction (an attempt fails with p ~ 0.28), every
    transfer completes with exactly the right data: 12 tries all failing (p ~ 2e-7) is not expected
    in any example."""
    fake = FakeSerial(max_words=16, rng=random.Random(seed), p_fault=0.15, kinds=kinds)
    fake.p_fault = 0.0
    t = make(fake, retries=12)
    fake.p_fault = 0.15
    run(t.write_words(addr, words))
    assert fake.mem[addr:addr + len(words)] == words
    assert run(t.read_words(addr, len(words))) == words
    if fake.faults:
        assert t.retries_used > 0


def test_lost_write_response_is_not_repeated():
    fake = FakeSerial()
    t = make(fake)
    dev = fake.device
    original = fake.write

    lost = []

    def write_losing_first_response(data):
        n = original(data)
        if not lost:
            lost.append(bytes(fake.from_device))
            fake.from_device.clear()   # the response of the first attempt never arrives
            # A change by the accelerator between the write and its resend must survive.
            fake.mem[7] = 1234
        return n
    fake.write = write_losing_first_response
    run(t.write_words(7, [55]))
    assert lost and P.decode_response(lost[0]).ok
    assert fake.mem[7] == 1234          # the resent frame was acknowledged, not re-executed
    assert t.retries_used == 1


def test_retries_exhausted_is_one_line():
    fake = FakeSerial(rng=random.Random(1))
    t = make(fake, retries=3)
    fake.p_fault, fake.kinds = 1.0, ("lose",)
    with pytest.raises(TransportError) as exc:
        run(t.read_words(0x100, 4))
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith("fake0: READ of 4 words at 0x100 failed after 3 tries; last: ")
    assert "no response" in msg


def test_nak_reason_in_error():
    fake = FakeSerial(rng=random.Random(2))
    t = make(fake, retries=2)
    # Every request damaged on its way to the device, the answers clean: NAK after NAK.
    fake.kinds, fake.p_fault, fake.directions = ("flip",), 1.0, ("to_device",)
    with pytest.raises(TransportError, match=r"fake0: WRITE of 3 words at 0x0 failed after 2 "
                                             r"tries; last: device answered NAK (CRC|CMD|COUNT|ADDR|TIMEOUT)$"):
        run(t.write_words(0, [1, 2, 3]))
    assert fake.mem[:3] == [0, 0, 0]


def test_bus_error_is_not_retried():
    fake = FakeSerial()
    t = make(fake)
    with pytest.raises(TransportError, match=r"fake0: READ of 2 words at 0x20000000: device answered BUS"):
        run(t.read_words(0x2000_0000, 2))
    assert t.retries_used == 0


def test_wait_irq_polls_status():
    fake = FakeSerial(clk_hz=1_000_000)
    t = make(fake, poll_interval=0.0)
    fake.done_after = 3
    assert run(t.wait_irq(1_000_000)) is True
    assert fake.status_reads == 3
    fake.done_after, fake.status_reads = None, 0
    fake.status = STATUS_ERROR
    assert run(t.wait_irq(10)) is True
    fake.status = 0
    # 1,000 cycles at 1 MHz = 1 ms: gives up.
    assert run(t.wait_irq(1000)) is False
    assert STATUS_WORD == (0x4000_0000 + 0x14) // 4 and STATUS_DONE == 2 and STATUS_ERROR == 4


def test_not_a_bridge():
    class Echo(FakeSerial):
        def write(self, data):
            # Something that answers with a valid frame but the wrong magic.
            req = P.decode_request(data)
            answer = P.Response(0, req.cmd, req.seq, (0x1234, 1 << 16 | 8, 0))
            self.from_device += P.encode_response(answer)
            return len(data)
    fake = Echo()
    with pytest.raises(TransportError, match="not an accelerator bridge"):
        make(fake)
    assert fake.closed


def test_cannot_open_port_is_one_line():
    with pytest.raises(TransportError) as exc:
        SerialTransport("/dev/nonexistent-tty-for-test", baud=115200)
    assert str(exc.value).startswith("/dev/nonexistent-tty-for-test: cannot open:")
    assert "\n" not in str(exc.value)


def test_argument_checks():
    fake = FakeSerial()
    t = make(fake)
    with pytest.raises(ValueError, match="32-bit"):
        run(t.write_words(0, [1 << 32]))
    with pytest.raises(ValueError, match="30-bit"):
        run(t.read_words(P.ADDR_LIMIT - 1, 2))
    with pytest.raises(ValueError, match="retries"):
        SerialTransport("x", serial=fake, retries=0)


# Through the gateware: SerialTransport -> bytes -> FrameBridge (pysim) -> Wishbone -> SRAM ---------

class PySimSerial(FrameBridgeSerial):
    """A serial port whose far end is the FrameBridge gateware on an SRAM in Amaranth's simulator.
    Reads run the simulation until the bytes are there or the line has been quiet for longer than
    the bridge's idle timeout."""
    def __init__(self, damage_first_request=False):
        from amaranth.hdl import Module
        from amaranth.lib import wiring
        from amaranth.sim import Simulator
        from accel import wishbone
        from accel.uart_bridge import FrameBridge

        self.timeout_cycles = 40
        super().__init__(quiet_limit=3 * self.timeout_cycles + 200)
        self.bridge = bridge = FrameBridge(max_words=8, timeout_cycles=self.timeout_cycles,
                                           bus_timeout=50, clk_freq=50_000_000)
        self.sram = sram = wishbone.SRAM(1024)
        m = Module()
        m.submodules.bridge = bridge
        m.submodules.sram = sram
        m.submodules.dec = dec = wishbone.Decoder([("mem", 0, 1024)])
        wiring.connect(m, bridge.bus, dec.bus)
        wiring.connect(m, dec.mem, sram.bus)
        self.damage_next = damage_first_request
        self.sim = Simulator(m)
        self.sim.add_clock(1e-6)
        self.sim.add_testbench(self._server)

    async def _server(self, ctx):
        while True:
            await self.pump(ctx)

    def through_line(self, data, direction):
        if direction == "to_device" and self.damage_next:
            self.damage_next = False
            data = bytearray(data)
            data[len(data) // 2] ^= 0x40
        return bytes(data)

    def deliver(self, data):
        self.to_device.extend(data)
        while self.to_device:
            self.advance()


def test_transport_through_the_gateware_bridge():
    port = PySimSerial(damage_first_request=False)
    # The simulated line answers in simulated time (its read returns after a simulated quiet
    # period), so a generous wall-clock timeout costs nothing; the default 50 ms ran out on a
    # loaded machine and counted as retries.
    t = make(port, timeout=30.0)
    assert t.max_words == 8 and t.fmax_hz == 50e6
    words = [(0x01020304 * (i + 1)) & 0xFFFFFFFF for i in range(20)]
    run(t.write_words(100, words))                       # three frames of at most 8 words
    assert run(t.read_words(99, 22)) == [0] + words + [0]
    assert t.retries_used == 0
    # A request damaged on the line is NAKed by the gateware, resent, and lands once.
    port.damage_next = True
    run(t.write_words(500, [7, 8, 9]))
    assert t.retries_used == 1
    assert run(t.read_words(500, 3)) == [7, 8, 9]
