"""The register map, its generated files and the CSRBank Wishbone block."""

import gc
import random
import warnings

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from amaranth.hdl import UnusedElaboratable

from contract import registers as regs
from contract.config import TINY, DEFAULT
from accel.csr import CSRBank
from contract.errors import ErrorCode
from contract.registers import Access, Register, Field, REGISTERS, REG_BY_NAME

from test_wishbone import run, transfer, merge


def test_map_offsets_and_fields():
    expect = {"ID": 0x00, "VERSION": 0x04, "CONFIG0": 0x08, "CONFIG1": 0x0C, "CTRL": 0x10,
              "STATUS": 0x14, "ERROR": 0x18, "PROG_ADDR": 0x1C, "WINDOW_BASE": 0x20,
              "WINDOW_LIMIT": 0x24, "CYCLES": 0x28, "MAC_BUSY": 0x2C, "LAYER_SEL": 0x30,
              "LAYER_CYCLES": 0x34, "PC": 0x38, "SCRATCH": 0x3C}
    assert {r.name: r.offset for r in REGISTERS} == expect
    f = {x.name: (x.lsb, x.width) for x in REG_BY_NAME["CONFIG0"].fields}
    assert f == {"p_o": (0, 8), "p_i": (8, 8), "a_planes": (16, 4), "n_code_banks": (20, 4),
                 "acc_bits": (24, 8)}
    f = {x.name: (x.lsb, x.width) for x in REG_BY_NAME["ERROR"].fields}
    assert f == {"code": (0, 8), "pc": (16, 16)}
    c = regs.constants(DEFAULT)
    assert c["ID"] == 0x50454131
    assert c["CONFIG0"] == 64 | 32 << 8 | 2 << 16 | 3 << 20 | 20 << 24
    assert c["CONFIG1"] == 16 | 14 << 8 | 4 << 16
    assert c["VERSION"] == 1 << 16 | 1


def test_register_validation():
    with pytest.raises(ValueError):
        Register("X", 2, Access.RW, "misaligned")
    with pytest.raises(ValueError):
        Register("X", 0, Access.RW, "overlap", (Field("a", 0, 4, ""), Field("b", 3, 2, "")))
    with pytest.raises(ValueError):
        Register("X", 0, Access.RW, "too wide", (Field("a", 30, 4, ""),))
    # A component refused in __init__ still warns "never used" when collected: collect it here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        for kwargs in ({"registers": [Register("A", 0, Access.RW, ""), Register("B", 0, Access.RW, "")]},
                       {"constants": {"SCRATCH": 1}}, {"addr_width": 3}):
            with pytest.raises(ValueError):
                CSRBank(**kwargs)
        gc.collect()


def test_generated_files_up_to_date():
    for path, text in regs.outputs().items():
        assert path.read_text() == text, f"{path} is stale: run python -m contract.registers"


def test_generated_python_constants():
    ns = {}
    exec(regs.python_module(), ns)
    assert ns["CSR_BASE"] == 0x4000_0000 and ns["WINDOW_LIMIT"] == 0x24
    assert ns["CONFIG0_ACC_BITS_SHIFT"] == 24 and ns["CONFIG0_ACC_BITS_MASK"] == 0xFF00_0000
    assert ns["ERR_BUS_ERROR"] == 3 and ns["ERROR_NAMES"][7] == "TIMEOUT"
    assert ns["field"]("ERROR", "pc", 0x1234_0005) == 0x1234
    assert ns["error_name"](99) == "UNKNOWN(99)"
    for e in ErrorCode:
        assert ns[f"ERR_{e.name}"] == int(e)
    h = regs.c_header()
    assert "#define PEA_STATUS_DONE_MASK 0x00000002u" in h
    assert "#define PEA_ERR_LOCAL_RANGE 4u" in h


def test_port_names():
    bank = CSRBank(constants=regs.constants(TINY))
    bank._MustUse__silence = True
    names = set(bank.signature.members)
    assert names == {"bus", "ctrl_start", "ctrl_abort", "ctrl_wdata", "status_busy", "status_done",
                     "status_error", "error_code", "error_pc", "prog_addr", "window_base",
                     "window_limit", "cycles", "mac_busy", "layer_sel", "layer_cycles", "pc",
                     "scratch"}
    assert bank.bus.adr.shape().width == 4


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_csr_bank(seed):
    rng = random.Random(seed)
    consts = regs.constants(TINY)
    dut = CSRBank(constants=consts, addr_width=6)
    rw = {r.name: 0 for r in REGISTERS if r.access is Access.RW}
    ro_in = {}
    strobes = []

    async def monitor(ctx):
        # every cycle: record W1 strobes with the cycle number
        cyc = 0
        while True:
            *_, s, a, wd = await ctx.tick().sample(dut.ctrl_start, dut.ctrl_abort, dut.ctrl_wdata)
            if s or a:
                strobes.append((cyc, s, a, wd))
            cyc += 1

    async def bench(ctx):
        nonlocal strobes
        # reset values
        for name in rw:
            assert ctx.get(getattr(dut, name.lower())) == 0
        for step in range(150):
            ctx.set(dut.bus.cyc, 0)
            for _ in range(rng.randrange(3)):
                await ctx.tick()
            # drive random RO inputs
            for r in REGISTERS:
                if r.access is Access.RO and r.name not in consts:
                    v = 0
                    for f in r.fields:
                        x = rng.getrandbits(f.width)
                        ctx.set(getattr(dut, r.port_name(f)), x)
                        v |= x << f.lsb
                    ro_in[r.name] = v
            word = rng.choice([r.word for r in REGISTERS] + [16, 17, 40, 63])
            reg = next((r for r in REGISTERS if r.word == word), None)
            we = rng.random() < 0.5
            sel = rng.choice([0xF, 0xF, rng.randrange(16)])
            dat = rng.getrandbits(32)
            strobes = []
            ack, err, dat_r, n = await transfer(ctx, dut.bus, word, we, sel, dat, 3)
            assert ack and not err and n == 2
            if we:
                if reg is not None and reg.access is Access.RW:
                    rw[reg.name] = merge(rw[reg.name], dat, sel)
                    # Out port reflects the write from the ack cycle on
                    assert ctx.get(getattr(dut, reg.name.lower())) == rw[reg.name]
                # strobes: exactly in the ack cycle, for fields written with a 1
                ctx.set(dut.bus.cyc, 0)
                await ctx.tick()
                await ctx.tick()
                masked = merge(0, dat, sel)
                if reg is not None and reg.access is Access.W1:
                    exp_s, exp_a = masked & 1, masked >> 1 & 1
                    if exp_s or exp_a:
                        assert len(strobes) == 1, strobes
                        _, s, a, wd = strobes[0]
                        assert (s, a, wd) == (exp_s, exp_a, dat)
                    else:
                        assert strobes == []
                else:
                    assert strobes == []
            else:
                if reg is None or reg.access is Access.W1:
                    exp = 0
                elif reg.access is Access.RW:
                    exp = rw[reg.name]
                elif reg.name in consts:
                    exp = consts[reg.name]
                else:
                    exp = ro_in[reg.name]
                assert dat_r == exp, f"read {word:#x}"
            for name, v in rw.items():
                assert ctx.get(getattr(dut, name.lower())) == v

    run(dut, [bench], "csr", background=[monitor])
