"""Formal proof: the SoC's interconnect never hands an answer to a request it does not belong to.

Wishbone B4 lets an initiator end a bus cycle by negating ``cyc`` (or ``stb``) before its answer.
Ours do: the sequencer when its run fails during a descriptor prefetch (the watchdog, a DMA
fault) or is aborted, the DMA when the units are reset, the UART bridge after its bus time-out.
The answer to such an abandoned request can still come from the target. This proof shows that the
SoC's ``Arbiter`` (3 initiators, as in ``accel/soc.py``) followed by its ``RegisterSlice`` drops
it: from reset, with every initiator free but for the classic rules (``stb`` only with ``cyc``;
a request not answered is presented again unchanged or withdrawn) and the target behind the slice
free but for answering only a request, never with both ``ack`` and ``err``:

1. an answer (``ack`` or ``err``) reaches initiator ``i`` only in the cycle after the target
   answered a transfer that carried ``i``'s request, and only if ``i`` presented that request,
   unchanged, in every cycle from the one it was taken up to the target's answer: never another
   initiator, never a later request of ``i`` after a withdrawal, even one to the same address;
2. the answer is the target's (``ack`` or ``err`` as given, the read data with ``ack``), and an
   initiator that kept its request up does receive it;
3. towards the target, the slice's request is held unchanged until it is answered (the slice
   never abandons a transfer itself).

The slice decides from registers, so in the cycle an initiator withdraws, the answer to the
request it has just withdrawn may still be presented to that same initiator (B4: an initiator
qualifies ``ack``/``err`` with its own request; ours do). Point 1 allows exactly that and nothing
more.

Mutant: a slice that does not see withdrawals (its ``cyc``/``stb`` input held high while a
transfer is in flight) must break point 1. Covers: an answer that arrives after its request was
withdrawn, while a request (of any initiator) is up (the case this proof is about), and an answer
delivered after wait states.
"""

import pytest
from amaranth.hdl import Array, Assert, Assume, Cat, Cover, Elaboratable, Module, Mux, Signal
from amaranth.lib import wiring

from accel.wishbone import Arbiter, RegisterSlice

from symbiyosys import check, require_sby, reset_then_run
from protocol_properties import assume_wishbone_target


INITIATORS = 3          # host, sequencer, DMA
ADDR_WIDTH = 4          # the rules do not depend on the widths: narrow ones keep the proof small
DATA_WIDTH = 8
DEPTH = 16


