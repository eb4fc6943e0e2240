"""The host driver of the accelerator, written once against ``firmware.transport.Transport``.

``Accelerator(transport)`` identifies the SoC, loads a compiled model's memory image and runs images,
returning the integer logits and the hardware's performance counters. It awaits nothing but the
transport's methods, so it runs on Amaranth's simulator, the compiled simulator and a board alike.

A run never hangs: ``wait_irq`` has a cycle budget, and a timeout or an error reported by the
hardware raises ``AcceleratorError`` with a one-line message naming the status bits, the error code
and the failing descriptor.

A board can be reset in the middle of a session (its reset button, or the gateware's reset): the
bridge, the registers and the accelerator restart, block RAM keeps its contents. ``load`` writes
``LOADED_MARK`` into SCRATCH, which a reset clears; the driver reads it back at the end of every run
and whenever a run stopped without finishing (STATUS idle while a run was expected, an error, a
timeout), and a missing mark raises ``BoardResetError``. ``run_image`` and ``run_batch`` recover
from it: they load the model again (memory image, window, the mark; the parameters are loaded by
the next run) and run the image or batch again, up to ``recover_resets`` times, then raise.
"""

import numbers
import types
from dataclasses import dataclass, field

from contract import isa
from contract.errors import ErrorCode

from . import regs as _regs


__all__ = ["Accelerator", "AcceleratorError", "BoardResetError", "RunResult", "BatchResult",
           "HardwareInfo", "CSR_BASE", "REG", "ID_VALUE", "LOADED_MARK"]


# Register map ----------------------------------------------------------------------------------
# Every offset, mask and constant comes from firmware/regs.py, generated from contract/registers.py.
CSR_BASE = _regs.CSR_BASE // 4      # word address of the CSR block (byte 0x4000_0000)
ID_VALUE = _regs.ID_VALUE           # "PEA1"

# Word addresses of the CSRs on the Wishbone bus: REG.ID, REG.STATUS, ...
REG = types.SimpleNamespace(**{name: CSR_BASE + offset // 4
                               for name, offset in _regs.REGISTERS.items()})

CTRL_START = _regs.CTRL_START_MASK
CTRL_ABORT = _regs.CTRL_ABORT_MASK
STATUS_BUSY = _regs.STATUS_BUSY_MASK
STATUS_DONE = _regs.STATUS_DONE_MASK
STATUS_ERROR = _regs.STATUS_ERROR_MASK
MAX_PROFILED_DESCRIPTORS = _regs.MAX_PROFILED_DESCRIPTORS
# Written to SCRATCH by ``Accelerator.load``. SCRATCH resets to 0, so reading anything else later
# means the board's registers restarted (a reset) since the model was loaded.
LOADED_MARK = 0x5EA1_C0DE
# CYCLES, MAC_BUSY, LAYER_SEL, LAYER_CYCLES, PC, SCRATCH: consecutive, read in one transfer at the
# end of a run (the counters and the mark together).
_COUNTER_WORDS = REG.SCRATCH - REG.CYCLES + 1


def _error_name(code):
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"UNKNOWN_{code}"


def _status_text(status):
    bits = [name for bit, name in ((STATUS_BUSY, "busy"), (STATUS_DONE, "done"),
                                   (STATUS_ERROR, "error")) if status & bit]
    return f"{status:#x}({'|'.join(bits) or 'idle'})"


