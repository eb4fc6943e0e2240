"""Weights streamed per image, double-buffered and overlapped with compute (async LOADs)."""

import asyncio

import numpy as np
import pytest

from contract import isa
from contract.config import TINY, DEFAULT
from contract.errors import ErrorCode
from firmware import refsim
from firmware.compiler import compile_model, CompileError
from firmware.driver import Accelerator
from firmware.sim_transport import PySimTransport
from model import golden
from model.random_deploy import random_deploy


def _fitting(config, count, **kw):
    found, seed = [], 0
    while len(found) < count:
        dep = random_deploy(seed, max_convs=4, height=6, width=6, **kw)
        try:
            compile_model(dep, config)
            found.append((seed, dep))
        except CompileError:
            pass
        seed += 1
    return found


def _images(dep, n, seed):
    shape = [dep.header["input"][k] for k in ("channels", "height", "width")]
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


@pytest.mark.parametrize("config", [TINY, DEFAULT], ids=["tiny", "default"])
def test_streamed_weights_match_golden_on_the_reference(config):
    for seed, dep in _fitting(config, 6):
        compiled = compile_model(dep, config, stream_weights=True)
        loads = [d for d in compiled.descriptors if d["fields"].get("async_dma")]
        assert loads, "weights are loaded per image"
        assert not any(d["note"] == "weights" for d in compiled.descriptors)
        images = _images(dep, 3, seed)
        logits, _, _ = refsim.run_compiled(compiled, images)
        np.testing.assert_array_equal(logits, golden.run(dep, images, keep_tensors=False).logits_int)


def test_weights_larger_than_the_buffer_are_streamed():
    config = TINY.replace(wbuf_depth=24)
    for seed, dep in _fitting(TINY, 10):
        resident = compile_model(dep, TINY)
        need = sum(p.desc["n_cog"] * p.desc["k"] ** 2 * p.desc["n_cig"]
                   for p in resident.layers if p.desc and p.desc["op"] == isa.Op.CONV)
        if need <= 24:
            continue
        try:
            compiled = compile_model(dep, config)
        except CompileError as e:
            assert "streaming needs each layer within half" in str(e)
            continue
        assert any(d["fields"].get("async_dma") for d in compiled.descriptors)
        images = _images(dep, 2, seed)
        logits, _, _ = refsim.run_compiled(compiled, images)
        np.testing.assert_array_equal(logits, golden.run(dep, images, keep_tensors=False).logits_int)
        return
    pytest.fail("no random model needed streaming")


def _run_program(compiled, mutate):
    """Run the reference on a mutated per-image program; returns the RunResult."""
    sim = refsim.RefSim(compiled.config)
    sim.load_image(compiled)
    for d in compiled.descriptors:
        f = dict(d["fields"])
        mutate(f)
        sim.write(d["addr"], isa.pack(**f))
    return sim.run(compiled.prog_load_addr, compiled.window_base, compiled.window_limit)


def test_reference_catches_a_missing_wait():
    seed, dep = _fitting(TINY, 1)[0]
    compiled = compile_model(dep, TINY, stream_weights=True)
    ok = _run_program(compiled, lambda f: None)
    assert ok.error == ErrorCode.OK
    # Without wait_dma the last conv would read weights that may still be moving.
    bad = _run_program(compiled, lambda f: f.pop("wait_dma", None))
    assert bad.error == ErrorCode.BAD_DESCRIPTOR and "hazard" in bad.message


def test_streamed_weights_on_the_rtl_overlap_with_compute():
    async def main():
        seed, dep = _fitting(TINY, 1, first="embed")[0]
        images = _images(dep, 2, seed)
        expected = golden.run(dep, images, keep_tensors=False).logits_int
        cycles = {}
        for stream in (False, True):
            compiled = compile_model(dep, TINY, stream_weights=stream)
            acc = Accelerator(PySimTransport(TINY))
            await acc.load(compiled)
            for i, image in enumerate(images):
                r = await acc.run_image(image, compiled)
                assert list(r.logits_int) == list(expected[i]), (stream, i)
            cycles[stream] = r.cycles                       # the second image: per-image program
            program = compiled.descriptors
        # Streaming costs less than loading every layer's weights one after the other would:
        # the DMA moves at best one lane per bus transfer (4 cycles behind the SoC's register
        # slice), so a serial load would add this many.
        lanes = sum(d["fields"]["count"] for d in program if d["fields"].get("async_dma"))
        assert cycles[True] < cycles[False] + 4 * lanes
    asyncio.run(main())
