"""End to end on the whole SoC in Amaranth's simulator (TINY configuration): random deploy models
compiled by ``firmware.compiler``, run from one start through the driver, logits equal to the golden
model's bit for bit."""

import asyncio

import numpy as np
import pytest

from contract.config import TINY
from contract.errors import ErrorCode
from firmware.compiler import compile_model, CompileError
from firmware.driver import Accelerator, AcceleratorError
from firmware.sim_transport import PySimTransport
from model import golden
from model.random_deploy import random_deploy


def _models(count, first=None):
    """The first ``count`` random models (seeded) that fit the TINY configuration."""
    found, seed = [], 0
    while len(found) < count:
        dep = random_deploy(seed, max_convs=3, height=6, width=6, first=first)
        try:
            found.append((seed, dep, compile_model(dep, TINY)))
        except CompileError:
            pass
        seed += 1
    return found


@pytest.mark.parametrize("first", ["embed", "raw_input"])
def test_random_models_match_golden(first):
    async def main():
        transport = PySimTransport(TINY)
        acc = Accelerator(transport)
        for seed, dep, compiled in _models(2, first):
            rng = np.random.default_rng(seed)
            shape = [dep.header["input"][k] for k in ("channels", "height", "width")]
            images = rng.integers(0, 256, (2, *shape), dtype=np.uint8)
            expected = golden.run(dep, images, keep_tensors=False).logits_int
            await acc.load(compiled)
            for i, image in enumerate(images):
                result = await acc.run_image(image, compiled)
                assert list(result.logits_int) == list(expected[i]), f"seed {seed} image {i}"
                # The counters come from the hardware: the MAC array did real work, and every
                # descriptor's cycles are recorded.
                assert 0 < result.mac_busy <= result.cycles
                assert sum(result.layer_cycles) <= result.cycles
    asyncio.run(main())


def test_out_of_window_program_reports_error_and_stops():
    async def main():
        seed, dep, compiled = _models(1)[0]
        transport = PySimTransport(TINY)
        acc = Accelerator(transport)
        await acc.load(compiled)
        # Shrink the window below the logits: the STORE must be refused, nothing written there.
        from firmware import regs
        out = compiled.output_addr
        before = await transport.read_words(out, 4)
        await transport.write_words((regs.CSR_BASE + regs.WINDOW_LIMIT) // 4, [out])
        with pytest.raises(AcceleratorError) as info:
            await acc.run_image(np.zeros([dep.header["input"][k] for k in ("channels", "height", "width")],
                                         np.uint8), compiled, reload_params=True)
        assert info.value.code == ErrorCode.WINDOW
        assert await transport.read_words(out, 4) == before
    asyncio.run(main())


def test_every_feature_map_matches_golden():
    """Compiled with dumps, the run STOREs every intermediate map; each equals the golden one."""
    async def main():
        seed, dep, _ = _models(1)[0]
        compiled = compile_model(dep, TINY, dump=True)
        assert compiled.dumps, "the model has feature maps to dump"
        rng = np.random.default_rng(seed)
        image = rng.integers(0, 256, [dep.header["input"][k] for k in ("channels", "height", "width")],
                             dtype=np.uint8)
        expected = golden.run(dep, image[None])
        acc = Accelerator(PySimTransport(TINY))
        await acc.load(compiled)
        result = await acc.run_image(image, compiled)
        assert list(result.logits_int) == list(expected.logits_int[0])
        assert {d[0] for d in compiled.dumps} == set(expected.tensors) - {"image", "logits"}
        for name, addr, words in compiled.dumps:
            got = compiled.decode_dump(name, await acc.transport.read_words(addr, words))
            np.testing.assert_array_equal(got, expected.tensors[name][0], err_msg=name)
    asyncio.run(main())


def test_split_embedding_matches_golden():
    """An embedding of d = 16 codes of 2 bits (32 bits: two table entries per pixel) on the RTL:
    the host sends each pixel twice and the EMBED looks it up in two table channels at once
    (firmware/compiler/table_split.py); logits equal golden's."""
    from test_compiler import resnet_like
    config = TINY.replace(p_i=16)
    deploy = resnet_like(C=1, H=6, W=5, width=16, q=2, d=16, seed=3)
    compiled = compile_model(deploy, config)
    assert compiled.image_repeat == 2
    images = np.random.default_rng(3).integers(0, 256, (2, 1, 6, 5), dtype=np.uint8)
    expected = golden.run(deploy, images, keep_tensors=False).logits_int

    async def main():
        acc = Accelerator(PySimTransport(config))
        await acc.load(compiled)
        return [list((await acc.run_image(image, compiled)).logits_int) for image in images]
    assert asyncio.run(main()) == expected.tolist()
