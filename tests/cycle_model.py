"""Cycle-by-cycle comparison of a unit with a Python model of it, for the units' own tests.

Each cycle the testbench applies one set of inputs, checks the unit's outputs against the model's
(combinational outputs see this cycle's inputs), then clocks both.
"""

from simutil import run


def port(dut, path):
    """The member of ``dut`` at a dotted ``path`` (``"bus.cyc"``)."""
    value = dut
    for name in path.split("."):
        value = getattr(value, name)
    return value


def check_cycles(dut, model, stimulus, outputs, name):
    """Run ``stimulus`` (a list of ``{input path: value}``) on ``dut`` and ``model``.

    ``model.outputs(inputs)`` gives ``{output path: value}`` before the clock edge, for the paths in
    ``outputs``; ``model.step(inputs)`` is the clock edge.
    """
    held = {}

    async def bench(ctx):
        for cycle, inputs in enumerate(stimulus):
            held.update(inputs)
            for path, value in inputs.items():
                ctx.set(port(dut, path), value)
            expected = model.outputs(dict(held))
            for path in outputs:
                got = ctx.get(port(dut, path))
                if hasattr(got, "as_value"):
                    got = ctx.get(port(dut, path).as_value())
                assert got == expected[path], (
                    f"cycle {cycle}: {path} = {got:#x}, the model says {expected[path]:#x} "
                    f"(inputs {held})")
            model.step(dict(held))
            await ctx.tick()

    run(dut, [bench], name)
