"""The serial bridge's request header: its fields, byte by byte, and their checks."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract import protocol as P


__all__ = ["RequestHeader"]


class RequestHeader(wiring.Component):
    """Collects a request header's bytes after its sync byte: cmd, seq, addr (4), count (2).

    Parameters
    ----------
    max_words : int
        Largest READ/WRITE count the bridge accepts.

    Members
    -------
    clear : In(1)
        Strobe: a sync byte; the next byte is ``cmd`` (``cmd`` and ``seq`` are cleared).
    valid : In(1)
        ``byte`` is the next header byte.
    byte : In(8)
    last : Out(1)
        The next header byte is the last one (``count``'s high byte).
    cmd, seq : Out(8)
    addr : Out(32)
    count : Out(16)
    count_minus_1 : Out(16)
        A register following ``count`` (settled one cycle after the header), so that no
        subtraction sits in front of the comparisons of word indices with the count.
    is_ping, is_read, is_write : Out(1)
    bad_count : Out(1)
        ``count`` is 0 or above ``max_words`` (meaningful for READ and WRITE).
    bad_addr : Out(1)
        ``addr + count`` lies beyond the 30-bit word address space.
    """

    def __init__(self, *, max_words):
        if not isinstance(max_words, int) or not 1 <= max_words <= 0xFFFF:
            raise ValueError(f"max_words must be an integer in 1..65535, not {max_words!r}")
        self._max_words = max_words
        super().__init__({
            "clear": In(1),
            "valid": In(1),
            "byte": In(8),
            "last": Out(1),
            "cmd": Out(8),
            "seq": Out(8),
            "addr": Out(32),
            "count": Out(16),
            "count_minus_1": Out(16),
            "is_ping": Out(1),
            "is_read": Out(1),
            "is_write": Out(1),
            "bad_count": Out(1),
            "bad_addr": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        index = Signal(range(P.REQ_HEADER_BYTES))     # of the next byte, after the sync byte
        m.d.comb += self.last.eq(index == P.REQ_HEADER_BYTES - 2)

        with m.If(self.clear):
            m.d.sync += [index.eq(0), self.cmd.eq(0), self.seq.eq(0)]
        with m.Elif(self.valid):
            m.d.sync += index.eq(index + 1)
            with m.Switch(index):
                with m.Case(0):
                    m.d.sync += self.cmd.eq(self.byte)
                with m.Case(1):
                    m.d.sync += self.seq.eq(self.byte)
                for i in range(4):
                    with m.Case(2 + i):
                        m.d.sync += self.addr[8 * i:8 * i + 8].eq(self.byte)
                with m.Case(6):
                    m.d.sync += self.count[:8].eq(self.byte)
                with m.Case(7):
                    m.d.sync += self.count[8:].eq(self.byte)

        m.d.sync += self.count_minus_1.eq(self.count - 1)
        m.d.comb += [
            self.is_ping.eq(self.cmd == P.CMD_PING),
            self.is_read.eq(self.cmd == P.CMD_READ),
            self.is_write.eq(self.cmd == P.CMD_WRITE),
            self.bad_count.eq((self.count == 0) | (self.count > self._max_words)),
            self.bad_addr.eq((self.addr + self.count) > P.ADDR_LIMIT),
        ]
        return m
