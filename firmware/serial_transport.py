"""A ``Transport`` to a board over a serial port, speaking the bridge protocol of
``contract/protocol.py`` to ``accel/uart_bridge.py``.

Every transaction is one request frame and one response frame. A frame that is answered with a
retryable NAK (the device saw it damaged or cut short), a damaged response or no response at all
is sent again, up to ``retries`` times; then a :class:`TransportError` with one line naming the port
and the last failure. The sequence number of a transaction stays the same across its retries, so a
resent WRITE whose first response was lost is not performed twice by the bridge.

A board reset in the middle of a transaction looks like line damage here (no answer, a NAK for the
rest of a frame, an answer cut short) and is retried like it. The bridge restarts without the last
write's sequence number, so a WRITE resent across a reset is performed again: the same words land
twice in memory, and the driver notices the reset itself (``firmware/driver.py``).

``wait_irq`` polls the STATUS register (``done`` or ``error`` set) for the wall-clock equivalent of
the requested device cycles at ``fmax_hz``.

I/O is blocking inside the coroutines (the driver runs them with any coroutine runner; there is no
event loop to yield to).
"""

import time

from contract import protocol as P

from . import regs as _regs
from .transport import Transport, TransportError


__all__ = ["SerialTransport"]


STATUS_WORD = (_regs.CSR_BASE + _regs.STATUS) // 4
STATUS_DONE = _regs.STATUS_DONE_MASK
STATUS_ERROR = _regs.STATUS_ERROR_MASK


