"""Formal proof: the DMA stays inside its main-memory window and its local buffers, in every step.

For any command the DMA accepts of up to ``MAX_ROWS`` rows (every other field free at its full
width: any kind, 32-bit main-memory address, 16-bit count and stride, 24-bit local address), any
window (free; assumed stable while the DMA is busy, as the CSR block holds it during a run) and
any answers from the target (``ack`` or ``err`` at any time, or never), from reset:

1. every bus request (``stb``) addresses a word inside ``[window_base, window_limit)``;
2. every local write (``w_en``) addresses a lane inside an existing buffer (id below
   ``BUF_CODE_BANK0 + n_code_banks``, lane below the buffer's depth times its lanes per word);
3. every local read (``r_en``) addresses a lane inside an existing buffer that is not write-only
   (weights, thresholds and the embedding table are never read back).

The proof is unbounded (k-induction, ``mode prove``): the properties are strengthened with an
inductive invariant over the DMA's registers (see :class:`WindowHarness`), so that any ``DEPTH``
steps in which everything holds are followed by one in which it holds too. Why ``MAX_ROWS``: the
walk adds the stride once per row, while the check multiplies it by ``rows - 1`` (and ``rows``
by ``count``); the invariant that ties the two, ``row start = mem_addr + rows done * stride``,
is a multiplication identity in the induction step, which a bit-level solver cannot prove for
16-bit factors (boolector did not show ``(d + 1) * c == d * c + c`` for a 16-bit ``d`` and a
6-bit ``c`` in 60 s; 4-bit ``c``: 1 s). With few rows the products are sums of shifted copies of
the other factor, which it proves (rows up to 4: about a minute of CPU; up to 8: unfinished
after 217 s of solver CPU).

Mutants (bounded checks of the same harness and assumptions, without the invariant, whose own
assertions would make every step of a bounded check a proof): the bus address one word further
on, and the local write address one lane further on, each rejected by the solver with a trace
from reset; the first also fails the unbounded proof's induction step. Covers (likewise): a
main-memory write at the window's last word, and a local write at the last lane of a buffer.
"""

import pytest
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Fragment, Module, Mux, Signal
from amaranth.utils import bits_for

from contract.config import LOCAL_LANE_BITS, MICRO, WRITE_ONLY_BUFFERS
from accel.dma import DMA
from accel.dma_command import DmaKind
from accel.localbus import split_addr

from symbiyosys import check, free_ports, require_sby, reset_then_run
from protocol_properties import assume_wishbone_target


MAX_ROWS = 4
DEPTH = 1               # k of the induction (and the steps of its base case): the invariant is 1-inductive
MUTANT_DEPTH = 14       # a bounded check long enough for a transfer: reset, 5 check cycles, a beat
COVER_DEPTH = 16
MUTANTS = ("bus_address_past_window", "local_write_past_buffer")


class _DrivenSignals(dict):
    """``{name: Signal}`` of the signals a fragment's own statements drive; a name that two of
    them share cannot be looked up (the invariant must not name the wrong register)."""

    def __init__(self, fragment):
        super().__init__()
        self._shared = set()
        for statements in fragment.statements.values():
            for statement in statements:
                for signal in statement._lhs_signals():
                    if self.setdefault(signal.name, signal) is not signal:
                        self._shared.add(signal.name)

    def __getitem__(self, name):
        if name in self._shared:
            raise LookupError(f"two driven signals are named {name}")
        return super().__getitem__(name)


def _state_value(state, name):
    """The encoding of FSM state ``name`` in the state signal (from its decoder's ``NAME/value``)."""
    for value in range(1 << len(state)):
        try:
            decoded = state.decoder(value)
        except KeyError:
            continue
        if decoded == f"{name}/{value}":
            return value
    raise LookupError(f"no FSM state {name}")


