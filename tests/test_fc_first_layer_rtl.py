"""An imported network with a fully connected first layer, end to end on the RTL.

A small TFC-like network (2-bit input quantizer on a 10x10 crop, FC 100 -> 16 with batch norm
and a signed 2-bit activation, FC 16 -> 12 with an unsigned one, FC head 12 -> 4 with batch norm)
is built and exported with Brevitas here, imported, compiled for TINY (the first FC runs as a 1x1
conv over the 100 codes the host writes) and run through the driver on the compiled simulator of
the SoC (``CxxrtlTransport``) and on the reference simulator: integer logits == golden's ==
qonnx's executor's on the exported graph (its float logits mapped back through the head's affine).
"""

import asyncio
import os
import warnings

import numpy as np
import pytest

import brevitas  # noqa: F401  (builds the network under test)
import qonnx  # noqa: F401
import torch

import brevitas.nn as qnn  # noqa: E402
from brevitas.export import export_qonnx  # noqa: E402
from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant  # noqa: E402

from bench.model_zoo import BatchedExecutor, executor_integer_logits  # noqa: E402
from contract.config import TINY  # noqa: E402
from firmware.compiler import compile_model  # noqa: E402
from firmware.refsim import run_compiled  # noqa: E402
from model import golden  # noqa: E402
from model.import_qonnx import import_qonnx  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "model", "fixtures", "fmnist_test256.npz")
SIDE = 10
N_RTL = 4
N_REF = 32


class SmallFC(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(bit_width=2)
        self.fc1 = qnn.QuantLinear(SIDE * SIDE, 16, bias=False, weight_quant=CommonWeightQuant,
                                   weight_bit_width=1)
        self.bn1 = torch.nn.BatchNorm1d(16)
        self.act1 = qnn.QuantIdentity(act_quant=CommonActQuant, bit_width=2)
        self.fc2 = qnn.QuantLinear(16, 12, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1)
        self.bn2 = torch.nn.BatchNorm1d(12)
        self.act2 = qnn.QuantReLU(bit_width=2)
        self.fc3 = qnn.QuantLinear(12, 4, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=1)
        self.bn3 = torch.nn.BatchNorm1d(4)

    def forward(self, x):
        x = self.quant_in(x).view(x.shape[0], -1)
        x = self.act1(self.bn1(self.fc1(x)))
        x = self.act2(self.bn2(self.fc2(x)))
        return self.bn3(self.fc3(x))


def _randomised(seed=3):
    net = SmallFC()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, qnn.QuantLinear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen))
                fan_in = module.weight.shape[1]
            elif isinstance(module, torch.nn.BatchNorm1d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * fan_in ** 0.5 * 0.3)
                module.running_var.copy_((torch.rand(n, generator=gen) + 0.5) * fan_in)
                module.weight.copy_(torch.randn(n, generator=gen))
                module.bias.copy_(torch.randn(n, generator=gen) * 0.5)
    return net.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("fc") / "small_fc.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(_randomised(), torch.rand((1, 1, SIDE, SIDE)), export_path=path)
    deploy = import_qonnx(path, input_scale=1 / 255)
    with np.load(FIXTURE) as f:
        x = f["images"][:N_REF]
    x = x[:, None] if x.ndim == 3 else x
    lo = (28 - SIDE) // 2
    images = np.ascontiguousarray(x[:, :, lo:lo + SIDE, lo:lo + SIDE])
    ref = golden.run(deploy, images)
    executor = BatchedExecutor(path, batch=N_REF)
    ints = executor_integer_logits(deploy, executor(images, 1 / 255))
    return deploy, images, ref, ints


def test_import_gives_a_fully_connected_first_layer(exported):
    deploy, images, ref, ints = exported
    fc = deploy.header["layers"][1]
    assert fc["kind"] == "conv" and fc["k"] == SIDE and fc["pad"] == 0
    np.testing.assert_array_equal(ints, ref.logits_int)          # golden == qonnx's executor
    assert len(set(ref.predictions.tolist())) > 1


def test_reference_simulator(exported):
    deploy, images, ref, ints = exported
    cm = compile_model(deploy, TINY)
    assert cm.input_kind == "host_embed" and cm.host_flat
    assert cm.descriptors[cm.layers[1].desc_index]["fields"]["n_cig"] == 13    # 100 codes, p_i = 8
    logits_int, _, _ = run_compiled(cm, images)
    np.testing.assert_array_equal(logits_int, ref.logits_int)
    np.testing.assert_array_equal(logits_int, ints)


def test_compiled_rtl_simulator(exported):
    """The SoC's RTL (compiled simulator) through the driver, parameter load then images."""
    from accel.soc import SoC
    from firmware.cxxrtl_sim import CxxrtlTransport
    from firmware.driver import Accelerator
    deploy, images, ref, ints = exported
    cm = compile_model(deploy, TINY)
    transport = CxxrtlTransport(SoC(TINY), quiet=True)

    async def session():
        acc = Accelerator(transport)
        await acc.identify()
        await acc.load(cm)
        out = [await acc.run_image(img, cm) for img in images[:N_RTL]]
        await transport.close()
        return out
    runs = asyncio.run(session())
    got = np.array([r.logits_int for r in runs], dtype=np.int64)
    np.testing.assert_array_equal(got, ref.logits_int[:N_RTL])
    np.testing.assert_array_equal(got, ints[:N_RTL])
    assert all(r.mac_busy > 0 and r.cycles > r.mac_busy for r in runs)
