"""Simulation helpers shared by the engine helper's tests: random-stall stream drivers, VCD gating."""

import os
from contextlib import nullcontext
from pathlib import Path

from amaranth.sim import Simulator


def run(dut, benches, name, *, background=()):
    """Simulate ``dut`` with testbenches ``benches``; a VCD in ``build/vcd/`` only when PEA_VCD=1."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for b in benches:
        sim.add_testbench(b)
    for b in background:
        sim.add_testbench(b, background=True)
    if os.environ.get("PEA_VCD") == "1":
        out = Path(__file__).resolve().parent.parent / "build" / "vcd"
        out.mkdir(parents=True, exist_ok=True)
        ctx = sim.write_vcd(str(out / f"{name}.vcd"))
    else:
        ctx = nullcontext()
    with ctx:
        sim.run()


# A stream that makes no transfer for this many cycles while offered one has stalled for good: the
# helpers fail the test rather than hang it (a unit that emits too few words, or never takes one).
IDLE_LIMIT = 20_000


async def send(ctx, s, items, rng, p_stall, idle_limit=IDLE_LIMIT):
    """Drive ``items`` (ints or dicts) on stream ``s``, with idle cycles of probability ``p_stall``."""
    target = s.payload
    for k, it in enumerate(items):
        while rng.random() < p_stall:
            ctx.set(s.valid, 0)
            await ctx.tick()
        if isinstance(it, int) and hasattr(target, "as_value"):
            ctx.set(target.as_value(), it)
        else:
            ctx.set(target, it)
        ctx.set(s.valid, 1)
        for _ in range(idle_limit):
            _, _, ready = await ctx.tick().sample(s.ready)
            if ready:
                break
        else:
            raise AssertionError(f"stream took {k} of {len(items)} items, then none for "
                                 f"{idle_limit} cycles")
    ctx.set(s.valid, 0)


async def recv(ctx, s, n, rng, p_stall, value=None, idle_limit=IDLE_LIMIT):
    """Collect ``n`` payloads from stream ``s`` with ``ready`` low at probability ``p_stall``.

    ``value`` (default: the payload as an int) is the expression sampled on each transfer. Fails
    when ``idle_limit`` cycles with ``ready`` high pass without a transfer.
    """
    value = s.payload.as_value() if value is None and hasattr(s.payload, "as_value") else \
        (s.payload if value is None else value)
    out = []
    idle = 0
    while len(out) < n:
        r = int(rng.random() >= p_stall)
        ctx.set(s.ready, r)
        _, _, valid, v = await ctx.tick().sample(s.valid, value)
        if r and valid:
            out.append(v)
            idle = 0
        elif r:
            idle += 1
            if idle >= idle_limit:
                raise AssertionError(f"stream gave {len(out)} of {n} items, then none for "
                                     f"{idle_limit} cycles")
    ctx.set(s.ready, 0)
    return out