class WindowHarness(Elaboratable):
    """The DMA with free command, window and target; with ``mutant``, a broken copy of its
    addresses is checked instead.

    The DMA is elaborated here (not by the harness' caller) so that the invariant can name its
    registers and those of its submodules: the command, the FSM state, the check's products and
    sums, the span walker's position, the read-ahead's and the local writes' counts.
    """

    def __init__(self, *, mutant=None, invariant=True):
        if mutant not in (None, *MUTANTS):
            raise ValueError(f"unknown mutant {mutant!r}")
        self.unit = DMA(MICRO)
        self._mutant = mutant
        self._with_invariant = invariant

    def elaborate(self, platform):
        m = Module()
        dma = self.unit
        fragment = Fragment.get(dma, platform)
        m.submodules.dma = fragment
        past_valid = reset_then_run(m)
        assume_wishbone_target(m, dma.bus)

        with m.If(dma.cmd.valid):
            m.d.comb += Assume(dma.cmd.payload.rows <= MAX_ROWS)
        window = [dma.window_base, dma.window_limit]
        previous = [Signal.like(w, name=f"previous_{w.name}", reset_less=True) for w in window]
        m.d.sync += [p.eq(w) for p, w in zip(previous, window)]
        with m.If(past_valid & dma.busy):
            m.d.comb += [Assume(w == p) for w, p in zip(window, previous)]

        if self._with_invariant:
            self._invariant(m, fragment)

        bus_adr = dma.bus.adr
        local_addr = dma.local.addr
        if self._mutant == "bus_address_past_window":
            bus_adr = bus_adr + 1
        if self._mutant == "local_write_past_buffer":
            local_addr = local_addr + dma.local.w_en

        with m.If(dma.bus.stb):
            m.d.comb += Assert((bus_adr >= dma.window_base) & (bus_adr < dma.window_limit),
                               "bus request inside the window")

        buffer, lane = split_addr(local_addr)
        writable = Signal()
        readable = Signal()
        last_lane = Signal()
        with m.Switch(buffer):
            for buffer_id, lanes in dma.buffer_lanes().items():
                with m.Case(buffer_id):
                    m.d.comb += [writable.eq(lane < lanes), last_lane.eq(lane == lanes - 1)]
                    if buffer_id not in WRITE_ONLY_BUFFERS:
                        m.d.comb += readable.eq(lane < lanes)
        with m.If(dma.local.w_en):
            m.d.comb += Assert(writable, "local write inside a buffer")
        with m.If(dma.local.r_en):
            m.d.comb += Assert(readable, "local read inside a readable buffer")

        m.d.comb += [
            Cover(dma.bus.stb & dma.bus.we & dma.bus.ack & (bus_adr == dma.window_limit - 1),
                  "write at the window's last word"),
            Cover(dma.local.w_en & last_lane, "local write at a buffer's last lane"),
        ]
        return m

    def _invariant(self, m, fragment):
        """Assertions of what holds in every reachable state, strong enough to carry themselves
        and the properties from one step to the next (the induction's unreachable starting
        states are ruled out by them): per FSM state, the check's registers as functions of the
        latched command; the walk's position, words and rows left; the words answered and
        written; the read-ahead's words left."""
        dma = self.unit
        units = {name: (sub.origins[0], _DrivenSignals(sub)) for sub, name, _ in fragment.subfragments}
        check, check_registers = units["check"]
        walker, walker_registers = units["walker"]
        read_ahead, read_ahead_registers = units["read_ahead"]
        registers = _DrivenSignals(fragment)

        command = check.command         # the DMA's command register, as the check sees it
        state = registers["fsm_state"]
        in_state = {name: state == _state_value(state, name)
                    for name in ("IDLE", "CHECK_PRODUCTS", "CHECK_SUMS", "CHECK_COMPARE", "DECIDE",
                                 "TRANSFER", "DRAIN")}
        rows, count, stride = command.rows, command.count, command.mem_stride
        lane_start = command.local_addr
        is_load = command.kind == DmaKind.LOAD
        is_store = command.kind == DmaKind.STORE
        is_stream = command.kind == DmaKind.STREAM
        write_en, write_addr = registers["write_en"], registers["write_addr"]
        ack_left, ack_last = registers["ack_left"], registers["ack_last"]

        # Rows the walk has not finished (a ghost register of the harness).
        rows_left = Signal(range(MAX_ROWS + 1))
        with m.If(walker.start):
            m.d.sync += rows_left.eq(rows)
        with m.Elif(walker.step & walker_registers["last_column"]):
            m.d.sync += rows_left.eq(rows_left - 1)

        def times(factor, value):
            """``factor * value`` for a factor of at most ``MAX_ROWS`` (a sum of shifted copies)."""
            result = 0
            for k in range(MAX_ROWS + 1):
                result = (factor == k).replicate(len(value) + bits_for(MAX_ROWS)) & (value * k) | result
            return result

        # The command is one of those assumed, and the state one of the FSM's.
        m.d.comb += [Assert(rows <= MAX_ROWS, "inv_rows"),
                     Assert(sum(in_state.values()) == 1, "inv_state")]

        # The check's registers agree with the command once their stage has run.
        after_products = in_state["CHECK_SUMS"] | in_state["CHECK_COMPARE"] | in_state["DECIDE"] | \
            in_state["TRANSFER"] | in_state["DRAIN"]
        after_sums = after_products & ~in_state["CHECK_SUMS"]
        after_compare = after_sums & ~in_state["CHECK_COMPARE"]
        with m.If(after_products):
            m.d.comb += [
                Assert(check.total == times(rows, count), "inv_total"),
                Assert(check_registers["rows_minus_1"] == (rows - 1)[:16], "inv_rows_minus_1"),
                Assert(check.count_minus_2 == (count - 2)[:16], "inv_count_minus_2"),
                Assert(check.count_is_1 == (count == 1), "inv_count_is_1"),
            ]
        with m.If(after_sums):
            m.d.comb += [
                # rows 0 is checked too (and refused in DECIDE): rows - 1 is then 0xFFFF
                Assert(check_registers["span"] ==
                       Mux(rows == 0, (stride * 0xFFFF)[:32], times(rows - 1, stride)), "inv_span"),
                Assert(check_registers["lane_end"] == lane_start[:LOCAL_LANE_BITS] + check.total, "inv_lane_end"),
            ]
        with m.If(after_compare):
            m.d.comb += [
                Assert(check_registers["mem_end"] ==
                       (command.mem_addr + check_registers["span"] + count)[:34], "inv_mem_end"),
                Assert(check.local_ok == (check_registers["lane_end"] <= check_registers["size"]),
                       "inv_local_ok"),
            ]

        # A transfer runs (and a LOAD's last local write comes) only for a command that passed.
        last_write = in_state["IDLE"] & write_en
        passed = in_state["TRANSFER"] | in_state["DRAIN"] | last_write
        with m.If(passed):
            m.d.comb += [
                Assert((command.kind != 3) & (count != 0) & (rows != 0), "inv_passed_fields"),
                Assert(is_stream | check.local_ok, "inv_passed_local"),
            ]
        # (The window may change in the idle cycle of a LOAD's last local write.)
        with m.If(in_state["TRANSFER"] | in_state["DRAIN"]):
            m.d.comb += Assert(check.window_ok, "inv_passed_window")
        m.d.comb += [
            Assert(~in_state["DRAIN"] | is_stream, "inv_drain_streams"),
            Assert(~dma.bus.stb | in_state["TRANSFER"], "inv_requests_in_transfer"),
            Assert(~write_en | (is_load & (in_state["TRANSFER"] | in_state["IDLE"])),
                   "inv_writes_in_transfer"),
        ]

        # The walk: its position after the rows done and the columns of this row, its words left.
        walking = in_state["TRANSFER"] | (in_state["DECIDE"] & (count != 0) & (rows != 0))
        column = walker_registers["column"]
        row_start = walker_registers["row_start"]
        rows_done = (rows - rows_left)[:len(rows_left)]
        with m.If(walking):
            m.d.comb += [
                Assert(rows_left <= rows, "inv_rows_left"),
                Assert(column < count, "inv_column"),
                Assert(walker_registers["last_column"] == (column == count - 1), "inv_last_column"),
                Assert(walker.more == (walker_registers["words_left"] != 0), "inv_more"),
                Assert(walker.more == (rows_left != 0), "inv_more_rows"),
                Assert(walker_registers["words_left"] ==
                       times(rows_left, count) - column, "inv_words_left"),
                Assert(row_start == command.mem_addr + times(rows_done, stride), "inv_row_start"),
                Assert(walker.addr == row_start + column, "inv_addr"),
                Assert((rows_left != 0) | (column == 0), "inv_column_at_end"),
            ]
        # A request on the bus is one the walk issued.
        with m.If(dma.bus.stb):
            m.d.comb += Assert((dma.bus.adr >= command.mem_addr) &
                               (dma.bus.adr < check_registers["mem_end"]), "inv_request_in_span")

        # Words issued and words answered, and a LOAD's local writes behind the answers.
        with m.If(walking):
            m.d.comb += [
                Assert(ack_left == walker_registers["words_left"] + dma.bus.stb, "inv_ack_left"),
                Assert(ack_last == (ack_left == 1), "inv_ack_last"),
            ]
        with m.If((walking & is_load) | last_write):
            m.d.comb += [
                Assert(write_addr + write_en + ack_left == lane_start + check.total, "inv_write_count"),
                Assert(write_addr >= lane_start, "inv_write_start"),
            ]
        with m.If(last_write):
            m.d.comb += Assert(ack_left == 0, "inv_last_write")

        # A STORE's local reads: ahead of the bus, never past the block.
        ahead_left = read_ahead_registers["words_left"]
        with m.If(walking):
            m.d.comb += Assert(read_ahead_registers["more"] == (ahead_left != 0), "inv_ahead_more")
            with m.If(is_store):
                m.d.comb += [
                    Assert(read_ahead.addr + ahead_left == lane_start + check.total, "inv_ahead_count"),
                    Assert(read_ahead.addr >= lane_start, "inv_ahead_start"),
                ]
            with m.Else():
                m.d.comb += Assert(ahead_left == 0, "inv_ahead_idle")


