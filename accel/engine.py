"""The layer engine: local buffers, address generator, MAC array, output unit, embedding unit.

It runs one EMBED or CONV descriptor (contract/isa.py) per ``start`` pulse over the buffers of
docs/ARCHITECTURE.md 3.1, which the DMA fills and drains through the ``local`` port (3.2).

CONV loop nest (one word-set per cycle in steady state)::

    for cog in range(n_cog):
        for (oy, ox) in output pixels (row-major, or 2x2-window order when pool):
            for ky, kx in taps:
                for cig in range(n_cig):
                    for sub in range(nsub):
                        act = bank[src][((iy*w_in + ix)*n_cig + cig)*nsub + sub]  (0 outside the image)
                        wgt = wbuf[w_base + (cog*k*k + ky*k + kx)*n_cig + cig]
                        MAC(wgt, act, shift=sub*a_planes, first, last)
            -> OutputUnit (residual, thresholds, pool, pack, sum)

All addresses are kept as running sums (no multiplier on the per-cycle path); the products the
descriptor implies (strides, range checks) are computed once per layer by a shift-add multiplier.
"""

import operator
from types import SimpleNamespace
from functools import reduce

from amaranth.hdl import Module, Signal, Cat, Const, Mux, Array, signed, unsigned, Value
from amaranth.lib import wiring, stream, data
from amaranth.lib.wiring import In, Out
from amaranth.lib.memory import Memory

from contract import isa
from contract.errors import ErrorCode
from contract.config import (AccelConfig, BUF_WEIGHTS, BUF_THRESHOLDS, BUF_EMBED, BUF_RESIDUAL,
                     BUF_CODE_BANK0, THR_ENTRY_BITS, WRITE_ONLY_BUFFERS)
from .localbus import LocalBusSignature, split_addr
from .mac_array import MACArray, SHIFT_BITS
from .synthesis import KEEP_COPY, NO_COLLISIONS
from .output import OutputUnit, OUT_TAG_LAYOUT
from .embedding import EmbeddingUnit


__all__ = ["LayerEngine", "ERR_BAD_OPCODE", "ERR_BAD_DESCRIPTOR"]


ERR_BAD_OPCODE = int(ErrorCode.BAD_OPCODE)
ERR_BAD_DESCRIPTOR = int(ErrorCode.BAD_DESCRIPTOR)


def _times_const(value, const):
    """``value * const`` as shifts and adds (a product would infer a DSP multiplier)."""
    return sum(value << b for b in range(const.bit_length()) if (const >> b) & 1)


WBUF_GROUP_LANES = 4   # weight-buffer lanes (32-bit block-RAM columns) per address-register copy


