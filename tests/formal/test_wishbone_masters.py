"""Formal proof: the Wishbone initiators obey the classic-cycle rules.

For the DMA, the sequencer's descriptor fetch and the UART bridge's protocol engine
(``FrameBridge``, the bridge without its UART, so that a frame fits in the proof's depth), from
reset, with every input free and the target answering (``ack`` or ``err``) at arbitrary times,
assumed only to answer a request and never with both:

1. ``stb`` only while ``cyc``;
2. a request not answered in a cycle is presented again in the next one with ``cyc``, ``stb``,
   ``adr``, ``we``, ``dat_w`` and ``sel`` unchanged, so every answer belongs to the request on the
   bus in its cycle (a new request may follow in the cycle after an answer: classic B4 allows it).

Exceptions are part of the property, each as narrow as the design allows. They are the ends of
a bus cycle by the initiator that Wishbone B4 permits (``cyc`` negated before the answer), and
``test_interconnect.py`` proves that the SoC's arbiter and register slice drop the answer to such
a request rather than hand it to another initiator or a later request: the bridge gives up a
request after ``bus_timeout`` cycles without an answer (exactly then, not earlier); the
sequencer's abort ends its fetch; and the sequencer's watchdog ends a run whose next descriptor's
prefetch waits for an answer that does not come, checked as: the run has ended with ``TIMEOUT``
in the next cycle (waiting on would let a target that never answers hang the sequencer and hold
the bus). Every other input is free, the sequencer's window and program address included: the
run reads them at ``start`` only, so a host writing them during a run withdraws nothing.
Each initiator has a mutant (``stb`` withdrawn in the second cycle of a waiting request) that the
solver must reject, and covers of an answer after a wait state and of back-to-back requests.
"""

import pytest
from amaranth.hdl import Cover, Elaboratable, Module, Signal

from contract.config import MICRO
from contract.errors import ErrorCode
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

    def abandon(unit):
        aborted = Signal()
        m.d.sync += aborted.eq(unit.abort)
        return aborted
    # The watchdog ends a run while the next descriptor's prefetch waits for an answer: the
    # request is withdrawn in the FAIL cycle, and the run has ended with TIMEOUT in the cycle after.
    return sequencer, abandon, (~sequencer.busy & sequencer.error &
                                (sequencer.error_code == ErrorCode.TIMEOUT))


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
