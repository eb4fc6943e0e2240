"""The host driver, written once against Transport, on Amaranth's simulator and the compiled one.

Until the SoC's engine lands, the driver runs on the stand-in SoC (tests/standin_soc.py), whose fake
engine copies ``count`` words from ``src`` to ``dst`` adding 1 and can be told to fail; the fake
compiled model below places its pseudo-descriptors where the real compiler places programs.
"""

import asyncio
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from contract.config import TINY, SMALL
from firmware import regs
from firmware.driver import Accelerator, AcceleratorError, REG, CSR_BASE, ID_VALUE, RunResult
from firmware.cxxrtl_sim import CxxrtlTransport
from firmware.sim_transport import PySimTransport
from firmware.transport import Transport

from standin_soc import StandInSoC


MEM_WORDS = 1024
# The specification's register offsets (docs/REGISTERS.md), against which the generated map is checked.
_SPEC_OFFSETS = {
    "ID": 0x00, "VERSION": 0x04, "CONFIG0": 0x08, "CONFIG1": 0x0C, "CTRL": 0x10, "STATUS": 0x14,
    "ERROR": 0x18, "PROG_ADDR": 0x1C, "WINDOW_BASE": 0x20, "WINDOW_LIMIT": 0x24, "CYCLES": 0x28,
    "MAC_BUSY": 0x2C, "LAYER_SEL": 0x30, "LAYER_CYCLES": 0x34, "PC": 0x38, "SCRATCH": 0x3C,
}
N_OUT = 6


def run(coro):
    return asyncio.run(coro)


@dataclass
class FakeCompiled:
    """The parts of firmware.compiler.CompiledModel the driver uses."""
    load_wait: int = 40
    image_wait: int = 7
    error: int = 0
    error_index: int = 0
    config: object = TINY
    window_base: int = 0
    window_limit: int = 512
    prog_load_addr: int = 64
    prog_image_addr: int = 96
    input_addr: int = 200
    output_addr: int = 300
    output_words: int = N_OUT
    num_classes: int = N_OUT
    input_shape: tuple = (1, 4, 6)
    memory: np.ndarray = None
    descriptors: list = field(default_factory=list)

    def __post_init__(self):
        mem = np.zeros(self.window_limit - self.window_base, np.uint32)

        def desc(wait):
            return [1 | wait << 4 | self.error << 16 | self.error_index << 24,
                    self.input_addr, self.output_addr, N_OUT, 0, 0, 0, 0]
        mem[self.prog_load_addr:self.prog_load_addr + 8] = desc(self.load_wait)
        mem[self.prog_image_addr:self.prog_image_addr + 8] = desc(self.image_wait)
        self.memory = mem
        self.descriptors = [{"addr": self.prog_load_addr, "note": "load+layer"},
                            {"addr": self.prog_image_addr, "note": "layer"}]

    def prepare_input(self, image):
        image = np.asarray(image, np.uint8)
        assert image.shape == self.input_shape
        return image.reshape(-1).view("<u4").tolist()

    def decode_logits(self, words):
        assert len(words) == N_OUT
        return [int(w) - 2**32 if w >= 2**31 else int(w) for w in words]


def expected_logits(image):
    return [(int(w) + 1) & 0xFFFF_FFFF for w in np.asarray(image, np.uint8).reshape(-1).view("<u4")]


@pytest.fixture(scope="module")
def cxx_lib():
    return CxxrtlTransport(StandInSoC(MEM_WORDS), quiet=True)


@pytest.fixture(params=["pysim", "cxxrtl"])
def new_transport(request, cxx_lib):
    """A factory of fresh transports (a new pysim, or the compiled one reset)."""
    def make():
        if request.param == "pysim":
            return PySimTransport(StandInSoC(MEM_WORDS))
        cxx_lib.sim.reset()
        return cxx_lib
    return make


@pytest.fixture
def transport(new_transport):
    return new_transport()


