"""Compile a deploy file (docs/ARCHITECTURE.md, sections 1-2) into a program and a memory image.

``compile_model(deploy, config)`` checks that every layer fits the accelerator configuration before
anything runs (each failure is one ``CompileError("layer <name>: <why>")``), lays out the weights,
thresholds and embedding table in the exact local-buffer formats of ARCHITECTURE 3.1, allocates code
banks and residual-buffer regions by liveness, and emits two entry points into one descriptor list:

- ``prog_load_addr``: LOAD the weights, thresholds and embedding table, then fall through into
- ``prog_image_addr``: the per-image part (EMBED or LOAD of the input, one CONV per layer, STORE of
  the logits, END), so a batch reloads only the image.

Memory image (word addresses, from ``base``): program, weights, thresholds, embedding table, input
region, output region. ``window_base``/``window_limit`` span exactly that image.

When a one-channel image's embedding feeds only the next conv (and the conditions of ARCHITECTURE
3.3, "EMBED window mode", hold), the EMBED writes that conv's ``k x k`` windows and the conv runs as
a 1x1 conv with ``k`` input groups (``im2col=False`` turns this off). A fully connected first layer
runs as a 1x1 conv over the embedding's codes, which the host writes flattened (input kind
``host_embed``; also for embeddings wider than ``a_planes``); an input affine (``in_gain``,
``in_offset``) is folded into thresholds or the logits' decoding where exact and refused elsewhere
(ARCHITECTURE 3.6).

The passes, one module each, in the order :func:`compile_model` runs them:

- :mod:`.analysis` (shapes, fit checks, bounds, liveness; :mod:`.window_mode` decides the EMBED
  window mode, :mod:`.host_embed` the host-written first layer, :mod:`.input_affine` checks the
  input affines) fills a :class:`~.network.NetworkPlan`;
- :mod:`.buffers` places weights, thresholds, code maps and int maps in the local buffers;
- :mod:`.packing` packs the parameters into main-memory words;
- :mod:`.program` emits the descriptors (:mod:`.transfers`, :mod:`.dumps`), and
  :mod:`.memory_image` lays out the memory image and the allocation map into a
  :class:`CompiledModel` (:mod:`.compiled_model`; host-side input preparation in
  :mod:`.host_input`).

Command line (:mod:`.cli`): ``python -m firmware.compiler MODEL.npz [--config NAME] [--map]
[--no-im2col]``, ``NAME`` one of ``contract.config.CONFIGS``.
"""

from .compiled_model import CompiledModel
from .cli import main
from .errors import CompileError
from .host_input import host_conv_codes
from .pipeline import compile_model
from .records import Allocation, LayerPlan, TensorPlacement

__all__ = ["CompileError", "CompiledModel", "Allocation", "LayerPlan", "TensorPlacement",
           "compile_model", "host_conv_codes", "main"]