class AcceleratorError(RuntimeError):
    """A run failed (error reported by the hardware, timeout, or wrong device).

    Members
    -------
    status : int or None
    code : int or None
        ``ERROR.code``.
    descriptor : int or None
        Index of the failing descriptor (``ERROR.pc``) in the program that was run.
    """
    def __init__(self, message, *, status=None, code=None, descriptor=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.descriptor = descriptor


class BoardResetError(AcceleratorError):
    """The board was reset since the model was loaded (SCRATCH lost ``LOADED_MARK``): its registers
    restarted, a run in progress stopped. ``status`` is STATUS when it was noticed."""


@dataclass
class HardwareInfo:
    """What ``Accelerator.identify`` read.

    Members
    -------
    id, version, config0, config1 : int
        Raw register values.
    isa_version : int
    config : dict
        The configuration fields CONFIG0/CONFIG1 report (``AccelConfig`` names, and ``mem_words``).
    """
    id: int
    version: int
    isa_version: int
    config0: int
    config1: int
    config: object = None


@dataclass
class RunResult:
    """Result of one image.

    Members
    -------
    logits_int : list of int
        The integer logits (``compiled.decode_logits``).
    cycles : int
        CYCLES: clock cycles from start to done.
    mac_busy : int
        MAC_BUSY: cycles in which the MAC array accepted a word-set.
    layer_cycles : list of int
        LAYER_CYCLES of each descriptor of the program that ran.
    error : None
        Always ``None`` in a returned result (errors raise ``AcceleratorError``); kept so that
        callers collecting results of many images can record failures in the same structure.
    board_resets : int
        Board resets the driver recovered from (by loading the model again) to get this result.
    """
    logits_int: list
    cycles: int
    mac_busy: int
    layer_cycles: list = field(default_factory=list)
    error: object = None
    board_resets: int = 0


@dataclass
class BatchResult:
    """Result of one batch (``Accelerator.run_batch``).

    Members
    -------
    logits_int : list of list of int
        Per image, its integer logits (``compiled.decode_logits``).
    cycles : int
        CYCLES: clock cycles from start to done, for the whole batch (the parameter load, a start
        of its own, not included).
    mac_busy : int
        MAC_BUSY of the whole batch.
    load_cycles : int or None
        CYCLES of the load program run before this batch, None when the parameters were loaded
        already.
    program_uploaded : bool
        The batch program was written before this batch (a new model or a larger batch).
    board_resets : int
        Board resets the driver recovered from (by loading the model again) to get this result.
    """
    logits_int: list
    cycles: int
    mac_busy: int
    load_cycles: int = None
    program_uploaded: bool = False
    board_resets: int = 0

    @property
    def loaded_params(self):
        """The load program ran before this batch."""
        return self.load_cycles is not None

    @property
    def images(self):
        return len(self.logits_int)


def _field(value, name):
    """Field ``name`` (e.g. ``"VERSION_ISA"``) of a register value, by firmware.regs' masks."""
    mask = getattr(_regs, f"{name}_MASK")
    return (value & mask) >> getattr(_regs, f"{name}_SHIFT")


# Fields of CONFIG0/CONFIG1 that must equal those of the AccelConfig a model was compiled for.
_CONFIG_FIELDS = (("CONFIG0_P_O", "p_o"), ("CONFIG0_P_I", "p_i"), ("CONFIG0_A_PLANES", "a_planes"),
                  ("CONFIG0_N_CODE_BANKS", "n_code_banks"), ("CONFIG0_ACC_BITS", "acc_bits"),
                  ("CONFIG1_RES_BITS", "res_bits"), ("CONFIG1_EMB_CHANNELS", "emb_channels"))


def _decode_config(config0, config1):
    """CONFIG0/CONFIG1 as a dict of ``AccelConfig`` field names (plus ``mem_words``)."""
    out = {}
    for reg_field, name in _CONFIG_FIELDS:
        out[name] = _field(config0 if reg_field.startswith("CONFIG0") else config1, reg_field)
    out["mem_words"] = 1 << _field(config1, "CONFIG1_LOG2_MEM_WORDS")
    return out


def _memory_image(compiled):
    """``(base_word_address, words)`` of a compiled model's memory image."""
    return int(compiled.window_base), [int(w) & 0xFFFF_FFFF for w in compiled.memory]


class Accelerator:
    """Host driver for one accelerator behind a ``Transport``.

    Parameters
    ----------
    transport : Transport
    timeout_cycles : int
        Default cycle budget of one run before ``AcceleratorError`` (the run is then aborted).
    poll_cycles : int
        A run is waited for in slices of this many cycles; after each, STATUS must still say busy,
        otherwise the run stopped without finishing (the board was reset) and the driver stops
        waiting. On a board at 50 MHz the default is a check every 21 ms.
    recover_resets : int
        Times ``run_image`` and ``run_batch`` load the model again and rerun after a board reset
        (``BoardResetError``) before they raise it; 0 reports the first one.

    Members
    -------
    transport : Transport
    info : HardwareInfo or None
        Set by ``identify``.
    board_resets : int
        Board resets recovered from since this driver was created.
    """

    def __init__(self, transport, *, timeout_cycles=50_000_000, poll_cycles=1 << 20,
                 recover_resets=1):
        for name, value, least in (("timeout_cycles", timeout_cycles, 1),
                                   ("poll_cycles", poll_cycles, 1),
                                   ("recover_resets", recover_resets, 0)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if value < least:
                raise ValueError(f"{name} must be at least {least}, not {value}")
        self.transport = transport
        self.timeout_cycles = int(timeout_cycles)
        self.poll_cycles = int(poll_cycles)
        self.recover_resets = int(recover_resets)
        self.board_resets = 0
        self.info = None
        self._compiled = None
        self._image = None
        self._params_loaded = False
        self._batch = None

    @property
    def batch_program(self):
        """The ``firmware.compiler.batch.BatchProgram`` in the device's memory (written by
        ``run_batch``), or None."""
        return self._batch

    async def _read(self, reg):
        return await self.transport.read_word(reg)

    async def _write(self, reg, value):
        await self.transport.write_word(reg, value)

    async def identify(self):
        """Read ID, VERSION, CONFIG0 and CONFIG1; check the ID and the ISA version.

        Returns
        -------
        HardwareInfo
        """
        ident, version, config0, config1 = await self.transport.read_words(REG.ID, 4)
        if ident != ID_VALUE:
            raise AcceleratorError(f"no accelerator: ID register reads {ident:#010x}, "
                                   f"expected {ID_VALUE:#010x}")
        isa_version = _field(version, "VERSION_ISA")
        if isa_version != isa.ISA_VERSION:
            raise AcceleratorError(f"accelerator speaks ISA version {isa_version}, this driver "
                                   f"version {isa.ISA_VERSION}")
        self.info = HardwareInfo(ident, version, isa_version, config0, config1,
                                 _decode_config(config0, config1))
        return self.info

    async def load(self, compiled):
        """Write a compiled model's memory image and set the access window.

        If ``identify`` ran, the model's configuration is checked against the hardware's first. The
        next ``run_image`` runs the parameter-loading program (``prog_load_addr``). SCRATCH is set
        to ``LOADED_MARK``, by which later runs notice a board reset.
        """
        if self.info is not None:
            hw = self.info.config
            mine = dict(compiled.config.as_dict())
            wrong = [f"{k}={mine[k]} (hardware {hw[k]})" for k in hw
                     if k != "mem_words" and mine.get(k) != hw[k]]
            if int(compiled.window_limit) > hw["mem_words"]:
                wrong.append(f"memory image up to word {int(compiled.window_limit)} "
                             f"(hardware has {hw['mem_words']} words)")
            if wrong:
                raise AcceleratorError("model compiled for another configuration: " + ", ".join(wrong))
        # The mark first: a reset at any point after it clears it (and the next run's check sees
        # that), while a reset before it is followed by the whole load.
        await self._write(REG.SCRATCH, LOADED_MARK)
        base, words = _memory_image(compiled)
        await self.transport.write_words(base, words)
        await self.transport.write_words(REG.WINDOW_BASE,
                                         [int(compiled.window_base), int(compiled.window_limit)])
        self._compiled = compiled
        self._image = (base, words)
        self._params_loaded = False
        self._batch = None

    def _program(self, prog_addr):
        """Descriptors (as field dicts) from ``prog_addr`` up to, not including, END, decoded from
        the host's copy of the memory image (or of the batch program)."""
        base, words = self._image
        if self._batch is not None and prog_addr >= self._batch.program_addr:
            base, words = self._batch.program_addr, [int(w) for w in self._batch.words]
        out = []
        addr = prog_addr - base
        while 0 <= addr and addr + isa.DESCRIPTOR_WORDS <= len(words) and len(out) < 65536:
            desc = isa.unpack(words[addr:addr + isa.DESCRIPTOR_WORDS])
            if desc["op"] == isa.Op.END:
                break
            out.append(desc)
            addr += isa.DESCRIPTOR_WORDS
        return out

    def _describe(self, prog_addr, index):
        """`` (OP, note)`` for descriptor ``index`` of the program at ``prog_addr``."""
        program = self._program(prog_addr)
        if index >= len(program):
            return " (END or past the program)"
        text = isa.Op.NAMES.get(program[index]["op"], "?")
        addr = prog_addr + index * isa.DESCRIPTOR_WORDS
        batch_descriptors = self._batch.descriptors if self._batch is not None else ()
        for d in list(getattr(self._compiled, "descriptors", None) or ()) + list(batch_descriptors):
            if isinstance(d, dict) and d.get("addr") == addr and d.get("note"):
                text += f" {d['note']}"
                break
        return f" ({text})"

    async def _fail(self, what, prog_addr, timed_out=False):
        """Read STATUS/ERROR (and PC), abort a run still going, and raise a one-line
        ``AcceleratorError``."""
        status, error = await self.transport.read_words(REG.STATUS, 2)
        code, index = _field(error, "ERROR_CODE"), _field(error, "ERROR_PC")
        if timed_out and not status & STATUS_ERROR:
            index = await self._read(REG.PC) & 0xFFFF     # the descriptor it was stuck in
        if status & STATUS_BUSY:
            await self._write(REG.CTRL, CTRL_ABORT)
        raise AcceleratorError(
            f"{what}: status {_status_text(status)}, error {_error_name(code)} ({code}), "
            f"descriptor {index}{self._describe(prog_addr, index)} of the program at word "
            f"{prog_addr:#x}", status=status, code=code, descriptor=index)

    def _check_mark(self, scratch, status):
        """Raise ``BoardResetError`` unless SCRATCH still holds the mark ``load`` wrote."""
        if scratch != LOADED_MARK:
            raise BoardResetError(
                f"the board was reset during the run (status {_status_text(status)}; SCRATCH "
                f"reads {scratch:#x}, not the mark {LOADED_MARK:#x} the driver wrote when it "
                f"loaded the model: the registers restarted)", status=status)

    async def _check_board(self, status):
        """Read SCRATCH; ``BoardResetError`` (naming ``status``) when the mark is gone."""
        self._check_mark(await self._read(REG.SCRATCH), status)

    async def _wait_for_run(self, timeout):
        """Wait up to ``timeout`` cycles for the interrupt, in slices of ``poll_cycles``; between
        slices, a STATUS without busy ends the wait. ``(finished, status)``: ``status`` is the
        last STATUS read (None when the interrupt came within the first slice)."""
        left = timeout
        status = None
        while left > 0:
            step = min(left, self.poll_cycles)
            if await self.transport.wait_irq(step):
                return True, status
            left -= step
            status = await self._read(REG.STATUS)
            if status & (STATUS_DONE | STATUS_ERROR):
                return True, status          # finished just after the slice ended
            if not status & STATUS_BUSY:
                return False, status         # not running: it stopped without finishing
        return False, status

    async def _run_program(self, prog_addr, timeout):
        """Start the program at ``prog_addr`` and wait for it. Raises ``BoardResetError`` when the
        board was reset, ``AcceleratorError`` on an error or a timeout."""
        await self._write(REG.PROG_ADDR, prog_addr)
        await self._write(REG.CTRL, CTRL_START)
        finished, status = await self._wait_for_run(timeout)
        if not finished:
            if status is not None and not status & STATUS_BUSY:
                await self._check_board(status)
                await self._fail("the run stopped without finishing", prog_addr)
            await self._check_board(await self._read(REG.STATUS))
            await self._fail(f"timeout: no interrupt within {timeout} cycles", prog_addr,
                             timed_out=True)
        status = await self._read(REG.STATUS)
        if status & STATUS_ERROR or not status & STATUS_DONE:
            await self._check_board(status)
            await self._fail("accelerator error", prog_addr)

    async def _counters(self):
        """``(CYCLES, MAC_BUSY)`` of the run that just finished, read with SCRATCH; raises
        ``BoardResetError`` when the mark is gone (a reset since the load: the counters and
        possibly the results are not the run's)."""
        words = await self.transport.read_words(REG.CYCLES, _COUNTER_WORDS)
        if words[-1] != LOADED_MARK:
            self._check_mark(words[-1], await self._read(REG.STATUS))
        return words[0], words[1]

    async def _recovering(self, compiled, attempt):
        """Run ``attempt()``; after a ``BoardResetError``, load ``compiled`` again and retry, up
        to ``recover_resets`` times. Returns ``(result, resets recovered from)``."""
        resets = 0
        while True:
            try:
                return await attempt(), resets
            except BoardResetError as exc:
                if resets >= self.recover_resets:
                    if resets:
                        raise BoardResetError(
                            f"{exc} (again after the driver loaded the model and reran "
                            f"{resets} time{'s' if resets > 1 else ''})", status=exc.status) from None
                    raise
                resets += 1
                self.board_resets += 1
                await self.load(compiled)

    async def run_image(self, image_uint8, compiled=None, *, reload_params=False,
                        timeout_cycles=None, profile=True):
        """Run one image.

        Parameters
        ----------
        image_uint8 : array (C, H, W) of uint8
        compiled : CompiledModel
            The model to run; loaded first if it is not the one last given to ``load``.
        reload_params : bool
            Run the program that also loads weights, thresholds and the embedding table
            (``prog_load_addr``); otherwise that program runs only on the first image after
            ``load`` and later images run ``prog_image_addr``.
        timeout_cycles : int
            Cycle budget (default: the ``timeout_cycles`` given to the constructor).
        profile : bool
            Read LAYER_CYCLES of every descriptor (two bus transfers each; at most the first
            ``MAX_PROFILED_DESCRIPTORS`` are counted by the hardware).

        Returns
        -------
        RunResult

        Raises
        ------
        AcceleratorError
            The run ended with an error or did not finish within ``timeout_cycles``.
        BoardResetError
            The board was reset during the run ``recover_resets + 1`` times.
        """
        if compiled is None:
            compiled = self._compiled
        if compiled is None:
            raise ValueError("run_image: no compiled model loaded")
        if compiled is not self._compiled:
            await self.load(compiled)
        timeout = self.timeout_cycles if timeout_cycles is None else int(timeout_cycles)

        async def attempt():
            return await self._run_image_once(image_uint8, compiled, reload_params, timeout,
                                              profile)
        result, resets = await self._recovering(compiled, attempt)
        result.board_resets = resets
        return result

    async def _run_image_once(self, image_uint8, compiled, reload_params, timeout, profile):
        prepare = getattr(compiled, "prepare_input", None) or compiled.encode_image
        await self.transport.write_words(int(compiled.input_addr),
                                         [int(w) for w in prepare(image_uint8)])
        if reload_params or not self._params_loaded:
            prog_addr = int(compiled.prog_load_addr)
        else:
            prog_addr = int(compiled.prog_image_addr)
        await self._run_program(prog_addr, timeout)
        self._params_loaded = True

        out_words = await self.transport.read_words(int(compiled.output_addr),
                                                    int(compiled.output_words))
        logits = [int(v) for v in compiled.decode_logits(out_words)]
        layer_cycles = []
        if profile:
            n = min(len(self._program(prog_addr)), MAX_PROFILED_DESCRIPTORS)
            for i in range(n):
                await self._write(REG.LAYER_SEL, i)
                layer_cycles.append(await self._read(REG.LAYER_CYCLES))
        cycles, mac_busy = await self._counters()
        return RunResult(logits, cycles, mac_busy, layer_cycles)

    async def run_batch(self, images, compiled=None, *, reload_params=False, timeout_cycles=None):
        """Run a batch of images from one start: one upload of all inputs, one read-back of all
        logits (``firmware.compiler.batch``).

        The load program and the batch program of ``len(images)`` slots are written after the
        model's memory image the first time (and again for a larger batch); a later batch of at
        most as many images reuses them. The load program runs, as a start of its own, before the
        first batch after ``load`` (and before every batch with ``reload_params``).

        Parameters
        ----------
        images : sequence of arrays (C, H, W) of uint8
            At least one; at most ``firmware.compiler.batch.max_batch_size(compiled)``.
        compiled : CompiledModel
            The model to run; loaded first if it is not the one last given to ``load``.
        reload_params : bool
            Load the weights, thresholds and embedding table again before the images.
        timeout_cycles : int
            Cycle budget of the batch, and of the load program (default: the constructor's
            ``timeout_cycles`` per image).

        Returns
        -------
        BatchResult

        Raises
        ------
        AcceleratorError
            The run ended with an error or did not finish within ``timeout_cycles``.
        BoardResetError
            The board was reset during the batch ``recover_resets + 1`` times.
        CompileError
            The batch does not fit main memory (one line naming the words it needs).
        """
        if compiled is None:
            compiled = self._compiled
        if compiled is None:
            raise ValueError("run_batch: no compiled model loaded")
        images = list(images)
        if not images:
            raise ValueError("run_batch: no images")
        if compiled is not self._compiled:
            await self.load(compiled)
        timeout = (self.timeout_cycles * len(images) if timeout_cycles is None
                   else int(timeout_cycles))

        async def attempt():
            return await self._run_batch_once(images, compiled, reload_params, timeout)
        result, resets = await self._recovering(compiled, attempt)
        result.board_resets = resets
        return result

    async def _run_batch_once(self, images, compiled, reload_params, timeout):
        from .compiler.batch import compile_batch
        count = len(images)
        batch = self._batch
        uploaded = False
        if batch is None or count > batch.size:
            batch = compile_batch(compiled, count)
            await self.transport.write_words(batch.program_addr, [int(w) for w in batch.words])
            await self.transport.write_words(REG.WINDOW_LIMIT, [batch.window_limit])
            self._batch = batch
            uploaded = True

        load_cycles = None
        if reload_params or not self._params_loaded:
            await self._run_program(batch.load_addr, timeout)
            (load_cycles,) = await self.transport.read_words(REG.CYCLES, 1)
            self._params_loaded = True
        prepare = getattr(compiled, "prepare_input", None) or compiled.encode_image
        words = []
        for image in images:
            words += [int(w) for w in prepare(image)]
        await self.transport.write_words(batch.input_addr, words)
        await self._run_program(batch.entry(count), timeout)

        out_words = await self.transport.read_words(batch.output_addr, count * batch.output_words)
        n = batch.output_words
        logits = [[int(v) for v in compiled.decode_logits(out_words[i * n:(i + 1) * n])]
                  for i in range(count)]
        cycles, mac_busy = await self._counters()
        return BatchResult(logits, cycles, mac_busy, load_cycles=load_cycles,
                           program_uploaded=uploaded)
