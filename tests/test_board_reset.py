"""A board reset in the middle of a session: the host notices and recovers, or says so in one line.

A reset (the board's button, the gateware's reset) restarts the UART bridge, the registers and the
accelerator; block RAM, main memory included, keeps its contents. The driver
(``firmware/driver.py``) writes a mark into SCRATCH when it loads a model and reads it back after
every run and whenever a run stopped without finishing; a reset clears it. The tests assert the
reset on the real SoC (MICRO, Amaranth's simulator):

- with ``PySimTransport(resettable=True)``, in the middle of the parameter-loading program and
  between two runs;
- behind the UART bridge's frame layer (``accel.uart_bridge.FrameBridge``) with
  ``SerialTransport``, in the middle of a run and in the middle of a request frame (the bridge then
  sees the rest of a frame);
- ``python -m firmware.run`` on a board that is reset in every run: one line, exit status 1.
"""

import asyncio
import collections

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from contract.config import MICRO
from firmware.compiler import compile_model
from firmware.driver import Accelerator, BoardResetError, REG, CTRL_START, LOADED_MARK
from firmware.serial_transport import SerialTransport
from firmware.sim_transport import PySimTransport
from firmware.transport import Transport
from model import golden
from model.random_deploy import random_deploy


# The parameter-loading program of this model runs for several hundred cycles: a reset 120 cycles
# after its start lands in the middle of it (checked in the first test).
RESET_AFTER_START = 120
POLL_CYCLES = 300


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def workload():
    deploy = random_deploy(3, channels=1, height=4, width=4, num_classes=4, max_convs=1,
                           chan_choices=(8,))
    compiled = compile_model(deploy, MICRO)
    images = np.random.default_rng(3).integers(0, 256, size=(2, 1, 4, 4), dtype=np.uint8)
    expected = golden.run(deploy, images, keep_tensors=False).logits_int.tolist()
    return compiled, images, expected


class ResetOnStart(Transport):
    """A resettable ``PySimTransport`` whose board is reset ``after`` cycles after each of the
    next ``times`` writes of CTRL.start (the button pressed while the accelerator runs)."""

    def __init__(self, inner, after, times):
        self.inner = inner
        self.after = after
        self.times = times

    async def write_words(self, addr, words):
        words = list(words)
        await self.inner.write_words(addr, words)
        if addr == REG.CTRL and words[0] & CTRL_START and self.times:
            self.times -= 1
            self.inner.reset_after(self.after)

    async def read_words(self, addr, count):
        return await self.inner.read_words(addr, count)

    async def wait_irq(self, timeout_cycles):
        return await self.inner.wait_irq(timeout_cycles)

    async def close(self):
        await self.inner.close()


def micro_soc():
    from accel.soc import SoC
    return SoC(MICRO)


def test_reset_during_the_load_program_is_recovered(workload):
    compiled, images, expected = workload
    board = PySimTransport(micro_soc(), resettable=True)
    transport = ResetOnStart(board, RESET_AFTER_START, times=1)
    acc = Accelerator(transport, poll_cycles=POLL_CYCLES)

    async def go():
        await acc.identify()
        await acc.load(compiled)
        first = await acc.run_image(images[0], compiled, profile=False)
        second = await acc.run_image(images[1], compiled, profile=False)
        return first, second
    first, second = run(go())
    assert board.resets == 1
    # The reset came before the load program could finish: the run that counts is the rerun.
    assert first.cycles > RESET_AFTER_START
    assert first.board_resets == 1 and second.board_resets == 0 and acc.board_resets == 1
    assert [first.logits_int, second.logits_int] == expected
    assert run(board.read_words(REG.SCRATCH, 1)) == [LOADED_MARK]


def test_reset_between_runs_is_recovered(workload):
    """Reset while the host does nothing: the next run starts with the registers at their reset
    values (no window), fails, and the driver finds the mark gone."""
    compiled, images, expected = workload
    board = PySimTransport(micro_soc(), resettable=True)
    acc = Accelerator(board, poll_cycles=POLL_CYCLES)

    async def go():
        await acc.load(compiled)
        first = await acc.run_image(images[0], compiled, profile=False)
        board.reset_after(0)
        second = await acc.run_image(images[1], compiled, profile=False)
        return first, second
    first, second = run(go())
    assert board.resets == 1 and second.board_resets == 1
    assert [first.logits_int, second.logits_int] == expected


def test_reset_reported_in_one_line_without_recovery(workload):
    compiled, images, _ = workload
    board = PySimTransport(micro_soc(), resettable=True)
    acc = Accelerator(ResetOnStart(board, RESET_AFTER_START, times=1), poll_cycles=POLL_CYCLES,
                      recover_resets=0)
    with pytest.raises(BoardResetError) as info:
        run(acc.run_image(images[0], compiled, profile=False))
    message = str(info.value)
    assert "\n" not in message
    assert message == (f"the board was reset during the run (status 0x0(idle); SCRATCH reads 0x0, "
                       f"not the mark {LOADED_MARK:#x} the driver wrote when it loaded the model: "
                       f"the registers restarted)")
    assert info.value.status == 0 and board.resets == 1
