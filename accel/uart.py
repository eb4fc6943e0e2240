"""UART receiver and transmitter, 8 data bits, no parity, 1 stop bit (8N1).

The bit period is an integer number of clock cycles, ``divisor = round(clk_freq / baud)``
(:func:`baud_divisor` checks the rate error). Bytes travel on ``amaranth.lib.stream`` interfaces.
"""

from amaranth.hdl import Module, Signal, Cat
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out
from amaranth.lib.cdc import FFSynchronizer


__all__ = ["baud_divisor", "UARTRx", "UARTTx", "UART"]

# An 8N1 receiver samples the stop bit 9.5 bit periods after the start edge; a rate error of e between
# the two ends shifts that sample by 9.5 * e bit periods. 2% keeps it well inside the bit even with
# both ends off in opposite directions.
MAX_BAUD_ERROR = 0.02


def baud_divisor(clk_freq, baud):
    """Clock cycles per bit for ``baud`` at ``clk_freq`` Hz.

    Raises ``ValueError`` if the divisor is below 4 (the receiver needs a few cycles per bit to find
    the middle of a bit) or the rounded rate is more than 2% off.
    """
    if not isinstance(clk_freq, (int, float)) or clk_freq <= 0:
        raise ValueError(f"clk_freq must be a positive number of Hz, not {clk_freq!r}")
    if not isinstance(baud, (int, float)) or baud <= 0:
        raise ValueError(f"baud must be a positive number, not {baud!r}")
    divisor = round(clk_freq / baud)
    if divisor < 4:
        raise ValueError(f"baud {baud} is too fast for a {clk_freq / 1e6:g} MHz clock "
                         f"(divisor {clk_freq / baud:.2f}, at least 4 needed)")
    error = abs(clk_freq / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"baud {baud} is {error:.1%} off at {clk_freq / 1e6:g} MHz "
                         f"(divisor {divisor}); at most {MAX_BAUD_ERROR:.0%} is allowed")
    return divisor


def _check_divisor(divisor):
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 4:
        raise ValueError(f"divisor must be an integer >= 4, not {divisor!r}")


class UARTRx(wiring.Component):
    """8N1 receiver.

    The line is synchronised by two flip-flops, a falling edge starts a byte, the start bit is
    re-checked half a bit later (a glitch shorter than half a bit is ignored) and every data bit
    and the stop bit are sampled in the middle of their bit period.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.

    Members
    -------
    rx : In(1)
        The serial line (idle high).
    data : Out(stream.Signature(8))
        Received bytes. There is one byte of buffering: a byte not taken before the next one
        completes is replaced and ``overrun`` pulses.
    frame_error : Out(1)
        One-cycle pulse when a stop bit is 0; that byte is dropped.
    overrun : Out(1)
        One-cycle pulse when a byte was lost because ``data.ready`` stayed low.
    """
    def __init__(self, divisor):
        _check_divisor(divisor)
        self._divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "frame_error": Out(1),
            "overrun": Out(1),
        })

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        line = Signal(init=1)         # the serial input, synchronised
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(divisor))
        bit_index = Signal(range(8))
        received = Signal(8)

        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        m.d.sync += [self.frame_error.eq(0), self.overrun.eq(0)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"           # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(divisor - 1), bit_index.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [timer.eq(divisor - 1), received.eq(Cat(received[1:], line)),
                                 bit_index.eq(bit_index + 1)]
                    with m.If(bit_index == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    # Back to IDLE in the middle of the stop bit: the next start edge can come
                    # half a bit from now.
                    m.next = "IDLE"
                    with m.If(line):
                        m.d.sync += [self.data.payload.eq(received), self.data.valid.eq(1)]
                        with m.If(self.data.valid & ~self.data.ready):
                            m.d.sync += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += self.frame_error.eq(1)
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.

    Members
    -------
    data : In(stream.Signature(8))
        Bytes to send; a byte is taken when the transmitter is idle, then sent start bit first.
    tx : Out(1)
        The serial line, driven from a register (idle high).
    busy : Out(1)
        High while a byte is being sent.
    """
    def __init__(self, divisor):
        _check_divisor(divisor)
        self._divisor = divisor
        super().__init__({
            "data": In(stream.Signature(8)),
            "tx": Out(1, init=1),
            "busy": Out(1),
        })

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        timer = Signal(range(divisor))
        # start bit, 8 data bits, stop bit; shifted out LSB first.
        frame_bits = Signal(10, init=0x3FF)
        bits_left = Signal(range(11))

        m.d.comb += [
            self.busy.eq(bits_left != 0),
            self.data.ready.eq(bits_left == 0),
        ]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [
                frame_bits.eq(Cat(0, self.data.payload, 1)),
                bits_left.eq(10),
                timer.eq(divisor - 1),
                self.tx.eq(0),
            ]
        with m.Elif(bits_left != 0):
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():
                m.d.sync += [
                    timer.eq(divisor - 1),
                    frame_bits.eq(Cat(frame_bits[1:], 1)),
                    bits_left.eq(bits_left - 1),
                    # After the stop bit the line stays high (frame_bits fills with ones).
                    self.tx.eq(frame_bits[1]),
                ]
        return m


class UART(wiring.Component):
    """An 8N1 receiver and transmitter sharing one divisor.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (see :func:`baud_divisor`).

    Members
    -------
    rx : In(1)
    tx : Out(1)
    rx_data : Out(stream.Signature(8))
    tx_data : In(stream.Signature(8))
    frame_error, overrun : Out(1)
        See :class:`UARTRx`.
    """
    def __init__(self, divisor):
        _check_divisor(divisor)
        self._divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "rx_data": Out(stream.Signature(8)),
            "tx_data": In(stream.Signature(8)),
            "frame_error": Out(1),
            "overrun": Out(1),
        })

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UARTRx(self._divisor)
        m.submodules.tx = tx = UARTTx(self._divisor)
        m.d.comb += [
            rx.rx.eq(self.rx),
            self.tx.eq(tx.tx),
            self.frame_error.eq(rx.frame_error),
            self.overrun.eq(rx.overrun),
        ]
        wiring.connect(m, rx.data, wiring.flipped(self.rx_data))
        wiring.connect(m, wiring.flipped(self.tx_data), tx.data)
        return m
