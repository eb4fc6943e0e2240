"""LOAD and STORE descriptors for a transfer of any length between main memory and a local buffer."""

from contract import isa
from contract.config import LOCAL_LANE_BITS

from .limits import MAX_LOAD_COUNT

__all__ = ["transfer_descriptors"]


def transfer_descriptors(data_addr, n_lanes, buffer, local_lane, note, op=isa.Op.LOAD):
    """Descriptors moving ``n_lanes`` lanes between main memory and a local buffer.

    Parameters
    ----------
    data_addr : int
        Main-memory word address of the first lane.
    n_lanes : int
        Lanes to move; split into descriptors of at most ``MAX_LOAD_COUNT`` lanes.
    buffer : int
        Local buffer number (``contract.config.BUF_*``).
    local_lane : int
        First lane in that buffer.
    note : str
        Comment carried with each descriptor.
    op : isa.Op
        ``LOAD`` (memory to buffer) or ``STORE``.

    Returns
    -------
    list of (dict, str)
        ``(fields for isa.pack, note)`` per descriptor, one row each.
    """
    out = []
    for off in range(0, n_lanes, MAX_LOAD_COUNT):
        n = min(MAX_LOAD_COUNT, n_lanes - off)
        out.append((dict(op=op, mem_addr=data_addr + off,
                         local_addr=(buffer << LOCAL_LANE_BITS) | (local_lane + off),
                         count=n, rows=1, mem_stride=n), note))
    return out
