"""The local bus: how the DMA reads and writes the layer engine's buffers.

A 24-bit address of 32-bit lanes (docs/ARCHITECTURE.md, 3.2): bits ``[20, 24)`` select the buffer
(0 weights, 1 thresholds, 2 embedding table, 3 residual, 4.. code banks), bits ``[0, 20)`` the lane;
buffer word ``w`` lane ``l`` is lane index ``w * lanes_per_word + l``.

Timing: a write takes effect two cycles after ``w_en``; ``r_data`` is valid ``READ_LATENCY`` (six)
cycles after ``r_en`` and is 0 in other cycles. The target registers the bus where it enters,
registers the decoded bus per buffer (a lane index's word and range check), reads, registers the
read data, selects the buffer's lane in two registered steps (within a group of four lanes, where
their block RAMs are, then the group), and only then ORs the buffers together: the DMA's address multiplexer with the decoding, and a block RAM's output with the lane
and buffer multiplexers, each in one cycle, would be paths longer than the clock allows. The bus never
stalls. Unknown buffers and lanes beyond a buffer are ignored on write and
read as 0. The parameter buffers (weights, thresholds, embedding table; ``WRITE_ONLY_BUFFERS``) are
write-only: they read as 0.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract.config import LOCAL_BUF_BITS, LOCAL_LANE_BITS


__all__ = ["LocalBusSignature", "ADDR_BITS", "READ_LATENCY", "split_addr"]


ADDR_BITS = LOCAL_BUF_BITS + LOCAL_LANE_BITS
READ_LATENCY = 6      # cycles from r_en to r_data


LocalBusSignature = wiring.Signature({
    "addr":   Out(ADDR_BITS),
    "w_data": Out(32),
    "w_en":   Out(1),
    "r_en":   Out(1),
    "r_data": In(32),
})
"""Local bus, seen from the initiator (the DMA): ``addr[24] w_data[32] w_en r_en`` out, ``r_data[32]`` in."""


def split_addr(addr):
    """``(buffer id, lane index)`` of a local address (an Amaranth value or an int)."""
    if isinstance(addr, int):
        return addr >> LOCAL_LANE_BITS, addr & ((1 << LOCAL_LANE_BITS) - 1)
    return addr[LOCAL_LANE_BITS:ADDR_BITS], addr[:LOCAL_LANE_BITS]
