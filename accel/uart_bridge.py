"""A UART-to-Wishbone bridge: the host's way into the SoC on a board.

It speaks the framed protocol of ``contract/protocol.py`` (constants imported from there, so the
gateware and the host codec cannot drift apart): one request frame in, one response frame out.
The bridge is a Wishbone initiator on the SoC's host port.

How it stays robust on a noisy or interrupted line:

* A WRITE's payload is collected in a block-RAM buffer and only written to the bus after its CRC
  checked, so a damaged frame never reaches a control register.
* Any frame error (bad CRC, unknown command, count or address out of range) puts the receiver in a
  drain state that discards bytes until the line has been idle for ``timeout_cycles``, then sends
  a NAK. A frame cut short (the line idle for ``timeout_cycles`` in the middle of a frame) is
  answered with a NAK too, so the host always gets an answer and retries.
* A Wishbone target that never answers ends the access after ``bus_timeout`` cycles with a
  ``STATUS_BUS_TIMEOUT`` response instead of hanging the bridge.
* The last WRITE's sequence number is remembered: a resent copy of a write that already took place
  (its response was lost) is answered OK without writing again.
"""

from types import SimpleNamespace

from amaranth.hdl import Module, Signal, Cat
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out
from amaranth.lib.memory import Memory

from contract import protocol as P
from . import wishbone
from .uart import UART, baud_divisor
from .crc16 import crc16_next, Crc16
from .line_idle_timer import LineIdleTimer
from .request_header import RequestHeader
from .bridge_bus_master import BridgeBusMaster
from .response_bytes import ResponseBytes


__all__ = ["crc16_next", "FrameBridge", "UARTBridge"]    # crc16_next from accel.crc16


