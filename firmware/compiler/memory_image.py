"""The memory image: main-memory regions in order (program, weights, thresholds, embedding table,
input, output, residual scratch, dumps) from ``base``, the packed program and parameters in them,
and the allocation map."""

import numpy as np

from contract import isa
from contract.config import BUF_RESIDUAL, BUF_THRESHOLDS, BUF_WEIGHTS
from firmware.layout import ceil_div

from .compiled_model import CompiledModel
from .dumps import dump_regions
from .errors import CompileError
from .input_affine import logits_correction
from .io_plan import plan_input_output
from .program import emit_program
from .records import Allocation

__all__ = ["REGIONS", "build_compiled_model", "region_addresses", "scratch_words"]

# Main-memory regions in address order.
REGIONS = ("program", "weights", "thresholds", "embed", "input", "output", "scratch", "dump")


def scratch_words(network, buffers):
    """Words of the main-memory scratch area the residual copies go through (the largest copy)."""
    Lr = network.config.lanes(BUF_RESIDUAL)
    return max((network.residual_words(r) * Lr for r in buffers.copies.values()), default=0)


def region_addresses(base, sizes):
    """``(addresses, limit)``: each region of ``sizes`` (dict in :data:`REGIONS` order) placed
    back to back from ``base``, and the first word after them."""
    addr = {}
    a = base
    for key in REGIONS:
        addr[key] = a
        a += sizes[key]
    return addr, a


def build_compiled_model(network, buffers, params, base, dump=False):
    """Lay out the memory image of a network whose buffers are allocated and parameters packed.

    Parameters
    ----------
    network : NetworkPlan
    buffers : BufferPlan
    params : ParameterImages
    base : int
        Main-memory word address of the image.
    dump : bool
        STORE every feature map to its own region (``CompiledModel.dumps``).

    Returns
    -------
    CompiledModel

    Raises
    ------
    CompileError
        The image does not fit main memory (naming the layer whose data crosses its end).
    """
    c = network.config
    io = plan_input_output(network)
    regions = dump_regions(network) if dump else None
    dummy = dict.fromkeys(REGIONS, 0)
    load, image = emit_program(network, buffers, params, io, dummy, regions)
    sizes = dict(program=(len(load) + len(image)) * isa.DESCRIPTOR_WORDS, weights=params.weights.size,
                 thresholds=params.thresholds.size, embed=params.embed.size, input=io.input_words,
                 output=io.output_words, scratch=scratch_words(network, buffers),
                 dump=sum(words for _, _, words in regions) if dump else 0)
    addr, limit = region_addresses(base, sizes)
    if limit > c.mem_words:
        raise CompileError(f"layer {_memory_culprit(network, buffers, params, addr)}: the memory image "
                           f"needs {limit - base} words from word {base}, main memory has "
                           f"{c.mem_words} words")
    load, image = emit_program(network, buffers, params, io, addr, regions)
    descriptors = [dict(addr=addr["program"] + i * isa.DESCRIPTOR_WORDS, fields=fields, note=note)
                   for i, (fields, note) in enumerate(load + image)]
    prog_image_addr = addr["program"] + len(load) * isa.DESCRIPTOR_WORDS
    for plan in network.plans:
        if plan.desc is not None:
            plan.desc_index = next(i for i, d in enumerate(descriptors) if d["fields"] is plan.desc)
    program = [isa.pack(**d["fields"]) for d in descriptors]
    head = network.layers[-1]
    _, H, W = network.tensors[head["input"]].shape
    k = int(head.get("k", 1))
    gain, offset = logits_correction(network.arrays, head, (H - k + 1) * (W - k + 1))
    offset = offset if offset.any() else None
    memory = np.zeros(limit - base, np.uint32)
    words = np.asarray(program, np.uint32).reshape(-1)
    memory[addr["program"] - base:addr["program"] - base + words.size] = words
    for key, arr in (("weights", params.weights), ("thresholds", params.thresholds), ("embed", params.embed)):
        memory[addr[key] - base:addr[key] - base + arr.size] = arr
    regions = regions or []
    return CompiledModel(
        config=c, memory=memory, program=program, descriptors=descriptors,
        prog_load_addr=addr["program"], prog_image_addr=prog_image_addr,
        input_addr=addr["input"], input_words=io.input_words, input_kind=io.input_kind,
        input_shape=network.input_shape, image_repeat=network.table_split,
        output_addr=addr["output"], output_words=io.output_words,
        window_base=base, window_limit=limit, num_classes=network.num_classes,
        logits_res_base=io.logits.res_base, logits_groups=ceil_div(network.num_classes, c.p_o),
        allocations=_allocation_map(network, buffers, params, io, addr, sizes, len(load), len(image),
                                    prog_image_addr, regions),
        layers=network.plans, tensors=network.tensors,
        host_layer=io.host_layer, host_arrays=network.arrays if io.host_layer else None,
        logits_name=io.logits.name,
        dumps=[(name, addr["dump"] + off, words) for name, off, words in regions],
        host_flat=bool(network.host_embed and network.host_embed["flat"]),
        logits_gain=gain, logits_offset=offset)


