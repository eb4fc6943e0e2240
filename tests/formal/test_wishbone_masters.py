"""Formal proof: the Wishbone initiators obey the classic-cycle rules.

For the DMA, the sequencer's descriptor fetch and the UART bridge's protocol engine
(``FrameBridge``, the bridge without its UART, so that a frame fits in the proof's depth), from
reset, with every input free and the target answering (``ack`` or ``err``) at arbitrary times,
assumed only to answer a request and never with both:

1. ``stb`` only while ``cyc``;
2. a request not answered in a cycle is presented again in the next one with ``cyc``, ``stb``,
   ``adr``, ``we``, ``dat_w`` and ``sel`` unchanged, so every answer belongs to the request on the
   bus in its cycle (a new request may follow in the cycle after an answer: classic B4 allows it).

Exceptions are part of the property, each as narrow as the design allows: the bridge gives up a
request after ``bus_timeout`` cycles without an answer (exactly then, not earlier); the
sequencer's abort ends its fetch; and the sequencer withdraws an unanswered prefetch request when
its run fails (watchdog ``TIMEOUT`` or a DMA fault while the next descriptor is being prefetched),
checked as: the run has ended with an error in the next cycle. The sequencer's window is assumed
held during a run: the prefetch decides from the live window inputs, so a window written in the
middle of a ``CONV`` also withdraws a request (found by this proof).
Each initiator has a mutant (``stb`` withdrawn in the second cycle of a waiting request) that the
solver must reject, and covers of an answer after a wait state and of back-to-back requests.
"""

import pytest
from amaranth.hdl import Assume, Cat, Cover, Elaboratable, Module, Signal

from contract.config import MICRO
from accel.dma import DMA
from accel.sequencer import Sequencer
from accel.uart_bridge import FrameBridge

from symbiyosys import check, free_ports, require_sby, reset_then_run
from protocol_properties import (assume_wishbone_target, assert_wishbone_classic,
                                 drop_strobe_while_waiting, waiting_cycles)


DEPTH = 24
BRIDGE_BUS_TIMEOUT = 2


def _dma(m):
    return DMA(MICRO), lambda unit: 0, None


def _sequencer(m):
    sequencer = Sequencer(MICRO, watchdog_cycles=16)
    # The window is held during a run (the host writes it before start): the prefetch of the
    # next descriptor decides from the live window inputs whether to request, so a window
    # written in the middle of a CONV withdraws an unanswered request.
    window = Cat(sequencer.window_base, sequencer.window_limit)
    previous = Signal(len(window), reset_less=True)
    m.d.sync += previous.eq(window)
    with m.If(sequencer.busy):
        m.d.comb += Assume(window == previous)

    def abandon(unit):
        aborted = Signal()
        m.d.sync += aborted.eq(unit.abort)
        return aborted
    # A run that fails (the watchdog, a DMA fault) while the next descriptor's prefetch waits for
    # an answer withdraws the request in its FAIL cycle: the run has ended with an error in the
    # cycle after.
    return sequencer, abandon, ~sequencer.busy & sequencer.error


def _bridge(m):
    bridge = FrameBridge(max_words=4, timeout_cycles=16, bus_timeout=BRIDGE_BUS_TIMEOUT)

    def abandon(unit):
        waited = waiting_cycles(m, unit.bus.stb, unit.bus.ack, unit.bus.err, name="timeout")
        timed_out = waited == BRIDGE_BUS_TIMEOUT + 1
        # the time-out is reachable too
        m.d.comb += Cover(timed_out & ~unit.bus.stb, "bridge_bus_timeout")
        return timed_out
    return bridge, abandon, None


INITIATORS = {"dma": _dma, "sequencer": _sequencer, "uart_bridge": _bridge}


class WishboneHarness(Elaboratable):
    """The initiator with a free target; its bus (or, with ``mutant``, a broken copy) checked."""

    def __init__(self, build, *, mutant=False):
        self._module = Module()
        self.unit, self._abandon, self._withdrawal_ends_run = build(self._module)
        self._mutant = mutant

    def elaborate(self, platform):
        m = self._module
        m.submodules.unit = unit = self.unit
        past_valid = reset_then_run(m)
        bus = unit.bus
        assume_wishbone_target(m, bus)
        stb = bus.stb
        if self._mutant:
            stb = drop_strobe_while_waiting(m, bus.stb, bus.ack, bus.err)
        assert_wishbone_classic(m, past_valid, cyc=bus.cyc, stb=stb, we=bus.we, adr=bus.adr,
                                dat_w=bus.dat_w, sel=bus.sel, ack=bus.ack, err=bus.err,
                                may_abandon=self._abandon(unit),
                                withdrawal_ends_run=self._withdrawal_ends_run)
        return m


def _run(initiator, tmp_path, *, mode, mutant=False):
    require_sby()
    harness = WishboneHarness(INITIATORS[initiator], mutant=mutant)
    return check(f"wishbone_{initiator}{'_mutant' if mutant else ''}", harness,
                 free_ports(harness.unit), mode=mode, depth=DEPTH, workdir=tmp_path)


@pytest.mark.parametrize("initiator", INITIATORS)
def test_wishbone_classic_cycle(initiator, tmp_path):
    verdict = _run(initiator, tmp_path, mode="bmc")
    assert verdict.status == "PASS", verdict.log[-3000:]


@pytest.mark.parametrize("initiator", INITIATORS)
def test_wishbone_mutant_is_rejected(initiator, tmp_path):
    verdict = _run(initiator, tmp_path, mode="bmc", mutant=True)
    assert verdict.status == "FAIL" and verdict.failed_step is not None, verdict.log[-3000:]


@pytest.mark.parametrize("initiator", INITIATORS)
def test_wishbone_waits_are_reachable(initiator, tmp_path):
    verdict = _run(initiator, tmp_path, mode="cover")
    assert verdict.status == "PASS", verdict.log[-3000:]