class FrameBridge(wiring.Component):
    """The protocol engine, on byte streams (the UART is outside, so tests can run at byte level).

    Parameters
    ----------
    max_words : int
        Largest READ/WRITE count, the size of the word buffer (a power of two, 1..65535;
        256 words is one DP16KD on ECP5).
    timeout_cycles : int
        Idle time of the receive line, in clock cycles, that ends a drain or rejects a truncated
        frame. Make it several byte times and longer than the gaps a USB-serial adapter leaves
        inside a frame.
    bus_timeout : int
        Cycles an access may wait for ``ack``/``err`` before the bridge gives up on it.
    clk_freq : int
        Clock in Hz, reported by PING (0 when unknown).

    Members
    -------
    rx : In(stream.Signature(8))
        Bytes from the host. Ready in every cycle but one after each frame header; bytes that
        arrive while the bridge is busy on the bus or sending are dropped (a host waits for the
        response before it sends the next frame).
    tx : Out(stream.Signature(8))
        Bytes to the host.
    bus : Out(wishbone.Signature(30, 32))
        Wishbone initiator.
    frame_ok : Out(1)
        One-cycle pulse per frame accepted (for an activity LED).
    frame_error : Out(1)
        One-cycle pulse per NAK sent.
    """
    def __init__(self, *, max_words=P.DEFAULT_MAX_WORDS, timeout_cycles, bus_timeout=4096,
                 clk_freq=0):
        self._check(max_words, timeout_cycles, bus_timeout, clk_freq)
        self._max_words = max_words
        self._timeout_cycles = timeout_cycles
        self._bus_timeout = bus_timeout
        self._clk_freq = clk_freq
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "bus": Out(wishbone.Signature(30, 32)),
            "frame_ok": Out(1),
            "frame_error": Out(1),
        })

    @staticmethod
    def _check(max_words, timeout_cycles, bus_timeout, clk_freq):
        if (not isinstance(max_words, int) or isinstance(max_words, bool)
                or not 1 <= max_words <= 0xFFFF or max_words & (max_words - 1)):
            raise ValueError(f"max_words must be a power of two in 1..32768, not {max_words!r}")
        if not isinstance(timeout_cycles, int) or timeout_cycles < 2:
            raise ValueError(f"timeout_cycles must be an integer >= 2, not {timeout_cycles!r}")
        if not isinstance(bus_timeout, int) or bus_timeout < 2:
            raise ValueError(f"bus_timeout must be an integer >= 2, not {bus_timeout!r}")
        if not isinstance(clk_freq, int) or not 0 <= clk_freq < (1 << 32):
            raise ValueError(f"clk_freq must be an integer number of Hz below 2**32, not {clk_freq!r}")

    @property
    def max_words(self):
        return self._max_words

    def elaborate(self, platform):
        m = Module()
        max_words = self._max_words

        m.submodules.buffer = buffer = Memory(shape=32, depth=max_words, init=[])
        buffer_write = buffer.write_port()
        buffer_read = buffer.read_port()
        m.submodules.idle_timer = idle_timer = LineIdleTimer(self._timeout_cycles)
        m.submodules.crc = crc = Crc16()
        m.submodules.header = header = RequestHeader(max_words=max_words)
        m.submodules.bus_master = bus_master = BridgeBusMaster(bus_timeout=self._bus_timeout)
        m.submodules.response = response = ResponseBytes(max_words=max_words, clk_freq=self._clk_freq)
        wiring.connect(m, bus_master.bus, wiring.flipped(self.bus))

        # Writes to the buffer go through registers: the payload's words and the bus's read data
        # are registered before the block RAM.
        write_en = Signal()
        write_addr = Signal(16)
        write_data = Signal(32)
        m.d.sync += write_en.eq(0)
        m.d.comb += [buffer_write.addr.eq(write_addr), buffer_write.data.eq(write_data),
                     buffer_write.en.eq(write_en)]

        crc_low = Signal(8)          # low byte of the received CRC
        byte_index = Signal(2)
        word_index = Signal(16)
        payload_bytes = Signal(24)   # the first three bytes of a payload word
        status = Signal(8)
        response_count = Signal(16)
        header_index = Signal(range(P.RESP_HEADER_BYTES))   # of the response byte being sent
        # Dedup of resent writes.
        last_write_seq = Signal(8)
        last_write_valid = Signal()

        # Always ready but in CHECK, the one cycle between the header and the rest of a frame;
        # the UART holds a byte for a byte time, so nothing is lost there.
        rx_ready = Signal(init=1)
        m.d.comb += self.rx.ready.eq(rx_ready)
        rx_byte = self.rx.payload
        byte_received = self.rx.valid & self.rx.ready
        timed_out = idle_timer.timed_out
        is_ping, is_read, is_write = header.is_ping, header.is_read, header.is_write
        last_word = word_index == header.count_minus_1

        m.d.comb += [
            idle_timer.activity.eq(self.rx.valid),
            header.byte.eq(rx_byte),
            crc.byte.eq(rx_byte),
            bus_master.addr.eq(header.addr),
            bus_master.write_data.eq(buffer_read.data),
            buffer_read.addr.eq(word_index),
            response.status.eq(status),
            response.cmd.eq(header.cmd),
            response.seq.eq(header.seq),
            response.count.eq(response_count),
            response.header_index.eq(header_index),
            response.ping.eq(is_ping),
            response.word_index.eq(word_index[:2]),
            response.buffer_data.eq(buffer_read.data),
            response.byte_index.eq(byte_index),
        ]
        m.d.sync += [self.frame_ok.eq(0), self.frame_error.eq(0)]

        # What the frame's states share: the request, the response and the units that hold them.
        frame = SimpleNamespace(
            byte_received=byte_received, rx_byte=rx_byte, header=header, crc=crc, timed_out=timed_out,
            rx_ready=rx_ready, word_index=word_index, byte_index=byte_index, is_ping=is_ping,
            is_read=is_read, is_write=is_write, payload_bytes=payload_bytes, write_addr=write_addr,
            write_data=write_data, write_en=write_en, last_word=last_word, crc_low=crc_low,
            bus_master=bus_master, status=status, last_write_valid=last_write_valid,
            last_write_seq=last_write_seq, response_count=response_count,
            header_index=header_index, response=response)
        with m.FSM():
            self._receive_states(m, frame)
            self._bus_states(m, frame)
            self._response_states(m, frame)
        return m

    def _start_nak(self, m, frame, code):
        m.d.sync += [frame.status.eq(code), frame.response_count.eq(0), frame.header_index.eq(0),
                     self.frame_error.eq(1)]
        m.d.comb += frame.crc.clear.eq(1)
        m.next = "RESPONSE_HEADER"

    def _start_drain(self, m, frame, code):
        m.d.sync += frame.status.eq(code)
        m.next = "DRAIN"

    def _write_buffer(self, m, frame, data):
        # The word goes to the buffer at word_index in the next cycle, from registers.
        m.d.sync += [frame.write_addr.eq(frame.word_index), frame.write_data.eq(data),
                     frame.write_en.eq(1), frame.word_index.eq(frame.word_index + 1)]

    def _send(self, m, byte):
        m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(byte)]

    def _bus_done(self, m, frame, code):
        # The access ended in a bus error or a timeout: answer with that status.
        m.d.sync += frame.status.eq(code)
        m.next = "RESPOND"

    def _receive_states(self, m, frame):
        """HUNT to CRC_HIGH: a request frame, its checks and its CRC; DRAIN: a broken frame."""
        with m.State("HUNT"):
            with m.If(frame.byte_received & (frame.rx_byte == P.SYNC_REQ)):
                m.d.comb += [frame.header.clear.eq(1), frame.crc.clear.eq(1)]
                m.next = "HEADER"

        with m.State("HEADER"):
            with m.If(frame.byte_received):
                m.d.comb += [frame.header.valid.eq(1), frame.crc.update.eq(1)]
                with m.If(frame.header.last):
                    m.next = "CHECK"
            with m.Elif(frame.timed_out):
                self._start_nak(m, frame, P.STATUS_TIMEOUT)

        with m.State("CHECK"):
            m.d.comb += frame.rx_ready.eq(0)
            m.d.sync += [frame.word_index.eq(0), frame.byte_index.eq(0)]
            with m.If(~(frame.is_ping | frame.is_read | frame.is_write)):
                self._start_drain(m, frame, P.STATUS_CMD)
            with m.Elif(~frame.is_ping & frame.header.bad_count):
                self._start_drain(m, frame, P.STATUS_COUNT)
            with m.Elif(~frame.is_ping & frame.header.bad_addr):
                self._start_drain(m, frame, P.STATUS_ADDR)
            with m.Elif(frame.is_write):
                m.next = "PAYLOAD"
            with m.Else():
                m.next = "CRC_LOW"

        with m.State("PAYLOAD"):
            with m.If(frame.byte_received):
                m.d.comb += frame.crc.update.eq(1)
                m.d.sync += [frame.byte_index.eq(frame.byte_index + 1),
                             frame.payload_bytes.eq(Cat(frame.payload_bytes[8:], frame.rx_byte))]
                with m.If(frame.byte_index == 3):
                    self._write_buffer(m, frame, Cat(frame.payload_bytes, frame.rx_byte))
                    with m.If(frame.last_word):
                        m.next = "CRC_LOW"
            with m.Elif(frame.timed_out):
                self._start_nak(m, frame, P.STATUS_TIMEOUT)

        with m.State("CRC_LOW"):
            with m.If(frame.byte_received):
                m.d.sync += frame.crc_low.eq(frame.rx_byte)
                m.next = "CRC_HIGH"
            with m.Elif(frame.timed_out):
                self._start_nak(m, frame, P.STATUS_TIMEOUT)

        with m.State("CRC_HIGH"):
            with m.If(frame.byte_received):
                with m.If(Cat(frame.crc_low, frame.rx_byte) != frame.crc.crc):
                    self._start_drain(m, frame, P.STATUS_CRC)
                with m.Else():
                    m.d.comb += frame.bus_master.start.eq(1)
                    m.d.sync += [frame.word_index.eq(0), frame.status.eq(P.STATUS_OK), self.frame_ok.eq(1)]
                    # Any accepted frame but a WRITE forgets the last write; the WRITE
                    # branch sets it again below.
                    m.d.sync += frame.last_write_valid.eq(0)
                    with m.If(frame.is_ping):
                        m.next = "RESPOND"
                    with m.Elif(frame.is_read):
                        m.next = "BUS_READ"
                    with m.Elif(frame.last_write_valid & (frame.last_write_seq == frame.header.seq)):
                        # A resent copy of the write just performed: answer, do not write.
                        m.d.sync += frame.last_write_valid.eq(1)
                        m.next = "RESPOND"
                    with m.Else():
                        m.next = "BUS_WRITE_FETCH"
            with m.Elif(frame.timed_out):
                self._start_nak(m, frame, P.STATUS_TIMEOUT)

        with m.State("DRAIN"):
            # Discard the rest of a broken frame; answer once the line is quiet.
            with m.If(frame.timed_out & ~frame.byte_received):
                self._start_nak(m, frame, frame.status)

    def _bus_states(self, m, frame):
        """The request's Wishbone accesses, one word at a time."""
        with m.State("BUS_READ"):
            m.d.comb += frame.bus_master.read.eq(1)
            with m.If(frame.bus_master.ack):
                self._write_buffer(m, frame, frame.bus_master.read_data)
                with m.If(frame.last_word):
                    m.next = "RESPOND"
            with m.Elif(frame.bus_master.err):
                self._bus_done(m, frame, P.STATUS_BUS)
            with m.Elif(frame.bus_master.timed_out):
                self._bus_done(m, frame, P.STATUS_BUS_TIMEOUT)

        with m.State("BUS_WRITE_FETCH"):
            # The buffer's read port shows the word at word_index in the next cycle.
            m.d.comb += frame.bus_master.restart_timer.eq(1)
            m.next = "BUS_WRITE_LATCH"

        with m.State("BUS_WRITE_LATCH"):
            m.d.comb += frame.bus_master.latch.eq(1)
            m.next = "BUS_WRITE"

        with m.State("BUS_WRITE"):
            m.d.comb += frame.bus_master.write.eq(1)
            with m.If(frame.bus_master.ack):
                m.d.sync += frame.word_index.eq(frame.word_index + 1)
                with m.If(frame.last_word):
                    m.d.sync += [frame.last_write_valid.eq(1), frame.last_write_seq.eq(frame.header.seq)]
                    m.next = "RESPOND"
                with m.Else():
                    m.next = "BUS_WRITE_FETCH"
            with m.Elif(frame.bus_master.err):
                self._bus_done(m, frame, P.STATUS_BUS)
            with m.Elif(frame.bus_master.timed_out):
                self._bus_done(m, frame, P.STATUS_BUS_TIMEOUT)

    def _response_states(self, m, frame):
        """The response frame: header, data words, CRC."""
        with m.State("RESPOND"):
            m.d.comb += frame.crc.clear.eq(1)
            m.d.sync += [frame.header_index.eq(0), frame.word_index.eq(0), frame.byte_index.eq(0)]
            with m.If(frame.status != P.STATUS_OK):
                m.d.sync += frame.response_count.eq(0)
            with m.Elif(frame.is_ping):
                m.d.sync += frame.response_count.eq(P.PING_WORDS)
            with m.Elif(frame.is_read):
                m.d.sync += frame.response_count.eq(frame.header.count)
            with m.Else():
                m.d.sync += frame.response_count.eq(0)
            m.next = "RESPONSE_HEADER"

        with m.State("RESPONSE_HEADER"):
            self._send(m, frame.response.header_byte)
            m.d.comb += frame.crc.byte.eq(self.tx.payload)
            with m.If(self.tx.ready):
                m.d.sync += frame.header_index.eq(frame.header_index + 1)
                with m.If(frame.header_index != 0):
                    m.d.comb += frame.crc.update.eq(1)
                with m.If(frame.header_index == P.RESP_HEADER_BYTES - 1):
                    with m.If(frame.response_count == 0):
                        m.next = "RESPONSE_CRC_LOW"
                    with m.Else():
                        m.next = "RESPONSE_FETCH"

        with m.State("RESPONSE_DATA"):
            self._send(m, frame.response.data_byte)
            m.d.comb += frame.crc.byte.eq(self.tx.payload)
            with m.If(self.tx.ready):
                m.d.comb += frame.crc.update.eq(1)
                m.d.sync += frame.byte_index.eq(frame.byte_index + 1)
                with m.If(frame.byte_index == 3):
                    m.d.sync += frame.word_index.eq(frame.word_index + 1)
                    with m.If(frame.word_index == frame.response_count - 1):
                        m.next = "RESPONSE_CRC_LOW"
                    with m.Else():
                        m.next = "RESPONSE_FETCH"

        with m.State("RESPONSE_FETCH"):
            # One cycle for the buffer's read port to show the word at frame.word_index...
            m.next = "RESPONSE_LATCH"

        with m.State("RESPONSE_LATCH"):
            # ...and one to register it.
            m.d.comb += frame.response.latch.eq(1)
            m.next = "RESPONSE_DATA"

        with m.State("RESPONSE_CRC_LOW"):
            self._send(m, frame.crc.crc[:8])
            with m.If(self.tx.ready):
                m.next = "RESPONSE_CRC_HIGH"

        with m.State("RESPONSE_CRC_HIGH"):
            self._send(m, frame.crc.crc[8:])
            with m.If(self.tx.ready):
                m.next = "HUNT"