def test_register_offsets_match_the_specification():
    # The driver takes offsets from firmware/regs.py; they must be the documented ones.
    assert {k: regs.REGISTERS[k] for k in _SPEC_OFFSETS} == _SPEC_OFFSETS
    assert CSR_BASE == 0x1000_0000 and REG.STATUS == 0x1000_0005 and ID_VALUE == 0x5045_4131


def test_identify(transport):
    info = run(Accelerator(transport).identify())
    assert info.isa_version == 1 and info.id == ID_VALUE
    assert info.config == {"p_o": TINY.p_o, "p_i": TINY.p_i, "a_planes": TINY.a_planes,
                           "n_code_banks": TINY.n_code_banks, "acc_bits": TINY.acc_bits,
                           "res_bits": TINY.res_bits, "emb_channels": TINY.emb_channels,
                           "mem_words": MEM_WORDS}


class FakeBus(Transport):
    """A register file answering reads with fixed values (for identification failures)."""
    def __init__(self, values):
        self.values = values

    async def write_words(self, addr, words):
        pass

    async def read_words(self, addr, count):
        return [self.values.get(addr + i, 0) for i in range(count)]

    async def wait_irq(self, timeout_cycles):
        return False

    async def close(self):
        pass


def test_identify_rejects_wrong_device_and_isa():
    with pytest.raises(AcceleratorError, match="ID register reads 0xdeadbeef"):
        run(Accelerator(FakeBus({REG.ID: 0xDEADBEEF})).identify())
    with pytest.raises(AcceleratorError, match="ISA version 2"):
        run(Accelerator(FakeBus({REG.ID: ID_VALUE, REG.VERSION: 2 << 16 | 1})).identify())


def test_load_rejects_other_configuration(transport):
    acc = Accelerator(transport)
    run(acc.identify())
    with pytest.raises(AcceleratorError, match=r"p_o=16 \(hardware 16\)|p_i=16 \(hardware 8\)"):
        run(acc.load(FakeCompiled(config=SMALL)))
    with pytest.raises(AcceleratorError, match="memory image up to word 2048"):
        run(acc.load(FakeCompiled(window_limit=2048)))


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(min_size=24, max_size=24), min_size=3, max_size=3))
def test_runs(new_transport, images):
    transport = new_transport()
    images = [np.frombuffer(b, np.uint8).reshape(1, 4, 6) for b in images]
    compiled = FakeCompiled()
    acc = Accelerator(transport)

    async def go():
        await acc.identify()
        await acc.load(compiled)
        return [await acc.run_image(images[0], compiled),
                await acc.run_image(images[1], compiled),
                await acc.run_image(images[2], compiled, reload_params=True)]
    results = run(go())
    for img, r in zip(images, results):
        assert isinstance(r, RunResult) and r.error is None
        assert r.logits_int == FakeCompiled().decode_logits(expected_logits(img))
        assert r.mac_busy == N_OUT
    # The first run and a reload run the parameter-loading program, the others the image program:
    # the stand-in's LAYER_CYCLES(i) reads wait + i, and CYCLES grows with the wait.
    assert [r.layer_cycles for r in results] == [[40], [7], [40]]
    assert results[0].cycles - results[1].cycles == 40 - 7
    assert results[2].cycles == results[0].cycles


def test_error_names_code_and_descriptor(transport):
    acc = Accelerator(transport)
    compiled = FakeCompiled(error=5, error_index=0)
    with pytest.raises(AcceleratorError) as info:
        run(acc.run_image(np.zeros((1, 4, 6), np.uint8), compiled))
    msg = str(info.value)
    assert "\n" not in msg
    assert "error BAD_DESCRIPTOR (5)" in msg and "descriptor 0 (LOAD load+layer)" in msg
    assert "status 0x6(done|error)" in msg
    assert info.value.code == 5 and info.value.descriptor == 0


