"""The sequencer: runs a whole compiled network from one start.

It fetches 8-word descriptors from main memory over its own Wishbone initiator, starting at
``PROG_ADDR``, and dispatches each one: ``LOAD``/``STORE`` to the DMA, ``EMBED`` to the DMA (as a
pixel stream) and the layer engine together, ``CONV`` to the layer engine, ``END`` finishes the run.
No host work is needed between layers. While a CONV runs, the next descriptor is fetched into a
second register set, so the next layer starts right after the engine's ``done`` (not when the
next descriptor lies outside the window, or while a DMA transfer is outstanding; then it is fetched
afterwards as usual). It also keeps the run's counters: total cycles, cycles in which the MAC array
accepted work, and the cycles of every descriptor (for per-layer profiles; a prefetched descriptor's
cycles do not include its fetch).
"""

from amaranth import *
from amaranth.lib import wiring, stream, memory
from amaranth.lib.wiring import In, Out

from contract import isa
from contract.config import AccelConfig
from contract.errors import ErrorCode
from .dma import DmaCommand, DmaKind
from . import wishbone


__all__ = ["Sequencer", "MAX_PROFILED_DESCRIPTORS", "WATCHDOG_CYCLES"]


# Per-descriptor cycle counters kept for the last run (LAYER_SEL / LAYER_CYCLES).
MAX_PROFILED_DESCRIPTORS = 64
# A descriptor that runs longer than this is reported as TIMEOUT rather than hanging the device.
WATCHDOG_CYCLES = 1 << 26


