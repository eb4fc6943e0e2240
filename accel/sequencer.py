"""The sequencer: runs a whole compiled network from one start.

It fetches 8-word descriptors from main memory over its own Wishbone initiator, starting at
``PROG_ADDR``, and dispatches each one: ``LOAD``/``STORE`` to the DMA, ``EMBED`` to the DMA (as a
pixel stream) and the layer engine together, ``CONV`` to the layer engine, ``END`` finishes the run.
No host work is needed between layers; the program address and the window are read at start
only (a register write during a run applies to the next run). While a CONV runs, the next descriptor is fetched into a
second register set, so the next layer starts right after the engine's ``done`` (not when the
next descriptor lies outside the window, or while a DMA transfer is outstanding; then it is fetched
afterwards as usual). It also keeps the run's counters: total cycles, cycles in which the MAC array
accepted work, and the cycles of every descriptor (for per-layer profiles; a prefetched descriptor's
cycles do not include its fetch).
"""

from types import SimpleNamespace

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from contract import isa
from contract.config import AccelConfig
from contract.errors import ErrorCode
from contract.registers import MAX_PROFILED_DESCRIPTORS
from .dma_command import DmaCommand
from .descriptor_window import DescriptorWindow
from .descriptor_fetch import DescriptorFetch
from .dma_command_encoder import DmaCommandEncoder
from .run_counters import RunCounters
from . import wishbone