def test_window_error(transport):
    acc = Accelerator(transport)
    compiled = FakeCompiled(window_base=0, window_limit=512)
    run(acc.load(compiled))
    run(transport.write_words(REG.WINDOW_BASE, [80]))      # excludes the load program at 64
    with pytest.raises(AcceleratorError, match=r"error WINDOW \(2\), descriptor 0"):
        run(acc.run_image(np.zeros((1, 4, 6), np.uint8), compiled))


def test_timeout_never_hangs(transport):
    acc = Accelerator(transport)
    compiled = FakeCompiled(load_wait=4000)
    with pytest.raises(AcceleratorError, match=r"timeout: no interrupt within 100 cycles: "
                                               r"status 0x1\(busy\)"):
        run(acc.run_image(np.zeros((1, 4, 6), np.uint8), compiled, timeout_cycles=100))


# The command line (firmware/run.py, firmware/session.py): failures are one line on stderr and a
# nonzero exit.

def _cli(capsys, *argv):
    from firmware import run as cli
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_missing_model(capsys, tmp_path):
    code, out, err = _cli(capsys, "--model", str(tmp_path / "nope.npz"))
    assert code == 1 and err.count("\n") == 1 and "nope.npz: no such model file" in err


def test_cli_unknown_config(capsys):
    code, out, err = _cli(capsys, "--config", "huge")
    assert code == 1 and err.startswith("error: unknown configuration 'huge' (one of default") and "tiny" in err and err.count("\n") == 1


