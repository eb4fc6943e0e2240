"""The layer engine's buffers and the local bus that the DMA reads and writes them through.

The buffers of docs/ARCHITECTURE.md 3.1 (weights, thresholds, residual, code banks) are block-RAM
memories with one write port and one read port each. Two users share each port: the local bus
(accel/localbus.py; the DMA, while the engine is idle) and the engine's units (while a layer
runs). :class:`EngineBuffers` decodes the local bus per buffer and multiplexes it with the
engine's port of each buffer (:func:`buffer_port_signature`); the embedding table's writes leave
it on ``table`` (the table lives in the embedding unit).
"""

import operator
from functools import reduce

from amaranth.hdl import Module, Signal, Cat, Const, Mux, Array, unsigned
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out
from amaranth.lib.memory import Memory

from contract.config import (AccelConfig, BUF_WEIGHTS, BUF_THRESHOLDS, BUF_EMBED, BUF_RESIDUAL,
                             BUF_CODE_BANK0, THR_ENTRY_BITS, EMB_ENTRY_BITS, WRITE_ONLY_BUFFERS)
from .localbus import LocalBusSignature, split_addr
from .synthesis import KEEP_COPY, NO_COLLISIONS


__all__ = ["EngineBuffers", "LaneMemory", "buffer_port_signature", "WEIGHT_GROUP_LANES",
           "ceil_div"]


WEIGHT_GROUP_LANES = 4   # weight-buffer lanes (32-bit block-RAM columns) per address-register copy


