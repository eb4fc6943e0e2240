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
from simulated_serial import DeviceModelSerial, FrameBridgeSerial


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


def test_reset_after_needs_a_resettable_transport():
    from firmware.transport import TransportError
    from standin_soc import StandInSoC
    with pytest.raises(TransportError, match="resettable=True"):
        PySimTransport(StandInSoC(1024)).reset_after(5)
    with pytest.raises(ValueError, match="non-negative integer, not -1"):
        PySimTransport(StandInSoC(1024), resettable=True).reset_after(-1)


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


def test_run_batches_reports_the_resets_it_recovered(workload):
    """``firmware.session.run_batches`` (what ``firmware.run`` uses) keeps each result's count."""
    from firmware.session import run_batches
    compiled, images, expected = workload
    board = PySimTransport(micro_soc(), resettable=True)
    batches = run_batches(ResetOnStart(board, RESET_AFTER_START, times=1), compiled, images, 1)
    assert board.resets == 1
    assert [b.board_resets for b in batches] == [1, 0]
    assert [b.logits_int[0] for b in batches] == expected


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


# Behind the bridge: SerialTransport -> bytes -> FrameBridge -> SoC, one reset for both ----------

class BridgeBoard(FrameBridgeSerial):
    """A serial port whose far end is a board in Amaranth's simulator: ``FrameBridge`` (the UART
    bridge without its 8N1 line, tested in tests/test_uart_bridge.py) on the host port of the
    MICRO SoC, both in one ``sync`` domain with a reset, as on the board (``accel.build.BoardTop``).

    Reads run the simulation until the bytes are there or the line has been quiet for longer than
    the bridge's idle timeout. ``reset_when_busy(n)`` resets the board once the accelerator has
    been busy for ``n`` cycles; ``reset_at_byte(direction, n)`` once ``n`` more bytes have crossed
    the line in ``direction`` (``"to_device"``: the bridge has taken them; ``"to_host"``: it has
    sent them).
    """

    def __init__(self):
        from accel.uart_bridge import FrameBridge
        self.idle_timeout = 40
        super().__init__(quiet_limit=3 * self.idle_timeout + 200)
        self.bridge = FrameBridge(max_words=32, timeout_cycles=self.idle_timeout, bus_timeout=400,
                                  clk_freq=1000)
        self.soc = micro_soc()
        m = Module()
        m.domains.sync = self.domain = ClockDomain("sync")
        m.submodules.bridge = self.bridge
        m.submodules.soc = self.soc
        wiring.connect(m, self.bridge.bus, self.soc.host)
        self.resets = 0
        self._busy_trigger = None
        self._byte_trigger = None
        self.sim = Simulator(m)
        self.sim.add_clock(1e-6)
        self.sim.add_testbench(self._server)

    def reset_when_busy(self, cycles):
        self._busy_trigger = cycles

    def reset_at_byte(self, direction, count):
        self._byte_trigger = [direction, count]

    def _count_byte(self, direction):
        trigger = self._byte_trigger
        if trigger is not None and trigger[0] == direction:
            trigger[1] -= 1
            return trigger[1] <= 0
        return False

    async def _server(self, ctx):
        while True:
            busy = ctx.get(self.soc.busy)
            taken, sent = await self.pump(ctx)
            reset = False
            if taken:
                reset |= self._count_byte("to_device")
            if sent:
                reset |= self._count_byte("to_host")
            if busy and self._busy_trigger is not None:
                self._busy_trigger -= 1
                reset |= self._busy_trigger <= 0
            if reset:
                self._busy_trigger = self._byte_trigger = None
                ctx.set(self.domain.rst, 1)
                ctx.set(self.bridge.rx.valid, 0)
                await ctx.tick()
                self.cycles += 1
                ctx.set(self.domain.rst, 0)
                self.resets += 1

    def deliver(self, data):
        self.to_device.extend(data)
        quiet = 0
        while self.to_device and quiet < 3 * self.idle_timeout:
            before = len(self.to_device)
            self.advance()
            quiet = 0 if len(self.to_device) != before else quiet + 1
        self.to_device.clear()                 # bytes nobody takes are lost on a real line too


