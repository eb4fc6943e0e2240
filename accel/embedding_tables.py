"""The embedding tables: one 256-entry block RAM per image channel, read in the same cycle."""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out
from amaranth.lib.memory import Memory

from contract.config import EMB_ENTRY_BITS
from .synthesis import NO_COLLISIONS


__all__ = ["EmbeddingTables"]


class EmbeddingTables(wiring.Component):
    """``channels`` tables of 256 ``EMB_ENTRY_BITS``-bit entries, looked up together.

    A look-up takes two enabled stages: the block RAMs read ``read_addr`` when ``read_en`` is high,
    and their read data goes straight into a register when ``hold_en`` is high. That register is
    reset-less and loaded from the read port with nothing in between, so that the build moves it
    into the block RAMs' output registers (``accel/bram_outreg.py``): the block RAMs'
    clock-to-output is most of a 100 MHz cycle.

    Parameters
    ----------
    channels : int
        Number of tables (the configuration's ``emb_channels``).

    Members
    -------
    write_addr : ``In(range(channels * 256))``; write_data : ``In(EMB_ENTRY_BITS)``; write_en : ``In(1)``
        Write entry ``c * 256 + byte``, effective in the cycle ``write_en`` is high.
    read_addr : ``In(ArrayLayout(8, channels))``; read_en : ``In(1)``
        Table ``c`` reads entry ``read_addr[c]``.
    hold_en : ``In(1)``
        Load ``entries`` from the tables' read data.
    entries : ``Out(ArrayLayout(EMB_ENTRY_BITS, channels))``
    """

    def __init__(self, channels):
        if not isinstance(channels, int) or isinstance(channels, bool):
            raise TypeError(f"channels must be an int, not {channels!r}")
        if channels < 1:
            raise ValueError(f"channels must be at least 1, not {channels}")
        self.channels = channels
        # No read needs an entry written in the same cycle: the tables are loaded (LOAD) before
        # an EMBED reads them, and an EMBED waits for the DMA to be idle. NO_COLLISIONS keeps
        # Yosys' old-word emulation (soft logic on every read-data bit) off the block RAMs, so
        # that the entries' registers become their output registers.
        self.tables = [Memory(shape=unsigned(EMB_ENTRY_BITS), depth=256, init=[],
                              attrs=NO_COLLISIONS)
                       for _ in range(channels)]
        super().__init__({
            "write_addr": In(range(channels * 256)),
            "write_data": In(EMB_ENTRY_BITS),
            "write_en": In(1),
            "read_addr": In(data.ArrayLayout(8, channels)),
            "read_en": In(1),
            "hold_en": In(1),
            "entries": Out(data.ArrayLayout(EMB_ENTRY_BITS, channels)),
        })

    def elaborate(self, platform):
        m = Module()
        for c, mem in enumerate(self.tables):
            m.submodules[f"table{c}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [
                wp.addr.eq(self.write_addr[:8]),
                wp.data.eq(self.write_data),
                wp.en.eq(self.write_en & ((self.write_addr >> 8) == c)),
                rp.addr.eq(self.read_addr[c]),
                rp.en.eq(self.read_en),
            ]
            entry = Signal(EMB_ENTRY_BITS, name=f"rdata2_{c}", reset_less=True)
            with m.If(self.hold_en):
                m.d.sync += entry.eq(rp.data)
            m.d.comb += self.entries[c].eq(entry)
        return m
