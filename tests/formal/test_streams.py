"""Formal proof: every valid/ready stream a unit drives holds its word while stalled.

``valid & ~ready`` in one cycle implies ``valid`` and the same payload in the next, for the DMA's
``pixels``, the MAC array's ``out``, the embedding unit's ``out`` (with ``out_addr``, the word's
bank address) and the sequencer's ``dma_cmd``, from reset, with every input free but for the
contracts the units document. The output unit drives no stream (its ``inp`` is an input; its
writes are enables). The DMA's bus answers are free, ``err`` included (after a bus error the DMA
still delivers the words it read before it). One documented exception is part of the property,
not assumed away: the sequencer withdraws ``dma_cmd`` when aborted (the SoC resets the DMA with
the same strobe). The sequencer's command is checked field by field but for an EMBED's
word count, a product of descriptor fields, for which the descriptor (``desc``) is checked instead
(see ``_sequencer``). Each stream also has a mutant (bit 0 of the payload flipped in every
other stalled cycle) that the solver must reject, and a cover of a word taken after a stall of
two cycles.
"""

import pytest
from amaranth.hdl import Assume, Cat, Elaboratable, Module, Mux, Signal

from contract import isa

from contract.config import MICRO
from accel.dma import DMA
from accel.mac_array import MACArray
from accel.embedding import EmbeddingUnit
from accel.sequencer import Sequencer

from symbiyosys import check, free_ports, require_sby, reset_then_run
from protocol_properties import assert_stream_holds, assume_wishbone_target, toggle_while_stalled


DEPTH = 20


def _dma(m):
    dma = DMA(MICRO)
    assume_wishbone_target(m, dma.bus)
    return dma, [("pixels", dma.pixels.valid, dma.pixels.ready, dma.pixels.payload, 0)]


def _mac_array(m):
    # Two outputs of four lanes: the result FIFO and its handshake are those of any size, and
    # the solver need not carry the adder trees of MICRO's 8x8 array.
    mac = MACArray(2, 4, 2, 8)
    return mac, [("out", mac.out.valid, mac.out.ready, mac.out.payload, 0)]


def _embedding(m):
    unit = EmbeddingUnit(MICRO)
    # The engine's contract: start only when idle, descriptor fields held from start to the end
    # of the run.
    fields = Cat(unit.n_pix, unit.n_words, unit.emb_c, unit.emb_d, unit.emb_q, unit.raw, unit.nsub,
                 unit.win_k, unit.stride, unit.pad, unit.h_in, unit.w_in, unit.h_out, unit.w_out)
    previous = Signal(len(fields), reset_less=True)
    running = Signal()
    m.d.sync += [previous.eq(fields), running.eq(unit.start | unit.busy)]
    m.d.comb += Assume(~unit.start | ~unit.busy)
    with m.If(running):
        m.d.comb += Assume(fields == previous)
    return unit, [("out", unit.out.valid, unit.out.ready, Cat(unit.out.payload, unit.out_addr), 0)]


def _sequencer(m):
    sequencer = Sequencer(MICRO, watchdog_cycles=16)
    assume_wishbone_target(m, sequencer.bus)
    aborted = Signal()
    m.d.sync += aborted.eq(sequencer.abort)
    command = sequencer.dma_cmd.payload
    # An EMBED's word count is a product of descriptor fields (h_in * w_in * emb_c): a proof
    # that two copies of that product agree from step to step is a multiplier equivalence, which
    # boolector did not finish in 600 s at depth 17. The count is checked for LOAD and STORE;
    # for an EMBED the descriptor it is computed from (the public ``desc`` port) is checked
    # instead, held with the command.
    embed = sequencer.desc.op == isa.Op.EMBED
    payload = Cat(command.kind, command.mem_addr, command.local_addr, command.rows,
                  command.mem_stride, Mux(embed, 0, command.count), sequencer.desc.as_value())
    return sequencer, [("dma_cmd", sequencer.dma_cmd.valid, sequencer.dma_cmd.ready, payload,
                        aborted)]


UNITS = {"dma": _dma, "mac_array": _mac_array, "embedding": _embedding, "sequencer": _sequencer}


class StreamHarness(Elaboratable):
    """The unit, its streams checked (or, with ``mutant``, broken copies of them)."""

    def __init__(self, build, *, mutant=False):
        self._mutant = mutant
        self._module = Module()
        self.unit, self._streams = build(self._module)

    def elaborate(self, platform):
        m = self._module
        m.submodules.unit = self.unit
        past_valid = reset_then_run(m)
        for name, valid, ready, payload, exempt in self._streams:
            if self._mutant:
                payload = toggle_while_stalled(m, valid, ready, payload, name=f"{name}_mutant")
            assert_stream_holds(m, past_valid, valid, ready, payload, exempt=exempt, name=name)
        return m


def _run(unit, tmp_path, *, mode, mutant=False):
    require_sby()
    harness = StreamHarness(UNITS[unit], mutant=mutant)
    return check(f"stream_{unit}{'_mutant' if mutant else ''}", harness, free_ports(harness.unit),
                 mode=mode, depth=DEPTH, workdir=tmp_path)


@pytest.mark.parametrize("unit", UNITS)
def test_stream_holds_while_stalled(unit, tmp_path):
    verdict = _run(unit, tmp_path, mode="bmc")
    assert verdict.status == "PASS", verdict.log[-3000:]


@pytest.mark.parametrize("unit", UNITS)
def test_stream_mutant_is_rejected(unit, tmp_path):
    verdict = _run(unit, tmp_path, mode="bmc", mutant=True)
    assert verdict.status == "FAIL" and verdict.failed_step is not None, verdict.log[-3000:]


@pytest.mark.parametrize("unit", UNITS)
def test_stream_stall_is_reachable(unit, tmp_path):
    verdict = _run(unit, tmp_path, mode="cover")
    assert verdict.status == "PASS", verdict.log[-3000:]