class UARTBridge(wiring.Component):
    """:class:`FrameBridge` behind an 8N1 :class:`accel.uart.UART`: the board's host port.

    Parameters
    ----------
    clk_freq : int
        Clock in Hz.
    baud : int
        Line rate; the divisor is ``round(clk_freq / baud)`` (checked by
        :func:`accel.uart.baud_divisor`).
    divisor : int, optional
        Cycles per bit, overriding ``baud`` (simulation uses a small one).
    max_words, bus_timeout : int
        See :class:`FrameBridge`.
    timeout_bytes : int
        Receive idle timeout in byte times (10 bits each), at least 2; the default, 64 byte times
        with a floor of 2 ms, tolerates the gaps USB-serial adapters leave inside a frame.

    Members
    -------
    rx : In(1)
        Serial input from the host.
    tx : Out(1)
        Serial output to the host.
    bus : Out(wishbone.Signature(30, 32))
    frame_ok, frame_error : Out(1)
        See :class:`FrameBridge`.
    """
    def __init__(self, *, clk_freq, baud=115200, divisor=None, max_words=P.DEFAULT_MAX_WORDS,
                 timeout_bytes=None, bus_timeout=4096):
        if not isinstance(clk_freq, int) or clk_freq <= 0:
            raise ValueError(f"clk_freq must be a positive integer number of Hz, not {clk_freq!r}")
        self._divisor = baud_divisor(clk_freq, baud) if divisor is None else divisor
        if timeout_bytes is None:
            timeout_cycles = max(64 * 10 * self._divisor, clk_freq // 500)
        else:
            if not isinstance(timeout_bytes, int) or timeout_bytes < 2:
                raise ValueError(f"timeout_bytes must be an integer >= 2, not {timeout_bytes!r}")
            timeout_cycles = timeout_bytes * 10 * self._divisor
        self._timeout_cycles = timeout_cycles
        # Checked now, built in elaborate().
        FrameBridge._check(max_words, timeout_cycles, bus_timeout, clk_freq)
        self._max_words = max_words
        self._bus_timeout = bus_timeout
        self._clk_freq = clk_freq
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "bus": Out(wishbone.Signature(30, 32)),
            "frame_ok": Out(1),
            "frame_error": Out(1),
        })

    @property
    def divisor(self):
        return self._divisor

    @property
    def timeout_cycles(self):
        return self._timeout_cycles

    @property
    def max_words(self):
        return self._max_words

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart = uart = UART(self._divisor)
        m.submodules.bridge = bridge = FrameBridge(
            max_words=self._max_words, timeout_cycles=self._timeout_cycles,
            bus_timeout=self._bus_timeout, clk_freq=self._clk_freq)
        m.d.comb += [
            uart.rx.eq(self.rx),
            self.tx.eq(uart.tx),
            self.frame_ok.eq(bridge.frame_ok),
            self.frame_error.eq(bridge.frame_error),
        ]
        wiring.connect(m, uart.rx_data, bridge.rx)
        wiring.connect(m, bridge.tx, uart.tx_data)
        wiring.connect(m, bridge.bus, wiring.flipped(self.bus))
        return m
