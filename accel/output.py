"""The output unit: accumulators of one output pixel in, residual/threshold/pool/pack, buffers out.

Per output pixel (``p_o`` accumulators of one output-channel group ``cog``), following
docs/ARCHITECTURE.md 1 and 3.1:

1. ``v = acc + residual`` when ``res_in`` (residual word ``raddr``, ``p_o`` lanes of ``res_bits``),
   else ``v = acc``;
2. ``res_out``: write ``v`` (truncated to ``res_bits``) back to residual word ``raddr``;
3. ``sum``: add ``v`` into ``p_o`` sums; after the last pixel of the group write them to residual
   word ``res_base + cog``;
4. ``thr_out``: ``u = -v if negate else v``, ``code = min(#{k: u >= t_k}, 2**out_bits - 1)`` with the
   group's thresholds (entries ``thr_base + cog*p_o + o``, loaded before the group's first pixel);
   ``pool``: the maximum over 4 consecutive pixels (a 2x2 window); the codes are packed into
   ``m = p_o / p_i`` code words written at ``opix*n_cig_out + cog*m + j`` for ``cog*m + j < n_cig_out``,
   ``opix`` counting written pixels from 0 in each group.

The residual address ``raddr`` of a pixel comes with it (the address generator knows the visiting
order), as do ``last`` (last pixel of the group) and ``final`` (last pixel of the layer).
"""

from amaranth.hdl import Module, Signal, Cat, Const, Mux, signed, unsigned, Value
from amaranth.lib import wiring, stream, data
from amaranth.lib.wiring import In, Out

from contract.config import AccelConfig, THR_ENTRY_BITS
from .synthesis import KEEP_COPY


__all__ = ["OutputUnit", "OUT_TAG_LAYOUT"]


# Outputs served by one register copy of a signal every output needs (res_in, the threshold being
# loaded): one register for all rows is a route across the array.
ROWS_PER_COPY = 8


