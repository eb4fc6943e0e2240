"""Faults during a run, on the whole SoC: each ends in its error code, never a hang, memory outside
the program's STORE destinations untouched, and the next valid run on the same accelerator is
bit-exact (no stale state).

The SoC is built with ``fault_injection=True`` (``accel/fault_injector.py``: wait states, an
``err`` on the n-th memory transfer of a run, a memory that stops answering) and a short watchdog.
Most cases run on the compiled simulator; one bus-error case also runs in Amaranth's simulator.
"""

import asyncio
import random

import numpy as np
import pytest

from accel.fault_injector import FAULT_REGISTERS
from accel.soc import SoC, FAULTS_BASE_WORD
from contract import isa
from contract.config import MICRO, TINY
from contract.errors import ErrorCode
from firmware import regs
from firmware.compiler import compile_model
from firmware.cxxrtl_sim import CxxrtlTransport
from firmware.driver import Accelerator, AcceleratorError
from firmware.sim_transport import PySimTransport
from model import golden
from model.random_deploy import random_deploy


WATCHDOG = 20_000


def run(coro):
    return asyncio.run(coro)


def make_soc(config=TINY):
    return SoC(config, fault_injection=True, watchdog_cycles=WATCHDOG)


def make_workload(size=8, max_convs=2, chan_choices=(8, 16), config=TINY):
    deploy = random_deploy(3, channels=1, height=size, width=size, num_classes=4, max_convs=max_convs,
                           chan_choices=chan_choices)
    compiled = compile_model(deploy, config)
    images = np.random.default_rng(3).integers(0, 256, size=(2, 1, size, size), dtype=np.uint8)
    expected = golden.run(deploy, images, keep_tensors=False).logits_int.tolist()
    return compiled, images, expected


@pytest.fixture(scope="module")
def workload():
    return make_workload()


@pytest.fixture(scope="module")
def compiled_sim():
    return CxxrtlTransport(make_soc(), quiet=True)


def store_destinations(compiled):
    """Main-memory words that the model's programs may write (their STORE descriptors)."""
    words = set()
    for descriptor in compiled.descriptors:
        fields = descriptor["fields"]
        if fields["op"] == isa.Op.STORE:
            for row in range(fields["rows"]):
                start = fields["mem_addr"] + row * fields["mem_stride"]
                words.update(range(start, start + fields["count"]))
    return words


async def set_faults(transport, *, wait=0, seed=1, error_at=0, hang_at=0):
    await transport.write_words(FAULTS_BASE_WORD, [wait | (seed << 16), error_at, hang_at])


async def transfers_of_last_run(transport):
    return (await transport.read_words(FAULTS_BASE_WORD + FAULT_REGISTERS["TRANSFERS"], 1))[0]


class Session:
    """One accelerator, the model loaded and its parameters in place."""

    def __init__(self, transport, workload):
        self.transport = transport
        self.compiled, self.images, self.expected = workload
        self.accelerator = Accelerator(transport, timeout_cycles=40 * WATCHDOG)

    async def start(self):
        await set_faults(self.transport)
        await self.accelerator.identify()
        await self.accelerator.load(self.compiled)
        first = await self.accelerator.run_image(self.images[0], self.compiled, profile=False)
        assert first.logits_int == self.expected[0]
        self.load_program_cycles = first.cycles

    async def memory(self):
        return await self.transport.read_words(0, self.compiled.config.mem_words)

    async def faulty_run(self, image_index, **faults):
        """Run one image with ``faults``; returns the error (or None) and the memory words that
        changed outside the STORE destinations."""
        image = self.images[image_index]
        words = [int(w) for w in self.compiled.prepare_input(image)]
        await self.transport.write_words(int(self.compiled.input_addr), words)
        before = await self.memory()
        await set_faults(self.transport, **faults)
        error = None
        try:
            result = await self.accelerator.run_image(image, self.compiled, profile=False,
                                                      reload_params=True)
        except AcceleratorError as exc:
            error = exc
        else:
            assert result.logits_int == self.expected[image_index]
        await set_faults(self.transport)
        after = await self.memory()
        allowed = store_destinations(self.compiled)
        changed = [a for a, (x, y) in enumerate(zip(before, after)) if x != y and a not in allowed]
        return error, changed

    async def clean_runs_are_exact(self):
        for index in range(len(self.images)):
            for reload in (True, False):
                result = await self.accelerator.run_image(self.images[index], self.compiled,
                                                          profile=False, reload_params=reload)
                assert result.logits_int == self.expected[index], (index, reload)