def _allocation_map(network, buffers, params, io, addr, sizes, n_load, n_image, prog_image_addr, regions):
    """The allocation map: main-memory rows by address, then the local buffers' rows by region."""
    c = network.config
    al = [Allocation("program.load", "memory", addr["program"], n_load * isa.DESCRIPTOR_WORDS),
          Allocation("program.image", "memory", prog_image_addr, n_image * isa.DESCRIPTOR_WORDS)]
    Lw, Lt = c.lanes(BUF_WEIGHTS), c.lanes(BUF_THRESHOLDS)
    for x in buffers.allocations:
        if x.region == "weights":
            # In memory the weights lie back to back (weight_offset); x.addr is their place in the
            # weight buffer, which differs when weights are streamed.
            offset = buffers.weight_offset[x.name.rsplit(".", 1)[0]]
            al.append(Allocation(x.name, "memory", addr["weights"] + offset * Lw, x.size * Lw))
        elif x.region == "thresholds":
            al.append(Allocation(x.name, "memory", addr["thresholds"] + x.addr * Lt, x.size * Lt))
    local = list(buffers.allocations)
    if params.embed.size:
        table = f"{network.layers[0]['name']}.table"
        al.append(Allocation(table, "memory", addr["embed"], params.embed.size))
        local.append(Allocation(table, "embed", 0, params.embed.size))
    al.append(Allocation("input", "memory", addr["input"], io.input_words))
    al.append(Allocation(f"output ({io.logits.name})", "memory", addr["output"], io.output_words))
    if sizes["scratch"]:
        al.append(Allocation("scratch (residual copies)", "memory", addr["scratch"], sizes["scratch"]))
    for name, off, words in regions:
        al.append(Allocation(f"dump {name}", "memory", addr["dump"] + off, words))
    order = {"memory": 0, "weights": 1, "thresholds": 2, "embed": 3, "residual": 5}
    al.sort(key=lambda x: x.addr)
    return al + sorted(local, key=lambda x: (order.get(x.region, 4), x.region, x.addr))


def _memory_culprit(network, buffers, params, addr):
    """The layer whose data first crosses the end of main memory."""
    c = network.config
    Lw, Lt = c.lanes(BUF_WEIGHTS), c.lanes(BUF_THRESHOLDS)
    for x in buffers.allocations:
        if (x.region == "weights" and addr["weights"]
                + (buffers.weight_offset[x.name.rsplit(".", 1)[0]] + x.size) * Lw > c.mem_words):
            return x.name.rsplit(".", 1)[0]
    for x in buffers.allocations:
        if x.region == "thresholds" and addr["thresholds"] + (x.addr + x.size) * Lt > c.mem_words:
            return x.name.rsplit(".", 1)[0]
    if addr["embed"] + params.embed.size > c.mem_words:
        return network.layers[0]["name"]
    if addr["output"] > c.mem_words:
        return network.layers[0]["name"]
    return network.layers[-1]["name"]
