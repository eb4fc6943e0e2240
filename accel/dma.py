"""The DMA controller: moves 2-D blocks between main memory (Wishbone) and the layer engine's local
buffers, or streams main memory to the engine's pixel input.

Commands (``DmaCommand``) are ``rows`` x ``count`` 32-bit words. Main-memory row ``r`` starts at
``mem_addr + r * mem_stride``; the local side is contiguous (word ``i`` of row ``r`` is local lane
``local_addr + r * count + i``). Every command is checked before any access: the whole main-memory
extent against the window ``[window_base, window_limit)`` and, for LOAD/STORE, the local extent
against the size of the addressed buffer (``docs/ARCHITECTURE.md`` 3.2, ``config.depth(buf) *
config.lanes(buf)`` lanes).
"""

from types import SimpleNamespace

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out
from amaranth.lib.fifo import SyncFIFO

from . import wishbone
from contract.config import AccelConfig
from contract.errors import ErrorCode, ERROR_BITS
from .localbus import LocalBusSignature
from .dma_command import DmaKind, DmaCommand
from .dma_command_check import DmaCommandCheck, buffer_lanes
from .dma_span_walker import DmaSpanWalker
from .dma_read_ahead import DmaReadAhead


__all__ = ["DmaKind", "DmaCommand", "DMA"]