def clean_transfer_count(session):
    async def go():
        await session.start()
        error, changed = await session.faulty_run(1)
        assert error is None and not changed
        return await transfers_of_last_run(session.transport)
    return run(go())


@pytest.mark.parametrize("seed", range(6))
def test_bus_error_at_a_random_transfer(compiled_sim, workload, seed):
    compiled_sim.sim.reset()
    session = Session(compiled_sim, workload)
    total = clean_transfer_count(session)
    assert total > 10
    error_at = random.Random(seed).randint(1, total)

    async def go():
        error, changed = await session.faulty_run(1, error_at=error_at)
        assert error is not None, f"no error reported for err at transfer {error_at} of {total}"
        assert error.code == ErrorCode.BUS_ERROR, (error_at, str(error))
        assert changed == []
        await session.clean_runs_are_exact()
    run(go())


@pytest.mark.parametrize("seed", range(3))
def test_memory_that_never_answers_ends_in_timeout(compiled_sim, workload, seed):
    compiled_sim.sim.reset()
    session = Session(compiled_sim, workload)
    total = clean_transfer_count(session)
    hang_at = random.Random(100 + seed).randint(1, total)

    async def go():
        error, changed = await session.faulty_run(1, hang_at=hang_at)
        assert error is not None and error.code == ErrorCode.TIMEOUT, (hang_at, error)
        assert changed == []
        await session.clean_runs_are_exact()
    run(go())


