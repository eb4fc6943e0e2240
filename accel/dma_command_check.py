"""The DMA's checks of a command against the main-memory window and the local buffers."""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract.config import AccelConfig, LOCAL_LANE_BITS, LOCAL_BUF_BITS, BUF_CODE_BANK0, WRITE_ONLY_BUFFERS
from .dma_command import DmaCommand, DmaKind


__all__ = ["buffer_lanes", "DmaCommandCheck"]


def buffer_lanes(config):
    """``{buffer id: lanes}`` of the local buffers the DMA may address in ``config``."""
    return {b: config.depth(b) * config.lanes(b) for b in range(BUF_CODE_BANK0 + config.n_code_banks)}


class DmaCommandCheck(wiring.Component):
    """Extent checks of one DMA command, in three register stages.

    The stages run on three strobes in successive cycles (``products``, ``sums``, ``compare``):

    1. ``total = rows * count`` and ``rows - 1`` (and ``count - 2``, ``count == 1`` for the span
       walker). The products are one MULT18X18D each; ``rows - 1`` is a register of its own, so
       that no carry chain precedes the second multiplier.
    2. ``span = (rows - 1) * mem_stride`` and the local end lane ``lane + total``.
    3. The main-memory end ``mem_addr + span + count`` and the local comparison against the
       addressed buffer's lanes (0 for an unknown buffer, and for a STORE from a write-only one).

    ``window_ok`` compares the registered main-memory extent with the window (combinational) in the
    cycle after the third strobe; ``local_ok`` is a register. Each stage's sum is registered before
    its comparison, so that no two carry chains follow each other.

    Parameters
    ----------
    config : AccelConfig
        Gives the local buffer sizes.

    Members
    -------
    command : In(DmaCommand)
        The command, held for the whole check.
    window_base, window_limit : In(32)
        The main-memory window in word addresses (limit exclusive).
    products, sums, compare : In(1)
        Strobes of the three stages.
    total : Out(32)
        ``rows * count``, after the first stage.
    count_minus_2 : Out(16)
    count_is_1 : Out(1)
        After the first stage.
    window_ok : Out(1)
        ``[mem_addr, mem_addr + (rows - 1) * mem_stride + count)`` lies inside the window and the
        30-bit bus (after the third stage).
    local_ok : Out(1)
        The local extent ``[lane, lane + total)`` lies inside the addressed buffer (after the
        third stage; meaningful for LOAD and STORE).
    """

    def __init__(self, config):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        self._config = config
        super().__init__({
            "command": In(DmaCommand),
            "window_base": In(32),
            "window_limit": In(32),
            "products": In(1),
            "sums": In(1),
            "compare": In(1),
            "total": Out(32),
            "count_minus_2": Out(16),
            "count_is_1": Out(1),
            "window_ok": Out(1),
            "local_ok": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        command = self.command
        rows_minus_1 = Signal(16)
        span = Signal(32)               # (rows - 1) * mem_stride
        lane_end = Signal(33)           # first lane after the transfer
        mem_end = Signal(34)            # first word after the transfer

        with m.If(self.products):
            m.d.sync += [
                self.total.eq(command.rows * command.count),
                rows_minus_1.eq(command.rows - 1),
                self.count_minus_2.eq(command.count - 2),
                self.count_is_1.eq(command.count == 1),
            ]

        with m.If(self.sums):
            m.d.sync += [span.eq(rows_minus_1 * command.mem_stride),
                         lane_end.eq(command.local_addr[:LOCAL_LANE_BITS] + self.total)]

        buffer = command.local_addr[LOCAL_LANE_BITS:LOCAL_LANE_BITS + LOCAL_BUF_BITS]
        size = Signal(LOCAL_LANE_BITS + 1)
        is_store = command.kind == DmaKind.STORE
        with m.Switch(buffer):
            for b, lanes in buffer_lanes(self._config).items():
                with m.Case(b):
                    if b in WRITE_ONLY_BUFFERS:
                        m.d.comb += size.eq(Mux(is_store, 0, lanes))
                    else:
                        m.d.comb += size.eq(lanes)
            # other buffer ids (and STOREs from write-only buffers): size 0, so any non-empty
            # transfer is out of range
        with m.If(self.compare):
            m.d.sync += [mem_end.eq(command.mem_addr + span + command.count),
                         self.local_ok.eq(lane_end <= size)]

        m.d.comb += self.window_ok.eq((command.mem_addr >= self.window_base) &
                                      (mem_end <= self.window_limit) & (mem_end <= (1 << 30)))
        return m