class InterconnectHarness(Elaboratable):
    """Arbiter and register slice between free initiators and a free target."""

    def __init__(self, *, mutant=False):
        self.arbiter = Arbiter(INITIATORS, addr_width=ADDR_WIDTH, data_width=DATA_WIDTH)
        self.bus_slice = RegisterSlice(addr_width=ADDR_WIDTH, data_width=DATA_WIDTH)
        self._mutant = mutant

    def ports(self):
        requests = [getattr(initiator, name) for initiator in self.arbiter.initiators
                    for name in ("cyc", "stb", "we", "sel", "adr", "dat_w")]
        down = self.bus_slice.down
        return requests + [down.dat_r, down.ack, down.err]

    def elaborate(self, platform):
        m = Module()
        m.submodules.arbiter = arbiter = self.arbiter
        m.submodules.bus_slice = bus_slice = self.bus_slice
        past_valid = reset_then_run(m)
        up, down = bus_slice.up, bus_slice.down
        if self._mutant:
            # The slice believes the request is still up while its transfer is in flight.
            bus = arbiter.bus
            m.d.comb += [
                up.cyc.eq(bus.cyc | down.stb), up.stb.eq(bus.stb | down.stb), up.we.eq(bus.we),
                up.sel.eq(bus.sel), up.adr.eq(bus.adr), up.dat_w.eq(bus.dat_w),
                bus.dat_r.eq(up.dat_r), bus.ack.eq(up.ack), bus.err.eq(up.err),
            ]
        else:
            wiring.connect(m, arbiter.bus, bus_slice.up)
        self._initiators_keep_the_rules(m, past_valid, arbiter)
        assume_wishbone_target(m, down, name="target")
        self._answers_belong_to_their_request(m, past_valid, arbiter, down)
        self._slice_holds_its_request(m, past_valid, down)
        return m

    @staticmethod
    def _request(bus):
        return Cat(bus.adr, bus.we, bus.sel, bus.dat_w)

    def _initiators_keep_the_rules(self, m, past_valid, arbiter):
        for i, initiator in enumerate(arbiter.initiators):
            request = self._request(initiator)
            waiting = Signal(name=f"initiator{i}_waiting")
            held = Signal(len(request), name=f"initiator{i}_held")
            m.d.sync += [waiting.eq(initiator.stb & ~initiator.ack & ~initiator.err),
                         held.eq(request)]
            m.d.comb += Assume(~initiator.stb | initiator.cyc, f"initiator{i}_stb_within_cyc")
            with m.If(past_valid & waiting & initiator.stb):
                m.d.comb += Assume(initiator.cyc & (request == held), f"initiator{i}_request_held")

    def _answers_belong_to_their_request(self, m, past_valid, arbiter, down):
        initiators = arbiter.initiators
        down_request = self._request(down)
        # Whether initiator i presents the request the target sees, now and in the previous cycle.
        presents = Array(Signal(name=f"initiator{i}_presents") for i in range(INITIATORS))
        presented = Array(Signal(name=f"initiator{i}_presented") for i in range(INITIATORS))
        for i, initiator in enumerate(initiators):
            previous_request = Signal(len(down_request), name=f"initiator{i}_previous_request")
            previous_requesting = Signal(name=f"initiator{i}_previous_requesting")
            m.d.sync += [previous_request.eq(self._request(initiator)),
                         previous_requesting.eq(initiator.cyc & initiator.stb)]
            m.d.comb += [
                presents[i].eq(initiator.cyc & initiator.stb & (self._request(initiator) == down_request)),
                presented[i].eq(previous_requesting & (previous_request == down_request)),
            ]

        # The transfer towards the target: taken in the cycle before down.stb rises, from the
        # initiator granted then; faithful while that initiator has presented it in every cycle.
        previous_down_stb = Signal()
        previous_grant = Signal.like(arbiter.grant)
        m.d.sync += [previous_down_stb.eq(down.stb), previous_grant.eq(arbiter.grant)]
        new_transfer = Signal()
        m.d.comb += new_transfer.eq(down.stb & ~previous_down_stb)
        owner = Signal.like(arbiter.grant)
        owner_register = Signal.like(arbiter.grant)
        faithful = Signal()
        faithful_register = Signal()
        m.d.comb += [
            owner.eq(Mux(new_transfer, previous_grant, owner_register)),
            faithful.eq(Mux(new_transfer, presented[previous_grant], faithful_register)
                        & presents[owner]),
        ]
        m.d.sync += [owner_register.eq(owner), faithful_register.eq(faithful)]
        with m.If(past_valid & new_transfer):
            m.d.comb += Assert(presented[previous_grant], "a transfer carries the granted request")

        # The target's answer, one cycle back.
        target_answer = Signal()
        m.d.comb += target_answer.eq(down.cyc & down.stb & (down.ack | down.err))
        answered = Signal()
        answered_owner = Signal.like(owner)
        answered_faithful = Signal()
        answered_ack = Signal()
        answered_data = Signal.like(down.dat_r)
        m.d.sync += [answered.eq(target_answer), answered_owner.eq(owner),
                     answered_faithful.eq(faithful), answered_ack.eq(down.ack),
                     answered_data.eq(down.dat_r)]

        receives = Array(Signal(name=f"initiator{i}_receives") for i in range(INITIATORS))
        for i, initiator in enumerate(initiators):
            m.d.comb += receives[i].eq(initiator.ack | initiator.err)
            with m.If(past_valid & receives[i]):
                m.d.comb += [
                    Assert(answered & (answered_owner == i) & answered_faithful,
                           f"initiator{i}_answer_is_its_own"),
                    Assert(initiator.ack == answered_ack, f"initiator{i}_answer_kind"),
                    Assert(initiator.err == ~answered_ack, f"initiator{i}_answer_kind_err"),
                ]
                with m.If(initiator.ack):
                    m.d.comb += Assert(initiator.dat_r == answered_data, f"initiator{i}_read_data")
        with m.If(past_valid & answered & answered_faithful):
            m.d.comb += Assert(receives[answered_owner], "a kept request receives its answer")

        # The case this proof is about, and an ordinary answer after wait states.
        request_up = Signal()
        m.d.comb += request_up.eq(Cat(
            initiators[i].cyc & initiators[i].stb for i in range(INITIATORS)).any())
        long_wait = Signal(2)
        with m.If(initiators[1].stb & ~receives[1]):
            m.d.sync += long_wait.eq(Mux(long_wait == 3, 3, long_wait + 1))
        with m.Else():
            m.d.sync += long_wait.eq(0)
        m.d.comb += [
            Cover(past_valid & target_answer & ~faithful & request_up,
                  "abandoned answer while a request is up"),
            Cover(past_valid & receives[1] & (long_wait == 3), "answer after wait states"),
        ]

    def _slice_holds_its_request(self, m, past_valid, down):
        waiting = Signal()
        held = Signal(len(self._request(down)))
        m.d.sync += [waiting.eq(down.stb & ~down.ack & ~down.err), held.eq(self._request(down))]
        with m.If(past_valid & waiting):
            m.d.comb += Assert(down.cyc & down.stb & (self._request(down) == held),
                               "slice_request_held")


def _run(tmp_path, *, mode, mutant=False):
    require_sby()
    harness = InterconnectHarness(mutant=mutant)
    return check(f"interconnect{'_mutant' if mutant else ''}", harness, harness.ports(),
                 mode=mode, depth=DEPTH, workdir=tmp_path)


def test_answers_reach_only_their_request(tmp_path):
    verdict = _run(tmp_path, mode="bmc")
    assert verdict.status == "PASS", verdict.log[-3000:]


def test_slice_blind_to_withdrawals_is_rejected(tmp_path):
    verdict = _run(tmp_path, mode="bmc", mutant=True)
    assert verdict.status == "FAIL" and verdict.failed_step is not None, verdict.log[-3000:]


def test_abandoned_answers_are_reachable(tmp_path):
    verdict = _run(tmp_path, mode="cover")
    assert verdict.status == "PASS", verdict.log[-3000:]
    assert len(verdict.cover_steps) == 2, verdict.cover_steps