@pytest.mark.parametrize("wait", [64, 200])
def test_wait_states_change_nothing_but_time(compiled_sim, workload, wait):
    compiled_sim.sim.reset()
    session = Session(compiled_sim, workload)
    clean_transfer_count(session)

    async def go():
        cycles = []
        for faults in ({}, {"wait": wait, "seed": 1234}):
            error, changed = await session.faulty_run(0, **faults)
            assert error is None and changed == []
            cycles.append((await compiled_sim.read_words(regs.CSR_BASE // 4 + regs.CYCLES // 4, 1))[0])
        assert cycles[1] > cycles[0]
    run(go())


def test_abort_in_the_middle_of_a_layer(compiled_sim, workload):
    compiled_sim.sim.reset()
    session = Session(compiled_sim, workload)
    clean_transfer_count(session)
    compiled = session.compiled
    csr = regs.CSR_BASE // 4

    async def go():
        total = session.load_program_cycles
        for stop_after in (total // 10, total // 2, total * 9 // 10):
            await compiled_sim.write_words(int(compiled.input_addr),
                                           [int(w) for w in compiled.prepare_input(session.images[0])])
            before = await session.memory()
            await compiled_sim.write_words(csr + regs.PROG_ADDR // 4, [int(compiled.prog_load_addr)])
            await compiled_sim.write_words(csr + regs.CTRL // 4, [regs.CTRL_START_MASK])
            compiled_sim.sim.run(stop_after)
            status = (await compiled_sim.read_words(csr + regs.STATUS // 4, 1))[0]
            assert status & regs.STATUS_BUSY_MASK, f"finished within {stop_after} cycles"
            await compiled_sim.write_words(csr + regs.CTRL // 4, [regs.CTRL_ABORT_MASK])
            assert await compiled_sim.wait_irq(100)
            status, error = await compiled_sim.read_words(csr + regs.STATUS // 4, 2)
            assert status & regs.STATUS_ERROR_MASK and not status & regs.STATUS_BUSY_MASK
            assert error & regs.ERROR_CODE_MASK == ErrorCode.ABORTED
            after = await session.memory()
            allowed = store_destinations(compiled)
            assert [a for a, (x, y) in enumerate(zip(before, after)) if x != y and a not in allowed] == []
            await session.clean_runs_are_exact()
    run(go())


def corrupted_program_run(session, mutate):
    """Load the model, corrupt its image program with ``mutate(words, compiled)`` and run it."""
    compiled = session.compiled

    async def go():
        await session.start()
        program_words = list(await session.transport.read_words(int(compiled.prog_image_addr), 4096))
        mutate(program_words, compiled)
        await session.transport.write_words(int(compiled.prog_image_addr), program_words)
        error = None
        try:
            await session.accelerator.run_image(session.images[0], compiled, profile=False)
        except AcceleratorError as exc:
            error = exc
        # The model's own memory image back, then valid runs are exact again.
        await session.accelerator.load(compiled)
        await session.clean_runs_are_exact()
        return error
    return run(go())


def descriptor_indices(compiled, op):
    return [(d["addr"] - compiled.prog_image_addr) // isa.DESCRIPTOR_WORDS
            for d in compiled.descriptors
            if d["addr"] >= compiled.prog_image_addr and d["fields"]["op"] == op]


def test_a_program_without_end_is_stopped(compiled_sim, workload):
    """The END descriptor replaced by more LOADs: the chain runs into data and past the window."""
    compiled_sim.sim.reset()

    def mutate(words, compiled):
        end = descriptor_indices(compiled, isa.Op.END)[0] * isa.DESCRIPTOR_WORDS
        load = isa.pack(op=isa.Op.LOAD, mem_addr=0, local_addr=0, count=1, rows=1, mem_stride=1)
        for at in range(end, len(words) - isa.DESCRIPTOR_WORDS + 1, isa.DESCRIPTOR_WORDS):
            words[at:at + isa.DESCRIPTOR_WORDS] = load

    error = corrupted_program_run(Session(compiled_sim, workload), mutate)
    assert error is not None and error.code in (ErrorCode.WINDOW, ErrorCode.BAD_OPCODE,
                                                ErrorCode.BAD_DESCRIPTOR), error


def test_a_layer_larger_than_its_buffers_is_rejected(compiled_sim, workload):
    compiled_sim.sim.reset()

    def mutate(words, compiled):
        index = descriptor_indices(compiled, isa.Op.CONV)[0] * isa.DESCRIPTOR_WORDS
        fields = isa.unpack(words[index:index + isa.DESCRIPTOR_WORDS])
        fields.update(h_in=1023, w_in=1023, h_out=1023, w_out=1023)
        words[index:index + isa.DESCRIPTOR_WORDS] = isa.pack(**fields)

    error = corrupted_program_run(Session(compiled_sim, workload), mutate)
    assert error is not None and error.code == ErrorCode.BAD_DESCRIPTOR, error


def test_bus_error_in_amaranths_simulator():
    """The same fault handling in Amaranth's own simulator (no compiled model of the design), on a
    smaller network: this simulator runs a few thousand cycles a second."""
    transport = PySimTransport(make_soc(MICRO), backdoor=False)
    session = Session(transport, make_workload(size=4, max_convs=1, chan_choices=(8,), config=MICRO))

    async def go():
        # One full run only (this simulator runs a few thousand cycles a second): the faulty run
        # ends at its fifth memory transfer, then a clean run loads everything again.
        await set_faults(transport)
        await session.accelerator.identify()
        await session.accelerator.load(session.compiled)
        error, changed = await session.faulty_run(1, error_at=5)
        assert error is not None and error.code == ErrorCode.BUS_ERROR, error
        assert changed == []
        result = await session.accelerator.run_image(session.images[1], session.compiled,
                                                     profile=False, reload_params=True)
        assert result.logits_int == session.expected[1]
        await transport.close()
    run(go())