class DMA(wiring.Component):
    """DMA controller, a classic Wishbone initiator.

    A command is accepted on ``cmd`` when the DMA is idle (``cmd.ready`` is high exactly when
    ``busy`` is low). Then:

    1. Four cycles of checks, in this order: ``kind`` 3 -> ``BAD_OPCODE``; ``count == 0`` or
       ``rows == 0`` -> done without any access, error 0; main-memory extent
       ``[mem_addr, mem_addr + (rows-1)*mem_stride + count)`` not inside
       ``[window_base, window_limit)`` (or beyond the 30-bit bus) -> ``WINDOW``; for LOAD/STORE,
       an unknown buffer id, ``lane + rows*count`` beyond the buffer's lanes, or a STORE from a
       write-only buffer (weights, thresholds, embedding table) -> ``LOCAL_RANGE``.
       A failed check ends the command before any bus or local access.
    2. The transfer: one Wishbone transfer per word, the next one presented in the cycle after the
       previous ``ack``, so a target that acknowledges n cycles after the request (``SRAM``: 2,
       ``CSRBank``: 1) gives one word every n + 1 cycles, every n + 3 behind the SoC's
       ``wishbone.RegisterSlice``. ``cyc`` is released for one cycle after every
       16 transfers so that the arbiter can serve the other initiators. A transfer ending in
       ``err`` stops the command with ``BUS_ERROR``; nothing is written after it (neither to local
       buffers nor to main memory).

       - LOAD: each word read is written to the local bus one cycle after its ``ack``.
       - STORE: local words are read ahead (one word of buffering; the local read data is
         registered, so a word is ready two cycles after its read), then written to main memory.
       - STREAM: words go through a 4-entry FIFO to ``pixels``; a read is only started when the
         FIFO has room for its word, so a stalled consumer stalls the bus side. The command ends
         when the FIFO is empty (all words delivered). After a bus error the words read before it
         (those acknowledged) are still delivered, then the command ends with ``BUS_ERROR``: so
         ``pixels`` holds every word it offers until it is taken, like every stream here, and
         the consumer sees a correct prefix of the block. (In the SoC the sequencer's watchdog
         and abort bound the wait for a consumer that takes nothing more; the run's failure
         resets the DMA.)

    ``done`` pulses for one cycle at the end of every accepted command, with ``busy`` low and
    ``error`` valid in that cycle (``error`` is held until the next command is accepted).

    Parameters
    ----------
    config : AccelConfig
        Gives the local buffer sizes.
    burst : int
        Transfers per bus cycle before ``cyc`` is released (default 16).

    Members
    -------
    cmd : In(stream.Signature(DmaCommand))
    done : Out(1)
    error : Out(4)
    busy : Out(1)
    bus : Out(wishbone.Signature(30, 32))
    local : Out(LocalBusSignature)
    pixels : Out(stream.Signature(32))
    window_base, window_limit : In(32)
        Main-memory window in word addresses, limit exclusive; sampled during the checks.
    """
    FIFO_DEPTH = 4

    def __init__(self, config, *, burst=16):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        if not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be a positive integer, not {burst!r}")
        self._config = config
        self._burst = burst
        super().__init__({
            "cmd": In(stream.Signature(DmaCommand)),
            "done": Out(1),
            "error": Out(ERROR_BITS),
            "busy": Out(1),
            "bus": Out(wishbone.Signature(addr_width=30, data_width=32)),
            "local": Out(LocalBusSignature),
            "pixels": Out(stream.Signature(32)),
            "window_base": In(32),
            "window_limit": In(32),
        })

    def buffer_lanes(self):
        """``{buffer id: lanes}`` of the local buffers the DMA may address."""
        return buffer_lanes(self._config)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        local = self.local

        m.submodules.fifo = fifo = SyncFIFO(width=32, depth=self.FIFO_DEPTH)
        m.submodules.check = check = DmaCommandCheck(self._config)
        m.submodules.walker = walker = DmaSpanWalker()
        m.submodules.read_ahead = read_ahead = DmaReadAhead()

        command = Signal(DmaCommand)    # the command being executed
        is_load = Signal()
        is_store = Signal()
        is_stream = Signal()
        m.d.comb += [
            is_load.eq(command.kind == DmaKind.LOAD),
            is_store.eq(command.kind == DmaKind.STORE),
            is_stream.eq(command.kind == DmaKind.STREAM),
            check.command.eq(command),
            check.window_base.eq(self.window_base),
            check.window_limit.eq(self.window_limit),
            walker.first_addr.eq(command.mem_addr),
            walker.words.eq(check.total),
            walker.count_minus_2.eq(check.count_minus_2),
            walker.count_is_1.eq(check.count_is_1),
            walker.mem_stride.eq(command.mem_stride),
            read_ahead.first_addr.eq(command.local_addr),
            read_ahead.words.eq(check.total),
            read_ahead.active.eq(is_store),
            read_ahead.read_data.eq(local.r_data),
        ]

        # Bus side: completions still to come, and transfers in the current bus cycle.
        ack_left = Signal(32)
        ack_last = Signal()             # ack_left == 1, kept one step ahead
        burst_count = Signal(range(self._burst))

        # LOAD: registered local write of the word acknowledged in the previous cycle.
        write_en = Signal()
        write_addr = Signal(24)
        write_data = Signal(32)

        m.d.comb += [
            local.addr.eq(Mux(is_store, read_ahead.addr, write_addr)),
            local.w_en.eq(write_en),
            local.w_data.eq(write_data),
            local.r_en.eq(read_ahead.read),
            bus.sel.eq(0xF),
            self.pixels.payload.eq(fifo.r_data),
            self.pixels.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.pixels.ready),
            fifo.w_data.eq(bus.dat_r),
        ]
        m.d.sync += [write_en.eq(0), self.done.eq(0)]

        # What the transfer state shares with the rest.
        transfer = SimpleNamespace(
            fifo=fifo, walker=walker, read_ahead=read_ahead, is_load=is_load, is_store=is_store,
            is_stream=is_stream, ack_left=ack_left, ack_last=ack_last, burst_count=burst_count,
            write_en=write_en, write_addr=write_addr, write_data=write_data)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [command.eq(self.cmd.payload), self.error.eq(0)]
                    m.next = "CHECK_PRODUCTS"

            with m.State("CHECK_PRODUCTS"):
                m.d.comb += [self.busy.eq(1), check.products.eq(1)]
                m.next = "CHECK_SUMS"

            with m.State("CHECK_SUMS"):
                m.d.comb += [self.busy.eq(1), check.sums.eq(1)]
                m.next = "CHECK_COMPARE"

            with m.State("CHECK_COMPARE"):
                # The transfer's initial state is loaded with the last check stage.
                m.d.comb += [self.busy.eq(1), check.compare.eq(1), walker.start.eq(1),
                             read_ahead.start.eq(1)]
                m.d.sync += [
                    ack_left.eq(check.total),
                    ack_last.eq(check.total == 1),
                    burst_count.eq(0),
                    write_addr.eq(command.local_addr),
                ]
                m.next = "DECIDE"

            with m.State("DECIDE"):
                m.d.comb += self.busy.eq(1)
                with m.If(command.kind == 3):
                    self._finish(m, ErrorCode.BAD_OPCODE)
                with m.Elif((command.count == 0) | (command.rows == 0)):
                    self._finish(m)
                with m.Elif(~check.window_ok):
                    self._finish(m, ErrorCode.WINDOW)
                with m.Elif(~is_stream & ~check.local_ok):
                    self._finish(m, ErrorCode.LOCAL_RANGE)
                with m.Else():
                    m.next = "TRANSFER"

            self._transfer_state(m, transfer)

            with m.State("DRAIN"):
                # STREAM: wait until the consumer has taken every word (after a bus error too,
                # with ``error`` already set).
                m.d.comb += self.busy.eq(1)
                with m.If(fifo.level == 0):
                    self._finish(m)

        return m

    def _finish(self, m, code=None):
        m.d.sync += self.done.eq(1)
        if code is not None:
            m.d.sync += self.error.eq(code)
        m.next = "IDLE"

    def _transfer_state(self, m, transfer):
        """TRANSFER: the bus side, the local side and the stream of a checked command."""
        bus = self.bus
        with m.State("TRANSFER"):
            m.d.comb += [self.busy.eq(1), transfer.read_ahead.enable.eq(1)]
            bus_error = Signal()
            beat_end = Signal()
            ack = Signal()
            m.d.comb += [
                bus_error.eq(bus.stb & bus.err),
                beat_end.eq(bus.stb & (bus.ack | bus.err)),
                ack.eq(bus.stb & bus.ack),
                transfer.read_ahead.stop.eq(bus_error),
            ]
            slot_free = Signal()          # no transfer outstanding after this cycle
            m.d.comb += slot_free.eq(~bus.stb | beat_end)

            # Room for the data of a new transfer.
            can_issue = Signal()
            with m.If(transfer.is_load):
                m.d.comb += can_issue.eq(1)
            with m.Elif(transfer.is_store):
                m.d.comb += can_issue.eq(transfer.read_ahead.available)
            with m.Else():
                # The FIFO must have room for every word in flight, whatever the consumer
                # does: at most one other word (acknowledged in this cycle at the latest)
                # lands before this one, so one free slot beyond it is enough. The level
                # register alone is tested: its sum with this cycle's ack would be a long path.
                m.d.comb += can_issue.eq(transfer.fifo.level < self.FIFO_DEPTH - 1)
            burst_full = Signal()
            m.d.comb += burst_full.eq(bus.stb & (transfer.burst_count == self._burst - 1))

            issue = Signal()
            m.d.comb += [
                issue.eq(slot_free & transfer.walker.more & can_issue & ~burst_full & ~bus_error),
                transfer.walker.step.eq(issue),
                transfer.read_ahead.take.eq(issue & transfer.is_store),
            ]
            with m.If(issue):
                m.d.sync += [
                    bus.cyc.eq(1),
                    bus.stb.eq(1),
                    bus.we.eq(transfer.is_store),
                    bus.adr.eq(transfer.walker.addr[:30]),
                    bus.dat_w.eq(transfer.read_ahead.data),
                    transfer.burst_count.eq(Mux(bus.stb, transfer.burst_count + 1, 0)),
                ]
            with m.Elif(beat_end):
                m.d.sync += [bus.cyc.eq(0), bus.stb.eq(0)]

            with m.If(ack):
                m.d.sync += [transfer.ack_left.eq(transfer.ack_left - 1),
                             transfer.ack_last.eq(transfer.ack_left == 2)]
                with m.If(transfer.is_load):
                    m.d.sync += [transfer.write_en.eq(1), transfer.write_data.eq(bus.dat_r)]
                with m.If(transfer.is_stream):
                    m.d.comb += transfer.fifo.w_en.eq(1)

            # the local write address advances after each write
            with m.If(transfer.write_en):
                m.d.sync += transfer.write_addr.eq(transfer.write_addr + 1)

            with m.If(bus_error):
                m.d.sync += [bus.cyc.eq(0), bus.stb.eq(0), self.error.eq(ErrorCode.BUS_ERROR)]
                with m.If(transfer.is_stream):
                    m.next = "DRAIN"
                with m.Else():
                    self._finish(m)
            with m.Elif(ack & transfer.ack_last):
                with m.If(transfer.is_stream):
                    m.next = "DRAIN"
                with m.Else():
                    self._finish(m)
