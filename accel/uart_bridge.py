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

from amaranth.hdl import Module, Signal, Cat, Const, Array, Mux
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out
from amaranth.lib.memory import Memory

from contract import protocol as P
from . import wishbone
from .uart import UART, baud_divisor


__all__ = ["crc16_next", "FrameBridge", "UARTBridge"]


def crc16_next(crc, byte):
    """CRC-16/CCITT-FALSE after one more byte, as an Amaranth expression: the bitwise algorithm of
    ``contract.protocol.crc16_update_byte`` unrolled into an XOR network (each of the 16 result
    bits is an XOR of a few input bits; Yosys flattens the chain)."""
    bits = [crc[i] for i in range(16)]
    for i in range(8):
        bits[8 + i] = bits[8 + i] ^ byte[i]
    for _ in range(8):
        top = bits[15]
        # Shift left by one, XOR 0x1021 (bits 0, 5, 12) when the bit shifted out was 1.
        bits = [top] + bits[:15]
        bits[5] = bits[5] ^ top
        bits[12] = bits[12] ^ top
    return Cat(*bits)


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

        m.submodules.buf = buf = Memory(shape=32, depth=max_words, init=[])
        wp = buf.write_port()
        rp = buf.read_port()
        # Writes to the buffer go through registers, and words read from it are registered before
        # use (resp_reg, dat_w_reg): a block RAM's output is slow (DP16KD: ~5.6 ns clock-to-out on
        # ECP5-6), so it must not feed the CRC network or the bus directly.
        w_en = Signal()
        w_addr = Signal(16)
        w_data = Signal(32)
        resp_reg = Signal(32)
        dat_w_reg = Signal(32)
        m.d.sync += w_en.eq(0)
        m.d.comb += [wp.addr.eq(w_addr), wp.data.eq(w_data), wp.en.eq(w_en)]

        # Request fields.
        cmd = Signal(8)
        seq = Signal(8)
        addr = Signal(32)
        count = Signal(16)
        crc = Signal(16, init=0xFFFF)
        crc_rx = Signal(8)           # low byte of the received CRC
        hdr_idx = Signal(range(P.REQ_HEADER_BYTES))
        byte_idx = Signal(2)
        word_idx = Signal(16)
        shreg = Signal(24)           # the first three bytes of a payload word
        # Response fields.
        status = Signal(8)
        resp_count = Signal(16)
        # Bus state.
        cur_adr = Signal(30)
        bus_timer = Signal(range(self._bus_timeout + 1))
        # Dedup of resent writes.
        last_write_seq = Signal(8)
        last_write_valid = Signal()

        # Idle timer of the receive line: restarts with every byte. timed_out (idle has reached
        # the timeout) is a register written with idle: the counter's compare in front of the
        # frame state machine and the CRC's enables was a 10.7 ns path in the 64x32 SoC.
        idle = Signal(range(self._timeout_cycles + 1))
        timed_out = Signal()
        with m.If(self.rx.valid):
            m.d.sync += [idle.eq(0), timed_out.eq(0)]
        with m.Elif(~timed_out):
            m.d.sync += [idle.eq(idle + 1), timed_out.eq(idle == self._timeout_cycles - 1)]

        # Always ready but in CHECK, the one cycle between the header and the rest of a frame;
        # the UART holds a byte for a byte time, so nothing is lost there.
        rx_ready = Signal(init=1)
        m.d.comb += self.rx.ready.eq(rx_ready)
        rx_byte = self.rx.payload
        rx_stb = self.rx.valid & self.rx.ready

        is_ping = cmd == P.CMD_PING
        is_read = cmd == P.CMD_READ
        is_write = cmd == P.CMD_WRITE

        m.d.comb += [
            self.bus.sel.eq(0b1111),
            self.bus.adr.eq(cur_adr),
            self.bus.dat_w.eq(dat_w_reg),
            rp.addr.eq(word_idx),
        ]
        m.d.sync += [self.frame_ok.eq(0), self.frame_error.eq(0)]

        # The word a response sends: PING information or the buffer.
        ping_words = Array([Const(P.MAGIC, 32), Const((P.VERSION << 16) | max_words, 32),
                            Const(self._clk_freq, 32)])
        resp_word = Mux(is_ping, ping_words[word_idx[:2]], rp.data)
        # Header checks, registered in state CHECK.
        # count - 1 as a register, following count (stable from the header on, many cycles
        # before the payload or the bus transfers test it): the subtraction's carry chain in
        # front of the last-word comparison, the bus ack and the state was a 10.7 ns path.
        count_m1 = Signal(16)
        m.d.sync += count_m1.eq(count - 1)
        count_bad = (count == 0) | (count > max_words)
        addr_bad = (addr + count) > P.ADDR_LIMIT
        # Bytes of the response: header (sync, status, cmd, seq, count lo/hi), data, CRC.
        resp_hdr = Array([Const(P.SYNC_RESP, 8), status, cmd, seq, resp_count[:8], resp_count[8:]])
        tx_idx = Signal(range(P.RESP_HEADER_BYTES))

        def start_nak(code):
            m.d.sync += [status.eq(code), resp_count.eq(0), tx_idx.eq(0), crc.eq(0xFFFF),
                         self.frame_error.eq(1)]
            m.next = "RESP_HDR"

        def start_drain(code):
            m.d.sync += status.eq(code)
            m.next = "DRAIN"

        with m.FSM():
            with m.State("HUNT"):
                with m.If(rx_stb & (rx_byte == P.SYNC_REQ)):
                    m.d.sync += [hdr_idx.eq(0), crc.eq(0xFFFF), cmd.eq(0), seq.eq(0)]
                    m.next = "HDR"

            with m.State("HDR"):
                with m.If(rx_stb):
                    m.d.sync += [crc.eq(crc16_next(crc, rx_byte)), hdr_idx.eq(hdr_idx + 1)]
                    with m.Switch(hdr_idx):
                        with m.Case(0):
                            m.d.sync += cmd.eq(rx_byte)
                        with m.Case(1):
                            m.d.sync += seq.eq(rx_byte)
                        for i in range(4):
                            with m.Case(2 + i):
                                m.d.sync += addr[8 * i:8 * i + 8].eq(rx_byte)
                        with m.Case(6):
                            m.d.sync += count[:8].eq(rx_byte)
                        with m.Case(7):
                            m.d.sync += count[8:].eq(rx_byte)
                            m.next = "CHECK"
                with m.Elif(timed_out):
                    start_nak(P.STATUS_TIMEOUT)

            with m.State("CHECK"):
                m.d.comb += rx_ready.eq(0)
                m.d.sync += [word_idx.eq(0), byte_idx.eq(0)]
                with m.If(~(is_ping | is_read | is_write)):
                    start_drain(P.STATUS_CMD)
                with m.Elif(~is_ping & count_bad):
                    start_drain(P.STATUS_COUNT)
                with m.Elif(~is_ping & addr_bad):
                    start_drain(P.STATUS_ADDR)
                with m.Elif(is_write):
                    m.next = "PAYLOAD"
                with m.Else():
                    m.next = "CRC0"

            with m.State("PAYLOAD"):
                with m.If(rx_stb):
                    m.d.sync += [crc.eq(crc16_next(crc, rx_byte)), byte_idx.eq(byte_idx + 1),
                                 shreg.eq(Cat(shreg[8:], rx_byte))]
                    with m.If(byte_idx == 3):
                        m.d.sync += [w_addr.eq(word_idx), w_data.eq(Cat(shreg, rx_byte)),
                                     w_en.eq(1)]
                        m.d.sync += word_idx.eq(word_idx + 1)
                        with m.If(word_idx == count_m1):
                            m.next = "CRC0"
                with m.Elif(timed_out):
                    start_nak(P.STATUS_TIMEOUT)

            with m.State("CRC0"):
                with m.If(rx_stb):
                    m.d.sync += crc_rx.eq(rx_byte)
                    m.next = "CRC1"
                with m.Elif(timed_out):
                    start_nak(P.STATUS_TIMEOUT)

            with m.State("CRC1"):
                with m.If(rx_stb):
                    with m.If(Cat(crc_rx, rx_byte) != crc):
                        start_drain(P.STATUS_CRC)
                    with m.Else():
                        m.d.sync += [word_idx.eq(0), cur_adr.eq(addr), status.eq(P.STATUS_OK),
                                     bus_timer.eq(0), self.frame_ok.eq(1)]
                        # Any accepted frame but a WRITE forgets the last write; the WRITE
                        # branch sets it again below.
                        m.d.sync += last_write_valid.eq(0)
                        with m.If(is_ping):
                            m.next = "RESPOND"
                        with m.Elif(is_read):
                            m.next = "BUS_READ"
                        with m.Elif(last_write_valid & (last_write_seq == seq)):
                            # A resent copy of the write just performed: answer, do not write.
                            m.d.sync += [last_write_valid.eq(1)]
                            m.next = "RESPOND"
                        with m.Else():
                            m.next = "BUS_WRITE_FETCH"
                with m.Elif(timed_out):
                    start_nak(P.STATUS_TIMEOUT)

            with m.State("DRAIN"):
                # Discard the rest of a broken frame; answer once the line is quiet.
                with m.If(timed_out & ~rx_stb):
                    start_nak(status)

            with m.State("BUS_READ"):
                m.d.comb += [self.bus.cyc.eq(1), self.bus.stb.eq(1), self.bus.we.eq(0)]
                m.d.sync += bus_timer.eq(bus_timer + 1)
                with m.If(self.bus.ack):
                    m.d.sync += [w_addr.eq(word_idx), w_data.eq(self.bus.dat_r), w_en.eq(1)]
                    m.d.sync += [word_idx.eq(word_idx + 1), cur_adr.eq(cur_adr + 1), bus_timer.eq(0)]
                    with m.If(word_idx == count_m1):
                        m.next = "RESPOND"
                with m.Elif(self.bus.err):
                    m.d.sync += status.eq(P.STATUS_BUS)
                    m.next = "RESPOND"
                with m.Elif(bus_timer == self._bus_timeout):
                    m.d.sync += status.eq(P.STATUS_BUS_TIMEOUT)
                    m.next = "RESPOND"

            with m.State("BUS_WRITE_FETCH"):
                # The buffer's read port has one cycle of latency: rp.addr = word_idx now,
                # rp.data valid in the next cycle, registered there.
                m.d.sync += bus_timer.eq(0)
                m.next = "BUS_WRITE_LATCH"

            with m.State("BUS_WRITE_LATCH"):
                m.d.sync += dat_w_reg.eq(rp.data)
                m.next = "BUS_WRITE"

            with m.State("BUS_WRITE"):
                m.d.comb += [self.bus.cyc.eq(1), self.bus.stb.eq(1), self.bus.we.eq(1)]
                m.d.sync += bus_timer.eq(bus_timer + 1)
                with m.If(self.bus.ack):
                    m.d.sync += [word_idx.eq(word_idx + 1), cur_adr.eq(cur_adr + 1)]
                    with m.If(word_idx == count_m1):
                        m.d.sync += [last_write_valid.eq(1), last_write_seq.eq(seq)]
                        m.next = "RESPOND"
                    with m.Else():
                        m.next = "BUS_WRITE_FETCH"
                with m.Elif(self.bus.err):
                    m.d.sync += status.eq(P.STATUS_BUS)
                    m.next = "RESPOND"
                with m.Elif(bus_timer == self._bus_timeout):
                    m.d.sync += status.eq(P.STATUS_BUS_TIMEOUT)
                    m.next = "RESPOND"

            with m.State("RESPOND"):
                m.d.sync += [tx_idx.eq(0), crc.eq(0xFFFF), word_idx.eq(0), byte_idx.eq(0)]
                with m.If(status != P.STATUS_OK):
                    m.d.sync += resp_count.eq(0)
                with m.Elif(is_ping):
                    m.d.sync += resp_count.eq(P.PING_WORDS)
                with m.Elif(is_read):
                    m.d.sync += resp_count.eq(count)
                with m.Else():
                    m.d.sync += resp_count.eq(0)
                m.next = "RESP_HDR"

            with m.State("RESP_HDR"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(resp_hdr[tx_idx])]
                with m.If(self.tx.ready):
                    m.d.sync += tx_idx.eq(tx_idx + 1)
                    with m.If(tx_idx != 0):
                        m.d.sync += crc.eq(crc16_next(crc, self.tx.payload))
                    with m.If(tx_idx == P.RESP_HEADER_BYTES - 1):
                        with m.If(resp_count == 0):
                            m.next = "RESP_CRC0"
                        with m.Else():
                            m.next = "RESP_FETCH"

            with m.State("RESP_DATA"):
                m.d.comb += [self.tx.valid.eq(1),
                             self.tx.payload.eq(resp_reg.word_select(byte_idx, 8))]
                with m.If(self.tx.ready):
                    m.d.sync += [crc.eq(crc16_next(crc, self.tx.payload)), byte_idx.eq(byte_idx + 1)]
                    with m.If(byte_idx == 3):
                        m.d.sync += word_idx.eq(word_idx + 1)
                        with m.If(word_idx == resp_count - 1):
                            m.next = "RESP_CRC0"
                        with m.Else():
                            m.next = "RESP_FETCH"

            with m.State("RESP_FETCH"):
                # One cycle for the buffer's read port to show the word at word_idx...
                m.next = "RESP_LATCH"

            with m.State("RESP_LATCH"):
                # ...and one to register it.
                m.d.sync += resp_reg.eq(resp_word)
                m.next = "RESP_DATA"

            with m.State("RESP_CRC0"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(crc[:8])]
                with m.If(self.tx.ready):
                    m.next = "RESP_CRC1"

            with m.State("RESP_CRC1"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(crc[8:])]
                with m.If(self.tx.ready):
                    m.next = "HUNT"
        return m


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
