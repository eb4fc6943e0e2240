"""Formal proof: the sequencer ends every descriptor within a bound, and an abort stops it at once.

The sequencer runs with ``watchdog_cycles=16`` (the smallest the class accepts) and with every
input free: the words on its fetch bus (so any program), ``start``, ``abort``, the window, the
DMA's and the engine's ``done`` and error codes. The environment is assumed to keep two
promises of the SoC: the fetch bus answers (``ack`` or ``err``) every request within
``ANSWER_WITHIN`` cycles of it, and the DMA accepts a command whenever none is outstanding (the
DMA is idle then; the sequencer holds the DMA in reset while idle). Then, from reset:

1. liveness: while busy, the descriptor index ``pc`` advances or the run ends within ``BOUND``
   cycles, and a run ends with ``done`` raised. A program of ``n`` descriptors inside the window
   therefore ends (``done``, with or without an error code) within ``n * BOUND`` cycles of
   ``start``;
2. abort: an ``abort`` while busy leaves the sequencer idle in the next cycle, with ``done``,
   ``error`` and an error code raised.

Mutants: a sequencer with a watchdog of 64 cycles must break the bound; a harness that does not
pass ``abort`` on must break the abort property. Covers: a run that reaches ``END`` without
error, a ``TIMEOUT``, a descriptor that takes ``BOUND - 1`` cycles (the bound is tight), and an
abort in the middle of a layer (a ``CONV`` started and not done).
"""

import pytest
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Signal

from contract import isa
from contract.config import MICRO
from contract.errors import ErrorCode
from accel.sequencer import Sequencer

from symbiyosys import check, free_ports, require_sby, reset_then_run
from protocol_properties import assume_wishbone_target


WATCHDOG_CYCLES = 16
ANSWER_WITHIN = 1
BOUND = 22
DEPTH = BOUND + 8
MUTANTS = ("long_watchdog", "abort_ignored")


class SequencerHarness(Elaboratable):
    """The sequencer in a free environment that keeps the SoC's promises."""

    def __init__(self, *, mutant=None):
        if mutant not in (None, *MUTANTS):
            raise ValueError(f"unknown mutant {mutant!r}")
        watchdog = 4 * WATCHDOG_CYCLES if mutant == "long_watchdog" else WATCHDOG_CYCLES
        self.unit = Sequencer(MICRO, watchdog_cycles=watchdog)
        self.abort = Signal()        # the abort request the property is about
        self._mutant = mutant

    def ports(self):
        return [p for p in free_ports(self.unit) if p is not self.unit.abort] + [self.abort]

    def elaborate(self, platform):
        m = Module()
        m.submodules.sequencer = unit = self.unit
        past_valid = reset_then_run(m)
        m.d.comb += unit.abort.eq(0 if self._mutant == "abort_ignored" else self.abort)

        assume_wishbone_target(m, unit.bus, answer_within=ANSWER_WITHIN)
        dma_outstanding = Signal()
        with m.If(unit.units_reset):
            m.d.sync += dma_outstanding.eq(0)
        with m.Elif(unit.dma_cmd.valid & unit.dma_cmd.ready):
            m.d.sync += dma_outstanding.eq(1)
        with m.Elif(unit.dma_done):
            m.d.sync += dma_outstanding.eq(0)
        m.d.comb += Assume(dma_outstanding | unit.dma_cmd.ready)

        # 1. Liveness.
        was_busy = Signal()
        previous_pc = Signal.like(unit.pc)
        stuck = Signal(range(DEPTH + 1))     # cycles of this descriptor so far
        m.d.sync += [was_busy.eq(unit.busy), previous_pc.eq(unit.pc)]
        with m.If(unit.busy & was_busy & (unit.pc == previous_pc)):
            m.d.sync += stuck.eq(stuck + 1)
        with m.Else():
            m.d.sync += stuck.eq(0)
        m.d.comb += Assert(stuck < BOUND, "descriptor ends within the bound")
        with m.If(past_valid & was_busy & ~unit.busy):
            m.d.comb += Assert(unit.done, "a run ends with done")

        # 2. Abort.
        abort_while_busy = Signal()
        m.d.sync += abort_while_busy.eq(self.abort & unit.busy)
        with m.If(past_valid & abort_while_busy):
            m.d.comb += Assert(~unit.busy & unit.done & unit.error & (unit.error_code != 0),
                               "abort returns to idle")

        conv_running = Signal()              # engine started, not done, run still busy
        with m.If(~unit.busy):
            m.d.sync += conv_running.eq(0)
        with m.Elif(unit.engine_start):
            m.d.sync += conv_running.eq(1)
        with m.Elif(unit.engine_done):
            m.d.sync += conv_running.eq(0)
        m.d.comb += [
            Cover(past_valid & was_busy & ~unit.busy & ~unit.error, "END reached"),
            Cover(~unit.busy & (unit.error_code == ErrorCode.TIMEOUT), "watchdog timeout"),
            Cover(stuck == BOUND - 1, "a descriptor of BOUND - 1 cycles"),
            Cover(conv_running & (unit.desc.op == isa.Op.CONV) & unit.busy & self.abort, "abort mid-layer"),
        ]
        return m


def _run(tmp_path, *, mode, mutant=None, depth=DEPTH):
    require_sby()
    harness = SequencerHarness(mutant=mutant)
    return check(f"sequencer_{mutant or 'proof'}", harness, harness.ports(), mode=mode,
                 depth=depth, workdir=tmp_path)


def test_sequencer_progress_and_abort(tmp_path):
    verdict = _run(tmp_path, mode="bmc")
    assert verdict.status == "PASS", verdict.log[-3000:]


@pytest.mark.parametrize("mutant", MUTANTS)
def test_sequencer_mutant_is_rejected(mutant, tmp_path):
    verdict = _run(tmp_path, mode="bmc", mutant=mutant)
    assert verdict.status == "FAIL" and verdict.failed_step is not None, verdict.log[-3000:]


def test_sequencer_cases_are_reachable(tmp_path):
    verdict = _run(tmp_path, mode="cover")
    assert verdict.status == "PASS", verdict.log[-3000:]
    assert len(verdict.cover_steps) == 4, verdict.cover_steps
