"""The DMA's command: what to move, between main memory and a local buffer or the pixel stream."""

from amaranth.lib import data, enum


__all__ = ["DmaKind", "DmaCommand"]


class DmaKind(enum.Enum, shape=2):
    LOAD = 0     # main memory -> local buffer
    STORE = 1    # local buffer -> main memory
    STREAM = 2   # main memory -> ``pixels`` stream


DmaCommand = data.StructLayout({
    "kind": 2,
    "mem_addr": 32,
    "local_addr": 24,
    "count": 16,
    "rows": 16,
    "mem_stride": 16,
})
"""One DMA command. ``kind`` is a :class:`DmaKind` value (3 is refused with ``BAD_OPCODE``)."""