def ceil_div(a, b):
    """``ceil(a / b)`` of two integers."""
    return -(-a // b)


class LaneMemory:
    """A buffer memory plus its local-bus lane decoding (one write port, one read port).

    A wide buffer can be split into ``groups`` memories of whole 32-bit lanes, each with its own
    ports (``write_ports``, ``read_ports``): the engine gives each group its own copies of the
    address registers, so that no single register drives the address pins of block RAMs all
    over the die.

    Parameters
    ----------
    name : str
        The memory's name in the netlist (``<name>_g<group>`` for the groups of a split one).
    bits : int
        Bits of a buffer word.
    depth : int
        Words.
    groups : int
        Memories of whole lanes the buffer is split into (``bits`` a multiple of 32).
    collisions : bool
        ``False`` promises that no read whose data is used addresses the word written in the
        same cycle (``accel.synthesis.NO_COLLISIONS``: Yosys then leaves out the soft logic that
        emulates the old word around each ECP5 block RAM, a logic level after its 5.8 ns
        clock-to-output that also keeps a register after the read from becoming the block RAM's
        output register, accel.bram_outreg).
    """

    def __init__(self, name, bits, depth, groups=1, collisions=True):
        self.name = name
        self.bits = bits
        self.depth = depth
        self.lanes = ceil_div(bits, 32)
        if bits % 32 == 0 or self.lanes == 1:
            self.width = bits
        else:
            self.width = self.lanes * 32
        self.granular = self.lanes > 1
        if groups != 1 and (bits % 32 or self.lanes % groups):
            raise ValueError(f"{name}: {self.lanes} lanes do not split into {groups} groups")
        self.groups = groups
        self.group_lanes = self.lanes // groups if groups > 1 else self.lanes
        group_width = self.width if groups == 1 else 32 * self.group_lanes
        self.memories = [Memory(shape=unsigned(group_width), depth=depth, init=[],
                                attrs=None if collisions else NO_COLLISIONS)
                         for _ in range(groups)]

    def add_ports(self, m):
        """Add the memories to ``m`` as submodules and create ``write_ports`` and
        ``read_ports`` (one of each per group)."""
        self.write_ports, self.read_ports = [], []
        for group, memory in enumerate(self.memories):
            m.submodules[self.name if self.groups == 1 else f"{self.name}_g{group}"] = memory
            self.write_ports.append(memory.write_port(granularity=32 if self.granular else None))
            self.read_ports.append(memory.read_port())

    def split_lane(self, lane_index):
        """``(word, lane)`` of a local lane index."""
        if self.lanes == 1:
            return lane_index, Const(0, 1)
        if self.lanes & (self.lanes - 1) == 0:
            shift = self.lanes.bit_length() - 1
            return lane_index >> shift, lane_index[:shift]
        return lane_index // self.lanes, lane_index % self.lanes


def buffer_port_signature(memory, *, engine_writes, local_reads):
    """The engine's port of one buffer, seen from the engine.

    ``r_addr`` holds one read address per column group (the engine drives each group's from a
    register of its own); ``r_data`` is the read data, registered after the block RAM for a
    buffer the local bus reads (then the read port is always enabled and the engine takes it
    over with ``own``), the block RAM's own output for a write-only buffer (read with ``r_en``).
    """
    members = {
        "r_addr": Out(data.ArrayLayout(range(memory.depth), memory.groups)),
        "r_data": In(memory.width),
    }
    if local_reads:
        members["own"] = Out(1)
    else:
        members["r_en"] = Out(1)
    if engine_writes:
        members.update({"w_addr": Out(range(memory.depth)), "w_data": Out(memory.width),
                        "w_en": Out(1)})
    return wiring.Signature(members)


class EngineBuffers(wiring.Component):
    """The weight, threshold and residual buffers and the code banks, and the local-bus decode.

    Parameters
    ----------
    config : AccelConfig
    weight_groups : int
        Memories the weight buffer is split into (column groups of whole lanes).

    Members
    -------
    local : ``In(LocalBusSignature)``
        The DMA's access (accel/localbus.py). A write lands two cycles after ``w_en`` (three in
        the split weight buffer: the decode is registered once more before its copies);
        ``r_data`` is valid ``READ_LATENCY`` (6) cycles after ``r_en``.
    weights, thresholds : ``In(buffer_port_signature(...))``
        The engine's read ports of the write-only parameter buffers.
    residual, bank0, bank1, ... : ``In(buffer_port_signature(...))``
        The engine's read and write ports of the buffers the local bus also reads.
    table : ``Out`` ``addr``, ``data``, ``en``
        The local bus's writes into the embedding table, registered.
    """

    def __init__(self, config, *, weight_groups=1):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"EngineBuffers config must be an AccelConfig, not {config!r}")
        if not isinstance(weight_groups, int) or isinstance(weight_groups, bool):
            raise TypeError(f"EngineBuffers weight_groups must be an integer, not "
                            f"{weight_groups!r}")
        if weight_groups < 1:
            raise ValueError(f"EngineBuffers weight_groups must be >= 1, not {weight_groups}")
        self.config = config
        # No read-write collisions that matter in any buffer: the engine reads the weight and
        # threshold buffers and the code banks only during a layer, in which only the local bus
        # writes the first two (weights streamed into the half the layer does not read) and only
        # the layer's destination writes a bank, which is never its source (the descriptor
        # check); the output unit reads a pixel's residual word once, as the pixel enters, and
        # writes it (or a sum, over the first pixel of its own group) only after that; the local
        # bus reads a buffer only in a read cycle, which writes nothing. (Reads whose data is
        # not used, like the output unit's every-cycle residual read, may collide.)
        self.weight_memory = LaneMemory("wbuf", config.weight_word_bits, config.wbuf_depth,
                                  groups=weight_groups, collisions=False)
        self.threshold_memory = LaneMemory("tbuf", THR_ENTRY_BITS, config.thr_depth,
                                           collisions=False)
        self.residual_memory = LaneMemory("rbuf", config.res_word_bits, config.res_depth,
                                          collisions=False)
        self.bank_memories = [LaneMemory(f"bank{k}", config.code_word_bits, config.bank_depth,
                                         collisions=False)
                              for k in range(config.n_code_banks)]
        # buffer id -> (port name, memory)
        self.by_id = {BUF_WEIGHTS: ("weights", self.weight_memory),
                      BUF_THRESHOLDS: ("thresholds", self.threshold_memory),
                      BUF_RESIDUAL: ("residual", self.residual_memory),
                      **{BUF_CODE_BANK0 + k: (f"bank{k}", bank)
                         for k, bank in enumerate(self.bank_memories)}}
        members = {"local": In(LocalBusSignature)}
        for buffer_id, (port_name, memory) in self.by_id.items():
            readable = buffer_id not in WRITE_ONLY_BUFFERS
            if memory.groups > 1 and readable:
                raise ValueError("only a write-only buffer may be split into column groups")
            members[port_name] = In(buffer_port_signature(memory, engine_writes=readable,
                                                          local_reads=readable))
        members["table"] = Out(wiring.Signature({
            "addr": Out(range(config.emb_channels * 256)), "data": Out(EMB_ENTRY_BITS),
            "en": Out(1)}))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        # The local bus is registered where it enters, before any decoding: the DMA sits at the
        # other end of the die from most buffers.
        local = dict(addr=Signal.like(self.local.addr, name="local_addr_q"),
                     w_data=Signal(32, name="local_wdata_q", reset_less=True),
                     w_en=Signal(name="local_wen_q"),
                     r_en=Signal(name="local_ren_q"))
        m.d.sync += [local[name].eq(getattr(self.local, name)) for name in local]
        local["buffer"], local["lane"] = split_addr(local["addr"])
        read_back = []
        for buffer_id, (port_name, memory) in self.by_id.items():
            memory.add_ports(m)
            port = getattr(self, port_name)
            hit = (local["buffer"] == buffer_id) & (local["lane"] < memory.depth * memory.lanes)
            word, lane = memory.split_lane(local["lane"])
            local_word = self._write_ports(m, memory, port, local, hit, word, lane)
            if buffer_id in WRITE_ONLY_BUFFERS:
                for group, read_port in enumerate(memory.read_ports):
                    m.d.comb += [read_port.addr.eq(port.r_addr[group]), read_port.en.eq(port.r_en)]
                m.d.comb += port.r_data.eq(Cat(*(rp.data for rp in memory.read_ports)))
            else:
                read_back.append(self._read_port(m, memory, port, local, hit, local_word, lane))
        m.d.comb += self.local.r_data.eq(reduce(operator.or_, read_back))

        # embedding table (write-only): entry c*256 + pixel, one lane each (16 bits), registered
        # like the other buffers' writes
        table_depth = self.config.emb_channels * 256
        m.d.sync += [self.table.addr.eq(local["lane"]), self.table.data.eq(local["w_data"]),
                     self.table.en.eq(local["w_en"] & (local["buffer"] == BUF_EMBED) &
                                      (local["lane"] < table_depth))]
        return m

    @staticmethod
    def _write_ports(m, memory, port, local, hit, word, lane):
        """Drive the write ports: the local bus's write if there is one, else the engine's.

        The local bus is decoded and registered per buffer (per column group of a split buffer)
        before it reaches the block RAMs, so that the DMA's address multiplexer, the division of
        a lane index by the lane count and the range check are one cycle and the routes to each
        group's block RAMs start at a register of their own (kept apart in synthesis). Returns
        the registered word address (of the last group) for the read port.
        """
        # A split buffer's write decode is registered once more before its per-group copies, so
        # that the decode and the routes to copies next to block RAMs all over the die are two
        # cycles: its writes land two cycles after w_en. Only write-only buffers are split, so
        # no read-back can overtake a write.
        if memory.groups > 1:
            name = memory.name
            word_d = Signal.like(word, name=f"{name}_lword_d")
            lane_d = Signal.like(lane, name=f"{name}_llane_d")
            write_d = Signal(name=f"{name}_lwrite_d")
            wdata_d = Signal(32, name=f"{name}_lwdata_d", reset_less=True)
            m.d.sync += [word_d.eq(word), lane_d.eq(lane), wdata_d.eq(local["w_data"]),
                         write_d.eq(local["w_en"] & hit)]
            word, lane, write, write_data = word_d, lane_d, write_d, wdata_d
        else:
            write, write_data = local["w_en"] & hit, local["w_data"]
        for group, write_port in enumerate(memory.write_ports):
            suffix = "" if memory.groups == 1 else f"_g{group}"
            group_lanes = memory.group_lanes
            group_width = len(write_port.data)
            local_word = Signal(range(memory.depth), name=f"{memory.name}_lword{suffix}",
                                attrs=KEEP_COPY)
            local_write = Signal(name=f"{memory.name}_lwrite{suffix}", attrs=KEEP_COPY)
            local_lane_en = Signal(len(write_port.en), name=f"{memory.name}_llane_en{suffix}",
                                   attrs=KEEP_COPY)
            local_wdata = Signal(32, name=f"{memory.name}_lwdata{suffix}", reset_less=True,
                                 attrs=KEEP_COPY)
            lane_en = (Cat(*(lane == group * group_lanes + i for i in range(group_lanes)))
                       if memory.granular else 1)
            m.d.sync += [local_word.eq(word), local_write.eq(write),
                         local_lane_en.eq(lane_en), local_wdata.eq(write_data)]
            with m.If(local_write):
                m.d.comb += [write_port.addr.eq(local_word), write_port.en.eq(local_lane_en),
                             write_port.data.eq(Cat(*([local_wdata] * group_lanes))[:group_width])]
            if hasattr(port, "w_en"):
                with m.Else():
                    m.d.comb += [write_port.addr.eq(port.w_addr),
                                 write_port.data.eq(port.w_data[group * group_width:
                                                                (group + 1) * group_width]),
                                 write_port.en.eq(Mux(port.w_en, (1 << len(write_port.en)) - 1,
                                                      0))]
        return local_word

    @staticmethod
    def _read_port(m, memory, port, local, hit, local_word, lane):
        """Drive a readable buffer's read port and return its lane of the local bus's read
        data (0 unless the local bus read this buffer)."""
        read_port = memory.read_ports[0]
        # The read data is registered right after the block RAM (``<name>_q``: the block RAM's
        # output register in an ECP5 build, accel.bram_outreg), for the engine and the
        # read-back alike: nothing else may load the read data.
        read_data = Signal(memory.width, name=f"{memory.name}_q", reset_less=True)
        m.d.sync += read_data.eq(read_port.data)
        m.d.comb += port.r_data.eq(read_data)
        # These buffers are read every cycle, so their read ports have no enable: the address
        # generator never stalls, the output unit reads the residual with a constant enable, and
        # the local bus takes its data a fixed number of cycles after r_en.
        m.d.comb += read_port.en.eq(1)
        with m.If(port.own):
            m.d.comb += read_port.addr.eq(port.r_addr[0])
        with m.Else():
            m.d.comb += read_port.addr.eq(local_word)
        # Read-back: the lane of this buffer selected from the registered read data in two
        # registered steps (within a group of four lanes, where the group's block RAMs are; then
        # the group), zero unless this buffer was read, then ORed with the other buffers' lanes
        # into r_data: READ_LATENCY = 6 cycles after r_en (input register, decode, block RAM,
        # ``_q``, two lane steps). One step out of block RAMs spread over the die would be a long
        # path.
        name = memory.name
        local_read = Signal(name=f"{name}_lread")
        local_lane = Signal(range(max(memory.lanes, 2)), name=f"{name}_llane", attrs=KEEP_COPY)
        m.d.sync += [local_read.eq(local["r_en"] & hit), local_lane.eq(lane)]
        lane_data = Signal(32, name=f"{name}_rdata", reset_less=True)
        read_valid = Signal(3, name=f"{name}_rok")
        lane_d1 = Signal.like(local_lane, name=f"{name}_rlane", attrs=KEEP_COPY)
        lane_d2 = Signal.like(local_lane, name=f"{name}_rlane2", attrs=KEEP_COPY)
        lane_d3 = Signal.like(local_lane, name=f"{name}_rlane3", attrs=KEEP_COPY)
        m.d.sync += [read_valid.eq(Cat(local_read, read_valid[:2])), lane_d1.eq(local_lane),
                     lane_d2.eq(lane_d1), lane_d3.eq(lane_d2)]
        if memory.lanes > 4:
            groups = []
            for group in range(ceil_div(memory.lanes, 4)):
                part = read_data[128 * group:min(128 * (group + 1), len(read_data))]
                group_data = Signal(32, name=f"{name}_rgroup{group}", reset_less=True)
                m.d.sync += group_data.eq(part.word_select(lane_d2[:2], 32))
                groups.append(group_data)
            picked = Array(groups)[lane_d3[2:]]
        else:
            picked = Signal(32, name=f"{name}_rlane_data", reset_less=True)
            m.d.sync += picked.eq(read_data.word_select(lane_d2, 32))
        m.d.sync += lane_data.eq(Mux(read_valid[2], picked, 0))
        return lane_data
