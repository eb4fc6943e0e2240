"""Batch runs (firmware/compiler/batch.py, Accelerator.run_batch) on the compiled simulator of the
TINY SoC, and the link model (firmware/link_model.py) against the bytes SerialTransport puts on the
line for the same operations."""

import asyncio

import numpy as np
import pytest

from contract import isa, protocol as P
from contract.config import TINY
from firmware import regs
from firmware.compiler import CompileError
from firmware.compiler.batch import batch_layout_words, compile_batch, max_batch_size
from firmware.cxxrtl_sim import CxxrtlTransport
from firmware.driver import Accelerator, BatchResult, REG, ID_VALUE
from firmware.link_model import batch_link, transfer_bytes
from firmware.serial_transport import SerialTransport
from simulated_serial import DeviceModelSerial


def run(coro):
    return asyncio.run(coro)


def _workload(seed=1, n_images=4):
    from firmware.compiler import compile_model
    from model.random_deploy import random_deploy
    d = random_deploy(seed, channels=1, height=8, width=8, num_classes=4, max_convs=2,
                      chan_choices=(8, 16))
    compiled = compile_model(d, TINY)
    images = np.random.default_rng(seed).integers(0, 256, size=(n_images, 1, 8, 8), dtype=np.uint8)
    return d, compiled, images


# The layout, without a simulator ------------------------------------------------------------------

def test_batch_layout_relocates_inputs_and_outputs():
    _, compiled, _ = _workload()
    n = max_batch_size(compiled)
    assert n > 2
    assert batch_layout_words(compiled, n) <= TINY.mem_words < batch_layout_words(compiled, n + 1)
    b = compile_batch(compiled, 3)
    n_image = sum(1 for d in compiled.descriptors if d["addr"] >= compiled.prog_image_addr) - 1
    n_load = len(compiled.descriptors) - n_image - 1
    assert len(b.descriptors) == n_load + 1 + 3 * n_image + 1
    assert b.words.size == len(b.descriptors) * isa.DESCRIPTOR_WORDS
    assert b.load_addr == b.program_addr == compiled.window_limit
    assert b.window_limit <= TINY.mem_words
    # Block j runs slot 2 - j: its input and output descriptors point at that slot's regions.
    first = n_load + 1
    for block in range(3):
        slot = 2 - block
        descs = b.descriptors[first + block * n_image:first + (block + 1) * n_image]
        assert descs[0]["addr"] == b.entry(3 - block)
        addrs = [d["fields"].get("mem_addr") for d in descs]
        assert b.input_slot(slot) in addrs and b.output_slot(slot) in addrs
        assert all(d["note"].startswith(f"image {slot}: ") for d in descs)
    # The load program: the compiled parameter LOADs, then END; the words are the packed fields.
    assert [d["fields"] for d in b.descriptors[:n_load]] == \
        [d["fields"] for d in compiled.descriptors[:n_load]]
    for index in (n_load, -1):
        assert b.descriptors[index]["fields"] == {"op": isa.Op.END}
    assert [int(w) for w in b.words] == [w for d in b.descriptors for w in isa.pack(**d["fields"])]
    assert b.entry(3) == first * isa.DESCRIPTOR_WORDS + b.program_addr
    with pytest.raises(ValueError, match="runs 1 to 3 images"):
        b.entry(4)


def test_too_large_batch_refused_in_one_line():
    _, compiled, _ = _workload()
    n = max_batch_size(compiled)
    with pytest.raises(CompileError) as info:
        compile_batch(compiled, n + 1)
    msg = str(info.value)
    assert "\n" not in msg
    assert (f"a batch of {n + 1} images needs {batch_layout_words(compiled, n + 1)} words of main "
            f"memory") in msg and f"the largest batch that fits is {n}" in msg
    with pytest.raises(ValueError, match="positive integer"):
        compile_batch(compiled, 0)
    assert f"largest batch: {n} images per start" in compiled.summary()


def test_cli_too_large_batch_one_line(capsys):
    # Refused before any simulator starts: the shipped model at the default board's configuration.
    from firmware import run as cli
    code = cli.main(["--images", "2", "--batch", "100000"])
    out, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: a batch of 100000 images needs ") and "largest batch" in err


# Batch runs on the compiled simulator of the TINY SoC -------------------------------------------

@pytest.fixture(scope="module")
def soc():
    from accel.soc import SoC
    return CxxrtlTransport(SoC(TINY), quiet=True)


def test_batches_match_golden(soc):
    from model import golden
    soc.sim.reset()
    deploy, compiled, _ = _workload()
    n = max_batch_size(compiled)
    images = np.random.default_rng(7).integers(0, 256, size=(n, 1, 8, 8), dtype=np.uint8)
    ref = golden.run(deploy, images, keep_tensors=False).logits_int.tolist()
    acc = Accelerator(soc)

    async def go():
        await acc.identify()
        await acc.load(compiled)
        full = await acc.run_batch(images, compiled)            # the load program first
        again = await acc.run_batch(images, compiled)
        short = await acc.run_batch(images[:3], compiled)       # reuses the program: slots 0..2
        one = await acc.run_batch(images[5:6], compiled)
        single = await acc.run_image(images[4], compiled, profile=False)   # today's path
        reload = await acc.run_batch(images[:2], compiled, reload_params=True)
        return full, again, short, one, single, reload
    full, again, short, one, single, reload = run(go())
    assert isinstance(full, BatchResult) and full.images == n
    assert full.logits_int == ref and again.logits_int == ref
    assert short.logits_int == ref[:3] and one.logits_int == ref[5:6]
    assert single.logits_int == ref[4] and reload.logits_int == ref[:2]
    assert full.loaded_params and full.program_uploaded and full.load_cycles > 0
    assert not again.loaded_params and not again.program_uploaded and not short.program_uploaded
    assert reload.loaded_params and not reload.program_uploaded
    assert reload.load_cycles == full.load_cycles
    # CYCLES of a batch: a fixed cost per start plus the same cycles per image.
    per_image = (again.cycles - short.cycles) / (n - 3)
    assert abs((short.cycles - one.cycles) - 2 * per_image) <= 4
    assert 0 <= one.cycles - per_image < 0.1 * per_image
    assert full.cycles == again.cycles                          # the load is a start of its own
    assert 0 < again.mac_busy <= again.cycles
    # A batch of one costs what run_image does (one start of the same descriptors).
    assert abs(one.cycles - single.cycles) <= 4


