"""A serial port whose other end is the UART bridge gateware, simulated bit by bit.

:class:`SimulatedSerialLine` has the pyserial methods ``SerialTransport`` uses (``write``,
``read``, ``flush``, ``reset_input_buffer``, ``close``, ``timeout``), so the driver's framing runs
unchanged against ``accel.uart_bridge.UARTBridge`` in Amaranth's simulator: the bridge at the
board's clock and baud rate (its own divisor, ``accel.uart.baud_divisor``), behind it a Wishbone
decoder and an SRAM (what ``python -m accel.build --top bridge`` builds). The host side sends 8N1
bytes at exactly the bridge's bit period, back to back or with random idle gaps between bytes
(what a USB-serial adapter leaves), and decodes the bridge's ``tx`` line in the middle of each bit.

Simulated time moves only inside ``read``: it runs until the bytes asked for have arrived, or the
line has been quiet for ``quiet_limit_s`` of simulated time (then it returns what there is, as a
pyserial read times out). ``cycles`` counts the simulated clock cycles, and ``first_sent_cycle`` /
``last_received_cycle`` (reset by :meth:`mark`) time a series of transactions on the line:
payload bytes over that time is the link's throughput, turnaround of the bridge included.
"""

import collections
import random

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from accel import wishbone
from accel.uart_bridge import UARTBridge
from contract import protocol as P


__all__ = ["SimulatedSerialLine"]

BITS_PER_BYTE = 10       # 8N1


async def _ticks(ctx, count):
    """``count`` clock edges, awaited one by one: a coroutine left waiting inside
    ``tick().repeat()`` when a line is dropped makes Python complain as it is collected."""
    for _ in range(count):
        await ctx.tick()


class _BridgeAndMemory(wiring.Component):
    """The bridge with an SRAM of ``mem_words`` words at word 0 behind a decoder."""
    def __init__(self, bridge, mem_words):
        self.bridge = bridge
        self.sram = wishbone.SRAM(mem_words)
        self._mem_words = mem_words
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bridge = self.bridge
        m.submodules.sram = self.sram
        m.submodules.decoder = decoder = wishbone.Decoder([("mem", 0, self._mem_words)])
        wiring.connect(m, self.bridge.bus, decoder.bus)
        wiring.connect(m, decoder.mem, self.sram.bus)
        return m


