"""The framed host protocol of the UART-to-Wishbone bridge: constants and the host-side codec.

One request frame, one response frame, one transaction at a time. The gateware
(``accel/uart_bridge.py``) imports its constants from here, so both sides cannot drift apart.

Request (host to device)::

    SYNC_REQ  cmd  seq  addr[4]  count[2]  payload[4*count if WRITE]  crc[2]

Response (device to host)::

    SYNC_RESP  status  cmd  seq  count[2]  payload[4*count]  crc[2]

Multi-byte fields are little-endian. ``addr`` is a Wishbone *word* address (byte address / 4), below
``2**30``; ``count`` is a number of 32-bit words. The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021,
initial value 0xFFFF, no reflection, no final XOR) over every byte after the sync byte up to the
end of the payload.

Commands
    ``PING``: no payload; the response carries ``PING_WORDS`` words: ``MAGIC``,
    ``(VERSION << 16) | max_words``, the device clock in Hz. A PING also forgets the last write's
    sequence number (see below), so a host opens a link with a PING.
    ``READ``: ``count`` words from ``addr`` on; the response carries them.
    ``WRITE``: ``count`` payload words to ``addr`` on; the response carries none.

The device buffers a whole WRITE and checks its CRC before any bus access, so a corrupted frame
never reaches the bus (a corrupted write to a control register must not start the engine). A
frame error (bad CRC, unknown command, bad count or address, a truncated frame: no byte for the
device's idle timeout) makes the device discard input until the line has been idle for the timeout,
then answer with a NAK (a non-zero, retryable status, see ``RETRYABLE``). Draining first means the
NAK comes after the rest of the broken frame, never in the middle of the host's retry.

``seq`` is echoed in the response so that the host can tell a late answer from the one it waits
for. The host increments it per transaction, not per retry: when a WRITE's response is lost and
the host resends the frame, the device sees the same ``seq`` as the write it just performed and
answers OK without writing again (only directly after that write; any other command in between
forgets it).
"""

import binascii
import struct
from dataclasses import dataclass


__all__ = [
    "SYNC_REQ", "SYNC_RESP", "CMD_PING", "CMD_READ", "CMD_WRITE", "COMMANDS",
    "STATUS_OK", "STATUS_CRC", "STATUS_TIMEOUT", "STATUS_CMD", "STATUS_COUNT", "STATUS_ADDR",
    "STATUS_BUS", "STATUS_BUS_TIMEOUT", "STATUS_NAMES", "RETRYABLE",
    "MAGIC", "VERSION", "PING_WORDS", "DEFAULT_MAX_WORDS", "ADDR_LIMIT",
    "REQ_HEADER_BYTES", "RESP_HEADER_BYTES", "CRC_BYTES",
    "crc16", "crc16_update_byte",
    "Request", "Response", "ProtocolError", "encode_request", "decode_request",
    "encode_response", "decode_response", "ResponseParser", "DeviceModel", "request_bytes",
    "response_bytes",
]


SYNC_REQ = 0xA5
SYNC_RESP = 0x5A

CMD_PING = 0x01
CMD_READ = 0x02
CMD_WRITE = 0x03
COMMANDS = {CMD_PING: "PING", CMD_READ: "READ", CMD_WRITE: "WRITE"}

STATUS_OK = 0
STATUS_CRC = 1           # CRC mismatch (request corrupted on the line)
STATUS_TIMEOUT = 2       # frame truncated: the line went idle in the middle of a frame
STATUS_CMD = 3           # unknown command byte
STATUS_COUNT = 4         # count 0 or above the device's max_words for READ/WRITE
STATUS_ADDR = 5          # addr + count beyond the 30-bit word address space
STATUS_BUS = 6           # the Wishbone target answered err
STATUS_BUS_TIMEOUT = 7   # the Wishbone target did not answer in time
STATUS_NAMES = {
    STATUS_OK: "OK", STATUS_CRC: "CRC", STATUS_TIMEOUT: "TIMEOUT", STATUS_CMD: "CMD",
    STATUS_COUNT: "COUNT", STATUS_ADDR: "ADDR", STATUS_BUS: "BUS", STATUS_BUS_TIMEOUT: "BUS_TIMEOUT",
}
# Statuses that mean "your frame did not arrive intact": the host resends. A well-formed host never
# sends a bad command, count or address, so those too can only come from line noise.
RETRYABLE = frozenset({STATUS_CRC, STATUS_TIMEOUT, STATUS_CMD, STATUS_COUNT, STATUS_ADDR})

