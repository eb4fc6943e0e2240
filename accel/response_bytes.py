"""The bytes of the serial bridge's response frame."""

from amaranth.hdl import Module, Signal, Const, Array, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract import protocol as P


__all__ = ["ResponseBytes"]


class ResponseBytes(wiring.Component):
    """The header bytes of a response, and its data bytes one word at a time.

    A response is ``SYNC_RESP status cmd seq count[2]``, then ``count`` little-endian words (the
    PING information or words from the bridge's buffer), then the CRC. A data word is registered
    (``latch``) before it is sent: the buffer's block-RAM output is slow, and must not feed the
    transmitter and the CRC network directly.

    Parameters
    ----------
    max_words : int
        The bridge's largest count (reported by PING).
    clk_freq : int
        Clock in Hz (reported by PING).

    Members
    -------
    status, cmd, seq : In(8)
    count : In(16)
        Fields of the header.
    header_index : In(range(P.RESP_HEADER_BYTES))
    header_byte : Out(8)
        Header byte ``header_index``.
    ping : In(1)
        The data words are the PING information (else ``buffer_data``).
    word_index : In(2)
        Which PING word ``latch`` takes.
    buffer_data : In(32)
        The buffer's read data.
    latch : In(1)
        Strobe: the next data word is taken.
    byte_index : In(2)
    data_byte : Out(8)
        Byte ``byte_index`` of the data word.
    """

    def __init__(self, *, max_words, clk_freq):
        if not isinstance(max_words, int) or not 1 <= max_words <= 0xFFFF:
            raise ValueError(f"max_words must be an integer in 1..65535, not {max_words!r}")
        if not isinstance(clk_freq, int) or not 0 <= clk_freq < (1 << 32):
            raise ValueError(f"clk_freq must be an integer number of Hz below 2**32, not {clk_freq!r}")
        self._max_words = max_words
        self._clk_freq = clk_freq
        super().__init__({
            "status": In(8),
            "cmd": In(8),
            "seq": In(8),
            "count": In(16),
            "header_index": In(range(P.RESP_HEADER_BYTES)),
            "header_byte": Out(8),
            "ping": In(1),
            "word_index": In(2),
            "buffer_data": In(32),
            "latch": In(1),
            "byte_index": In(2),
            "data_byte": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        header = Array([Const(P.SYNC_RESP, 8), self.status, self.cmd, self.seq,
                        self.count[:8], self.count[8:]])
        ping_words = Array([Const(P.MAGIC, 32), Const((P.VERSION << 16) | self._max_words, 32),
                            Const(self._clk_freq, 32)])
        word = Signal(32)
        with m.If(self.latch):
            m.d.sync += word.eq(Mux(self.ping, ping_words[self.word_index], self.buffer_data))
        m.d.comb += [
            self.header_byte.eq(header[self.header_index]),
            self.data_byte.eq(word.word_select(self.byte_index, 8)),
        ]
        return m