class SerialTransport(Transport):
    """Transport over a serial port (pyserial) to the board's UART bridge.

    Parameters
    ----------
    port : str
        Serial device (``/dev/ttyUSB0``, ``COM3``, a pyserial URL such as ``loop://``).
    baud : int
        Line rate; must match the bitstream (``python -m accel.build --baud``).
    fmax_hz : float, optional
        Device clock, for ``wait_irq`` and images/s. Default: the clock the bridge reports in its
        PING answer.
    retries : int
        Attempts per transaction before giving up.
    timeout : float, optional
        Seconds to wait for a response, per attempt. Default: twice the time the two frames take on
        the line plus 100 ms (USB latency, the device's idle timeout).
    recovery : float
        Seconds to wait after an attempt that got no answer, so that the device's receiver times
        out and drains before the frame is resent (the bridge's idle timeout is at most ~64 byte
        times or 2 ms).
    poll_interval : float
        Seconds between STATUS reads in ``wait_irq``.
    serial : object, optional
        An open pyserial-like object (``read``, ``write``, ``flush``, ``reset_input_buffer``,
        ``close``, ``timeout``) to use instead of opening ``port``; tests pass a fake.

    Members
    -------
    fmax_hz : float or None
    max_words : int
        Largest frame the bridge accepts (from PING); longer transfers are split.
    retries_used : int
        Frames resent so far (for link-quality reports).
    """

    def __init__(self, port, baud=1_000_000, fmax_hz=None, *, retries=5, timeout=None,
                 recovery=0.05, poll_interval=0.002, serial=None):
        if not isinstance(retries, int) or retries < 1:
            raise ValueError(f"retries must be a positive integer, not {retries!r}")
        self.port = port
        self.baud = baud
        self.retries = retries
        self._timeout = timeout
        self.recovery = recovery
        self.poll_interval = poll_interval
        self.retries_used = 0
        self._seq = 0
        self.max_words = P.DEFAULT_MAX_WORDS
        if serial is None:
            try:
                import serial as pyserial
            except ImportError:
                raise TransportError("pyserial is not installed (pip install pyserial)") from None
            try:
                serial = pyserial.serial_for_url(port, baudrate=baud, timeout=0.1)
            except (pyserial.SerialException, ValueError, OSError) as exc:
                raise TransportError(f"{port}: cannot open: {exc}") from None
        self._ser = serial
        # PING: checks the link, forgets the bridge's last write, gives max_words and the clock.
        try:
            resp = self._transact(P.Request(P.CMD_PING, self._next_seq()))
        except TransportError:
            self._ser.close()
            raise
        magic, info, clk_hz = resp.words
        if magic != P.MAGIC:
            self._ser.close()
            raise TransportError(f"{port}: not an accelerator bridge (PING magic {magic:#010x})")
        if info >> 16 != P.VERSION:
            self._ser.close()
            raise TransportError(f"{port}: bridge protocol version {info >> 16}, this host speaks "
                                 f"{P.VERSION}")
        self.max_words = info & 0xFFFF
        self.device_clk_hz = clk_hz
        self.fmax_hz = float(fmax_hz) if fmax_hz is not None else (float(clk_hz) if clk_hz else None)

    # Framing ------------------------------------------------------------------------------------

    def _next_seq(self):
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFF
        return seq

    def _attempt_timeout(self, req):
        if self._timeout is not None:
            return self._timeout
        n_bytes = P.request_bytes(req.cmd, req.count) + P.response_bytes(req.cmd, req.count)
        return 2 * n_bytes * 10 / self.baud + 0.1

    def _describe(self, req):
        if req.cmd == P.CMD_PING:
            return "PING"
        return f"{P.COMMANDS[req.cmd]} of {req.count} words at {req.addr:#x}"

    def _await(self, req, timeout):
        """The response to ``req``: a Response, or (None, reason) on timeout/garbage."""
        parser = P.ResponseParser(max_words=max(self.max_words, P.PING_WORDS))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._ser.timeout = remaining
            chunk = self._ser.read(parser.bytes_needed())
            if not chunk:
                break
            for resp in parser.feed(chunk):
                if resp.status in P.RETRYABLE:
                    # A NAK: the device saw a damaged frame (its seq may be damaged too).
                    return resp, None
                if resp.seq == req.seq and resp.cmd == req.cmd:
                    return resp, None
                # A late answer to an earlier attempt: keep waiting.
        if parser.crc_errors:
            return None, f"damaged response ({parser.crc_errors} bad CRC)"
        if parser.pending:
            return None, f"response cut short ({parser.pending} bytes) after {timeout:.3f} s"
        return None, f"no response within {timeout:.3f} s"

    def _transact(self, req):
        frame = P.encode_request(req, max_words=self.max_words)
        timeout = self._attempt_timeout(req)
        last = None
        for attempt in range(self.retries):
            if attempt:
                self.retries_used += 1
            try:
                self._ser.reset_input_buffer()
                self._ser.write(frame)
                self._ser.flush()
                resp, why = self._await(req, timeout)
            except OSError as exc:           # includes serial.SerialException
                raise TransportError(f"{self.port}: {self._describe(req)}: {exc}") from None
            if resp is None:
                last = why
                # Let the device's receiver time out and drain before resending.
                time.sleep(self.recovery)
                continue
            if resp.status in P.RETRYABLE:
                last = f"device answered NAK {resp.status_name}"
                continue
            if resp.status != P.STATUS_OK:
                raise TransportError(f"{self.port}: {self._describe(req)}: device answered "
                                     f"{resp.status_name}")
            return resp
        raise TransportError(f"{self.port}: {self._describe(req)} failed after {self.retries} "
                             f"tries; last: {last}")

    # Transport ----------------------------------------------------------------------------------

    def _check_range(self, addr, count):
        if not isinstance(addr, int) or addr < 0 or addr + count > P.ADDR_LIMIT:
            raise ValueError(f"word address range {addr!r}+{count} is outside the 30-bit bus")

    async def write_words(self, addr, words):
        words = [int(w) for w in words]
        self._check_range(addr, len(words))
        for w in words:
            if not 0 <= w < (1 << 32):
                raise ValueError(f"words must be 32-bit unsigned integers, not {w!r}")
        for start in range(0, len(words), self.max_words):
            chunk = tuple(words[start:start + self.max_words])
            self._transact(P.Request(P.CMD_WRITE, self._next_seq(), addr + start, len(chunk), chunk))

    async def read_words(self, addr, count):
        self._check_range(addr, count)
        out = []
        for start in range(0, count, self.max_words):
            n = min(self.max_words, count - start)
            resp = self._transact(P.Request(P.CMD_READ, self._next_seq(), addr + start, n))
            if len(resp.words) != n:
                raise TransportError(f"{self.port}: READ of {n} words at {addr + start:#x}: "
                                     f"got {len(resp.words)} words")
            out.extend(resp.words)
        return out

    async def wait_irq(self, timeout_cycles):
        if self.fmax_hz is None:
            raise TransportError(f"{self.port}: wait_irq needs fmax_hz (the device clock)")
        deadline = time.monotonic() + timeout_cycles / self.fmax_hz
        while True:
            (status,) = await self.read_words(STATUS_WORD, 1)
            if status & (STATUS_DONE | STATUS_ERROR):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(self.poll_interval)

    async def close(self):
        self._ser.close()
