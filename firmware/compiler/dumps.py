"""Optional dumps of every feature map (``compile_model(..., dump=True)``): after each layer the
program STOREs the code and int maps it produced to their own main-memory regions, so that a run
on the hardware can be compared with the golden model layer by layer."""

from contract import isa
from contract.config import BUF_CODE_BANK0, BUF_RESIDUAL, LOCAL_LANE_BITS

from .transfers import transfer_descriptors

__all__ = ["dumped_tensors", "tensor_lanes", "dump_regions", "dump_stores"]


def dumped_tensors(network, layer):
    """The placements of the code and int maps a layer produces (not the logits)."""
    outs = layer.get("outputs") or {}
    return [network.tensors[n] for key, n in outs.items()
            if n and key != "logits" and network.tensors[n].kind in ("codes", "ints")]


def tensor_lanes(network, tensor):
    """``(local lane address, lanes)`` of a feature map in its bank or the residual buffer."""
    c = network.config
    if tensor.kind == "codes":
        lanes = network.code_words(tensor) * c.lanes(BUF_CODE_BANK0)
        return ((BUF_CODE_BANK0 + tensor.bank) << LOCAL_LANE_BITS), lanes
    Lr = c.lanes(BUF_RESIDUAL)
    return ((BUF_RESIDUAL << LOCAL_LANE_BITS) | (tensor.res_base * Lr)), network.residual_words(tensor) * Lr


def dump_regions(network):
    """``(tensor name, word offset in the dump area, words)`` of every dumped map, in layer order."""
    regions = []
    off = 0
    for L in network.layers:
        for t in dumped_tensors(network, L):
            lanes = tensor_lanes(network, t)[1]
            regions.append((t.name, off, lanes))
            off += lanes
    return regions


def dump_stores(network, layer, dump_addr, regions):
    """The STOREs of one layer's dumped maps into the dump area at ``dump_addr``."""
    out = []
    offsets = {name: off for name, off, _ in regions}
    for t in dumped_tensors(network, layer):
        local, lanes = tensor_lanes(network, t)
        buf, lane = local >> LOCAL_LANE_BITS, local & ((1 << LOCAL_LANE_BITS) - 1)
        for fields, _ in transfer_descriptors(dump_addr + offsets.get(t.name, 0), lanes, buf, lane,
                                              "dump", op=isa.Op.STORE):
            out.append((fields, f"dump {t.name}"))
    return out
