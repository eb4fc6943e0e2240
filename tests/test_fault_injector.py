"""The memory fault injector against a Python model: wait states keep data intact, the n-th transfer
of a run gets ``err`` (and writes nothing), transfers from ``HANG_AT`` on are never answered while
armed, and nothing is injected while disarmed."""

import random

from amaranth.hdl import Module
from amaranth.lib import wiring
from hypothesis import given, settings, strategies as st

from accel import wishbone
from accel.fault_injector import MemoryFaultInjector, FAULT_REGISTERS
from simutil import run


WORDS = 16
MAX_WAIT = 400


class Harness(wiring.Component):
    def __init__(self):
        self.injector = MemoryFaultInjector(4)
        self.sram = wishbone.SRAM(WORDS)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.injector = self.injector
        m.submodules.sram = self.sram
        wiring.connect(m, self.injector.down, self.sram.bus)
        return m


async def transfer(ctx, bus, adr, we=0, dat=0, max_wait=MAX_WAIT):
    """One classic transfer; returns ("ack", data), ("err", None) or ("none", None) after max_wait."""
    ctx.set(bus.cyc, 1)
    ctx.set(bus.stb, 1)
    ctx.set(bus.we, we)
    ctx.set(bus.sel, 0xF)
    ctx.set(bus.adr, adr)
    ctx.set(bus.dat_w, dat)
    result = ("none", None)
    for _ in range(max_wait):
        _, _, ack, err, data = await ctx.tick().sample(bus.ack, bus.err, bus.dat_r)
        if ack or err:
            result = ("ack", data) if ack else ("err", None)
            break
    ctx.set(bus.cyc, 0)
    ctx.set(bus.stb, 0)
    await ctx.tick()
    return result


@settings(max_examples=8, deadline=None)
# The LFSR's longest run of low bytes below 200 is 65 cycles (below 250: 607), so at most 200 every
# transfer is answered within MAX_WAIT cycles and "no answer" means a hang.
@given(seed=st.integers(0, 2**16 - 1), wait=st.sampled_from([0, 100, 200]),
       error_at=st.integers(0, 12), hang_at=st.integers(0, 14))
def test_faults_follow_the_model(seed, wait, error_at, hang_at):
    dut = Harness()
    injector = dut.injector
    rng = random.Random(seed)
    ops = [(rng.randrange(WORDS), rng.random() < 0.5, rng.getrandbits(32)) for _ in range(12)]
    waits = []

    async def bench(ctx):
        memory = [0] * WORDS
        # Disarmed: configured faults do not apply, and the host fills memory.
        for reg, value in (("WAIT", wait | (seed << 16)), ("ERROR_AT", error_at), ("HANG_AT", hang_at)):
            assert (await transfer(ctx, injector.control, FAULT_REGISTERS[reg], 1, value))[0] == "ack"
            assert await transfer(ctx, injector.control, FAULT_REGISTERS[reg]) == (
                "ack", value & 0xFFFF00FF if reg == "WAIT" else value)
        for address in range(WORDS):
            memory[address] = rng.getrandbits(32)
            assert (await transfer(ctx, injector.up, address, 1, memory[address]))[0] == "ack"
        ctx.set(injector.armed, 1)
        await ctx.tick()
        for number, (address, write, data) in enumerate(ops, start=1):
            kind, value = await transfer(ctx, injector.up, address, write, data)
            if hang_at and number >= hang_at:
                assert kind == "none", (number, kind)
                continue
            if number == error_at:
                assert kind == "err", (number, kind)
                continue
            assert kind == "ack", (number, kind)
            if write:
                memory[address] = data
            else:
                assert value == memory[address]
        transfers = await transfer(ctx, injector.control, FAULT_REGISTERS["TRANSFERS"])
        # Transfers abandoned while hanging are counted once each.
        assert transfers == ("ack", len(ops))
        ctx.set(injector.armed, 0)
        await ctx.tick()
        # Disarmed again: everything answers, and memory holds exactly the acknowledged writes.
        for address in range(WORDS):
            assert await transfer(ctx, injector.up, address) == ("ack", memory[address])

    run(dut, [bench], "fault_injector")


def test_wait_states_delay_transfers():
    """With the stall threshold at 200/256 transfers take longer on average, and data is intact."""
    def cycles_for(wait):
        dut = Harness()
        injector = dut.injector
        spent = []

        async def bench(ctx):
            await transfer(ctx, injector.control, FAULT_REGISTERS["WAIT"], 1, wait | (77 << 16))
            ctx.set(injector.armed, 1)
            for address in range(WORDS):
                await transfer(ctx, injector.up, address, 1, address * 3)
            t0 = 0
            for address in range(WORDS):
                ctx.set(injector.up.cyc, 1)
                ctx.set(injector.up.stb, 1)
                ctx.set(injector.up.adr, address)
                ctx.set(injector.up.we, 0)
                n = 0
                while True:
                    _, _, ack, data = await ctx.tick().sample(injector.up.ack, injector.up.dat_r)
                    n += 1
                    if ack:
                        assert data == address * 3
                        break
                ctx.set(injector.up.cyc, 0)
                ctx.set(injector.up.stb, 0)
                await ctx.tick()
                spent.append(n + t0)

        run(dut, [bench], "fault_injector_wait")
        return sum(spent)

    assert cycles_for(200) > 2 * cycles_for(0)