def _ceil_div(a, b):
    return -(-a // b)


class _LaneMemory:
    """A buffer memory plus its local-bus lane decoding (one write port, one read port).

    A wide buffer can be split into ``groups`` memories of whole 32-bit lanes, each with its own
    ports (``wps``, ``rps``): the engine gives each group its own copies of the address registers,
    so that no single register drives the address pins of block RAMs all over the die.

    ``collisions=False`` promises that no read whose data is used addresses the word written in
    the same cycle (``accel.synthesis.NO_COLLISIONS``: Yosys then leaves out the soft logic that
    emulates the old word around each ECP5 block RAM, a logic level after its 5.8 ns
    clock-to-output that also keeps a register after the read from becoming the block RAM's
    output register, accel.bram_outreg).
    """

    def __init__(self, name, bits, depth, groups=1, collisions=True):
        self.name = name
        self.bits = bits
        self.depth = depth
        self.lanes = _ceil_div(bits, 32)
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
        self.mems = [Memory(shape=unsigned(group_width), depth=depth, init=[],
                            attrs=None if collisions else NO_COLLISIONS)
                     for _ in range(groups)]

    def elaborate_ports(self, m):
        """Add the memories to ``m``; returns the whole-word ``(wp, rp)`` of a one-group buffer
        (``None, None`` for a split one: use ``wps`` and ``rps``)."""
        self.wps, self.rps = [], []
        for g, mem in enumerate(self.mems):
            m.submodules[self.name if self.groups == 1 else f"{self.name}_g{g}"] = mem
            self.wps.append(mem.write_port(granularity=32 if self.granular else None))
            self.rps.append(mem.read_port())
        if self.groups > 1:
            return None, None
        self.wp, self.rp = self.wps[0], self.rps[0]
        return self.wp, self.rp

    def split_lane(self, lane_index):
        """(word, lane) of a local lane index."""
        if self.lanes == 1:
            return lane_index, Const(0, 1)
        if self.lanes & (self.lanes - 1) == 0:
            sh = self.lanes.bit_length() - 1
            return lane_index >> sh, lane_index[:sh]
        return lane_index // self.lanes, lane_index % self.lanes


class LayerEngine(wiring.Component):
    """One layer at a time: EMBED (image -> codes) or CONV (codes -> codes/ints).

    Parameters
    ----------
    config : AccelConfig
    wbuf_group_lanes : int
        Weight-buffer lanes (32-bit block-RAM columns) per copy of the buffer's address registers
        (read address ``WA``, the local bus's write decode). One register driving the address
        pins of all the buffer's block RAMs, spread over the die, limits the clock.

    Members
    -------
    desc : ``In(isa.DESCRIPTOR_LAYOUT)``
        The descriptor, held stable from ``start`` to ``done``.
    start : ``In(1)``
        Pulse (while not ``busy``) to run ``desc``; ``op`` must be EMBED or CONV.
    busy : ``Out(1)``
        High from the cycle after ``start`` until the cycle after ``done``.
    done : ``Out(1)``
        One-cycle pulse once every buffer write of the layer has landed (also after an error).
    error : ``Out(4)``
        0, 1 (op not EMBED/CONV) or 5 (a descriptor field out of range); valid with ``done``,
        held until the next ``start``.
    pixels : ``In(stream.Signature(32))``
        EMBED input: ``ceil(h_in*w_in*emb_c/4)`` words of HWC bytes.
    local : ``In(LocalBusSignature)``
        Buffer access for the DMA: writes land two cycles after ``w_en``, ``r_data`` is valid
        ``READ_LATENCY`` (6) cycles after ``r_en`` (0 in other cycles). Use it only while the engine is not ``busy`` (the engine owns the
        memory ports then). Weights, thresholds and the embedding table are write-only (read 0).
    mac_busy : ``Out(1)``
        High in every cycle the MAC array accepts a word-set.
    """

    def __init__(self, config, *, wbuf_group_lanes=WBUF_GROUP_LANES):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"LayerEngine config must be an AccelConfig, not {config!r}")
        if not isinstance(wbuf_group_lanes, int) or isinstance(wbuf_group_lanes, bool):
            raise TypeError(f"LayerEngine wbuf_group_lanes must be an integer, not "
                            f"{wbuf_group_lanes!r}")
        if wbuf_group_lanes < 1:
            raise ValueError(f"LayerEngine wbuf_group_lanes must be >= 1, not {wbuf_group_lanes}")
        if config.res_depth > (1 << 16):
            raise ValueError(f"LayerEngine needs res_depth <= 65536, not {config.res_depth}")
        if config.bank_depth > (1 << 20):
            raise ValueError(f"LayerEngine needs bank_depth <= 2**20, not {config.bank_depth}")
        self.config = config
        cfg = config
        # The weight buffer in column groups of wbuf_group_lanes lanes (block-RAM columns), each
        # with its own copies of the address registers (one group if the lanes do not divide).
        wlanes = _ceil_div(cfg.weight_word_bits, 32)
        wgroups = wlanes // wbuf_group_lanes if wlanes % wbuf_group_lanes == 0 else 1
        # No read-write collisions that matter in any buffer: the engine reads the weight and
        # threshold buffers and the code banks only during a layer, in which only the local bus
        # writes the first two (weights streamed into the half the layer does not read) and only
        # the layer's destination writes a bank, which is never its source (the descriptor
        # check); the output unit reads a pixel's residual word once, as the pixel enters, and
        # writes it (or a sum, over the first pixel of its own group) only after that; the local
        # bus reads a buffer only in a read cycle, which writes nothing. (Reads whose data is
        # not used, like the output unit's every-cycle residual read, may collide.)
        self.wbuf = _LaneMemory("wbuf", cfg.weight_word_bits, cfg.wbuf_depth, groups=wgroups,
                                collisions=False)
        self.tbuf = _LaneMemory("tbuf", THR_ENTRY_BITS, cfg.thr_depth, collisions=False)
        self.rbuf = _LaneMemory("rbuf", cfg.res_word_bits, cfg.res_depth, collisions=False)
        self.banks = [_LaneMemory(f"bank{k}", cfg.code_word_bits, cfg.bank_depth, collisions=False)
                      for k in range(cfg.n_code_banks)]
        # room_lead 4: a word-set reaches the array four cycles after the generator's decision
        # (the read-address copies, the code reads, the registered code words and the weight
        # reads, then the stage-2 register)
        self.mac = MACArray(cfg.p_o, cfg.p_i, cfg.a_planes, cfg.acc_bits,
                            tag_bits=OUT_TAG_LAYOUT.size, room_lead=4)
        self.out_unit = OutputUnit(cfg)
        self.emb = EmbeddingUnit(cfg)
        super().__init__({
            "desc": In(isa.DESCRIPTOR_LAYOUT),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(4),
            "pixels": In(stream.Signature(32)),
            "local": In(LocalBusSignature),
            "mac_busy": Out(1),
        })

    # ------------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        d = self.desc
        m.submodules.mac = mac = self.mac
        m.submodules.out_unit = ou = self.out_unit
        m.submodules.emb = emb = self.emb

        conv_run = Signal()    # the address generator / output unit own their memory ports
        embed_run = Signal()
        src_sel = Signal(2)

        # --- buffers and the local bus ------------------------------------------------------------
        # The local bus is registered where it enters the engine, before any decoding: the DMA
        # sits at the other end of the die from most buffers, and its registers' routes into
        # the per-buffer decode (lane compares, range checks) were 10.6-10.9 ns paths at 64x32.
        # A write lands two cycles after w_en, read data arrives READ_LATENCY = 6 cycles after
        # r_en.
        local_addr = Signal.like(self.local.addr, name="local_addr_q")
        local_wdata = Signal(32, name="local_wdata_q", reset_less=True)
        local_wen = Signal(name="local_wen_q")
        local_ren = Signal(name="local_ren_q")
        m.d.sync += [local_addr.eq(self.local.addr), local_wdata.eq(self.local.w_data),
                     local_wen.eq(self.local.w_en), local_ren.eq(self.local.r_en)]
        lbuf, llane = split_addr(local_addr)
        mems = {BUF_WEIGHTS: self.wbuf, BUF_THRESHOLDS: self.tbuf, BUF_RESIDUAL: self.rbuf}
        for k, b in enumerate(self.banks):
            mems[BUF_CODE_BANK0 + k] = b
        ports = {}
        read_back = []
        read_q = {}            # the readable buffers' registered read data
        # engine-side port signals, driven below
        eng = {}
        for bid, lm in mems.items():
            wp, rp = lm.elaborate_ports(m)
            ports[bid] = (wp, rp)
            # The local bus is decoded and registered per buffer (per column group of a split
            # buffer) before it reaches the block RAMs (the word of a lane index divides by the
            # buffer's lane count; the DMA's address multiplexer, that division and this range
            # check were the SoC's critical path, and then one address register driving the
            # weight buffer's 32 block RAMs): behind the input register, a write lands one cycle
            # later, a read presents its address one cycle later. The copies are kept apart in
            # synthesis.
            word, lane = lm.split_lane(llane)
            hit = (lbuf == bid) & (llane < lm.depth * lm.lanes)
            e = dict(waddr=Signal(range(lm.depth), name=f"{lm.name}_eng_waddr"),
                     wdata=Signal(lm.width, name=f"{lm.name}_eng_wdata"),
                     wen=Signal(name=f"{lm.name}_eng_wen"),
                     raddr=Signal(range(lm.depth), name=f"{lm.name}_eng_raddr"),
                     ren=Signal(name=f"{lm.name}_eng_ren"),
                     # a register of its own per buffer, set and cleared with conv_run (whose
                     # fan-out to every buffer's address multiplexer was the SoC's critical path)
                     own=(None if bid in WRITE_ONLY_BUFFERS else
                          Signal(name=f"{lm.name}_eng_own", attrs=KEEP_COPY)),
                     # a split buffer's read address, one copy per group
                     raddr_groups=[Signal(range(lm.depth), name=f"{lm.name}_eng_raddr_g{g}")
                                   for g in range(lm.groups)] if lm.groups > 1 else None)
            eng[bid] = e
            # A split buffer's write decode is registered once more before its per-group copies
            # (the decode, then the routes to the copies next to 16 groups of block RAMs all over
            # the die, were a 12 ns path at 64x32): its writes land two cycles after w_en. Only
            # write-only buffers are split, so no read-back can overtake a write.
            if lm.groups > 1:
                assert bid in WRITE_ONLY_BUFFERS, "split readable buffer"
                d_word = Signal.like(word, name=f"{lm.name}_lword_d")
                d_lane = Signal.like(lane, name=f"{lm.name}_llane_d")
                d_write = Signal(name=f"{lm.name}_lwrite_d")
                d_wdata = Signal(32, name=f"{lm.name}_lwdata_d", reset_less=True)
                m.d.sync += [d_word.eq(word), d_lane.eq(lane), d_wdata.eq(local_wdata),
                             d_write.eq(local_wen & hit)]
                word, lane, w_write, w_data = d_word, d_lane, d_write, d_wdata
            else:
                w_write, w_data = local_wen & hit, local_wdata
            for g in range(lm.groups):
                gw, gr = lm.wps[g], lm.rps[g]
                sfx = "" if lm.groups == 1 else f"_g{g}"
                gl = lm.group_lanes
                gwidth = len(gw.data)
                l_word = Signal(range(lm.depth), name=f"{lm.name}_lword{sfx}", attrs=KEEP_COPY)
                l_write = Signal(name=f"{lm.name}_lwrite{sfx}", attrs=KEEP_COPY)
                l_lane_en = Signal(len(gw.en), name=f"{lm.name}_llane_en{sfx}", attrs=KEEP_COPY)
                l_wdata = Signal(32, name=f"{lm.name}_lwdata{sfx}", reset_less=True,
                                 attrs=KEEP_COPY)
                lane_en = Cat(*(lane == g * gl + i for i in range(gl))) if lm.granular else 1
                m.d.sync += [l_word.eq(word), l_write.eq(w_write),
                             l_lane_en.eq(lane_en), l_wdata.eq(w_data)]
                with m.If(l_write):
                    m.d.comb += [gw.addr.eq(l_word), gw.en.eq(l_lane_en),
                                 gw.data.eq(Cat(*([l_wdata] * gl))[:gwidth])]
                with m.Else():
                    m.d.comb += [gw.addr.eq(e["waddr"]),
                                 gw.data.eq(e["wdata"][g * gwidth:(g + 1) * gwidth]),
                                 gw.en.eq(Mux(e["wen"], (1 << len(gw.en)) - 1, 0))]
                if bid in WRITE_ONLY_BUFFERS:
                    # No read-back: the read port is the engine's alone.
                    raddr = e["raddr"] if lm.groups == 1 else e["raddr_groups"][g]
                    m.d.comb += [gr.addr.eq(raddr), gr.en.eq(e["ren"])]
            if bid in WRITE_ONLY_BUFFERS:
                continue
            assert lm.groups == 1, "read-back of a split buffer"
            # A readable buffer's read data is registered right after the block RAM (``<name>_q``:
            # the block RAM's output register in an ECP5 build, accel.bram_outreg), for its
            # reader (the address generator, the output unit) and the read-back alike: nothing
            # else may load the read data.
            q = Signal(lm.width, name=f"{lm.name}_q", reset_less=True)
            m.d.sync += q.eq(rp.data)
            read_q[bid] = q
            # The readable buffers (code banks, residual) read every cycle, so their read ports
            # have no enable: the address generator never stalls, the output unit reads the
            # residual with a constant enable, and the local bus takes its data a fixed number of
            # cycles after r_en.
            m.d.comb += rp.en.eq(1)
            with m.If(e["own"]):
                m.d.comb += rp.addr.eq(e["raddr"])
            with m.Else():
                m.d.comb += rp.addr.eq(l_word)
            # Read-back: the lane of this buffer selected from its registered read data in two
            # registered steps (within a group of four lanes, where the group's block RAMs are;
            # then the group), zero unless this buffer was read, then ORed with the other
            # buffers' lanes into r_data: READ_LATENCY = 6 cycles after r_en (input register,
            # decode, block RAM, ``_q``, two lane steps). The residual buffer's 32 lanes in one
            # step, out of block RAMs spread over the die, were an 11.2 ns path at 64x32.
            l_read = Signal(name=f"{lm.name}_lread")
            l_lane = Signal(range(max(lm.lanes, 2)), name=f"{lm.name}_llane", attrs=KEEP_COPY)
            m.d.sync += [l_read.eq(local_ren & hit), l_lane.eq(lane)]
            lane_data = Signal(32, name=f"{lm.name}_rdata", reset_less=True)
            read_back.append(lane_data)
            ok = Signal(3, name=f"{lm.name}_rok")
            sel = Signal.like(l_lane, name=f"{lm.name}_rlane", attrs=KEEP_COPY)
            sel2 = Signal.like(l_lane, name=f"{lm.name}_rlane2", attrs=KEEP_COPY)
            sel3 = Signal.like(l_lane, name=f"{lm.name}_rlane3", attrs=KEEP_COPY)
            m.d.sync += [ok.eq(Cat(l_read, ok[:2])), sel.eq(l_lane), sel2.eq(sel), sel3.eq(sel2)]
            if lm.lanes > 4:
                groups = []
                for g in range(_ceil_div(lm.lanes, 4)):
                    part = q[128 * g:min(128 * (g + 1), len(q))]
                    grp = Signal(32, name=f"{lm.name}_rgroup{g}", reset_less=True)
                    m.d.sync += grp.eq(part.word_select(sel2[:2], 32))
                    groups.append(grp)
                picked = Array(groups)[sel3[2:]]
            else:
                picked = Signal(32, name=f"{lm.name}_rlane_data", reset_less=True)
                m.d.sync += picked.eq(q.word_select(sel2, 32))
            m.d.sync += lane_data.eq(Mux(ok[2], picked, 0))
        m.d.comb += self.local.r_data.eq(reduce(operator.or_, read_back))

        # embedding table (write-only): entry c*256 + pixel, one lane each (16 bits), registered
        # like the other buffers' writes
        emb_depth = cfg.emb_channels * 256
        m.d.sync += [emb.tw_addr.eq(llane), emb.tw_data.eq(local_wdata),
                     emb.tw_en.eq(local_wen & (lbuf == BUF_EMBED) & (llane < emb_depth))]

        # --- per-layer setup: products by a shift-add multiplier ----------------------------------
        def reg(name, bits=32, sgn=False):
            return Signal(signed(bits) if sgn else unsigned(bits), name=name)

        P = reg("P", 16)             # n_cig * nsub: words per input pixel
        rowP = reg("rowP", 32)       # w_in * P
        src_words = reg("src_words")
        kk = reg("kk", 16)
        kkc = reg("kkc", 32)         # k*k*n_cig: weight words per cog
        wtotal = reg("wtotal")
        npix = reg("npix")           # h_out*w_out (CONV) or h_in*w_in (EMBED)
        Rrow = reg("Rrow")           # w_out * n_cog
        restotal = reg("restotal")
        opix = reg("opix")
        dst_words = reg("dst_words")
        sP = reg("sP")
        sRowP = reg("sRowP")
        padoff = reg("padoff")
        thrtotal = reg("thrtotal")
        hspan = reg("hspan")         # (h_out-1)*stride
        wspan = reg("wspan")
        ebytes = reg("ebytes")
        cd = reg("cd")
        dq = reg("dq")

        pool = d.pool
        # Ordered so that no step uses the product of the step just before it (the product is
        # not forwarded: such a step would spend a LOAD cycle, see mul_states).
        conv_steps = [
            (P, d.n_cig, d.nsub),
            (kk, d.k, d.k),
            (rowP, P, d.w_in),
            (kkc, kk, d.n_cig),
            (src_words, rowP, d.h_in),
            (wtotal, kkc, d.n_cog),
            (npix, d.h_out, d.w_out),
            (Rrow, d.w_out, d.n_cog),
            (restotal, npix, d.n_cog),
            (opix, Mux(pool, d.h_out >> 1, d.h_out), Mux(pool, d.w_out >> 1, d.w_out)),
            (sP, P, d.stride),
            (dst_words, opix, d.n_cig_out),
            (sRowP, rowP, d.stride),
            (padoff, rowP + P, d.pad),
            (hspan, d.h_out - 1, d.stride),
            (wspan, d.w_out - 1, d.stride),
        ]
        # Window mode (k != 0): the destination holds h_out*w_out windows of k words, and a window
        # row of k taps x d codes must fit p_i lanes (emb_c is 1 then, so cd = k*d).
        window = d.k != 0
        embed_steps = [
            (npix, d.h_in, d.w_in),
            (opix, d.h_out, d.w_out),
            (ebytes, npix, d.emb_c),
            (cd, Mux(window, d.k, d.emb_c), d.emb_d),
            (dst_words, Mux(window, opix, npix), Mux(window, d.k, d.nsub)),
            (dq, d.emb_d, d.emb_q),
        ]
        mul_a = Signal(32)
        mul_b = Signal(16)
        mul_acc = Signal(32)
        mul_total = Signal(32)       # mul_acc + mul_a * mul_b[0:2], the radix-4 step
        # mul_b >> 2 == 0 (this step is the product's last) as a register, written with mul_b:
        # the zero test in front of the choice of mul_a's next value was a 10.8 ns path
        mul_last = Signal()
        m.d.comb += mul_total.eq(mul_acc + Mux(mul_b[0], mul_a, 0) + Mux(mul_b[1], mul_a << 1, 0))

        # --- address generator state --------------------------------------------------------------
        cog = Signal(6)
        oy = Signal(10)
        ox = Signal(10)
        dy = Signal()
        dx = Signal()
        ky = Signal(4)
        kx = Signal(4)
        j = Signal(16)
        sub = Signal(4)
        shift = Signal(SHIFT_BITS)
        ab = 26
        iy0 = Signal(signed(13))
        ix0 = Signal(signed(13))
        iy0_row = Signal(signed(13))
        iy = Signal(signed(13))
        ix = Signal(signed(13))
        B = Signal(signed(ab))
        B_row = Signal(signed(ab))
        TA = Signal(signed(ab))
        TA_row = Signal(signed(ab))
        R = Signal(18)
        R_row = Signal(18)
        pool_dB_down = Signal(ab)      # sRowP - sP, mod 2**ab (B's width)
        pool_dB_up = Signal(ab)        # sP - sRowP
        pool_dR_down = Signal(18)      # Rrow - n_cog, mod 2**18 (R's width)
        pool_dR_up = Signal(18)        # n_cog - Rrow
        WA = Signal(18)
        # The block RAMs read at copies of the generator's addresses, one cycle behind them (stage
        # 0): WA once per weight-buffer column group, TA + j once per code bank. The copies are
        # plain registers, so the generator's step logic drives one register each and the
        # copies' long routes to the block RAMs start at a flip-flop (the step logic driving
        # all copies directly was the 64x32 SoC's critical path).
        # The weights are read a cycle later than the codes (WA_d), so that both leave their
        # block RAMs through a register with nothing before it (the codes' bank<k>_q, the
        # weights' s2.weights): ECP5 builds make these the block RAMs' output registers.
        WA_d = Signal(18)
        WA_rd = [Signal(18, name=f"WA_rd{g}", attrs=KEEP_COPY)
                 for g in range(self.wbuf.groups)]
        m.d.sync += [WA_d.eq(WA), *(c.eq(WA_d) for c in WA_rd)]

        wcog = Signal(18)
        ag_active = Signal()

        # stage 1: reads in flight
        # the word-set's side band through stage 0 (read-address copies), stage 1 (code reads)
        # and stage 1b (bank<k>_q; weight reads)
        side_layout = data.StructLayout({"valid": 1, "zero": 1, "shift": SHIFT_BITS, "first": 1,
                                         "last": 1, "tag": OUT_TAG_LAYOUT})
        s0 = Signal(side_layout)
        s1 = Signal(side_layout)
        s1b = Signal(side_layout)

        # The address generator issues a word-set only when the MAC array will take it when it
        # arrives four cycles later (``room``, room_lead 4): stages 0 to 2 never stall, so the
        # weight and code-bank reads need no read enable (an enable made Yosys hold each block
        # RAM's address in a register of its own behind a multiplexer on this late signal) and
        # the stages have no clock enable.
        advance = mac.room

        # registered read data of the source bank
        src_data = Signal(cfg.code_word_bits)
        for k in range(cfg.n_code_banks):
            q = read_q[BUF_CODE_BANK0 + k]
            with m.If(src_sel == k):
                m.d.comb += src_data.eq(q[:cfg.code_word_bits])
        # Stage 2: the weights' read data and the source bank's registered codes (and the side
        # band) registered before the array. 5.8 ns of block-RAM clock-to-output (1 ns from the
        # output register), the source-bank multiplexer and the route to the array were the
        # SoC's critical path. No enable, like stage 1.
        s2_valid = Signal()
        s2 = Signal(mac.inp.payload.shape(), name="s2", reset_less=True)
        m.d.sync += [
            s2_valid.eq(s1b.valid),
            s2.weights.eq(Cat(*(rp.data for rp in self.wbuf.rps))),
            s2.acts.eq(Mux(s1b.zero, 0, src_data)),
            s2.shift.eq(s1b.shift),
            s2.first.eq(s1b.first),
            s2.last.eq(s1b.last),
            s2.tag.eq(s1b.tag),
        ]
        m.d.comb += [
            mac.inp.valid.eq(s2_valid),
            mac.inp.payload.eq(s2),
            self.mac_busy.eq(mac.inp.valid & mac.inp.ready),
        ]
        # MAC -> output unit
        m.d.comb += [
            ou.inp.valid.eq(mac.out.valid),
            mac.out.ready.eq(ou.inp.ready),
            ou.inp.payload.as_value().eq(mac.out.payload.as_value()),
        ]
        for name in ("res_in", "res_out", "thr_out", "pool", "sum", "out_bits", "res_base",
                     "thr_base", "n_cig_out"):
            m.d.comb += getattr(ou, name).eq(getattr(d, name))

        # engine ports of the memories
        # loop limits minus one, registered at the start of a layer (shorter compare paths)
        Pm1 = Signal(16)
        nsubm1 = Signal(4)
        km1 = Signal(4)
        wom1 = Signal(10)
        hom1 = Signal(10)
        ncogm1 = Signal(6)
        # "Counter at its last value" flags, registered: each is written together with its
        # counter, from the counter's next value, so the generator's step decisions start at
        # flip-flops instead of behind a comparator (set_(): the only way the walk writes them).
        j_last = Signal()
        sub_last = Signal()
        kx_last = Signal()
        ky_last = Signal()
        pix_last_x = Signal()
        pix_last_y = Signal()
        cog_last = Signal()
        # counter -> (its flag, its last value, the flag for 0 from quantities valid before the
        # limits are loaded: CONV_CHECK writes both in one cycle); Signals are not hashable
        last_of = {id(c): v for c, v in (
            (j, (j_last, Pm1, P == 1)), (sub, (sub_last, nsubm1, d.nsub == 1)),
            (kx, (kx_last, km1, d.k == 1)), (ky, (ky_last, km1, d.k == 1)),
            (ox, (pix_last_x, wom1, d.w_out == 1)), (oy, (pix_last_y, hom1, d.h_out == 1)),
            (cog, (cog_last, ncogm1, d.n_cog == 1)))}

        def set_(counter, value):
            flag, limit, zero_is_last = last_of[id(counter)]
            if isinstance(value, int) and value == 0:
                return [counter.eq(0), flag.eq(zero_is_last)]
            return [counter.eq(value), flag.eq(value == limit)]

        # The descriptor fields the walk uses while it runs, latched in CONV_VALIDATE next to the
        # generator (they came from the sequencer's descriptor register across the chip).
        ag = SimpleNamespace(
            pool=Signal(name="ag_pool"), stride=Signal.like(d.stride, name="ag_stride"),
            n_cog=Signal.like(d.n_cog, name="ag_n_cog"), h_in=Signal.like(d.h_in, name="ag_h_in"),
            w_in=Signal.like(d.w_in, name="ag_w_in"), res_base=Signal.like(d.res_base, name="ag_res_base"),
            neg_pad=Signal(signed(13), name="ag_neg_pad"), neg_padoff=Signal(signed(ab), name="ag_neg_padoff"))
        settle = Signal()      # the pixel transition is being prepared anew: no step
        single = Signal()      # one step per output pixel (k == 1, P == 1)

        tap_last = kx_last & ky_last
        cog_pix_last = pix_last_x & pix_last_y & (~ag.pool | (dy & dx))
        word_last = j_last & tap_last
        tap_ok = (iy >= 0) & (iy < ag.h_in) & (ix >= 0) & (ix < ag.w_in)
        # The code banks' read address TA + j as a register (A), written wherever TA or j is
        # (the adder's output driving every bank's block RAMs was the SoC's critical path), and
        # its stage-0 copies, one per bank.
        A = Signal(signed(ab))
        bank_addr = [Signal(signed(ab), name=f"bank{k}_raddr", attrs=KEEP_COPY)
                     for k in range(cfg.n_code_banks)]
        m.d.sync += [a.eq(A) for a in bank_addr]

        for k in range(cfg.n_code_banks):
            e = eng[BUF_CODE_BANK0 + k]
            m.d.comb += e["raddr"].eq(bank_addr[k])
        e = eng[BUF_WEIGHTS]
        m.d.comb += [e["raddr"].eq(WA_rd[0]), e["ren"].eq(1)]
        if e["raddr_groups"]:
            m.d.comb += [r.eq(c) for r, c in zip(e["raddr_groups"], WA_rd)]
        e = eng[BUF_THRESHOLDS]
        m.d.comb += [e["raddr"].eq(ou.thr_raddr), e["ren"].eq(ou.thr_ren),
                     ou.thr_rdata.eq(ports[BUF_THRESHOLDS][1].data)]
        e = eng[BUF_RESIDUAL]
        m.d.comb += [e["raddr"].eq(ou.res_raddr),
                     ou.res_rdata.eq(read_q[BUF_RESIDUAL]),
                     e["waddr"].eq(ou.res_waddr), e["wdata"].eq(ou.res_wdata),
                     e["wen"].eq(ou.res_wen & conv_run)]
        # destination bank writes: output unit (CONV) or embedding unit (EMBED)
        # The write is registered once per bank, after the choice of its source, so that the
        # routes to each bank's block RAMs start at a flip-flop next to them (the embedding
        # unit's sub-word shift, this multiplexer and the local bus's were an 11 ns path to the
        # three banks spread over the die): a code word lands one cycle after its unit wrote
        # it. Both units signal their end later than that (the output unit's ``finished`` and
        # the embedding unit's ``busy`` fall at least a cycle after their last write).
        dst = d.dst_bank
        for k in range(cfg.n_code_banks):
            e = eng[BUF_CODE_BANK0 + k]
            name = self.banks[k].name
            w_addr = Signal.like(e["waddr"], name=f"{name}_eng_waddr_q", attrs=KEEP_COPY)
            w_data = Signal.like(e["wdata"], name=f"{name}_eng_wdata_q", attrs=KEEP_COPY,
                                 reset_less=True)
            w_en = Signal(name=f"{name}_eng_wen_q", attrs=KEEP_COPY)
            with m.If(embed_run):
                m.d.sync += [w_addr.eq(emb.out_addr), w_data.eq(emb.out.payload),
                             w_en.eq(emb.out.valid & (dst == k))]
            with m.Else():
                m.d.sync += [w_addr.eq(ou.code_waddr), w_data.eq(ou.code_wdata),
                             w_en.eq(conv_run & ou.code_wen & (dst == k))]
            m.d.comb += [e["waddr"].eq(w_addr), e["wdata"].eq(w_data), e["wen"].eq(w_en)]
        m.d.comb += emb.out.ready.eq(1)

        # embedding unit parameters
        m.d.comb += [emb.pixels.valid.eq(self.pixels.valid), emb.pixels.payload.eq(self.pixels.payload),
                     self.pixels.ready.eq(emb.pixels.ready),
                     emb.n_pix.eq(npix), emb.n_words.eq((ebytes + 3) >> 2),
                     emb.emb_c.eq(d.emb_c), emb.emb_d.eq(d.emb_d), emb.emb_q.eq(d.emb_q),
                     emb.raw.eq(d.raw), emb.nsub.eq(d.nsub),
                     emb.win_k.eq(d.k), emb.stride.eq(d.stride), emb.pad.eq(d.pad),
                     emb.h_in.eq(d.h_in), emb.w_in.eq(d.w_in), emb.h_out.eq(d.h_out),
                     emb.w_out.eq(d.w_out)]

        # --- validation -----------------------------------------------------------------------
        max_nsub = _ceil_div(8, cfg.a_planes)
        nb = cfg.n_code_banks
        ncog_m = _times_const(d.n_cog, cfg.m)
        m.d.comb += thrtotal.eq(_times_const(d.n_cog, cfg.p_o))
        conv_terms = [
            (d.src_bank >= nb),
            (d.thr_out & ((d.dst_bank >= nb) | (d.dst_bank == d.src_bank))),
            (d.k == 0) | (d.stride == 0) | (d.pad >= d.k),
            (d.nsub == 0) | (d.nsub > max_nsub) | (d.n_cig == 0) | (d.n_cog == 0),
            (d.h_in == 0) | (d.w_in == 0) | (d.h_out == 0) | (d.w_out == 0),
            (d.thr_out & ((d.out_bits == 0) | (d.out_bits > cfg.max_out_bits))),
            (pool & (~d.thr_out | d.h_out[0] | d.w_out[0] | d.res_out)),
            (d.sum & d.res_out),
            (d.thr_out & ((d.n_cig_out == 0) | (d.n_cig_out > ncog_m) |
                          (d.n_cig_out + cfg.m <= ncog_m))),
            (src_words > cfg.bank_depth),
            (d.thr_out & (dst_words > cfg.bank_depth)),
            (d.w_base + wtotal > cfg.wbuf_depth),
            (d.thr_out & (d.thr_base + thrtotal > cfg.thr_depth)),
            ((d.res_in | d.res_out) & (d.res_base + restotal > cfg.res_depth)),
            (d.sum & (d.res_base + d.n_cog > cfg.res_depth)),
            (hspan + d.k > d.h_in + (d.pad << 1)),
            (wspan + d.k > d.w_in + (d.pad << 1)),
        ]
        # The checks in two registered steps (CONV_VALIDATE: each check; CONV_VALIDATE2: their
        # OR): one wide OR of comparisons, several with carry chains, was a 12 ns path.
        conv_parts = Signal(len(conv_terms))
        conv_parts_next = Cat(*conv_terms)
        embed_bad = Signal()
        m.d.comb += embed_bad.eq(
            (d.dst_bank >= nb) | (d.emb_c == 0) | (d.emb_c > cfg.emb_channels) |
            (d.nsub == 0) | (d.nsub > max_nsub) | (d.h_in == 0) | (d.w_in == 0) |
            (~d.raw & ((d.emb_d == 0) | (d.emb_q == 0) | (d.emb_q > cfg.a_planes) |
                       (cd > cfg.p_i) | (dq > 16))) |
            (d.raw & (d.emb_c > cfg.p_i)) |
            (window & ((d.emb_c != 1) | d.raw | (d.nsub != 1) | (d.k > cfg.emb_channels) |
                       (d.stride == 0) | (d.h_out == 0) | (d.w_out == 0))) |
            (dst_words > cfg.bank_depth))

        # --- control FSM --------------------------------------------------------------------------
        error = Signal(4)
        m.d.comb += self.error.eq(error)
        bad = Signal()
        # The output unit's start strobe comes from a flip-flop (it resets its group state, a
        # wide fan-out); it arrives one cycle into CONV_RUN, long before the first accumulators.
        ou_start = Signal()
        m.d.sync += ou_start.eq(0)
        m.d.comb += ou.start.eq(ou_start)
        m.d.comb += emb.start.eq(0)

        def load(a, b):
            """A product's operands into the multiplier."""
            return [mul_a.eq(a), mul_b.eq(b), mul_acc.eq(0),
                    mul_last.eq((Value.cast(b)[:len(mul_b)] >> 2) == 0)]

        def mul_states(steps, prefix, after):
            """One radix-4 shift-add multiplication per step: ``max(1, ceil(bits(b) / 2))``
            cycles, the product written in the cycle of the last partial sum. A step's operands
            are loaded as the previous one ends (the first step's by IDLE). Only a step whose
            operand uses the previous product spends a LOAD cycle: the product is not forwarded into
            ``mul_a`` (the sum's two carry chains in front of mul_a's multiplexer were a 10.5 ns
            path on the 64x32 SoC), so the steps are listed in an order that avoids that."""
            def needs_load(idx):
                if idx == 0:
                    return False      # IDLE loads the first step's operands
                prev_dest, (_, a, b) = steps[idx - 1][0], steps[idx]
                used = Value.cast(b)._rhs_signals() | Value.cast(a)._rhs_signals()
                return prev_dest in used

            for idx, (dest, a, b) in enumerate(steps):
                if needs_load(idx):
                    with m.State(f"{prefix}{idx}_LOAD"):
                        m.d.sync += load(a, b)
                        m.next = f"{prefix}{idx}_RUN"
                with m.State(f"{prefix}{idx}_RUN"):
                    with m.If(mul_last):
                        m.d.sync += dest.eq(mul_total)
                        if idx + 1 == len(steps):
                            m.next = after
                        elif needs_load(idx + 1):
                            m.next = f"{prefix}{idx + 1}_LOAD"
                        else:
                            _, na, nb = steps[idx + 1]
                            m.d.sync += load(na, nb)
                            m.next = f"{prefix}{idx + 1}_RUN"
                    with m.Else():
                        m.d.sync += [mul_acc.eq(mul_total), mul_a.eq(mul_a << 2), mul_b.eq(mul_b >> 2),
                                     mul_last.eq((mul_b >> 4) == 0)]

        def cog_reset(next_cog):
            """Walker state for the first pixel of an output-channel group."""
            return [*set_(ky, 0), *set_(kx, 0), *set_(j, 0), *set_(sub, 0), shift.eq(0),
                    iy.eq(ag.neg_pad), ix.eq(ag.neg_pad), TA.eq(ag.neg_padoff),
                    TA_row.eq(ag.neg_padoff), A.eq(ag.neg_padoff),
                    *set_(oy, 0), *set_(ox, 0), dy.eq(0), dx.eq(0),
                    iy0.eq(ag.neg_pad), ix0.eq(ag.neg_pad), iy0_row.eq(ag.neg_pad),
                    B.eq(ag.neg_padoff), B_row.eq(ag.neg_padoff),
                    R.eq(ag.res_base + next_cog), R_row.eq(ag.res_base + next_cog)]

        # ``start`` is registered before the FSM acts on it: the sequencer's dispatch decision,
        # then the opcode decode choosing the first state, with the routes between the two
        # units, was a 10.2 ns path on the 64x32 SoC. The cycle is not lost: while idle, the
        # FSM loads the first product's operands every cycle from the descriptor (valid in the
        # start cycle and held until done), so a run goes straight to that product's RUN state.
        start_q = Signal()
        m.d.sync += start_q.eq(self.start)
        is_embed = d.op == isa.Op.EMBED
        first_conv, first_embed = conv_steps[0], embed_steps[0]

        with m.FSM(name="engine") as fsm:
            with m.State("IDLE"):
                m.d.sync += load(Mux(is_embed, first_embed[1], first_conv[1]),
                                 Mux(is_embed, first_embed[2], first_conv[2]))
                with m.If(start_q):
                    m.d.sync += error.eq(0)
                    with m.If(d.op == isa.Op.CONV):
                        m.next = "C0_RUN"
                    with m.Elif(is_embed):
                        m.next = "E0_RUN"
                    with m.Else():
                        m.d.sync += error.eq(ERR_BAD_OPCODE)
                        m.next = "DONE"
            mul_states(conv_steps, "C", "CONV_VALIDATE")
            mul_states(embed_steps, "E", "EMBED_VALIDATE")

            # The validity checks (a wide OR of comparisons, several with carry chains) are
            # registered before the FSM acts on them: the verdict decides the start strobe, which
            # resets the output unit's and the walker's registers.
            with m.State("CONV_VALIDATE"):
                m.d.sync += conv_parts.eq(conv_parts_next)
                m.d.sync += [ag.pool.eq(pool), ag.stride.eq(d.stride), ag.n_cog.eq(d.n_cog),
                             ag.h_in.eq(d.h_in), ag.w_in.eq(d.w_in), ag.res_base.eq(d.res_base),
                             ag.neg_pad.eq(-d.pad), ag.neg_padoff.eq(-padoff)]
                # the pooled walk's diagonal steps, so that a step is one adder (the addends
                # only need the low bits: the running sums wrap at their own widths)
                m.d.sync += [pool_dB_down.eq(sRowP - sP), pool_dB_up.eq(sP - sRowP),
                             pool_dR_down.eq(Rrow - d.n_cog), pool_dR_up.eq(d.n_cog - Rrow)]
                m.next = "CONV_VALIDATE2"
            with m.State("CONV_VALIDATE2"):
                m.d.sync += bad.eq(conv_parts != 0)
                m.next = "CONV_CHECK"
            with m.State("EMBED_VALIDATE"):
                m.d.sync += bad.eq(embed_bad)
                m.next = "EMBED_CHECK"

            with m.State("CONV_CHECK"):
                with m.If(bad):
                    m.d.sync += error.eq(ERR_BAD_DESCRIPTOR)
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += cog_reset(0)
                    m.d.sync += [*set_(cog, 0), WA.eq(d.w_base), wcog.eq(d.w_base),
                                 ag_active.eq(1),
                                 single.eq((P == 1) & (d.k == 1)),
                                 conv_run.eq(1), src_sel.eq(d.src_bank),
                                 *(eng[BUF_CODE_BANK0 + k]["own"].eq(d.src_bank == k)
                                   for k in range(cfg.n_code_banks)),
                                 eng[BUF_RESIDUAL]["own"].eq(1),
                                 Pm1.eq(P - 1), nsubm1.eq(d.nsub - 1), km1.eq(d.k - 1),
                                 wom1.eq(d.w_out - 1), hom1.eq(d.h_out - 1), ncogm1.eq(d.n_cog - 1)]
                    m.d.sync += ou_start.eq(1)
                    m.next = "CONV_RUN"
            with m.State("CONV_RUN"):
                with m.If(ou.finished):
                    m.d.sync += [conv_run.eq(0), *(e["own"].eq(0) for e in eng.values()
                                                   if e["own"] is not None)]
                    m.next = "DONE"

            with m.State("EMBED_CHECK"):
                with m.If(bad):
                    m.d.sync += error.eq(ERR_BAD_DESCRIPTOR)
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += emb.start.eq(1)
                    m.d.sync += embed_run.eq(1)
                    m.next = "EMBED_WAIT"
            with m.State("EMBED_WAIT"):
                m.next = "EMBED_RUN"
            with m.State("EMBED_RUN"):
                with m.If(~emb.busy):
                    m.d.sync += embed_run.eq(0)
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))

        # --- address generator (CONV_RUN) ---------------------------------------------------------
        # Stage 1 follows the generator's state every cycle (no clock enable); only s1.valid says
        # whether it holds a word-set.
        # The pixel-level transition (next output pixel, or next output-channel group) is
        # prepared every cycle from the walker's registers: which transition it is (one-hot
        # ``ev``) and each register's candidate values (the adders), all registered; a pixel's
        # last step then only selects among them, so the walk's branches (pool order, row end,
        # group end) and its adders are off the path of the per-cycle step. The preparation is
        # fresh one cycle after the pixel-level registers change; a pixel of one step (1x1
        # kernel, one word per tap: ``single``) therefore waits a cycle (``settle``) after each.
        step = Signal()
        m.d.comb += step.eq(advance & ~settle)
        # stage 0 (the cycle of the read-address copies), then stage 1 (the reads)
        m.d.sync += [s0.valid.eq(step & ag_active),
                     s0.zero.eq(~tap_ok), s0.shift.eq(shift),
                     s0.first.eq((j == 0) & (kx == 0) & (ky == 0)), s0.last.eq(word_last),
                     s0.tag.raddr.eq(R), s0.tag.last.eq(cog_pix_last),
                     s0.tag.final.eq(cog_pix_last & cog_last),
                     s1.eq(s0), s1b.eq(s1)]
        state = dict(ox=ox, oy=oy, pix_last_x=pix_last_x, pix_last_y=pix_last_y, dx=dx, dy=dy,
                     ix0=ix0, iy0=iy0, iy0_row=iy0_row, B=B, B_row=B_row, R=R, R_row=R_row,
                     cog=cog, cog_last=cog_last, wcog=wcog, ag_active=ag_active)
        nxt = self._pixel_transition(m, ag, state, cog_pix_last, sP, sRowP, Rrow, kkc,
                                     wom1, hom1, ncogm1,
                                     (pool_dB_down, pool_dB_up, pool_dR_down, pool_dR_up))
        pixel_end = step & ag_active & j_last & kx_last & ky_last
        m.d.sync += settle.eq((pixel_end & single) | fsm.ongoing("CONV_CHECK"))
        with m.If(step):
            with m.If(ag_active):
                # inner: sub-words and channel groups of one tap
                with m.If(~j_last):
                    m.d.sync += [*set_(j, j + 1), A.eq(A + 1)]
                    with m.If(sub_last):
                        m.d.sync += [*set_(sub, 0), shift.eq(0), WA.eq(WA + 1)]
                    with m.Else():
                        m.d.sync += [*set_(sub, sub + 1), shift.eq(shift + cfg.a_planes)]
                with m.Else():
                    m.d.sync += [*set_(j, 0), *set_(sub, 0), shift.eq(0), WA.eq(WA + 1)]
                    with m.If(~kx_last):
                        m.d.sync += [*set_(kx, kx + 1), ix.eq(ix + 1), TA.eq(TA + P),
                                     A.eq(TA + P)]
                    with m.Elif(~ky_last):
                        m.d.sync += [*set_(kx, 0), ix.eq(ix0), *set_(ky, ky + 1), iy.eq(iy + 1),
                                     TA_row.eq(TA_row + rowP), TA.eq(TA_row + rowP),
                                     A.eq(TA_row + rowP)]
                    with m.Else():
                        # pixel done: the prepared transition
                        m.d.sync += [*set_(kx, 0), *set_(ky, 0), WA.eq(nxt["wcog"]),
                                     ix.eq(nxt["ix0"]), iy.eq(nxt["iy0"]), TA.eq(nxt["B"]),
                                     TA_row.eq(nxt["B"]), A.eq(nxt["B"]),
                                     *(state[name].eq(v) for name, v in nxt.items())]

        return m

    @staticmethod
    def _pixel_transition(m, ag, W, cog_pix_last, sP, sRowP, Rrow, kkc, wom1, hom1, ncogm1,
                          pool_deltas):
        """The walker's pixel-level registers ``W`` (a dict) after the current pixel, as values
        selected by registered one-hot events among registered candidates (see the address
        generator); returns ``{name: value}``.

        The events: the layer's last pixel (end), the last pixel of an output-channel group (cog),
        else the next pixel of the walk, row-major or in 2x2-window order (pool): right (pool:
        the left column of a window), dl (down-left: to the window's lower row), ur (up-right: to
        the next window), row1/row2 (to the first column of the next row / window row)."""
        dB_down, dB_up, dR_down, dR_up = pool_deltas
        s, n_cog, pool = ag.stride, ag.n_cog, ag.pool
        ox, oy, dx, dy = W["ox"], W["oy"], W["dx"], W["dy"]
        walk = ~cog_pix_last
        events = dict(
            end=cog_pix_last & W["cog_last"],
            cog=cog_pix_last & ~W["cog_last"],
            right=walk & Mux(pool, ~dx, ~W["pix_last_x"]),
            dl=walk & pool & dx & ~dy,
            ur=walk & pool & dx & dy & ~W["pix_last_x"],
            row1=walk & ~pool & W["pix_last_x"],
            row2=walk & pool & dx & dy & W["pix_last_x"])
        ev = {}
        for name, cond in events.items():
            ev[name] = Signal(name=f"pix_ev_{name}")
            m.d.sync += ev[name].eq(cond)

        def cand(name, like, value):
            r = Signal.like(like, name=f"pix_next_{name}", reset_less=True)
            m.d.sync += r.eq(value)
            return r

        # candidates, by the register they are for (shared where two events agree)
        B_right = cand("B_right", W["B"], W["B"] + sP)
        B_dl = cand("B_dl", W["B"], W["B"] + dB_down)
        B_ur = cand("B_ur", W["B"], W["B"] + dB_up)
        B_row1 = cand("B_row1", W["B"], W["B_row"] + sRowP)
        B_row2 = cand("B_row2", W["B"], W["B_row"] + (sRowP << 1))
        R_right = cand("R_right", W["R"], W["R"] + n_cog)
        R_dl = cand("R_dl", W["R"], W["R"] + dR_down)
        R_ur = cand("R_ur", W["R"], W["R"] + dR_up)
        R_row1 = cand("R_row1", W["R"], W["R_row"] + Rrow)
        R_row2 = cand("R_row2", W["R"], W["R_row"] + (Rrow << 1))
        R_cog = cand("R_cog", W["R"], ag.res_base + W["cog"] + 1)
        ix0_plus = cand("ix0_plus", W["ix0"], W["ix0"] + s)
        ix0_minus = cand("ix0_minus", W["ix0"], W["ix0"] - s)
        iy0_plus = cand("iy0_plus", W["iy0"], W["iy0"] + s)
        iy0_minus = cand("iy0_minus", W["iy0"], W["iy0"] - s)
        iy_row1 = cand("iy_row1", W["iy0"], W["iy0_row"] + s)
        iy_row2 = cand("iy_row2", W["iy0"], W["iy0_row"] + (s << 1))
        ox_inc = cand("ox_inc", ox, ox + 1)
        ox_inc_last = cand("ox_inc_last", W["pix_last_x"], ox + 1 == wom1)
        ox_dec = cand("ox_dec", ox, ox - 1)
        ox_dec_last = cand("ox_dec_last", W["pix_last_x"], ox - 1 == wom1)
        oy_inc = cand("oy_inc", oy, oy + 1)
        oy_inc_last = cand("oy_inc_last", W["pix_last_y"], oy + 1 == hom1)
        oy_dec = cand("oy_dec", oy, oy - 1)
        oy_dec_last = cand("oy_dec_last", W["pix_last_y"], oy - 1 == hom1)
        ox_zero_last = cand("ox_zero_last", W["pix_last_x"], wom1 == 0)
        oy_zero_last = cand("oy_zero_last", W["pix_last_y"], hom1 == 0)
        cog_inc = cand("cog_inc", W["cog"], W["cog"] + 1)
        cog_inc_last = cand("cog_inc_last", W["cog_last"], W["cog"] + 1 == ncogm1)
        wcog_inc = cand("wcog_inc", W["wcog"], W["wcog"] + kkc)
        dx_walk = cand("dx_walk", dx, Mux(pool, ~dx, dx))

        def select(name, cases):
            """One-hot AND-OR of ``cases`` ({event: value}); the register itself otherwise."""
            hold = ~reduce(operator.or_, (ev[e] for e in cases))
            terms = [Mux(ev[e], v, 0).as_unsigned() for e, v in cases.items()]
            terms.append(Mux(hold, W[name], 0).as_unsigned())
            r = Signal.like(W[name], name=f"pix_sel_{name}")
            m.d.comb += r.eq(reduce(operator.or_, terms))
            return r

        row = ("row1", "row2")
        return dict(
            B=select("B", dict(right=B_right, dl=B_dl, ur=B_ur, row1=B_row1, row2=B_row2,
                               cog=ag.neg_padoff)),
            B_row=select("B_row", dict(row1=B_row1, row2=B_row2, cog=ag.neg_padoff)),
            R=select("R", dict(right=R_right, dl=R_dl, ur=R_ur, row1=R_row1, row2=R_row2,
                               cog=R_cog)),
            R_row=select("R_row", dict(row1=R_row1, row2=R_row2, cog=R_cog)),
            ix0=select("ix0", dict(right=ix0_plus, dl=ix0_minus, ur=ix0_plus, row1=ag.neg_pad,
                                   row2=ag.neg_pad, cog=ag.neg_pad)),
            iy0=select("iy0", dict(dl=iy0_plus, ur=iy0_minus, row1=iy_row1, row2=iy_row2,
                                   cog=ag.neg_pad)),
            iy0_row=select("iy0_row", dict(row1=iy_row1, row2=iy_row2, cog=ag.neg_pad)),
            ox=select("ox", dict(right=ox_inc, dl=ox_dec, ur=ox_inc, row1=0, row2=0, cog=0)),
            pix_last_x=select("pix_last_x", dict(right=ox_inc_last, dl=ox_dec_last,
                                                 ur=ox_inc_last, row1=ox_zero_last,
                                                 row2=ox_zero_last, cog=ox_zero_last)),
            oy=select("oy", dict(dl=oy_inc, ur=oy_dec, row1=oy_inc, row2=oy_inc, cog=0)),
            pix_last_y=select("pix_last_y", dict(dl=oy_inc_last, ur=oy_dec_last,
                                                 row1=oy_inc_last, row2=oy_inc_last,
                                                 cog=oy_zero_last)),
            dx=select("dx", dict(right=dx_walk, dl=dx_walk, ur=dx_walk, row2=dx_walk, cog=0)),
            dy=select("dy", dict(dl=1, ur=0, row2=0, cog=0)),
            cog=select("cog", dict(cog=cog_inc)),
            cog_last=select("cog_last", dict(cog=cog_inc_last)),
            wcog=select("wcog", dict(cog=wcog_inc)),
            ag_active=select("ag_active", dict(end=0)),
        )