__all__ = ["Sequencer", "MAX_PROFILED_DESCRIPTORS", "WATCHDOG_CYCLES"]


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
        Word addresses: first descriptor; the main-memory window (limit exclusive). Read at
        ``start`` only: a write during a run changes the next run.
    run_window_base, run_window_limit : ``Out(32)``
        The window latched at ``start``, for the DMA's checks: the whole run uses one window.
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
            "run_window_base": Out(32),
            "run_window_limit": Out(32),
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

        m.submodules.window = window = DescriptorWindow()
        m.submodules.fetch = fetch = DescriptorFetch()
        m.submodules.counters = counters = RunCounters(
            watchdog_cycles=self._watchdog_cycles, profiled_descriptors=MAX_PROFILED_DESCRIPTORS)
        m.submodules.dma_command = dma_command = DmaCommandEncoder()
        wiring.connect(m, fetch.bus, wiring.flipped(self.bus))
        m.d.comb += [
            window.prog_addr.eq(self.prog_addr),
            window.window_base.eq(self.window_base),
            window.window_limit.eq(self.window_limit),
            self.run_window_base.eq(window.run_window_base),
            self.run_window_limit.eq(window.run_window_limit),
            fetch.addr.eq(window.addr),
            fetch.next_addr.eq(window.next_addr),
            fetch.next_in_window.eq(window.next_in_window),
            self.desc.eq(fetch.desc),
            dma_command.desc.eq(fetch.desc),
            counters.busy.eq(self.busy),
            counters.mac_busy.eq(self.mac_busy),
            counters.pc.eq(self.pc),
            counters.layer_sel.eq(self.layer_sel),
            self.cycles.eq(counters.cycles),
            self.mac_busy_cycles.eq(counters.mac_busy_cycles),
            self.layer_cycles.eq(counters.layer_cycles),
        ]

        # The run's state beside the descriptor: what is outstanding and what failed.
        run = SimpleNamespace(
            window=window, fetch=fetch, counters=counters, dma_command=dma_command,
            dma_pending=Signal(),        # a DMA command is outstanding
            dma_async=Signal(),          # ... issued by an `async_dma` descriptor (the sequencer went on)
            dma_pc=Signal(16),           # index of the descriptor that issued it
            engine_pending=Signal(),
            dma_fault=Signal(4),
            dma_failed=Signal(),         # dma_fault != 0, as one flip-flop for the prefetch's start
            fault_pc=Signal(16),         # index of the descriptor whose DMA transfer failed
            engine_fault=Signal(4),
            needs_dma_idle=Signal(),
            # A failure is decided in one cycle and reported in the next (state FAIL), so that the
            # decision (bus error, DMA and engine faults, the watchdog, by state) drives the
            # enables of a few flip-flops rather than of all the error and status registers. The
            # pc does not change in between; the units stop one cycle later.
            fail_code=Signal.like(self.error_code),
            fail_at_dma=Signal(),        # the error belongs to the descriptor that issued the DMA
        )
        # No prefetch starts once a DMA transfer has failed: the run ends with that error at its
        # next decision, and a request started now would be withdrawn unanswered.
        m.d.comb += fetch.dma_pending.eq(run.dma_pending | run.dma_failed)

        # Completions are captured in every state: an `async_dma` transfer ends while later
        # descriptors are fetched and run.
        with m.If(self.busy & self.dma_done & run.dma_pending):
            m.d.sync += run.dma_pending.eq(0)
            with m.If(self.dma_error != 0):
                m.d.sync += [run.dma_fault.eq(self.dma_error), run.dma_failed.eq(1),
                             run.fault_pc.eq(run.dma_pc)]
        with m.If(self.busy & self.engine_done & run.engine_pending):
            m.d.sync += [run.engine_pending.eq(0), run.engine_fault.eq(self.engine_error)]

        # Descriptors that use the DMA themselves (or ask to) first wait for an outstanding one.
        op = self.desc.op
        m.d.comb += run.needs_dma_idle.eq((op == isa.Op.LOAD) | (op == isa.Op.STORE) |
                                          (op == isa.Op.EMBED) | (op == isa.Op.END) |
                                          ((op == isa.Op.CONV) & self.desc.wait_dma))

        # Held while idle so that a run that ended in an error or an abort leaves no unit mid-way.
        m.d.comb += self.units_reset.eq(~self.busy)

        with m.FSM():
            self._fetch_states(m, run)
            self._dispatch_states(m, run)
            self._completion_states(m, run)
        return m

    def _fail(self, m, run, code, *, at_dma=False):
        m.d.sync += [run.fail_code.eq(code), run.fail_at_dma.eq(at_dma)]
        m.next = "FAIL"

    def _next_descriptor(self, m, run, *, prefetched=False):
        m.d.comb += [run.counters.record.eq(1), run.window.advance.eq(1), run.fetch.restart.eq(1)]
        m.d.sync += self.pc.eq(self.pc + 1)
        if prefetched:
            m.d.comb += [run.counters.restart.eq(1), run.fetch.take_prefetched.eq(1)]
            m.next = "DISPATCH"
        else:
            m.next = "FETCH"

    def _abort_wins(self, m, run):
        # Placed last in every busy state, so it overrides whatever the state decided. The SoC
        # resets the DMA and the engine with the same strobe.
        with m.If(self.abort):
            m.d.sync += [
                self.error.eq(1),
                self.error_code.eq(ErrorCode.ABORTED),
                self.error_pc.eq(self.pc),
                self.busy.eq(0),
                self.done.eq(1),
                run.dma_pending.eq(0),
                run.engine_pending.eq(0),
            ]
            m.next = "IDLE"

    def _fetch_states(self, m, run):
        """IDLE, and the fetch of a descriptor's words."""
        with m.State("IDLE"):
            with m.If(self.start):
                m.d.comb += [run.window.start.eq(1), run.counters.clear.eq(1), run.fetch.restart.eq(1)]
                m.d.sync += [
                    self.pc.eq(0),
                    self.busy.eq(1),
                    self.done.eq(0),
                    self.error.eq(0),
                    self.error_code.eq(ErrorCode.OK),
                    self.error_pc.eq(0),
                    run.dma_pending.eq(0),
                    run.engine_pending.eq(0),
                    run.dma_fault.eq(0),
                    run.dma_failed.eq(0),
                    run.engine_fault.eq(0),
                ]
                m.next = "FETCH"

        with m.State("FETCH"):
            m.d.comb += run.counters.restart.eq(1)
            with m.If(~run.window.in_window):
                self._fail(m, run, ErrorCode.WINDOW)
            with m.Else():
                m.d.comb += run.fetch.begin_fetch.eq(1)
                m.next = "FETCH_WORD"
            self._abort_wins(m, run)

        with m.State("FETCH_WORD"):
            m.d.comb += run.fetch.fetch.eq(1)
            with m.If(run.fetch.error):
                self._fail(m, run, ErrorCode.BUS_ERROR)
            with m.Elif(run.fetch.fetched):
                m.next = "FETCH_LAST"
            self._abort_wins(m, run)

        with m.State("FETCH_LAST"):
            # the last word is written in this cycle
            m.next = "DISPATCH"
            self._abort_wins(m, run)

    def _dispatch_states(self, m, run):
        """The start of a descriptor's work: the engine, the DMA, or the end of the run."""
        op = self.desc.op
        with m.State("DISPATCH"):
            with m.If(run.dma_fault != 0):
                self._fail(m, run, run.dma_fault, at_dma=True)
            with m.Elif(run.needs_dma_idle & run.dma_pending):
                with m.If(run.counters.watchdog):
                    self._fail(m, run, ErrorCode.TIMEOUT)
            with m.Else():
                with m.Switch(op):
                    with m.Case(isa.Op.END):
                        m.d.comb += run.counters.record.eq(1)
                        m.d.sync += [self.busy.eq(0), self.done.eq(1)]
                        m.next = "IDLE"
                    with m.Case(isa.Op.LOAD, isa.Op.STORE):
                        m.d.sync += [run.dma_pending.eq(1), run.dma_async.eq(self.desc.async_dma),
                                     run.dma_pc.eq(self.pc)]
                        m.next = "ISSUE_DMA"
                    with m.Case(isa.Op.EMBED):
                        m.d.sync += [run.dma_pending.eq(1), run.dma_async.eq(0), run.dma_pc.eq(self.pc),
                                     run.engine_pending.eq(1)]
                        m.d.comb += self.engine_start.eq(1)
                        m.next = "ISSUE_DMA"
                    with m.Case(isa.Op.CONV):
                        m.d.sync += run.engine_pending.eq(1)
                        m.d.comb += [run.fetch.begin_prefetch.eq(1), self.engine_start.eq(1)]
                        m.next = "WAIT"
                    with m.Default():
                        self._fail(m, run, ErrorCode.BAD_OPCODE)
            self._abort_wins(m, run)

        with m.State("ISSUE_DMA"):
            m.d.comb += [self.dma_cmd.valid.eq(1), self.dma_cmd.payload.eq(run.dma_command.command)]
            with m.If(self.dma_cmd.ready):
                with m.If(self.desc.async_dma & ((op == isa.Op.LOAD) | (op == isa.Op.STORE))):
                    self._next_descriptor(m, run)
                with m.Else():
                    m.next = "WAIT"
            self._abort_wins(m, run)

    def _completion_states(self, m, run):
        """The wait for a descriptor's work, then the next descriptor or the report of a failure."""
        with m.State("WAIT"):
            # The prefetch (CONV only) runs while the sequencer waits. An async transfer still
            # moving does not hold up this descriptor; any DMA error ends the run at once (the
            # units are reset, so the engine stops waiting for it).
            m.d.comb += run.fetch.prefetch_enable.eq(1)
            with m.If(run.dma_fault != 0):
                self._fail(m, run, run.dma_fault, at_dma=True)
            with m.Elif(~run.engine_pending & ~(run.dma_pending & ~run.dma_async) &
                        ~run.fetch.prefetching):
                with m.If(run.engine_fault != 0):
                    self._fail(m, run, run.engine_fault)
                with m.Else():
                    m.next = "ADVANCE"
            with m.Elif(run.counters.watchdog):
                self._fail(m, run, ErrorCode.TIMEOUT)
            self._abort_wins(m, run)

        with m.State("FAIL"):
            # An abort in this cycle changes nothing: the run has already ended.
            m.d.sync += [
                self.error.eq(1),
                self.error_code.eq(run.fail_code),
                self.error_pc.eq(Mux(run.fail_at_dma, run.fault_pc, self.pc)),
                self.busy.eq(0),
                self.done.eq(1),
            ]
            m.next = "IDLE"

        # One cycle between the decision and its effects: the decision (bus, DMA and engine
        # status) is deep, and the next descriptor loads the 8-word descriptor register (a wide
        # clock enable) and the profiling memory.
        with m.State("ADVANCE"):
            with m.If(run.dma_fault != 0):
                self._fail(m, run, run.dma_fault, at_dma=True)
            with m.Elif(run.fetch.prefetched):
                self._next_descriptor(m, run, prefetched=True)
            with m.Else():
                self._next_descriptor(m, run)
            self._abort_wins(m, run)