def _run(tmp_path, *, mode, depth, mutant=None):
    require_sby()
    harness = WindowHarness(mutant=mutant, invariant=mode == "prove")
    return check(f"dma_window_{mutant or 'proof'}_{mode}", harness, free_ports(harness.unit),
                 mode=mode, depth=depth, workdir=tmp_path)


def test_dma_stays_in_window_and_buffers(tmp_path):
    verdict = _run(tmp_path, mode="prove", depth=DEPTH)
    assert verdict.status == "PASS", verdict.log[-3000:]


@pytest.mark.parametrize("mutant", MUTANTS)
def test_dma_window_mutant_is_rejected(mutant, tmp_path):
    verdict = _run(tmp_path, mode="bmc", depth=MUTANT_DEPTH, mutant=mutant)
    assert verdict.status == "FAIL" and verdict.failed_step is not None, verdict.log[-3000:]


def test_dma_window_induction_rejects_mutant(tmp_path):
    """The unbounded proof itself fails on the broken bus address (its induction step, at depth 1
    shorter than any transfer, finds the request one word past the window)."""
    verdict = _run(tmp_path, mode="prove", depth=DEPTH, mutant="bus_address_past_window")
    assert verdict.status != "PASS" and "returned FAIL for induction" in verdict.log, verdict.log[-3000:]


def test_dma_window_edges_are_reachable(tmp_path):
    verdict = _run(tmp_path, mode="cover", depth=COVER_DEPTH)
    assert verdict.status == "PASS", verdict.log[-3000:]
    assert len(verdict.cover_steps) == 2, verdict.cover_steps