MAGIC = 0x5045_4142      # "PEAB": pixel-embedding accelerator bridge
VERSION = 1
PING_WORDS = 3
DEFAULT_MAX_WORDS = 256
ADDR_LIMIT = 1 << 30     # Wishbone word addresses are 30 bits wide

REQ_HEADER_BYTES = 9     # sync, cmd, seq, addr[4], count[2]
RESP_HEADER_BYTES = 6    # sync, status, cmd, seq, count[2]
CRC_BYTES = 2


def crc16_update_byte(crc, byte):
    """One byte of CRC-16/CCITT-FALSE, bit by bit: the reference the gateware's unrolled XOR
    network is compared with."""
    crc ^= (byte & 0xFF) << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        crc &= 0xFFFF
    return crc


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE of ``data`` (``binascii.crc_hqx`` computes exactly this)."""
    return binascii.crc_hqx(bytes(data), crc)


class ProtocolError(ValueError):
    """A frame that cannot be decoded: bad sync, CRC, length or field."""


def _check_word(value, what):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < (1 << 32):
        raise ValueError(f"{what} must be a 32-bit unsigned integer, not {value!r}")
    return value


@dataclass(frozen=True)
class Request:
    """One request frame.

    Parameters
    ----------
    cmd : int
        ``CMD_PING``, ``CMD_READ`` or ``CMD_WRITE``.
    seq : int
        Sequence number, 0..255.
    addr : int
        Wishbone word address.
    count : int
        Words to read or write (0 for PING).
    words : tuple of int
        WRITE payload (``count`` words), empty otherwise.
    """
    cmd: int
    seq: int = 0
    addr: int = 0
    count: int = 0
    words: tuple = ()


@dataclass(frozen=True)
class Response:
    """One response frame: ``status`` (``STATUS_*``), the echoed ``cmd`` and ``seq``, and
    ``words`` (READ data or PING information)."""
    status: int
    cmd: int
    seq: int
    words: tuple = ()

    @property
    def ok(self):
        return self.status == STATUS_OK

    @property
    def status_name(self):
        return STATUS_NAMES.get(self.status, f"status {self.status}")


def encode_request(req, *, max_words=None):
    """Bytes of a request frame. Raises ``ValueError`` for a frame the device would reject
    (the host checks first instead of learning it from a NAK)."""
    if req.cmd not in COMMANDS:
        raise ValueError(f"cmd must be one of {sorted(COMMANDS)}, not {req.cmd!r}")
    if not 0 <= req.seq <= 0xFF:
        raise ValueError(f"seq must be 0..255, not {req.seq!r}")
    if not isinstance(req.addr, int) or not 0 <= req.addr < ADDR_LIMIT:
        raise ValueError(f"addr must be a word address below 2**30, not {req.addr!r}")
    if not isinstance(req.count, int) or not 0 <= req.count <= 0xFFFF:
        raise ValueError(f"count must be 0..65535, not {req.count!r}")
    if req.cmd in (CMD_READ, CMD_WRITE):
        if req.count == 0:
            raise ValueError("count must be at least 1 for READ and WRITE")
        if max_words is not None and req.count > max_words:
            raise ValueError(f"count {req.count} exceeds the device's max_words={max_words}")
        if req.addr + req.count > ADDR_LIMIT:
            raise ValueError(f"addr {req.addr:#x} + count {req.count} runs past the 30-bit "
                             f"word address space")
    words = tuple(_check_word(w, "payload word") for w in req.words)
    if req.cmd == CMD_WRITE:
        if len(words) != req.count:
            raise ValueError(f"WRITE carries {len(words)} words but count is {req.count}")
    elif words:
        raise ValueError(f"only WRITE carries a payload, not {COMMANDS[req.cmd]}")
    body = struct.pack("<BBIH", req.cmd, req.seq, req.addr, req.count)
    body += struct.pack(f"<{len(words)}I", *words)
    return bytes([SYNC_REQ]) + body + struct.pack("<H", crc16(body))


def decode_request(frame):
    """Parse one complete request frame (the device's view, for tests and loopbacks)."""
    frame = bytes(frame)
    if len(frame) < REQ_HEADER_BYTES + CRC_BYTES:
        raise ProtocolError(f"request truncated: {len(frame)} bytes")
    if frame[0] != SYNC_REQ:
        raise ProtocolError(f"bad request sync byte {frame[0]:#04x}")
    cmd, seq, addr, count = struct.unpack_from("<BBIH", frame, 1)
    n_payload = count if cmd == CMD_WRITE else 0
    expected = REQ_HEADER_BYTES + 4 * n_payload + CRC_BYTES
    if len(frame) != expected:
        raise ProtocolError(f"request length {len(frame)} does not match count ({expected})")
    body = frame[1:-CRC_BYTES]
    (crc,) = struct.unpack_from("<H", frame, len(frame) - CRC_BYTES)
    if crc != crc16(body):
        raise ProtocolError(f"request CRC mismatch: got {crc:#06x}, expected {crc16(body):#06x}")
    words = struct.unpack_from(f"<{n_payload}I", frame, REQ_HEADER_BYTES)
    return Request(cmd=cmd, seq=seq, addr=addr, count=count, words=tuple(words))


def encode_response(resp):
    """Bytes of a response frame (the device's side, for loopbacks and tests)."""
    words = tuple(_check_word(w, "response word") for w in resp.words)
    body = struct.pack("<BBBH", resp.status, resp.cmd, resp.seq, len(words))
    body += struct.pack(f"<{len(words)}I", *words)
    return bytes([SYNC_RESP]) + body + struct.pack("<H", crc16(body))


def decode_response(frame):
    """Parse one complete response frame. Raises :class:`ProtocolError` if it is damaged."""
    parser = ResponseParser()
    responses = parser.feed(frame)
    if len(responses) != 1 or parser.pending:
        raise ProtocolError(f"expected exactly one response frame in {len(bytes(frame))} bytes, "
                            f"got {len(responses)}{' and a partial one' if parser.pending else ''}")
    return responses[0]


class ResponseParser:
    """Incremental parser of the device's byte stream.

    Bytes before a sync byte are skipped. A frame whose CRC does not match is dropped and counted
    in ``crc_errors`` (parsing resumes one byte after its sync byte, so a sync byte inside a
    damaged frame is not lost). ``max_words`` bounds the count field: a larger count can only come
    from a damaged header, which is dropped the same way.
    """
    def __init__(self, max_words=0xFFFF):
        self.max_words = max_words
        self._buf = bytearray()
        self.crc_errors = 0
        self.skipped = 0

    @property
    def pending(self):
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def bytes_needed(self):
        """How many more bytes complete the frame being parsed (at least 1)."""
        if not self._buf:
            return RESP_HEADER_BYTES + CRC_BYTES
        if len(self._buf) < RESP_HEADER_BYTES:
            return RESP_HEADER_BYTES + CRC_BYTES - len(self._buf)
        (count,) = struct.unpack_from("<H", self._buf, 4)
        return max(1, RESP_HEADER_BYTES + 4 * count + CRC_BYTES - len(self._buf))

    def feed(self, data):
        """Add bytes; return the list of complete, intact :class:`Response` frames in them."""
        self._buf += bytes(data)
        out = []
        while True:
            start = self._buf.find(SYNC_RESP)
            if start < 0:
                self.skipped += len(self._buf)
                self._buf.clear()
                break
            if start:
                self.skipped += start
                del self._buf[:start]
            if len(self._buf) < RESP_HEADER_BYTES:
                break
            status, cmd, seq, count = struct.unpack_from("<BBBH", self._buf, 1)
            if count > self.max_words:
                self.crc_errors += 1
                del self._buf[:1]
                continue
            total = RESP_HEADER_BYTES + 4 * count + CRC_BYTES
            if len(self._buf) < total:
                break
            body = bytes(self._buf[1:total - CRC_BYTES])
            (crc,) = struct.unpack_from("<H", self._buf, total - CRC_BYTES)
            if crc != crc16(body):
                self.crc_errors += 1
                del self._buf[:1]
                continue
            words = struct.unpack_from(f"<{count}I", self._buf, RESP_HEADER_BYTES)
            out.append(Response(status=status, cmd=cmd, seq=seq, words=tuple(words)))
            del self._buf[:total]
        return out


class DeviceModel:
    """Byte-level reference model of the gateware bridge (``accel/uart_bridge.py``).

    It follows the same state machine: hunt for ``SYNC_REQ``, read the header, check it, buffer a
    WRITE's payload, check the CRC, then access the bus; on a frame error discard input until the
    line is idle and answer with a NAK. The line going idle is signalled by calling :meth:`idle`
    (the gateware's idle timeout); :meth:`feed` returns the bytes the device sends in answer.

    Parameters
    ----------
    read, write : callable
        ``read(addr) -> int`` and ``write(addr, value)`` for one Wishbone word; either may raise
        ``BusError`` to model ``err``.
    max_words : int
        Largest READ/WRITE count the device buffers.
    clk_hz : int
        Clock reported by PING.
    """
    class BusError(Exception):
        pass

    def __init__(self, read, write, *, max_words=DEFAULT_MAX_WORDS, clk_hz=0):
        self._read = read
        self._write = write
        self.max_words = max_words
        self.clk_hz = clk_hz
        self._buf = bytearray()      # bytes of the frame being received (without sync)
        self._state = "hunt"
        self._drain_status = None
        self._last_write_seq = None
        self.frames = 0
        self.naks = 0

    def _nak(self, status, cmd=0, seq=0):
        self.naks += 1
        return encode_response(Response(status=status, cmd=cmd, seq=seq))

    def idle(self):
        """The line has been idle for the device's timeout: answer a pending frame error, or
        reject a truncated frame."""
        out = b""
        if self._state == "drain":
            out = self._nak(self._drain_status, *self._drain_ids)
        elif self._state == "frame":
            cmd = self._buf[0] if len(self._buf) > 0 else 0
            seq = self._buf[1] if len(self._buf) > 1 else 0
            out = self._nak(STATUS_TIMEOUT, cmd, seq)
        self._state = "hunt"
        self._buf.clear()
        return out

    def feed(self, data):
        out = bytearray()
        for byte in bytes(data):
            if self._state == "hunt":
                if byte == SYNC_REQ:
                    self._state = "frame"
                    self._buf.clear()
            elif self._state == "drain":
                pass
            else:
                self._buf.append(byte)
                out += self._step()
        return bytes(out)

    def _step(self):
        buf = self._buf
        n = len(buf)
        hdr = REQ_HEADER_BYTES - 1
        if n < hdr:
            return b""
        cmd, seq, addr, count = struct.unpack_from("<BBIH", buf, 0)
        if n == hdr:
            status = STATUS_OK
            if cmd not in COMMANDS:
                status = STATUS_CMD
            elif cmd != CMD_PING and not 1 <= count <= self.max_words:
                status = STATUS_COUNT
            elif cmd != CMD_PING and addr + count > ADDR_LIMIT:
                status = STATUS_ADDR
            if status != STATUS_OK:
                self._state = "drain"
                self._drain_status = status
                self._drain_ids = (cmd, seq)
            return b""
        n_payload = count if cmd == CMD_WRITE else 0
        total = hdr + 4 * n_payload + CRC_BYTES
        if n < total:
            return b""
        (crc,) = struct.unpack_from("<H", buf, total - CRC_BYTES)
        body = bytes(buf[:total - CRC_BYTES])
        self._buf = bytearray()
        if crc != crc16(body):
            self._state = "drain"
            self._drain_status = STATUS_CRC
            self._drain_ids = (cmd, seq)
            return b""
        self._state = "hunt"
        self.frames += 1
        last_write_seq, self._last_write_seq = self._last_write_seq, None
        status, words = STATUS_OK, ()
        if cmd == CMD_PING:
            words = (MAGIC, (VERSION << 16) | self.max_words, self.clk_hz)
        elif cmd == CMD_READ:
            try:
                words = tuple(self._read(addr + i) & 0xFFFFFFFF for i in range(count))
            except self.BusError:
                status, words = STATUS_BUS, ()
        else:
            if last_write_seq != seq:
                payload = struct.unpack_from(f"<{count}I", body, hdr)
                try:
                    for i, w in enumerate(payload):
                        self._write(addr + i, w)
                except self.BusError:
                    status = STATUS_BUS
            if status == STATUS_OK:
                self._last_write_seq = seq
        return encode_response(Response(status=status, cmd=cmd, seq=seq, words=words))


def request_bytes(cmd, count):
    """Length in bytes of a request frame."""
    return REQ_HEADER_BYTES + (4 * count if cmd == CMD_WRITE else 0) + CRC_BYTES


def response_bytes(cmd, count):
    """Length in bytes of a successful response frame."""
    n = count if cmd == CMD_READ else PING_WORDS if cmd == CMD_PING else 0
    return RESP_HEADER_BYTES + 4 * n + CRC_BYTES
