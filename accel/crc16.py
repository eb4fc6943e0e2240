"""CRC-16/CCITT-FALSE of a byte stream, the serial protocol's checksum, in gateware."""

from amaranth.hdl import Module, Cat
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["crc16_next", "Crc16"]


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


class Crc16(wiring.Component):
    """A CRC-16/CCITT-FALSE register, one byte per cycle.

    Members
    -------
    clear : In(1)
        Strobe: start a new checksum (0xFFFF).
    update : In(1)
        Strobe: take ``byte`` into the checksum.
    byte : In(8)
    crc : Out(16, init=0xFFFF)
        The checksum of the bytes since the last ``clear``.
    """

    clear: In(1)
    update: In(1)
    byte: In(8)
    crc: Out(16, init=0xFFFF)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.clear):
            m.d.sync += self.crc.eq(0xFFFF)
        with m.Elif(self.update):
            m.d.sync += self.crc.eq(crc16_next(self.crc, self.byte))
        return m
