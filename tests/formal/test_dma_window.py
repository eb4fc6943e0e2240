"""Formal proof: the DMA stays inside its main-memory window and its local buffers.

For any command of up to ``MAX_ROWS`` rows of up to ``MAX_COUNT`` words with a main-memory stride
below ``MAX_STRIDE``, any kind and any local address, and any window (free; assumed stable while
the DMA is busy, as the CSR block holds it during a run), with main-memory addresses and the
window limit below ``ADDRESS_LIMIT``, from reset, with a target that acknowledges every request
after one wait state (the answers' timing is free in ``test_wishbone_masters``):

1. every bus request (``stb``) addresses a word inside ``[window_base, window_limit)``;
2. every local write (``w_en``) addresses a lane inside an existing buffer (id below
   ``BUF_CODE_BANK0 + n_code_banks``, lane below the buffer's depth times its lanes per word);
3. every local read (``r_en``) addresses a lane inside an existing buffer that is not write-only
   (weights, thresholds and the embedding table are never read back).

Mutants: the bus address one word further on, and the local write address one lane further on,
each rejected by the solver. Covers: a main-memory write at the window's last word, and a local
write at the last lane of a buffer.
"""

import pytest
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Signal

from contract.config import MICRO, WRITE_ONLY_BUFFERS
from accel.dma import DMA
from accel.localbus import split_addr

from symbiyosys import check, free_ports, require_sby, reset_then_run
from protocol_properties import assume_wishbone_target, waiting_cycles


DEPTH = 20
MAX_ROWS = 2
MAX_STRIDE = 16
MAX_COUNT = 2
ADDRESS_LIMIT = 1 << 12
MUTANTS = ("bus_address_past_window", "local_write_past_buffer")


class WindowHarness(Elaboratable):
    """The DMA with free command, window and target; with ``mutant``, a broken copy of its
    addresses is checked instead."""

    def __init__(self, *, mutant=None):
        if mutant not in (None, *MUTANTS):
            raise ValueError(f"unknown mutant {mutant!r}")
        self.unit = DMA(MICRO)
        self._mutant = mutant

    def elaborate(self, platform):
        m = Module()
        m.submodules.dma = dma = self.unit
        past_valid = reset_then_run(m)
        assume_wishbone_target(m, dma.bus)
        # A target that answers every request with ack after one wait state: the addresses the DMA
        # issues do not depend on when the answers come (test_wishbone_masters lets them come at
        # any time), and with free answers this proof did not reach step 15 in minutes. After an
        # err the DMA issues nothing more (DMA docstring).
        waited = waiting_cycles(m, dma.bus.stb, dma.bus.ack, dma.bus.err, name="target")
        m.d.comb += Assume(~dma.bus.err & (dma.bus.ack == (dma.bus.stb & (waited == 1))))
        # Small commands (addresses and kind free): with free 16-bit fields, the window check's
        # products (rows * count, (rows - 1) * stride) kept the solver busy for minutes; a proof
        # of this depth sees only a few transfers of any command anyway.
        with m.If(dma.cmd.valid):
            m.d.comb += Assume((dma.cmd.payload.rows <= MAX_ROWS) &
                               (dma.cmd.payload.count <= MAX_COUNT) &
                               (dma.cmd.payload.mem_stride < MAX_STRIDE) &
                               (dma.cmd.payload.mem_addr < ADDRESS_LIMIT))
        m.d.comb += Assume(dma.window_limit < ADDRESS_LIMIT)

        window = [dma.window_base, dma.window_limit]
        previous = [Signal.like(w, name=f"previous_{w.name}", reset_less=True) for w in window]
        m.d.sync += [p.eq(w) for p, w in zip(previous, window)]
        with m.If(past_valid & dma.busy):
            m.d.comb += [Assume(w == p) for w, p in zip(window, previous)]

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
        with m.Switch(buffer):
            for buffer_id, lanes in dma.buffer_lanes().items():
                with m.Case(buffer_id):
                    m.d.comb += writable.eq(lane < lanes)
                    if buffer_id not in WRITE_ONLY_BUFFERS:
                        m.d.comb += readable.eq(lane < lanes)
        with m.If(dma.local.w_en):
            m.d.comb += Assert(writable, "local write inside a buffer")
        with m.If(dma.local.r_en):
            m.d.comb += Assert(readable, "local read inside a readable buffer")

        last_lane = Signal()
        with m.Switch(buffer):
            for buffer_id, lanes in dma.buffer_lanes().items():
                with m.Case(buffer_id):
                    m.d.comb += last_lane.eq(lane == lanes - 1)
        m.d.comb += [
            Cover(dma.bus.stb & dma.bus.we & dma.bus.ack & (bus_adr == dma.window_limit - 1),
                  "write at the window's last word"),
            Cover(dma.local.w_en & last_lane, "local write at a buffer's last lane"),
        ]
        return m


def _run(tmp_path, *, mode, mutant=None):
    require_sby()
    harness = WindowHarness(mutant=mutant)
    return check(f"dma_window_{mutant or 'proof'}", harness, free_ports(harness.unit),
                 mode=mode, depth=DEPTH, workdir=tmp_path)


def test_dma_stays_in_window_and_buffers(tmp_path):
    verdict = _run(tmp_path, mode="bmc")
    assert verdict.status == "PASS", verdict.log[-3000:]


@pytest.mark.parametrize("mutant", MUTANTS)
def test_dma_window_mutant_is_rejected(mutant, tmp_path):
    verdict = _run(tmp_path, mode="bmc", mutant=mutant)
    assert verdict.status == "FAIL" and verdict.failed_step is not None, verdict.log[-3000:]


def test_dma_window_edges_are_reachable(tmp_path):
    verdict = _run(tmp_path, mode="cover")
    assert verdict.status == "PASS", verdict.log[-3000:]
    assert len(verdict.cover_steps) == 2, verdict.cover_steps
