"""Protocol properties shared by the formal proofs: valid/ready streams and classic Wishbone.

Each function adds ``Assert``/``Assume``/``Cover`` statements to a harness module. The values it
checks are passed in (not a port object), so that a test can hand it a deliberately broken copy
of a unit's outputs (a mutant) and show that the solver rejects it.
"""

from amaranth.hdl import Assert, Assume, Cover, Signal, Value


__all__ = ["assert_stream_holds", "assume_wishbone_target", "assert_wishbone_classic",
           "toggle_while_stalled", "drop_strobe_while_waiting", "waiting_cycles"]


def assert_stream_holds(m, past_valid, valid, ready, payload, *, exempt=0, name="stream"):
    """A stalled stream word stays: ``valid & ~ready`` implies ``valid`` and the same payload in
    the next cycle (unless ``exempt`` is high in that next cycle). Covers a word that waits at
    least two cycles and is then taken."""
    payload = Value.cast(payload)
    exempt = Value.cast(exempt).bool()
    stalled = Signal(name=f"{name}_stalled", reset_less=True)
    stalled_twice = Signal(name=f"{name}_stalled_twice", reset_less=True)
    held = Signal(len(payload), name=f"{name}_held", reset_less=True)
    m.d.sync += [stalled.eq(valid & ~ready), stalled_twice.eq(stalled & valid & ~ready),
                 held.eq(payload)]
    with m.If(past_valid & stalled & ~exempt):
        m.d.comb += Assert(valid & (payload == held), f"{name}_holds")
    m.d.comb += Cover(past_valid & stalled_twice & valid & ready, f"{name}_stall_then_transfer")


def toggle_while_stalled(m, valid, ready, payload, *, name="mutant"):
    """Mutant: ``payload`` with bit 0 inverted in every other stalled cycle."""
    payload = Value.cast(payload)
    flip = Signal(name=f"{name}_flip", reset_less=True)
    with m.If(valid & ~ready):
        m.d.sync += flip.eq(~flip)
    return payload ^ flip


def waiting_cycles(m, stb, ack, err, *, width=8, name="bus"):
    """Cycles the current request has been waiting for its answer (0 in its first cycle)."""
    count = Signal(width, name=f"{name}_waited")
    with m.If(stb & ~ack & ~err):
        m.d.sync += count.eq(count + 1)
    with m.Else():
        m.d.sync += count.eq(0)
    return count


def assume_wishbone_target(m, bus, *, answer_within=None, name="bus"):
    """The target side, free but for the protocol: ``ack`` and ``err`` only answer a request
    (``cyc & stb``), never both; with ``answer_within=n`` every request is answered at most ``n``
    cycles after it starts (a target that never answers is then ruled out)."""
    m.d.comb += [
        Assume(~(bus.ack & bus.err), f"{name}_one_answer"),
        Assume(~(bus.ack | bus.err) | (bus.cyc & bus.stb), f"{name}_answers_a_request"),
    ]
    if answer_within is not None:
        waited = waiting_cycles(m, bus.stb & bus.cyc, bus.ack, bus.err, name=f"{name}_target")
        with m.If(bus.cyc & bus.stb & (waited >= answer_within)):
            m.d.comb += Assume(bus.ack | bus.err, f"{name}_answers_in_time")


def assert_wishbone_classic(m, past_valid, *, cyc, stb, we, adr, dat_w, sel, ack, err,
                            may_abandon=0, withdrawal_ends_run=None, name="bus"):
    """Classic Wishbone B4 initiator rules.

    1. ``stb`` only while ``cyc``.
    2. A request not answered in a cycle (``stb & ~ack & ~err``) is presented again in the next
       cycle, unchanged: ``cyc``, ``stb``, ``adr``, ``we``, ``dat_w`` and ``sel`` held, until the
       cycle of its ``ack`` or ``err`` (unless ``may_abandon`` is high in that next cycle: a
       documented time-out or abort). So the answer always belongs to the request on the bus in
       its cycle; in the cycle after an answer a new request may start (classic B4 allows
       back-to-back transfers with ``stb`` kept high), which these rules leave free.

    With ``withdrawal_ends_run``, a request may also be withdrawn (``stb`` low, nothing else
    changed while it is up) when ``withdrawal_ends_run`` holds in the cycle after the
    withdrawal: an initiator that stops a failed run.

    Covers a request answered after at least one wait state, and a back-to-back second request.
    """
    may_abandon = Value.cast(may_abandon).bool()
    waiting = Signal(name=f"{name}_waiting", reset_less=True)
    answered = Signal(name=f"{name}_answered", reset_less=True)
    request = [adr, we, dat_w, sel]
    held = [Signal(len(Value.cast(v)), name=f"{name}_held_{i}", reset_less=True)
            for i, v in enumerate(request)]
    m.d.sync += [waiting.eq(stb & ~ack & ~err), answered.eq(stb & (ack | err))]
    m.d.sync += [h.eq(v) for h, v in zip(held, request)]
    m.d.comb += Assert(~stb | cyc, f"{name}_stb_within_cyc")
    with m.If(past_valid & waiting & ~may_abandon):
        if withdrawal_ends_run is None:
            m.d.comb += Assert(cyc & stb, f"{name}_request_held")
        with m.If(stb):
            for i, (h, v) in enumerate(zip(held, request)):
                m.d.comb += Assert(v == h, f"{name}_request_field{i}_held")
    if withdrawal_ends_run is not None:
        withdrawn = Signal(name=f"{name}_withdrawn", reset_less=True)
        m.d.sync += withdrawn.eq(past_valid & waiting & ~may_abandon & ~stb)
        with m.If(withdrawn):
            m.d.comb += Assert(withdrawal_ends_run, f"{name}_withdrawal_ends_run")
    m.d.comb += [
        Cover(past_valid & waiting & stb & ack, f"{name}_ack_after_wait"),
        Cover(past_valid & answered & stb, f"{name}_back_to_back"),
    ]


def drop_strobe_while_waiting(m, stb, ack, err, *, name="mutant"):
    """Mutant: ``stb`` withdrawn in the second cycle of a request that was not answered."""
    waited = Signal(name=f"{name}_waited", reset_less=True)
    m.d.sync += waited.eq(stb & ~ack & ~err)
    return stb & ~waited
