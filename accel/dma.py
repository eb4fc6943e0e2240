"""The DMA controller: moves 2-D blocks between main memory (Wishbone) and the layer engine's local
buffers, or streams main memory to the engine's pixel input.

Commands (``DmaCommand``) are ``rows`` x ``count`` 32-bit words. Main-memory row ``r`` starts at
``mem_addr + r * mem_stride``; the local side is contiguous (word ``i`` of row ``r`` is local lane
``local_addr + r * count + i``). Every command is checked before any access: the whole main-memory
extent against the window ``[window_base, window_limit)`` and, for LOAD/STORE, the local extent
against the size of the addressed buffer (``docs/ARCHITECTURE.md`` 3.2, ``config.depth(buf) *
config.lanes(buf)`` lanes).
"""

from amaranth.hdl import Module, Signal, Mux, Const, Cat, Array
from amaranth.lib import wiring, stream, data, enum
from amaranth.lib.wiring import In, Out
from amaranth.lib.fifo import SyncFIFO

from . import wishbone
from contract.config import AccelConfig, LOCAL_LANE_BITS, LOCAL_BUF_BITS, BUF_CODE_BANK0, WRITE_ONLY_BUFFERS
from contract.errors import ErrorCode, ERROR_BITS
from .localbus import LocalBusSignature, READ_LATENCY


__all__ = ["DmaKind", "DmaCommand", "DMA"]


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