def test_too_large_batch_refused_by_driver(soc):
    soc.sim.reset()
    _, compiled, images = _workload()
    n = max_batch_size(compiled)
    acc = Accelerator(soc)
    with pytest.raises(CompileError, match=f"largest batch that fits is {n}"):
        run(acc.run_batch([images[0]] * (n + 1), compiled))


# The link model against SerialTransport's bytes --------------------------------------------------

class CountingPort(DeviceModelSerial):
    """A ``DeviceModelSerial`` on a register file in which a start is done at once; it counts the
    bytes each way (``bytes_written``, ``bytes_read``)."""
    def __init__(self, max_words):
        super().__init__(max_words=max_words, clk_hz=50_000_000)
        self.mem = {}
        self.status = 0

    def bus_read(self, addr):
        if addr == REG.STATUS:
            return self.status
        if addr == REG.ID:
            return ID_VALUE
        return self.mem.get(addr, 0)

    def bus_write(self, addr, value):
        if addr == REG.CTRL and value & regs.CTRL_START_MASK:
            self.status = regs.STATUS_DONE_MASK
        self.mem[addr] = value


@pytest.mark.parametrize("max_words", [16, P.DEFAULT_MAX_WORDS])
def test_link_model_counts_the_bytes_on_the_line(max_words):
    _, compiled, _ = _workload()
    port = CountingPort(max_words)
    t = SerialTransport("fake0", baud=1_000_000, serial=port, recovery=0.0, timeout=0.05)
    acc = Accelerator(t)
    images = np.random.default_rng(3).integers(0, 256, size=(5, 1, 8, 8), dtype=np.uint8)
    run(acc.load(compiled))
    run(acc.run_batch(images, compiled))            # writes the programs, runs the load program

    def measured(coro):
        w, r = port.bytes_written, port.bytes_read
        run(coro)
        return port.bytes_written - w, port.bytes_read - r

    for k, coro in ((5, acc.run_batch(images, compiled)), (2, acc.run_batch(images[:2], compiled)),
                    (1, acc.run_image(images[0], compiled, profile=False))):
        model = batch_link(k, compiled.input_words, compiled.output_words, baud=1_000_000,
                           max_words=max_words, polls=1)
        assert measured(coro) == (sum(model.to_device.values()), sum(model.from_device.values()))
    # One frame each way: headers, CRC, and the words.
    assert transfer_bytes(P.CMD_WRITE, 3, max_words) == (P.REQ_HEADER_BYTES + 12 + 2,
                                                         P.RESP_HEADER_BYTES + 2, 1)
    assert transfer_bytes(P.CMD_READ, 2 * max_words + 1, max_words)[2] == 3


def test_link_model_figures():
    # 784-byte images, 16 logits words, 1 Mbaud, 256-word frames: the upload dominates.
    one = batch_link(1, 196, 16, baud=1_000_000, cycles=17_672, clock_hz=76.9e6)
    many = batch_link(26, 196, 16, baud=1_000_000, cycles=26 * 17_672, clock_hz=76.9e6)
    assert one.transactions == 1 + 2 + one.polls + 1 + 1 + 1
    assert many.transactions == 20 + 2 + many.polls + 1 + 2 + 1
    assert many.efficiency > one.efficiency > 0.75
    # Payload alone bounds the link: 848 bytes per image at 100,000 bytes/s.
    assert one.images_per_s_series < many.images_per_s_series < 1e5 / 848
    assert many.images_per_s_overlapped <= 1e5 / 848
    assert many.images_per_s_accelerator == pytest.approx(76.9e6 / 17_672)
    with pytest.raises(ValueError, match="clock_hz"):
        batch_link(1, 196, 16, baud=1_000_000, cycles=10)


def test_batch_error_names_image_and_descriptor(soc):
    from firmware.driver import AcceleratorError
    from model import golden
    soc.sim.reset()
    deploy, compiled, images = _workload(n_images=3)
    acc = Accelerator(soc)
    run(acc.run_batch(images, compiled))                   # parameters loaded, program in place
    batch = acc.batch_program
    n_image = batch.block_words // isa.DESCRIPTOR_WORDS
    addr = batch.blocks_addr + batch.block_words           # block 1: slot 1's first descriptor
    word0 = run(soc.read_words(addr, 1))[0]
    run(soc.write_words(addr, [(word0 & ~0xF) | 9]))       # opcode 9 does not exist
    with pytest.raises(AcceleratorError) as info:
        run(acc.run_batch(images, compiled))
    msg = str(info.value)
    assert "\n" not in msg and f"error BAD_OPCODE (1), descriptor {n_image} (" in msg
    note = next(d["note"] for d in batch.descriptors if d["addr"] == addr)
    assert note.startswith("image 1: ") and f" {note}) of the program at word " in msg
    run(soc.write_words(addr, [word0]))
    assert run(acc.run_batch(images, compiled)).logits_int == \
        golden.run(deploy, images, keep_tensors=False).logits_int.tolist()