def serial_session(board, workload, arm):
    """Load the model over the serial link, run image 0, ``arm(board)``, run image 1 and image 0
    again; the three results."""
    compiled, images, _ = workload
    # The simulated line answers in simulated time, so generous wall-clock timeouts cost nothing;
    # fmax_hz turns the driver's cycle budgets into wall-clock ones for wait_irq: 1 kHz gives
    # POLL_CYCLES 0.3 s of STATUS polling per slice.
    transport = SerialTransport("sim0", serial=board, timeout=30.0, recovery=0.0, fmax_hz=1000.0)
    acc = Accelerator(transport, poll_cycles=POLL_CYCLES, timeout_cycles=1_000_000)

    async def go():
        await acc.identify()
        await acc.load(compiled)
        first = await acc.run_image(images[0], compiled, profile=False)
        arm(board)
        second = await acc.run_image(images[1], compiled, profile=False)
        third = await acc.run_image(images[0], compiled, profile=False)
        return first, second, third
    return run(go()), transport


@pytest.mark.parametrize("case", ["mid_run", "mid_request", "mid_response"])
def test_reset_behind_the_serial_bridge_is_recovered(workload, case):
    """Mid run: the accelerator stops, STATUS reads idle. Mid request: the reset comes after 6
    bytes of the frame that uploads the image; the bridge restarts hunting for a sync byte in the
    rest of it, the host resends. Mid response: the bridge restarts after 5 bytes of its answer to
    that frame; the host gets a cut-short answer and resends the write. Each time the driver finds
    the mark gone after the run, loads the model again and reruns."""
    board = BridgeBoard()
    arm = {"mid_run": lambda b: b.reset_when_busy(30),
           "mid_request": lambda b: b.reset_at_byte("to_device", 6),
           "mid_response": lambda b: b.reset_at_byte("to_host", 5)}[case]
    results, transport = serial_session(board, workload, arm)
    _, _, expected = workload
    assert board.resets == 1
    assert [r.logits_int for r in results] == [expected[0], expected[1], expected[0]]
    assert [r.board_resets for r in results] == [0, 1, 0]
    if case != "mid_run":
        assert transport.retries_used >= 1      # the damaged frame was sent again


# The command line ------------------------------------------------------------------------------

class AlwaysResetBoard(DeviceModelSerial):
    """A pyserial stand-in for a board that is reset whenever the accelerator is started: the
    bridge protocol's reference model (``contract.protocol.DeviceModel``) in front of main memory
    and the CSR block's registers, which a start sets back to their reset values."""

    def __init__(self, config):
        from contract.registers import constants
        from firmware import regs
        super().__init__(max_words=256, clk_hz=50_000_000)
        self.constants = {regs.REGISTERS[name]: value for name, value in constants(config).items()
                          if name in regs.REGISTERS}
        self.memory = [0] * config.mem_words
        self.registers = {}
        self.starts = 0

    def bus_read(self, addr):
        if addr < len(self.memory):
            return self.memory[addr]
        offset = (addr - REG.ID) * 4
        return self.constants.get(offset, self.registers.get(offset, 0))

    def bus_write(self, addr, value):
        if addr < len(self.memory):
            self.memory[addr] = value
        elif addr == REG.CTRL and value & CTRL_START:
            self.starts += 1
            self.registers.clear()                # the reset: STATUS idle, SCRATCH 0, no window
        else:
            self.registers[(addr - REG.ID) * 4] = value


def test_cli_reports_a_board_reset_in_one_line(workload, tmp_path, monkeypatch, capsys):
    from PIL import Image
    from firmware import run as cli
    from model import deploy as dp
    deploy = random_deploy(3, channels=1, height=4, width=4, num_classes=4, max_convs=1,
                           chan_choices=(8,))
    model = tmp_path / "micro.npz"
    dp.save(model, deploy.header, deploy.arrays)
    files = []
    for i in range(2):
        files.append(tmp_path / f"image{i}.png")
        Image.fromarray(np.full((4, 4), 40 * i, np.uint8)).save(files[-1])
    boards = []

    def open_board(config, backend="auto", *, port=None, **_):
        boards.append(AlwaysResetBoard(config))
        return SerialTransport(port, serial=boards[-1], timeout=0.05, recovery=0.0)
    monkeypatch.setattr(cli, "open_transport", open_board)
    code = cli.main(["--port", "fake0", "--config", "micro", "--model", str(model), "--quiet",
                     *map(str, files)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    # The progress bar is redrawn with carriage returns and erased at the error: what is left on
    # the terminal is the text after the last one.
    assert err.count("\n") == 1 and "Traceback" not in err
    line = err.split("\r")[-1]
    assert line.startswith("error: the board was reset during the run (status 0x0(idle); SCRATCH "
                           "reads 0x0, not the mark ")
    assert line.endswith("(again after the driver loaded the model and reran 1 time)\n")
    assert boards[0].starts == 2                  # the first try and the rerun