class DMA(wiring.Component):
    """DMA controller, a classic Wishbone initiator.

    A command is accepted on ``cmd`` when the DMA is idle (``cmd.ready`` is high exactly when
    ``busy`` is low). Then:

    1. Three cycles of checks, in this order: ``kind`` 3 -> ``BAD_OPCODE``; ``count == 0`` or
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
         when the FIFO is empty (all words delivered). After a bus error the words still in the
         FIFO are discarded.

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
        cfg = self._config
        return {b: cfg.depth(b) * cfg.lanes(b) for b in range(BUF_CODE_BANK0 + cfg.n_code_banks)}

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        loc = self.local

        m.submodules.fifo = fifo = SyncFIFO(width=32, depth=self.FIFO_DEPTH)

        c = Signal(DmaCommand)          # the command being executed
        total = Signal(32)              # rows * count
        span = Signal(32)               # (rows - 1) * mem_stride
        rows_m1 = Signal(16)
        lane_end = Signal(33)           # first lane after the transfer: the sum registered before
                                        # its comparison (one carry chain each, 10.1 ns together)
        is_load = Signal()
        is_store = Signal()
        is_stream = Signal()
        m.d.comb += [
            is_load.eq(c.kind == DmaKind.LOAD),
            is_store.eq(c.kind == DmaKind.STORE),
            is_stream.eq(c.kind == DmaKind.STREAM),
        ]

        # Bus side: address generator of the next transfer to issue, and completion count.
        mem_ptr = Signal(32)
        row_base = Signal(32)
        col = Signal(16)
        issue_left = Signal(32)
        ack_left = Signal(32)
        burst_cnt = Signal(range(self._burst))
        # Conditions of the next transfer as flags kept one step ahead, so that ``issue`` (the
        # enable of every address register) is a few LUTs from registers: issue_left != 0,
        # col == count - 1, ack_left == 1, fetch_left != 0.
        issue_more = Signal()
        col_last = Signal()
        ack_last = Signal()
        fetch_more = Signal()
        count_m2 = Signal(16)           # count - 2: col_last after col == count - 2
        count_is1 = Signal()

        # LOAD: registered local write of the word acknowledged in the previous cycle.
        w_en = Signal()
        w_addr = Signal(24)
        w_data = Signal(32)
        # STORE: local read-ahead. The local read data is registered (rd_data, valid in rd_valid,
        # READ_LATENCY + 1 cycles after r_en) before it is used: the engine's read-back
        # multiplexer behind a block RAM's output, then this unit's data selection, was the SoC's
        # critical path.
        rd_ptr = Signal(24)
        fetch_left = Signal(32)
        rd_pending = Signal(READ_LATENCY)      # bit k: a read issued k + 1 cycles ago
        rd_data = Signal(32)
        rd_valid = Signal()
        # The words read ahead wait in a small ring: reads in flight and words held together
        # never exceed its depth (``reserved``). Four words over the READ_LATENCY + 1 cycles of
        # the read path are 4/7 of a word per cycle, more than the bus takes (a transfer per
        # three cycles at best).
        ahead_depth = 4
        ahead = Array(Signal(32, name=f"ahead{k}", reset_less=True) for k in range(ahead_depth))
        ahead_w = Signal(range(ahead_depth))
        ahead_r = Signal(range(ahead_depth))
        ahead_level = Signal(range(ahead_depth + 1))     # words held
        reserved = Signal(range(ahead_depth + 1))        # words held or in flight
        r_en = Signal()

        flushing = Signal()

        m.d.comb += [
            loc.addr.eq(Mux(is_store, rd_ptr, w_addr)),
            loc.w_en.eq(w_en),
            loc.w_data.eq(w_data),
            loc.r_en.eq(r_en),
            bus.sel.eq(0xF),
            self.pixels.payload.eq(fifo.r_data),
            self.pixels.valid.eq(fifo.r_rdy & ~flushing),
            fifo.r_en.eq(self.pixels.ready | flushing),
            fifo.w_data.eq(bus.dat_r),
        ]
        m.d.sync += [w_en.eq(0), self.done.eq(0), rd_pending.eq(Cat(r_en, rd_pending[:-1])),
                     rd_data.eq(loc.r_data), rd_valid.eq(rd_pending[-1])]

        def finish(code=None):
            m.d.sync += self.done.eq(1)
            if code is not None:
                m.d.sync += self.error.eq(code)
            m.next = "IDLE"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [c.eq(self.cmd.payload), self.error.eq(0)]
                    m.next = "CHECK0"

            # The checks in four register stages: rows - 1 and a product, a product, sums,
            # comparisons.
            mem_end = Signal(34)
            local_ok = Signal()
            with m.State("CHECK0"):
                m.d.comb += self.busy.eq(1)
                # The products are registered: both are one multiplier each (MULT18X18D). The
                # span's operand rows - 1 is a register of its own, so that no carry chain
                # precedes its multiplier (rows - 1, the multiplier and the routes to and from
                # the multipliers' column were a 10.4 ns path at 64x32).
                m.d.sync += [
                    total.eq(c.rows * c.count),
                    rows_m1.eq(c.rows - 1),
                    count_m2.eq(c.count - 2),
                    count_is1.eq(c.count == 1),
                ]
                m.next = "CHECK0B"

            with m.State("CHECK0B"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [span.eq(rows_m1 * c.mem_stride),
                             lane_end.eq(c.local_addr[:LOCAL_LANE_BITS] + total)]
                m.next = "CHECK1"

            with m.State("CHECK1"):
                m.d.comb += self.busy.eq(1)
                buf = c.local_addr[LOCAL_LANE_BITS:LOCAL_LANE_BITS + LOCAL_BUF_BITS]
                lane = c.local_addr[:LOCAL_LANE_BITS]
                size = Signal(LOCAL_LANE_BITS + 1)
                with m.Switch(buf):
                    for b, lanes in self.buffer_lanes().items():
                        with m.Case(b):
                            if b in WRITE_ONLY_BUFFERS:
                                m.d.comb += size.eq(Mux(is_store, 0, lanes))
                            else:
                                m.d.comb += size.eq(lanes)
                    # other buffer ids (and STOREs from write-only buffers): size 0, so any
                    # non-empty transfer is out of range
                m.d.sync += [mem_end.eq(c.mem_addr + span + c.count),
                             local_ok.eq(lane_end <= size)]

                # Initial state of the transfer.
                m.d.sync += [
                    mem_ptr.eq(c.mem_addr),
                    row_base.eq(c.mem_addr),
                    col.eq(0),
                    col_last.eq(count_is1),
                    issue_left.eq(total),
                    issue_more.eq(total != 0),
                    ack_left.eq(total),
                    ack_last.eq(total == 1),
                    burst_cnt.eq(0),
                    w_addr.eq(c.local_addr),
                    rd_ptr.eq(c.local_addr),
                    fetch_left.eq(Mux(is_store, total, 0)),
                    fetch_more.eq(is_store & (total != 0)),
                    ahead_w.eq(0), ahead_r.eq(0), ahead_level.eq(0), reserved.eq(0),
                ]
                m.next = "CHECK2"

            with m.State("CHECK2"):
                m.d.comb += self.busy.eq(1)
                window_ok = Signal()
                m.d.comb += window_ok.eq((c.mem_addr >= self.window_base) &
                                         (mem_end <= self.window_limit) & (mem_end <= (1 << 30)))
                with m.If(c.kind == 3):
                    finish(ErrorCode.BAD_OPCODE)
                with m.Elif((c.count == 0) | (c.rows == 0)):
                    finish()
                with m.Elif(~window_ok):
                    finish(ErrorCode.WINDOW)
                with m.Elif(~is_stream & ~local_ok):
                    finish(ErrorCode.LOCAL_RANGE)
                with m.Else():
                    m.next = "XFER"

            with m.State("XFER"):
                m.d.comb += self.busy.eq(1)
                beat_end = Signal()
                ack = Signal()
                m.d.comb += [
                    beat_end.eq(bus.stb & (bus.ack | bus.err)),
                    ack.eq(bus.stb & bus.ack),
                ]
                slot_free = Signal()          # no transfer outstanding after this cycle
                m.d.comb += slot_free.eq(~bus.stb | beat_end)

                # Room for the data of a new transfer.
                data_avail = Signal()
                data_val = Signal(32)
                m.d.comb += [
                    data_avail.eq(ahead_level != 0),
                    data_val.eq(ahead[ahead_r]),
                ]
                can_issue = Signal()
                with m.If(is_load):
                    m.d.comb += can_issue.eq(1)
                with m.Elif(is_store):
                    m.d.comb += can_issue.eq(data_avail)
                with m.Else():
                    # the FIFO must have room for every word in flight, whatever the consumer does:
                    # at most one other word (acknowledged in this cycle at the latest) lands
                    # before this one, so one free slot beyond it is enough (a test of the level
                    # register alone: the sum with this cycle's ack was on a 12 ns path)
                    m.d.comb += can_issue.eq(fifo.level < self.FIFO_DEPTH - 1)
                burst_full = Signal()
                m.d.comb += burst_full.eq(bus.stb & (burst_cnt == self._burst - 1))

                issue = Signal()
                m.d.comb += issue.eq(slot_free & issue_more & can_issue & ~burst_full
                                     & ~(bus.stb & bus.err))

                with m.If(issue):
                    m.d.sync += [
                        bus.cyc.eq(1),
                        bus.stb.eq(1),
                        bus.we.eq(is_store),
                        bus.adr.eq(mem_ptr[:30]),
                        bus.dat_w.eq(data_val),
                        issue_left.eq(issue_left - 1),
                        issue_more.eq(issue_left != 1),
                        burst_cnt.eq(Mux(bus.stb, burst_cnt + 1, 0)),
                    ]
                    with m.If(col_last):
                        m.d.sync += [
                            col.eq(0),
                            col_last.eq(count_is1),
                            row_base.eq(row_base + c.mem_stride),
                            mem_ptr.eq(row_base + c.mem_stride),
                        ]
                    with m.Else():
                        m.d.sync += [col.eq(col + 1), col_last.eq(col == count_m2),
                                     mem_ptr.eq(mem_ptr + 1)]
                with m.Elif(beat_end):
                    m.d.sync += [bus.cyc.eq(0), bus.stb.eq(0)]

                # STORE read-ahead: up to ahead_depth words in flight on the local bus
                # (rd_pending, then rd_valid) or held in the ring.
                consume = Signal()
                m.d.comb += consume.eq(issue & is_store)
                with m.If(rd_valid):
                    m.d.sync += [ahead[ahead_w].eq(rd_data),
                                 ahead_w.eq(Mux(ahead_w == ahead_depth - 1, 0, ahead_w + 1))]
                with m.If(consume):
                    m.d.sync += ahead_r.eq(Mux(ahead_r == ahead_depth - 1, 0, ahead_r + 1))
                m.d.sync += [ahead_level.eq(ahead_level + rd_valid - consume),
                             reserved.eq(reserved + r_en - consume)]
                m.d.comb += r_en.eq(fetch_more & (reserved != ahead_depth) &
                                    ~(bus.stb & bus.err))
                with m.If(r_en):
                    m.d.sync += [rd_ptr.eq(rd_ptr + 1), fetch_left.eq(fetch_left - 1),
                                 fetch_more.eq(fetch_left != 1)]

                with m.If(ack):
                    m.d.sync += [ack_left.eq(ack_left - 1), ack_last.eq(ack_left == 2)]
                    with m.If(is_load):
                        m.d.sync += [w_en.eq(1), w_data.eq(bus.dat_r)]
                    with m.If(is_stream):
                        m.d.comb += fifo.w_en.eq(1)

                # the local write address advances after each write
                with m.If(w_en):
                    m.d.sync += w_addr.eq(w_addr + 1)

                with m.If(bus.stb & bus.err):
                    m.d.sync += [bus.cyc.eq(0), bus.stb.eq(0), self.error.eq(ErrorCode.BUS_ERROR)]
                    with m.If(is_stream):
                        m.next = "FLUSH"
                    with m.Else():
                        finish()
                with m.Elif(ack & ack_last):
                    with m.If(is_stream):
                        m.next = "DRAIN"
                    with m.Else():
                        finish()

            with m.State("DRAIN"):
                # STREAM: wait until the consumer has taken every word.
                m.d.comb += self.busy.eq(1)
                with m.If(fifo.level == 0):
                    finish()

            with m.State("FLUSH"):
                # STREAM after a bus error: discard the words not yet delivered.
                m.d.comb += [self.busy.eq(1), flushing.eq(1)]
                with m.If(fifo.level == 0):
                    finish()

        return m