class SimulatedSerialLine:
    """A pyserial-like port wired to a bit-level simulation of the UART bridge and an SRAM.

    Parameters
    ----------
    clk_hz : int
        The bridge's clock (the board's design clock).
    baud : int
        Line rate; the bridge's divisor is ``accel.uart.baud_divisor(clk_hz, baud)`` and the host
        side sends with the same bit period.
    mem_words : int
        Words of the SRAM behind the bridge (a power of two).
    max_words : int
        The bridge's largest frame (``Board.bridge_words``).
    max_gap_cycles : int
        Idle cycles the host leaves after each byte, drawn uniformly from 0..max_gap_cycles
        (0: bytes back to back, the fastest an adapter sends).
    seed : int
        Seed of the gaps.
    quiet_limit_s : float, optional
        Simulated seconds of a quiet line after which ``read`` returns what it has (default:
        twice the bridge's receive timeout plus 1 ms).

    Members
    -------
    divisor : int
        Clock cycles per bit.
    cycles : int
        Simulated clock cycles so far.
    first_sent_cycle, last_received_cycle : int or None
        Cycle the first byte after :meth:`mark` started, cycle the last byte since then ended.
    bytes_sent, bytes_received : int
        Bytes on the line in each direction since :meth:`mark`.
    sram : accel.wishbone.SRAM
        The memory behind the bridge (its ``data`` for checks).
    """

    def __init__(self, *, clk_hz, baud, mem_words=4096, max_words=P.DEFAULT_MAX_WORDS,
                 max_gap_cycles=0, seed=0, quiet_limit_s=None):
        if not isinstance(clk_hz, int) or isinstance(clk_hz, bool) or clk_hz <= 0:
            raise ValueError(f"clk_hz must be a positive integer number of Hz, not {clk_hz!r}")
        if not isinstance(max_gap_cycles, int) or max_gap_cycles < 0:
            raise ValueError(f"max_gap_cycles must be a non-negative integer, not "
                             f"{max_gap_cycles!r}")
        self.bridge = UARTBridge(clk_freq=clk_hz, baud=baud, max_words=max_words)
        self.divisor = self.bridge.divisor
        self.clk_hz = clk_hz
        self.baud = baud
        self._top = _BridgeAndMemory(self.bridge, mem_words)
        self.sram = self._top.sram
        self._max_gap = max_gap_cycles
        self._rng = random.Random(seed)
        if quiet_limit_s is None:
            quiet_limit_s = 2 * self.bridge.timeout_cycles / clk_hz + 1e-3
        self._quiet_limit_cycles = int(quiet_limit_s * clk_hz)
        self.timeout = None          # pyserial's attribute; time here is simulated (quiet_limit_s)
        self.closed = False
        self._to_device = collections.deque()
        self._from_device = bytearray()
        self._sending = False
        self.cycles = 0
        self._last_activity = 0
        self.mark()
        self._sim = Simulator(self._top)
        self._sim.add_clock(1 / clk_hz)
        self._sim.add_testbench(self._sender, background=True)
        self._sim.add_testbench(self._receiver, background=True)
        self._deadline_cycles = 0

    def mark(self):
        """Start timing the line anew (``first_sent_cycle``, ``last_received_cycle``, byte counts)."""
        self.first_sent_cycle = None
        self.last_received_cycle = None
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def seconds(self):
        """Simulated seconds from the first byte sent to the last byte received since :meth:`mark`."""
        if self.first_sent_cycle is None or self.last_received_cycle is None:
            return 0.0
        return (self.last_received_cycle - self.first_sent_cycle) / self.clk_hz

    # The two ends of the line on the host's side -------------------------------------------------

    async def _sender(self, ctx):
        """Drive the bridge's ``rx``: 8N1 bytes from the write queue, exactly ``divisor`` cycles
        per bit; counts every cycle (``self.cycles``).

        An idle host looks at the queue in every cycle."""
        divisor = self.divisor
        pin = self.bridge.rx
        ctx.set(pin, 1)
        while True:
            if not self._to_device:
                self._sending = False
                await ctx.tick()
                self.cycles += 1
                continue
            self._sending = True
            byte = self._to_device.popleft()
            if self.first_sent_cycle is None:
                self.first_sent_cycle = self.cycles
            for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                ctx.set(pin, bit)
                await _ticks(ctx, divisor)
                self.cycles += divisor
            self.bytes_sent += 1
            self._last_activity = self.cycles
            gap = self._rng.randint(0, self._max_gap) if self._max_gap else 0
            if gap:
                await _ticks(ctx, gap)
                self.cycles += gap

    async def _receiver(self, ctx):
        """Decode the bridge's ``tx`` in the middle of each bit into the read buffer."""
        divisor = self.divisor
        pin = self.bridge.tx
        while True:
            # tx is a register: it falls just after a clock edge, the start of a start bit
            await ctx.negedge(pin)
            # to the middle of the start bit, then of each data bit and of the stop bit
            await _ticks(ctx, divisor // 2)
            value = 0
            for k in range(8):
                await _ticks(ctx, divisor)
                value |= ctx.get(pin) << k
            await _ticks(ctx, divisor)
            if ctx.get(pin):
                self._from_device.append(value)
                self.bytes_received += 1
            # (a framing error drops the byte, as a UART does; the transport sees a bad frame)
            # the byte ends half a bit later (``cycles`` is the sender's count)
            self.last_received_cycle = self.cycles + (divisor + 1) // 2
            self._last_activity = self.last_received_cycle
            await _ticks(ctx, divisor // 2 - 1)

    def _step(self, cycles):
        self._deadline_cycles = max(self._deadline_cycles, self.cycles) + cycles
        self._sim.run_until(self._deadline_cycles / self.clk_hz)

    # pyserial ------------------------------------------------------------------------------------

    def write(self, data):
        if self.closed:
            raise OSError("the simulated line is closed")
        self._to_device.extend(bytes(data))
        return len(data)

    def flush(self):
        """Nothing to do: the bytes go out while ``read`` runs the simulation."""

    def reset_input_buffer(self):
        self._from_device.clear()

    def read(self, size=1):
        """Up to ``size`` bytes from the bridge: runs the simulation until they have arrived or
        the line has been quiet for ``quiet_limit_s``."""
        if self.closed:
            raise OSError("the simulated line is closed")
        byte_cycles = BITS_PER_BYTE * self.divisor
        self._last_activity = max(self._last_activity, self.cycles)
        while len(self._from_device) < size:
            busy = self._sending or self._to_device
            if not busy and self.cycles - self._last_activity > self._quiet_limit_cycles:
                break
            self._step(byte_cycles)
        out = bytes(self._from_device[:size])
        del self._from_device[:size]
        return out

    def close(self):
        self.closed = True
