"""Stand-in serial ports for the tests of ``firmware.serial_transport.SerialTransport``: the
pyserial surface it uses, once, in front of a simulated far end that each test's port supplies.

``SimulatedSerial`` is the port itself; ``DeviceModelSerial`` puts the bridge protocol's reference
model (``contract.protocol.DeviceModel``) at the far end, for ports whose board is a Python
model rather than gateware; ``FrameBridgeSerial`` the ``FrameBridge`` gateware in Amaranth's
simulator, byte by byte.
"""

import collections

from contract import protocol as P


__all__ = ["SimulatedSerial", "DeviceModelSerial", "FrameBridgeSerial"]


class SimulatedSerial:
    """A pyserial stand-in (``write``, ``flush``, ``reset_input_buffer``, ``read``, ``close``,
    ``timeout``) whose far end is simulated.

    The line answers in simulated time: ``read`` lets the far end run, one ``advance`` at a time,
    until the bytes asked for are there or the line has been quiet for ``quiet_limit`` steps, and
    returns what it has. ``timeout`` is there for ``SerialTransport`` to set; the simulated line
    does not use it.

    Subclasses supply the far end with two methods:

    - ``deliver(data)``: the device receives the bytes the host wrote; what it answers at once is
      appended to ``from_device``;
    - ``advance()``: the device runs one step with the host silent (a clock cycle of a simulator,
      the idle timeout of a model), appending what it sends to ``from_device``;

    and may override ``through_line(data, direction)`` to damage bytes on their way.

    Parameters
    ----------
    quiet_limit : int
        Steps of ``advance`` without a new byte after which ``read`` returns short.

    Members
    -------
    from_device : bytearray
        Bytes the device has sent that the host has not read.
    bytes_written, bytes_read : int
        Bytes the host has written and read so far.
    closed : bool
        Whether the host has closed the port.
    """

    def __init__(self, *, quiet_limit):
        if not isinstance(quiet_limit, int):
            raise TypeError(f"quiet_limit must be an integer, not {quiet_limit!r}")
        if quiet_limit < 1:
            raise ValueError(f"quiet_limit must be at least 1, not {quiet_limit}")
        self.quiet_limit = quiet_limit
        self.from_device = bytearray()
        self.timeout = None
        self.bytes_written = 0
        self.bytes_read = 0
        self.closed = False

    # The far end ---------------------------------------------------------------------------------

    def deliver(self, data):
        """The device receives ``data`` (bytes); it appends its immediate answer to
        ``from_device``."""
        raise NotImplementedError(f"{type(self).__name__} does not say what its device receives")

    def advance(self):
        """The device runs one step with the host silent; it appends what it sends to
        ``from_device``."""
        raise NotImplementedError(f"{type(self).__name__} does not say how its device runs")

    def through_line(self, data, direction):
        """What arrives of ``data`` (bytes) sent in ``direction`` (``"to_device"`` or
        ``"to_host"``): all of it, unless a test damages the line."""
        return data

    # The pyserial interface SerialTransport uses ------------------------------------------------

    def write(self, data):
        data = bytes(data)
        self.bytes_written += len(data)
        self.deliver(self.through_line(data, "to_device"))
        return len(data)

    def flush(self):
        pass

    def reset_input_buffer(self):
        self.from_device.clear()

    def read(self, size):
        quiet = 0
        while len(self.from_device) < size and quiet < self.quiet_limit:
            before = len(self.from_device)
            self.advance()
            quiet = 0 if len(self.from_device) != before else quiet + 1
        out = bytes(self.from_device[:size])
        del self.from_device[:size]
        self.bytes_read += len(out)
        return out

    def close(self):
        self.closed = True


class DeviceModelSerial(SimulatedSerial):
    """A ``SimulatedSerial`` whose far end is ``contract.protocol.DeviceModel``, the byte-level
    model the gateware bridge is checked against, on a bus that subclasses supply with
    ``bus_read(addr) -> int`` and ``bus_write(addr, value)`` (either may raise
    ``DeviceModel.BusError``).

    When the host reads and no byte is waiting, the line has been idle: the model's idle timeout
    fires (``DeviceModel.idle``), as on the board.

    Parameters
    ----------
    max_words : int
        Largest READ/WRITE count the device buffers.
    clk_hz : int
        Clock the device reports in its PING answer.

    Members
    -------
    device : contract.protocol.DeviceModel
    """

    def __init__(self, *, max_words, clk_hz):
        # One step of the model is its whole idle timeout: a read gives up after one quiet step.
        super().__init__(quiet_limit=1)
        self.device = P.DeviceModel(self.bus_read, self.bus_write, max_words=max_words,
                                    clk_hz=clk_hz)

    def bus_read(self, addr):
        """The word at word address ``addr``."""
        raise NotImplementedError(f"{type(self).__name__} has no bus to read")

    def bus_write(self, addr, value):
        """Store ``value`` at word address ``addr``."""
        raise NotImplementedError(f"{type(self).__name__} has no bus to write")

    def deliver(self, data):
        self.from_device += self.through_line(self.device.feed(data), "to_host")

    def advance(self):
        if not self.from_device:
            self.from_device += self.through_line(self.device.idle(), "to_host")


class FrameBridgeSerial(SimulatedSerial):
    """A port whose far end is ``bridge`` (an ``accel.uart_bridge.FrameBridge``) in Amaranth's
    simulator, at byte level: the UART itself is tested in tests/test_uart_bridge.py.

    Subclasses build the design around the bridge and run a testbench that calls :meth:`pump`
    once per clock cycle; ``advance`` is one cycle.

    Members
    -------
    to_device : collections.deque
        Bytes the host wrote that the bridge has not taken yet.
    cycles : int
        Clock cycles simulated.
    """

    def __init__(self, *, quiet_limit):
        super().__init__(quiet_limit=quiet_limit)
        self.to_device = collections.deque()
        self.cycles = 0

    async def pump(self, ctx):
        """One clock cycle of the line: offer the bridge the next byte, take the byte it sends.
        Returns ``(taken, sent)``: whether it took a byte, and whether it sent one."""
        bridge = self.bridge
        ctx.set(bridge.tx.ready, 1)
        pending = bool(self.to_device)
        ctx.set(bridge.rx.valid, pending)
        if pending:
            ctx.set(bridge.rx.payload, self.to_device[0])
        taken = pending and ctx.get(bridge.rx.ready)
        sent = ctx.get(bridge.tx.payload) if ctx.get(bridge.tx.valid) else None
        await ctx.tick()
        self.cycles += 1
        if taken:
            self.to_device.popleft()
        if sent is not None:
            self.from_device.append(sent)
        return bool(taken), sent is not None

    def advance(self):
        end = self.cycles + 1
        while self.cycles < end:
            self.sim.advance()
