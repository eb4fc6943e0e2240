"""The DMA command of a LOAD, STORE or EMBED descriptor."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract import isa
from .dma_command import DmaCommand, DmaKind


__all__ = ["DmaCommandEncoder"]


class DmaCommandEncoder(wiring.Component):
    """Turns the current descriptor into the command the sequencer gives the DMA.

    LOAD and STORE pass their transfer fields through. EMBED streams its image, ``h_in * w_in *
    emb_c`` bytes packed four to a word, from ``mem_addr`` to the engine's pixel input (one row,
    contiguous). The word count is computed in two registered stages (``h_in * w_in``, then
    ``* emb_c`` and the rounding up), so that the multipliers stay off the DMA's command path: it
    is valid two cycles after the descriptor's fields, which the sequencer's fetch and dispatch
    always leave.

    Members
    -------
    desc : In(isa.DESCRIPTOR_LAYOUT)
        The current descriptor (LOAD, STORE or EMBED).
    command : Out(DmaCommand)
        Its DMA command (combinational but for the EMBED word count).
    """

    desc: In(isa.DESCRIPTOR_LAYOUT)
    command: Out(DmaCommand)

    def elaborate(self, platform):
        m = Module()
        desc = self.desc
        command = self.command

        embed_pixels = Signal(20)
        embed_words = Signal(16)
        m.d.sync += [
            embed_pixels.eq(desc.h_in * desc.w_in),
            embed_words.eq((embed_pixels * desc.emb_c + 3) >> 2),
        ]

        m.d.comb += [
            command.mem_addr.eq(desc.mem_addr),
            command.local_addr.eq(desc.local_addr),
            command.count.eq(desc.count),
            command.rows.eq(desc.rows),
            command.mem_stride.eq(desc.mem_stride),
        ]
        with m.Switch(desc.op):
            with m.Case(isa.Op.LOAD):
                m.d.comb += command.kind.eq(DmaKind.LOAD)
            with m.Case(isa.Op.STORE):
                m.d.comb += command.kind.eq(DmaKind.STORE)
            with m.Default():
                m.d.comb += [
                    command.kind.eq(DmaKind.STREAM),
                    command.local_addr.eq(0),
                    command.count.eq(embed_words),
                    command.rows.eq(1),
                    command.mem_stride.eq(0),
                ]
        return m