def test_cli_bad_deploy_file(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    code, out, err = _cli(capsys, "--model", str(bad))
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1


def test_cli_image_file_conversion(tmp_path, capsys):
    from PIL import Image
    from firmware.session import load_image_file as _load_image_file, SessionError as RunError
    path = tmp_path / "x.png"
    Image.fromarray(np.arange(40 * 30, dtype=np.uint32).reshape(30, 40).astype(np.uint8)
                    ).convert("RGB").save(path)
    img = _load_image_file(path, (1, 28, 28))
    assert img.shape == (1, 28, 28) and img.dtype == np.uint8
    assert "converted RGB -> L, 40x30 -> 28x28" in capsys.readouterr().err
    (tmp_path / "t.png").write_text("text")
    with pytest.raises(RunError, match="not a readable image"):
        _load_image_file(tmp_path / "t.png", (1, 28, 28))
    with pytest.raises(RunError, match="no such file"):
        _load_image_file(tmp_path / "missing.png", (1, 28, 28))


# The driver on the real SoC (TINY, compiled simulator) -------------------------------------------

def _tiny_workload(seed=1):
    from firmware.compiler import compile_model
    from model.random_deploy import random_deploy
    d = random_deploy(seed, channels=1, height=8, width=8, num_classes=4, max_convs=2,
                       chan_choices=(8, 16))
    images = np.random.default_rng(seed).integers(0, 256, size=(3, 1, 8, 8), dtype=np.uint8)
    return d, compile_model(d, TINY), images


@pytest.fixture(scope="module")
def soc():
    from accel.soc import SoC
    return CxxrtlTransport(SoC(TINY), quiet=True)


def test_soc_runs_match_golden(soc):
    from model import golden
    soc.sim.reset()
    deploy, compiled, images = _tiny_workload()
    ref = golden.run(deploy, images, keep_tensors=False).logits_int.tolist()
    acc = Accelerator(soc)

    async def go():
        info = await acc.identify()
        assert info.config["p_o"] == TINY.p_o and info.config["mem_words"] == TINY.mem_words
        await acc.load(compiled)
        first = await acc.run_image(images[0], compiled)
        second = await acc.run_image(images[1], compiled)
        again = await acc.run_image(images[2], compiled, reload_params=True)
        return first, second, again
    first, second, again = run(go())
    assert [first.logits_int, second.logits_int, again.logits_int] == ref
    n_all = len(compiled.descriptors)
    n_image = sum(1 for d in compiled.descriptors if d["addr"] >= compiled.prog_image_addr)
    assert len(first.layer_cycles) == len(again.layer_cycles) == n_all - 1        # END excluded
    assert len(second.layer_cycles) == n_image - 1
    assert second.cycles < first.cycles
    assert 0 < second.mac_busy <= second.cycles
    # Per-descriptor cycles account for (nearly) the whole run.
    assert sum(second.layer_cycles) <= second.cycles <= sum(second.layer_cycles) + 8 * n_image


def test_soc_bad_opcode_names_descriptor(soc):
    from contract import isa
    soc.sim.reset()
    deploy, compiled, images = _tiny_workload()
    acc = Accelerator(soc)
    run(acc.load(compiled))
    # Corrupt the second descriptor of the image program: opcode 9 does not exist.
    addr = compiled.prog_image_addr + isa.DESCRIPTOR_WORDS
    word0 = run(soc.read_words(addr, 1))[0]
    run(acc.run_image(images[0], compiled))                 # parameters loaded; now the image program
    run(soc.write_words(addr, [(word0 & ~0xF) | 9]))
    with pytest.raises(AcceleratorError) as info:
        run(acc.run_image(images[1], compiled))
    msg = str(info.value)
    assert "error BAD_OPCODE (1), descriptor 1" in msg and "status 0x6(done|error)" in msg
    # Repaired, the next run works again.
    run(soc.write_words(addr, [word0]))
    assert run(acc.run_image(images[1], compiled)).error is None


def test_soc_window_error(soc):
    soc.sim.reset()
    deploy, compiled, images = _tiny_workload()
    acc = Accelerator(soc)
    run(acc.load(compiled))
    run(soc.write_words(REG.WINDOW_BASE, [compiled.prog_load_addr + 8]))
    with pytest.raises(AcceleratorError, match=r"error WINDOW \(2\), descriptor 0 "):
        run(acc.run_image(images[0], compiled))


def test_soc_timeout_aborts_and_recovers(soc):
    from model import golden
    soc.sim.reset()
    deploy, compiled, images = _tiny_workload()
    acc = Accelerator(soc)
    # The descriptor named is the one running when the driver read PC, a few bus transfers after
    # the 50 cycles (which one depends on the bus latency): one of the first LOADs, named as in
    # the compiled program.
    with pytest.raises(AcceleratorError, match=r"timeout: no interrupt within 50 cycles: "
                                               r"status 0x1\(busy\), error OK \(0\), "
                                               r"descriptor \d+ \(LOAD \w+\) ") as info:
        run(acc.run_image(images[0], compiled, timeout_cycles=50))
    index = info.value.descriptor
    assert index < 4
    assert f"descriptor {index} (LOAD {compiled.descriptors[index]['note']}) " in str(info.value)
    # The driver aborted the run: the accelerator is idle again and the next run is correct.
    status = run(soc.read_words(REG.STATUS, 1))[0]
    assert not status & 1
    r = run(acc.run_image(images[0], compiled, reload_params=True))
    assert r.logits_int == golden.run(deploy, images[:1], keep_tensors=False).logits_int[0].tolist()


def test_cli_unknown_board(capsys):
    code, out, err = _cli(capsys, "--board", "nosuchboard")
    assert code == 1 and err.startswith("error: unknown board 'nosuchboard'") and err.count("\n") == 1


def test_constructor_checks_its_budgets():
    bus = FakeBus({})
    assert Accelerator(bus, timeout_cycles=np.int64(100)).timeout_cycles == 100
    with pytest.raises(TypeError, match="timeout_cycles must be an integer"):
        Accelerator(bus, timeout_cycles=1.5)
    with pytest.raises(ValueError, match="poll_cycles must be at least 1, not 0"):
        Accelerator(bus, poll_cycles=0)
    with pytest.raises(ValueError, match="recover_resets must be at least 0, not -1"):
        Accelerator(bus, recover_resets=-1)