def _row_copies(m, p_o, name, value, reset_less=False):
    """Register copies of ``value`` (one cycle behind it), one per ``ROWS_PER_COPY`` outputs and
    kept apart in synthesis; returns the copy serving each of the ``p_o`` outputs."""
    copies = []
    for g in range(-(-p_o // ROWS_PER_COPY)):
        r = Signal(Value.cast(value).shape(), name=f"{name}_g{g}", reset_less=reset_less,
                   attrs=KEEP_COPY)
        m.d.sync += r.eq(value)
        copies.append(r)
    return [copies[o // ROWS_PER_COPY] for o in range(p_o)]


OUT_TAG_LAYOUT = data.StructLayout({
    "raddr": unsigned(16),   # residual buffer word of this pixel (res_base + pix*n_cog + cog)
    "last": unsigned(1),     # last pixel of its output-channel group
    "final": unsigned(1),    # last pixel of the layer
})


class OutputUnit(wiring.Component):
    """Residual add, thresholds, 2x2 max-pool, code packing and the ``sum`` reduction.

    Parameters
    ----------
    config : AccelConfig

    Members
    -------
    inp : ``In(stream.Signature(StructLayout({"acc": ArrayLayout(signed(acc_bits), p_o), "tag": OUT_TAG_LAYOUT})))``
        ``ready`` is a register. It is low while a group's thresholds load (about
        ``p_o + 4`` cycles before each group, after the previous group has drained) and, for pixels
        that write code words, for ``m - 1`` cycles after the previous writing pixel.
    start : ``In(1)``
        Pulse before a layer: resets the group counters and (with ``thr_out``) loads group 0's
        thresholds. The mode inputs below are held stable from ``start`` to ``finished``.
    res_in, res_out, thr_out, pool, sum, out_bits, res_base, thr_base, n_cig_out : ``In``
        Descriptor fields.
    finished : ``Out(1)``
        Pulse in the cycle the last write caused by the ``final`` pixel happens (or, with nothing
        to write, the cycle that pixel leaves the pipeline).
    idle : ``Out(1)``
        No pixel inside the unit and no threshold load in progress.
    res_raddr, res_ren, res_rdata
        Residual read port (``res_rdata`` valid two cycles after ``res_raddr``: the engine
        registers the block RAM's read data). The unit reads
        every cycle: ``res_ren`` is always high, and the engine's residual buffer has no read
        enable.
    res_waddr, res_wdata, res_wen
        Residual write port (registers: a pixel's write is presented the cycle after it leaves
        stage B).
    thr_raddr, thr_ren, thr_rdata
        Threshold read port (64-bit entries, one-cycle latency).
    code_waddr, code_wdata, code_wen
        Code bank write port (of the destination bank).
    """

    def __init__(self, config):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"OutputUnit config must be an AccelConfig, not {config!r}")
        self.config = config
        cfg = config
        self.in_layout = data.StructLayout({
            "acc": data.ArrayLayout(signed(cfg.acc_bits), cfg.p_o),
            "tag": OUT_TAG_LAYOUT,
        })
        super().__init__({
            "inp": In(stream.Signature(self.in_layout)),
            "start": In(1),
            "res_in": In(1), "res_out": In(1), "thr_out": In(1), "pool": In(1), "sum": In(1),
            "out_bits": In(4),
            "res_base": In(16),
            "thr_base": In(12),
            "n_cig_out": In(6),
            "finished": Out(1),
            "idle": Out(1),
            "res_raddr": Out(16), "res_ren": Out(1), "res_rdata": In(cfg.res_word_bits),
            "res_waddr": Out(16), "res_wdata": Out(cfg.res_word_bits), "res_wen": Out(1),
            "thr_raddr": Out(range(1 << 16)), "thr_ren": Out(1), "thr_rdata": In(THR_ENTRY_BITS),
            "code_waddr": Out(20), "code_wdata": Out(cfg.code_word_bits), "code_wen": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        p_o, p_i, nb, rb = cfg.p_o, cfg.p_i, cfg.a_planes, cfg.res_bits
        mm = cfg.m
        cb = cfg.max_out_bits
        vbits = max(cfg.acc_bits, rb) + 1

        # The pipeline A -> A2 -> B -> C -> D never stalls (no clock-enable nets with thousands of
        # loads): a pixel is taken from ``inp`` only when it can go all the way through. The code
        # writer (D) writes up to m words per pixel, so pixels that write are taken at least m
        # cycles apart; a group's thresholds are (re)loaded while no pixel is inside.

        # --- threshold registers -------------------------------------------------------------------
        # Stored as -T, with T = t (negate 0) or 1 - t (negate 1): u >= t is then (v >= T) xor
        # negate (-v >= t <=> v <= -t <=> not v >= 1 - t), and v >= T is the sign of v + (-T), a
        # plain addition: no per-pixel negation of v and no inverted comparator inputs (which
        # Yosys maps to an extra LUT per bit in front of the carry chain).
        # The wide data registers (thresholds, per-lane stage values, job words) have no reset:
        # each is only read behind a valid flag or thr_ok, and a reset to thousands of flip-flops
        # is a chip-wide net (the units' reset strobe limited the SoC's clock).
        thr = [[Signal(signed(17), name=f"nthr{o}_{k}", reset_less=True) for k in range(3)]
               for o in range(p_o)]
        neg = [Signal(name=f"neg{o}") for o in range(p_o)]
        thr_ok = Signal()        # thresholds of the current group are loaded
        loading = Signal()
        ld_cnt = Signal(range(p_o + 4))
        ld_row = Signal(range(p_o + 1))
        ld_data_valid = Signal()
        thr_cog = Signal(16)     # cog * p_o
        # the threshold read address thr_base + thr_cog + ld_cnt as a register (the descriptor's
        # thr_base through a three-operand adder to the block RAM was the SoC's critical path)
        thr_ptr = Signal(16)
        closed = Signal()        # the group's last pixel has been taken; wait for the reload

        # --- stage A: accumulators + residual read in flight ---------------------------------------
        a_valid = Signal()
        # one signal per lane (not one p_o*acc_bits-bit vector): compiled simulators (CXXRTL) handle
        # many narrow signals far better than one huge one
        a_acc = [Signal(signed(cfg.acc_bits), name=f"a_acc{o}", reset_less=True) for o in range(p_o)]
        a_tag = Signal(OUT_TAG_LAYOUT)
        # --- stage A2: the residual read data arrives (registered by the engine) ----------------
        a2_valid = Signal()
        a2_acc = [Signal(signed(cfg.acc_bits), name=f"a2_acc{o}", reset_less=True)
                  for o in range(p_o)]
        a2_tag = Signal(OUT_TAG_LAYOUT)
        # --- stage B: v ------------------------------------------------------------------------
        b_valid = Signal()
        b_v = [Signal(signed(vbits), name=f"v{o}", reset_less=True) for o in range(p_o)]
        b_tag = Signal(OUT_TAG_LAYOUT)
        # --- stage C: codes --------------------------------------------------------------------
        c_valid = Signal()
        c_code = [Signal(cb, name=f"code{o}", reset_less=True) for o in range(p_o)]
        c_last = Signal()
        c_final = Signal()
        # --- stage D: write job of up to m code words ----------------------------------------------
        job_valid = Signal()
        job_words = [Signal(cfg.code_word_bits, name=f"job{j}", reset_less=True) for j in range(mm)]
        job_j = Signal(range(max(mm, 2)))
        job_jlast = Signal(range(max(mm, 2)))
        job_addr = Signal(20)
        job_final = Signal()

        # --- input side: which pixels will write, and their spacing --------------------------------
        in_phase = Signal(2)      # pool phase of the next pixel taken
        in_rem_pos = Signal()     # the group of the next pixel taken writes code words
        in_rem = Signal(signed(9))
        gap = Signal(range(max(mm, 2)))
        will_write = self.thr_out & in_rem_pos & (~self.pool | (in_phase == 3))
        # ``ready`` is a register, computed a cycle ahead from the state this cycle's take leaves
        # behind, so the consumer's take (which enables the MAC FIFO's wide read register) does not
        # pass through the descriptor-dependent logic here. Late by one cycle only where the state
        # changes without a take (the end of a write gap or of a threshold load).
        ready = Signal()
        m.d.comb += self.inp.ready.eq(ready)
        take = self.inp.valid & ready
        take_last = take & self.inp.payload.tag.last
        gap_next_zero = Mux(take & will_write & (mm > 1), 0, gap <= 1)
        phase_next_3 = Mux(take, in_phase == 2, in_phase == 3)
        will_write_next = self.thr_out & in_rem_pos & (~self.pool | phase_next_3)
        m.d.sync += ready.eq(thr_ok & ~closed & ~loading & ~self.start & ~take_last
                             & (gap_next_zero | ~will_write_next))
        with m.If(gap != 0):
            m.d.sync += gap.eq(gap - 1)
        with m.If(take):
            with m.If(will_write & (mm > 1)):
                m.d.sync += gap.eq(mm - 1)
            with m.If(self.pool):
                m.d.sync += in_phase.eq(in_phase + 1)
            with m.If(self.inp.payload.tag.last):
                m.d.sync += [closed.eq(1), in_rem.eq(in_rem - mm), in_rem_pos.eq(in_rem > mm)]

        # Residual read issued as the pixel is taken; the data arrives while it sits in stage A.
        m.d.comb += [self.res_raddr.eq(self.inp.payload.tag.raddr), self.res_ren.eq(1)]
        m.d.sync += [a_valid.eq(take), a_tag.eq(self.inp.payload.tag)]
        m.d.sync += [a_acc[o].eq(self.inp.payload.acc[o]) for o in range(p_o)]

        # Stage A -> A2, while the residual's read data goes through the engine's register (5.8 ns
        # of block-RAM clock-to-output, the route from the residual buffer's 32 block RAMs and
        # the adder in one cycle were a 13 ns path at 64x32).
        m.d.sync += [a2_valid.eq(a_valid), a2_tag.eq(a_tag)]
        m.d.sync += [a2_acc[o].eq(a_acc[o]) for o in range(p_o)]

        # Stage A2 -> B: v = acc + residual.
        m.d.sync += [b_valid.eq(a2_valid), b_tag.eq(a2_tag)]
        # res_in selects in every output: local register copies, one per eight outputs (the
        # descriptor's register across the die was a 14 ns route). The descriptor is stable from
        # long before the first pixel arrives, so a copy one cycle behind it is exact.
        res_in = _row_copies(m, p_o, "res_in", self.res_in)
        for o in range(p_o):
            res = self.res_rdata[o * rb:(o + 1) * rb].as_signed()
            m.d.sync += b_v[o].eq(a2_acc[o] + Mux(res_in[o], res, 0))

        # Stage B: residual write, sums, thresholds.
        b_go = b_valid
        # The sums are 0 outside sum mode and are cleared (a free synchronous reset) after each
        # group's write, so ``sums + v`` is both the next sum and, outside sum mode, ``v`` itself:
        # one adder and no multiplexer in front of the residual write port.
        # No reset, and the start clear one cycle late from a local register: the sums' clear is
        # their flip-flops' LSR, and the SoC's units reset ORed with the engine's start strobe
        # there was a 16 ns path (the first sum is added well after the start's pipeline fill).
        sums = [Signal(signed(rb), name=f"sum{o}", reset_less=True) for o in range(p_o)]
        start_q = Signal()
        m.d.sync += start_q.eq(self.start)
        # res_base + the group of the sum being written, a register (res_base comes from the
        # sequencer's descriptor across the die: an adder after that route was a 10.8 ns path)
        sum_addr = Signal(16)
        sum_next = [Signal(signed(rb), name=f"sum_next{o}") for o in range(p_o)]
        for o in range(p_o):
            m.d.comb += sum_next[o].eq(sums[o] + b_v[o])
        # The write is registered before the residual buffer (the adder, then the route to its
        # 32 block RAMs at 64x32 in the same cycle was a 12 ns path). No read needs a word in
        # the cycle its write lands: a pixel's residual is read once, as it enters, and written
        # as it leaves; a sum is written over the first pixel of its own group, read long before.
        res_wen = Signal()
        res_waddr = Signal.like(self.res_waddr)
        m.d.comb += [res_wen.eq(0), res_waddr.eq(b_tag.raddr)]
        res_waddr_q = Signal.like(self.res_waddr, reset_less=True)
        res_wdata_q = Signal.like(self.res_wdata, reset_less=True)
        m.d.sync += [self.res_wen.eq(res_wen), res_waddr_q.eq(res_waddr),
                     res_wdata_q.eq(Cat(*sum_next))]
        m.d.comb += [self.res_waddr.eq(res_waddr_q), self.res_wdata.eq(res_wdata_q)]
        with m.If(b_go):
            with m.If(self.res_out):
                m.d.comb += res_wen.eq(1)
            with m.If(self.sum & b_tag.last):
                # sum and res_out are exclusive (the engine rejects both), so the port is free
                m.d.comb += [res_wen.eq(1), res_waddr.eq(sum_addr)]
            with m.If(b_tag.last):
                m.d.sync += sum_addr.eq(sum_addr + 1)
        # The sums' enables from register copies per eight outputs, aligned with stage B (one
        # enable for all sums' flip-flops was an 11.7 ns route in the 32x32 SoC).
        sum_go = _row_copies(m, p_o, "sum_go", a2_valid & self.sum)
        sum_last = _row_copies(m, p_o, "sum_last", a2_tag.last)
        for o in range(p_o):
            with m.If(sum_go[o]):
                with m.If(sum_last[o]):
                    m.d.sync += sums[o].eq(0)
                with m.Else():
                    m.d.sync += sums[o].eq(sum_next[o])

        maxc = Signal(2)
        m.d.comb += maxc.eq(Mux(self.out_bits >= 2, 3, 1))
        m.d.sync += [c_valid.eq(b_valid), c_last.eq(b_tag.last), c_final.eq(b_tag.final)]
        for o in range(p_o):
            v = b_v[o]
            # compare on 17 bits: outside the signed 17-bit range v is above or below every T
            if vbits > 17:
                top = v[16:]
                in_range = (top == 0) | (top == (1 << len(top)) - 1)
            else:
                in_range = Const(1, 1)
            low = v[:17].as_signed()
            ge = [~(low + thr[o][k])[17] for k in range(3)]
            passed = [Mux(in_range, ge[k], ~v[vbits - 1]) ^ neg[o] for k in range(3)]
            count = passed[0] + passed[1] + passed[2]
            code = Mux(count > maxc, maxc, count)
            m.d.sync += c_code[o].eq(code[:cb])

        # Group bookkeeping: after the last pixel of a group has left stage B, reload thresholds.
        with m.If(b_go & b_tag.last):
            m.d.sync += [thr_ok.eq(0), closed.eq(0), thr_cog.eq(thr_cog + p_o)]

        # --- threshold load: p_o reads, entry o written into row o four cycles later ---------------
        # (the block RAM's data is registered before the -T arithmetic, and its result again in a
        # copy per eight rows before the fan-out to them: read data -> carry chain -> a route
        # across the array, then the route from one -T register to all rows, were the SoC's
        # critical path)
        with m.If(~thr_ok & ~loading & ~a_valid & ~a2_valid & ~b_valid & ~self.start):
            with m.If(self.thr_out):
                m.d.sync += [loading.eq(1), ld_cnt.eq(0), thr_ptr.eq(self.thr_base + thr_cog)]
            with m.Else():
                m.d.sync += thr_ok.eq(1)
        m.d.comb += [self.thr_raddr.eq(thr_ptr),
                     self.thr_ren.eq(loading & (ld_cnt < p_o))]
        with m.If(loading):
            m.d.sync += [ld_cnt.eq(ld_cnt + 1), ld_data_valid.eq(ld_cnt < p_o), ld_row.eq(ld_cnt),
                         thr_ptr.eq(thr_ptr + 1)]
            with m.If(ld_cnt == p_o + 3):
                m.d.sync += [loading.eq(0), thr_ok.eq(1)]
        with m.Else():
            m.d.sync += ld_data_valid.eq(0)
        e = Signal(THR_ENTRY_BITS, reset_less=True)     # the read data, registered
        e_valid = Signal()
        e_row = Signal.like(ld_row)
        m.d.sync += [e.eq(self.thr_rdata), e_valid.eq(ld_data_valid), e_row.eq(ld_row)]
        # -T registered once before the copies (the carry chain, then the routes to eight copies
        # spread along the array, were a 10.2 ns path at 64x32)
        ld_t = [Signal(signed(17), name=f"ld_t{k}", reset_less=True) for k in range(3)]
        ld_neg = Signal(reset_less=True)
        ld_valid = Signal()
        ld_row_t = Signal.like(e_row)
        for k in range(3):
            t = e[16 * k:16 * (k + 1)].as_signed()
            m.d.sync += ld_t[k].eq(Mux(e[48], t - 1, -t))
        m.d.sync += [ld_neg.eq(e[48]), ld_valid.eq(e_valid), ld_row_t.eq(e_row)]
        row_t = [_row_copies(m, p_o, f"ld_t{k}", ld_t[k], reset_less=True) for k in range(3)]
        row_neg = _row_copies(m, p_o, "ld_neg", ld_neg, reset_less=True)
        row_valid = _row_copies(m, p_o, "ld_valid", ld_valid)
        row_row = _row_copies(m, p_o, "ld_row", ld_row_t)
        for o in range(p_o):
            # a decoded write enable per row (52 loads each), not one enable for all rows
            with m.If(row_valid[o] & (row_row[o] == o)):
                m.d.sync += [thr[o][k].eq(row_t[k][o]) for k in range(3)]
                m.d.sync += neg[o].eq(row_neg[o])

        # --- stage C -> D: pool and pack ----------------------------------------------------------
        pcount = Signal(2)
        cogm = Signal(8)          # cog * m
        wpix = Signal(20)         # opix * n_cig_out + cog * m
        remaining = Signal(signed(9))
        rem_pos = Signal()
        writes = Signal()         # the pixel in stage C produces a write job
        m.d.comb += writes.eq(self.thr_out & (~self.pool | (pcount == 3)) & rem_pos)
        pmax = [Signal(cb, name=f"pmax{o}") for o in range(p_o)]
        c_go = c_valid
        final_now = Signal()
        fin_wait = Signal()
        code_out = [Signal(cb, name=f"pooled{o}") for o in range(p_o)]
        for o in range(p_o):
            m.d.comb += code_out[o].eq(Mux(self.pool & (pcount != 0),
                                           Mux(c_code[o] > pmax[o], c_code[o], pmax[o]), c_code[o]))
        with m.If(job_valid & (job_j == job_jlast)):
            m.d.sync += job_valid.eq(0)
        with m.If(c_go):
            with m.If(self.pool):
                m.d.sync += pcount.eq(pcount + 1)
                m.d.sync += [pmax[o].eq(code_out[o]) for o in range(p_o)]
            with m.If(writes):
                m.d.sync += [job_valid.eq(1), job_j.eq(0), job_addr.eq(wpix), job_final.eq(c_final),
                             job_jlast.eq(Mux(remaining >= mm, mm - 1, remaining - 1)),
                             wpix.eq(wpix + self.n_cig_out)]
                for j in range(mm):
                    bits = []
                    for b in range(nb):
                        for i in range(p_i):
                            bits.append(code_out[j * p_i + i][b] if b < cb else Const(0, 1))
                    m.d.sync += job_words[j].eq(Cat(*bits))
            with m.Elif(c_final):
                # nothing to write: finished once a job still being written has ended
                m.d.sync += fin_wait.eq(1)
            with m.If(c_last):
                m.d.sync += [cogm.eq(cogm + mm), wpix.eq(cogm + mm), remaining.eq(remaining - mm),
                             rem_pos.eq(remaining > mm)]

        # Stage D: one code word per cycle.
        # The write is presented from registers, a cycle after the job's word is chosen (the
        # address adder and the word multiplexer, then the routes to a bank's 16 block RAMs, were
        # an 11.4 ns path at 64x32); ``finished`` is delayed with it.
        code_waddr = Signal.like(self.code_waddr, reset_less=True)
        code_wdata = Signal.like(self.code_wdata, reset_less=True)
        code_wen = Signal()
        m.d.sync += [code_waddr.eq(job_addr + job_j), code_wen.eq(job_valid)]
        with m.Switch(job_j):
            for j in range(mm):
                with m.Case(j):
                    m.d.sync += code_wdata.eq(job_words[j])
        m.d.comb += [self.code_waddr.eq(code_waddr), self.code_wdata.eq(code_wdata),
                     self.code_wen.eq(code_wen)]
        with m.If(job_valid & (job_j != job_jlast)):
            m.d.sync += job_j.eq(job_j + 1)
        with m.If(job_valid & (job_j == job_jlast) & job_final):
            m.d.comb += final_now.eq(1)
        with m.If(fin_wait & ~job_valid):
            m.d.comb += final_now.eq(1)
            m.d.sync += fin_wait.eq(0)
        finished = Signal()
        m.d.sync += finished.eq(final_now)
        m.d.comb += self.finished.eq(finished)
        m.d.comb += self.idle.eq(~a_valid & ~a2_valid & ~b_valid & ~c_valid & ~job_valid
                                 & ~loading & ~self.res_wen & ~code_wen)

        with m.If(self.start):
            m.d.sync += [thr_ok.eq(0), closed.eq(0), loading.eq(0), thr_cog.eq(0),
                         sum_addr.eq(self.res_base), pcount.eq(0), cogm.eq(0), wpix.eq(0), fin_wait.eq(0),
                         remaining.eq(self.n_cig_out), rem_pos.eq(self.n_cig_out != 0),
                         in_phase.eq(0), in_rem.eq(self.n_cig_out), in_rem_pos.eq(self.n_cig_out != 0),
                         gap.eq(0)]
        with m.If(start_q):
            m.d.sync += [sums[o].eq(0) for o in range(p_o)]
        return m
