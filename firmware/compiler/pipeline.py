"""``compile_model``: the compiler's passes in order (analysis, local buffers, parameter packing,
program and memory image)."""

from contract.config import AccelConfig, CONFIGS

from .analysis import analyse_network
from .buffers import allocate_buffers
from .deploy_input import deploy_parts
from .memory_image import build_compiled_model
from .packing import pack_parameters

__all__ = ["compile_model"]


def compile_model(deploy, config="default", base=0, *, dump=False, stream_weights=False, im2col=True):
    """Compile a deploy model for an accelerator configuration.

    Parameters
    ----------
    deploy : model.deploy object, path, or dict with ``header`` and ``arrays``
        The network (docs/ARCHITECTURE.md section 2).
    config : AccelConfig or str
        The configuration or its name in ``contract.config.CONFIGS``.
    base : int
        Main-memory word address where the image (and the window) starts.
    dump : bool
        After every layer, STORE each feature map it produced (codes or ints) to its own region
        of main memory (``CompiledModel.dumps``; decode with ``decode_dump``), so that a run on
        the hardware can be compared with the golden model layer by layer.
    stream_weights : bool
        Stream every layer's weights per image (double-buffered, overlapped with the previous
        layer's compute) even when they would all fit the weight buffer. Done anyway when they do
        not fit.
    im2col : bool
        Let the EMBED write the first conv's ``k x k`` windows (ARCHITECTURE 3.3, EMBED window
        mode) when the network allows it: a one-channel image whose embedding only the next conv
        reads, ``k <= emb_channels``, ``k*d <= p_i``, the windows within a code bank. The conv then
        runs as a 1x1 conv with ``k`` input groups (``k*d`` of ``p_i`` lanes busy instead of ``d``).
        False compiles every network without it.

    Returns
    -------
    CompiledModel

    Raises
    ------
    CompileError
        One line, ``"layer <name>: <why>"``, when the network does not fit.
    """
    if isinstance(config, str):
        if config not in CONFIGS:
            raise ValueError(f"unknown configuration {config!r} (one of {', '.join(CONFIGS)})")
        config = CONFIGS[config]
    if not isinstance(config, AccelConfig):
        raise TypeError(f"config must be an AccelConfig or a name, not {type(config).__name__}")
    if not isinstance(base, int) or base < 0:
        raise ValueError(f"base must be a non-negative integer, not {base!r}")
    header, arrays = deploy_parts(deploy)
    network = analyse_network(header, arrays, config, im2col=im2col)
    buffers = allocate_buffers(network, stream_weights=stream_weights)
    params = pack_parameters(network, buffers)
    return build_compiled_model(network, buffers, params, base, dump=dump)