class Sequencer(wiring.Component):
    """Descriptor fetch, dispatch and run counters.

    Parameters
    ----------
    config : AccelConfig
        The accelerator's configuration.
    watchdog_cycles : int
        A descriptor running longer than this ends the run with ``TIMEOUT``.

    Members
    -------
    bus : ``Out(wishbone.Signature(30, 32))``
        Initiator for descriptor fetches.
    start, abort : ``In(1)``
        One-cycle strobes from the CTRL register. ``start`` is ignored while busy.
    prog_addr, window_base, window_limit : ``In(32)``
        Word addresses: first descriptor; the main-memory window (limit exclusive).
    busy, done, error : ``Out(1)``
        Run status; ``done`` and ``error`` hold until the next start.
    error_code : ``Out(8)``, error_pc : ``Out(16)``, pc : ``Out(16)``
        Error code and the index of the descriptor that raised it; current descriptor index.
    cycles, mac_busy_cycles : ``Out(32)``
        Cycles of the current/last run and cycles in which the MAC array accepted work.
    layer_sel : ``In(6)``, layer_cycles : ``Out(32)``
        Cycles taken by descriptor ``layer_sel`` in the last run (valid two cycles after a change).
    dma_cmd : ``Out(stream.Signature(DmaCommand))``, dma_done : ``In(1)``, dma_error : ``In(4)``
        The DMA's command stream and completion.
    desc : ``Out(isa.DESCRIPTOR_LAYOUT)``, engine_start : ``Out(1)``, engine_done : ``In(1)``,
    engine_error : ``In(4)``, mac_busy : ``In(1)``
        The layer engine's control.
    units_reset : ``Out(1)``
        High while idle: the SoC resets the DMA and the engine with it, so an error or an abort
        in the middle of a descriptor leaves nothing half-way.
    """

    def __init__(self, config, *, watchdog_cycles=WATCHDOG_CYCLES):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        if not isinstance(watchdog_cycles, int) or not 16 <= watchdog_cycles < 2**32:
            raise ValueError(f"watchdog_cycles must be an integer in [16, 2**32), not {watchdog_cycles!r}")
        self._config = config
        self._watchdog_cycles = watchdog_cycles
        super().__init__({
            "bus": Out(wishbone.Signature(addr_width=30, data_width=32)),
            "start": In(1),
            "abort": In(1),
            "prog_addr": In(32),
            "window_base": In(32),
            "window_limit": In(32),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "error_code": Out(8),
            "error_pc": Out(16),
            "pc": Out(16),
            "cycles": Out(32),
            "mac_busy_cycles": Out(32),
            "layer_sel": In(6),
            "layer_cycles": Out(32),
            "dma_cmd": Out(stream.Signature(DmaCommand)),
            "dma_done": In(1),
            "dma_error": In(4),
            "desc": Out(isa.DESCRIPTOR_LAYOUT),
            "engine_start": Out(1),
            "engine_done": In(1),
            "engine_error": In(4),
            "mac_busy": In(1),
            "units_reset": Out(1),
        })

    def elaborate(self, platform):
        m = Module()

        words = Array(Signal(32, name=f"desc_word{i}") for i in range(isa.DESCRIPTOR_WORDS))
        m.d.comb += self.desc.as_value().eq(Cat(*words))
        # The next descriptor, fetched while a CONV runs (the engine holds `desc` until done), so
        # that the next layer starts without the 8-word fetch.
        next_words = Array(Signal(32, name=f"next_word{i}") for i in range(isa.DESCRIPTOR_WORDS))
        pf_idx = Signal(range(isa.DESCRIPTOR_WORDS + 1))   # words of it fetched so far
        pf_failed = Signal()                               # a bus error: fetch it again normally
        # A fetched or prefetched word is written a cycle after its acknowledgement, from
        # registers: the bus's read data sampled every cycle (no enable) and a one-hot of the
        # word to write (the bus response, the word index's decode and the enables of 256
        # flip-flops were 10.7-11 ns paths). FETCH_LAST waits for the fetch's last word before
        # DISPATCH; ADVANCE, which copies prefetched words, follows the last acknowledgement
        # by at least two cycles.
        resp_data = Signal(32)
        m.d.sync += resp_data.eq(self.bus.dat_r)
        fetch_wr = Signal(isa.DESCRIPTOR_WORDS)            # one-hot: the word written now
        pf_wr = Signal(isa.DESCRIPTOR_WORDS)
        m.d.sync += [fetch_wr.eq(0), pf_wr.eq(0)]
        for i in range(isa.DESCRIPTOR_WORDS):
            with m.If(fetch_wr[i]):
                m.d.sync += words[i].eq(resp_data)
            with m.If(pf_wr[i]):
                m.d.sync += next_words[i].eq(resp_data)

        addr = Signal(32)            # word address of the descriptor being fetched
        # addr + 8 and addr + 16 as registers, written with addr: the prefetch window check
        # (addr + 8 + 8 <= window_limit: two adders, then a comparison) was a 11 ns path
        addr_p1 = Signal(33)         # addr + 8 (not wrapped, like the sum it replaces)
        addr_p2 = Signal(34)         # addr + 16
        word_idx = Signal(range(isa.DESCRIPTOR_WORDS))
        # the bus address of the word being fetched, a register (an adder in front of the bus
        # address put a carry chain before the decoder, the arbiter and every target's ack path)
        fetch_adr = Signal.like(self.bus.adr)
        desc_cycles = Signal(32)     # cycles spent in the current descriptor
        dma_pending = Signal()       # a DMA command is outstanding
        dma_async = Signal()         # ... issued by an `async_dma` descriptor (the sequencer went on)
        dma_pc = Signal(16)          # index of the descriptor that issued it
        engine_pending = Signal()
        dma_fault = Signal(4)
        fault_pc = Signal(16)
        engine_fault = Signal(4)

        profile = memory.Memory(shape=32, depth=MAX_PROFILED_DESCRIPTORS, init=[])
        m.submodules.profile = profile
        prof_w = profile.write_port()
        prof_r = profile.read_port()
        # layer_cycles is the read data registered (one cycle after layer_sel): the block RAM's
        # clock-to-output into the CSR read multiplexer was the 64x32 SoC's critical path.
        m.d.sync += self.layer_cycles.eq(prof_r.data)
        m.d.comb += [
            prof_r.addr.eq(self.layer_sel),
            prof_w.addr.eq(self.pc[:6]),
            prof_w.data.eq(desc_cycles + 1),
        ]

        with m.If(self.busy):
            m.d.sync += [
                self.cycles.eq(self.cycles + 1),
                desc_cycles.eq(desc_cycles + 1),
            ]
            with m.If(self.mac_busy):
                m.d.sync += self.mac_busy_cycles.eq(self.mac_busy_cycles + 1)
        # The watchdog's comparison as a register (a timeout reported a cycle later is as good):
        # the 32-bit compare in front of the error registers and the state was a 10.8 ns path.
        watchdog_hit = Signal()
        m.d.sync += watchdog_hit.eq(desc_cycles >= self._watchdog_cycles - 1)

        # Completions are captured in every state: an `async_dma` transfer ends while later
        # descriptors are fetched and run.
        with m.If(self.busy & self.dma_done & dma_pending):
            m.d.sync += dma_pending.eq(0)
            with m.If(self.dma_error != 0):
                m.d.sync += [dma_fault.eq(self.dma_error), fault_pc.eq(dma_pc)]
        with m.If(self.busy & self.engine_done & engine_pending):
            m.d.sync += [engine_pending.eq(0), engine_fault.eq(self.engine_error)]

        op = self.desc.op
        # Descriptors that use the DMA themselves (or ask to) first wait for an outstanding one.
        needs_dma_idle = Signal()
        m.d.comb += needs_dma_idle.eq((op == isa.Op.LOAD) | (op == isa.Op.STORE) | (op == isa.Op.EMBED) |
                                      (op == isa.Op.END) | ((op == isa.Op.CONV) & self.desc.wait_dma))
        # Main-memory extent of the descriptor fetch, checked against the window before any access.
        # A register, written with addr: at start from PROG_ADDR, in next_descriptor() from
        # next_ok, the same check of the next descriptor (addr + 8), computed every cycle from
        # the addr + 8 / addr + 16 registers. The comparators' carry chains in front of the
        # error registers were the 64x32 SoC's critical path (10.6 ns).
        def in_window(first, end):
            # a descriptor's words [first, end) inside the main-memory window
            return (first >= self.window_base) & (end <= self.window_limit)
        fetch_ok = Signal()
        next_in_window = in_window(addr_p1, addr_p2)   # the next descriptor (also prefetched)
        next_ok = Signal()
        m.d.sync += next_ok.eq(next_in_window)

        # EMBED reads h*w*c bytes packed 4 to a word.
        # Two registered stages (h*w, then *c and rounding) so the multipliers stay off the DMA's
        # command path: word 5 (h, w) arrives at least 3 cycles before DISPATCH, word 6 (c) 2, and
        # ISSUE_DMA comes after DISPATCH, so both stages have settled by then.
        embed_pixels = Signal(20)
        embed_words = Signal(16)
        m.d.sync += [
            embed_pixels.eq(self.desc.h_in * self.desc.w_in),
            embed_words.eq((embed_pixels * self.desc.emb_c + 3) >> 2),
        ]

        # A failure is decided in one cycle and reported in the next (state FAIL): the decision
        # (bus error, DMA and engine faults, the watchdog, by state) then drives the enables of
        # five flip-flops, not of the 27 error/status registers (a 10.4-10.6 ns path on the 64x32
        # SoC). The pc does not change in between; the units stop one cycle later.
        fail_code = Signal.like(self.error_code)
        fail_at_dma = Signal()       # the error belongs to the descriptor that issued the DMA

        def fail(code, pc=None):
            assert pc is None or pc is fault_pc
            m.d.sync += [fail_code.eq(code), fail_at_dma.eq(pc is not None)]
            m.next = "FAIL"

        def next_descriptor(prefetched=False):
            m.d.comb += prof_w.en.eq(self.pc < MAX_PROFILED_DESCRIPTORS)
            m.d.sync += [
                self.pc.eq(self.pc + 1),
                addr.eq(addr_p1[:32]), fetch_ok.eq(next_ok),
                addr_p1.eq(addr_p1[:32] + isa.DESCRIPTOR_WORDS),
                addr_p2.eq(addr_p1[:32] + 2 * isa.DESCRIPTOR_WORDS),
                word_idx.eq(0),
                pf_idx.eq(0),
                pf_failed.eq(0),
            ]
            if prefetched:
                m.d.sync += [desc_cycles.eq(0), watchdog_hit.eq(0)] + [w.eq(n) for w, n in zip(words, next_words)]
                m.next = "DISPATCH"
            else:
                m.next = "FETCH"

        # Prefetch of the next descriptor during a CONV: only inside the window (else the normal
        # fetch reports WINDOW at the right pc) and with no DMA transfer outstanding (an async
        # STORE could be writing main memory).
        # The opcode and window part is a register, computed every cycle from the current
        # descriptor (stable from DISPATCH on): its comparators would otherwise sit in front of the
        # bus request, the arbiter and every target's ack.
        next_addr = addr_p1
        pf_conv_in_window = Signal()
        m.d.sync += pf_conv_in_window.eq((op == isa.Op.CONV) & next_in_window)
        pf_allowed = Signal()
        m.d.comb += pf_allowed.eq(pf_conv_in_window & ~dma_pending & ~pf_failed)
        pf_started = Signal()
        m.d.comb += pf_started.eq(pf_idx != 0)
        pf_done = Signal()
        m.d.comb += pf_done.eq(pf_idx == isa.DESCRIPTOR_WORDS)

        # A Wishbone read of the descriptor word at `fetch_adr` (the fetch and the prefetch).
        read_fetch_adr = [self.bus.cyc.eq(1), self.bus.stb.eq(1), self.bus.we.eq(0),
                          self.bus.sel.eq(0b1111), self.bus.adr.eq(fetch_adr)]

        # Held while idle so that a run that ended in an error or an abort leaves no unit mid-way.
        m.d.comb += self.units_reset.eq(~self.busy)

        def abort_wins():
            # Placed last in every busy state, so it overrides whatever the state decided. The SoC
            # resets the DMA and the engine with the same strobe.
            with m.If(self.abort):
                m.d.sync += [
                    self.error.eq(1),
                    self.error_code.eq(ErrorCode.ABORTED),
                    self.error_pc.eq(self.pc),
                    self.busy.eq(0),
                    self.done.eq(1),
                    dma_pending.eq(0),
                    engine_pending.eq(0),
                ]
                m.next = "IDLE"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        addr.eq(self.prog_addr),
                        fetch_ok.eq(in_window(self.prog_addr,
                                              self.prog_addr + isa.DESCRIPTOR_WORDS)),
                        addr_p1.eq(self.prog_addr + isa.DESCRIPTOR_WORDS),
                        addr_p2.eq(self.prog_addr + 2 * isa.DESCRIPTOR_WORDS),
                        word_idx.eq(0),
                        self.pc.eq(0),
                        self.busy.eq(1),
                        self.done.eq(0),
                        self.error.eq(0),
                        self.error_code.eq(ErrorCode.OK),
                        self.error_pc.eq(0),
                        self.cycles.eq(0),
                        self.mac_busy_cycles.eq(0),
                        desc_cycles.eq(0), watchdog_hit.eq(0),
                        dma_pending.eq(0),
                        engine_pending.eq(0),
                        dma_fault.eq(0),
                        engine_fault.eq(0),
                        pf_idx.eq(0),
                        pf_failed.eq(0),
                    ]
                    m.next = "FETCH"

            with m.State("FETCH"):
                m.d.sync += [desc_cycles.eq(0), watchdog_hit.eq(0)]
                with m.If(~fetch_ok):
                    fail(ErrorCode.WINDOW)
                with m.Else():
                    m.d.sync += fetch_adr.eq(addr)
                    m.next = "FETCH_WORD"

                abort_wins()

            with m.State("FETCH_WORD"):
                m.d.comb += read_fetch_adr
                with m.If(self.bus.err):
                    fail(ErrorCode.BUS_ERROR)
                with m.Elif(self.bus.ack):
                    m.d.sync += [fetch_wr.eq(1 << word_idx), fetch_adr.eq(fetch_adr + 1)]
                    with m.If(word_idx == isa.DESCRIPTOR_WORDS - 1):
                        m.next = "FETCH_LAST"
                    with m.Else():
                        m.d.sync += word_idx.eq(word_idx + 1)

                abort_wins()

            with m.State("FETCH_LAST"):
                # the last word is written in this cycle
                m.next = "DISPATCH"
                abort_wins()

            with m.State("DISPATCH"):
                with m.If(dma_fault != 0):
                    fail(dma_fault, fault_pc)
                with m.Elif(needs_dma_idle & dma_pending):
                    with m.If(watchdog_hit):
                        fail(ErrorCode.TIMEOUT)
                with m.Else():
                    with m.Switch(op):
                        with m.Case(isa.Op.END):
                            m.d.comb += prof_w.en.eq(self.pc < MAX_PROFILED_DESCRIPTORS)
                            m.d.sync += [
                                self.busy.eq(0),
                                self.done.eq(1),
                            ]
                            m.next = "IDLE"
                        with m.Case(isa.Op.LOAD, isa.Op.STORE):
                            m.d.sync += [dma_pending.eq(1), dma_async.eq(self.desc.async_dma),
                                         dma_pc.eq(self.pc)]
                            m.next = "ISSUE_DMA"
                        with m.Case(isa.Op.EMBED):
                            m.d.sync += [dma_pending.eq(1), dma_async.eq(0), dma_pc.eq(self.pc),
                                         engine_pending.eq(1)]
                            m.d.comb += self.engine_start.eq(1)
                            m.next = "ISSUE_DMA"
                        with m.Case(isa.Op.CONV):
                            m.d.sync += [engine_pending.eq(1), fetch_adr.eq(next_addr)]
                            m.d.comb += self.engine_start.eq(1)
                            m.next = "WAIT"
                        with m.Default():
                            fail(ErrorCode.BAD_OPCODE)

                abort_wins()

            with m.State("ISSUE_DMA"):
                payload = self.dma_cmd.payload
                m.d.comb += [
                    self.dma_cmd.valid.eq(1),
                    payload.mem_addr.eq(self.desc.mem_addr),
                    payload.local_addr.eq(self.desc.local_addr),
                    payload.count.eq(self.desc.count),
                    payload.rows.eq(self.desc.rows),
                    payload.mem_stride.eq(self.desc.mem_stride),
                ]
                with m.Switch(op):
                    with m.Case(isa.Op.LOAD):
                        m.d.comb += payload.kind.eq(DmaKind.LOAD)
                    with m.Case(isa.Op.STORE):
                        m.d.comb += payload.kind.eq(DmaKind.STORE)
                    with m.Default():
                        m.d.comb += [
                            payload.kind.eq(DmaKind.STREAM),
                            payload.local_addr.eq(0),
                            payload.count.eq(embed_words),
                            payload.rows.eq(1),
                            payload.mem_stride.eq(0),
                        ]
                with m.If(self.dma_cmd.ready):
                    with m.If(self.desc.async_dma & ((op == isa.Op.LOAD) | (op == isa.Op.STORE))):
                        next_descriptor()
                    with m.Else():
                        m.next = "WAIT"

                abort_wins()

            with m.State("WAIT"):
                # Prefetch (CONV only). Once started it runs to its eighth word or a bus error,
                # so that no request is left outstanding when the state changes.
                pf_req = Signal()        # a prefetch request on the bus in this cycle
                m.d.comb += pf_req.eq((pf_allowed | (pf_started & ~pf_failed)) & ~pf_done)
                with m.If(pf_req):
                    m.d.comb += read_fetch_adr
                    with m.If(self.bus.err):
                        m.d.sync += pf_failed.eq(1)
                    with m.Elif(self.bus.ack):
                        m.d.sync += [pf_wr.eq(1 << pf_idx[:3]),
                                     fetch_adr.eq(fetch_adr + 1), pf_idx.eq(pf_idx + 1)]
                # An async transfer still moving does not hold up this descriptor; any DMA error
                # ends the run at once (the units are reset, so the engine stops waiting for it).
                with m.If(dma_fault != 0):
                    fail(dma_fault, fault_pc)
                with m.Elif(~engine_pending & ~(dma_pending & ~dma_async) & ~pf_req):
                    with m.If(engine_fault != 0):
                        fail(engine_fault)
                    with m.Else():
                        m.next = "ADVANCE"
                with m.Elif(watchdog_hit):
                    fail(ErrorCode.TIMEOUT)
                abort_wins()

            with m.State("FAIL"):
                # An abort in this cycle changes nothing: the run has already ended.
                m.d.sync += [
                    self.error.eq(1),
                    self.error_code.eq(fail_code),
                    self.error_pc.eq(Mux(fail_at_dma, fault_pc, self.pc)),
                    self.busy.eq(0),
                    self.done.eq(1),
                ]
                m.next = "IDLE"

            # One cycle between the decision and its effects: the decision (bus, DMA and engine
            # status) is deep, and next_descriptor() loads the 8-word descriptor register (a wide
            # clock enable) and the profiling memory.
            with m.State("ADVANCE"):
                with m.If(dma_fault != 0):
                    fail(dma_fault, fault_pc)
                with m.Elif(pf_done):
                    next_descriptor(prefetched=True)
                with m.Else():
                    next_descriptor()
                abort_wins()

        return m
