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

Parts: :class:`PixelAdmission` (when a pixel may enter), :class:`ThresholdLoader` (a group's
thresholds into per-row registers), :class:`ThresholdCompare` (step 4's codes),
:class:`ResidualWriter` (steps 2 and 3), :class:`CodeWriter` (pooling, packing, code writes);
the unit itself holds the pipeline registers and step 1's adders.
"""

from amaranth.hdl import Module, Signal, Mux, signed, unsigned
from amaranth.lib import wiring, stream, data
from amaranth.lib.wiring import In, Out

from contract.config import AccelConfig, THR_ENTRY_BITS
from .row_copies import row_copies
from .output_admission import PixelAdmission
from .threshold_loader import ThresholdLoader
from .threshold_compare import ThresholdCompare
from .residual_writer import ResidualWriter
from .code_writer import CodeWriter


__all__ = ["OutputUnit", "OUT_TAG_LAYOUT"]


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
        # loads): a pixel is taken from ``inp`` only when it can go all the way through
        # (``admission``). The code writer (D) writes up to m words per pixel, so pixels that
        # write are taken at least m cycles apart; a group's thresholds are (re)loaded while no
        # pixel is inside. The wide data registers (per-lane stage values) have no reset: each is
        # only read behind a valid flag, and a reset to thousands of flip-flops is a chip-wide net.
        m.submodules.admission = admission = PixelAdmission(mm)
        m.submodules.thresholds = thresholds = ThresholdLoader(p_o)
        m.submodules.compare = compare = ThresholdCompare(p_o, vbits, cb)
        m.submodules.residual = residual = ResidualWriter(p_o, rb, vbits)
        m.submodules.writer = writer = CodeWriter(p_o, p_i, nb, cb)

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
        # --- stage B: v = acc + residual -------------------------------------------------------
        b_valid = Signal()
        b_v = [Signal(signed(vbits), name=f"v{o}", reset_less=True) for o in range(p_o)]
        b_tag = Signal(OUT_TAG_LAYOUT)
        # --- stage C: codes (in ``compare``) ---------------------------------------------------
        c_valid = Signal()
        c_last = Signal()
        c_final = Signal()

        take = self.inp.valid & self.inp.ready
        group_done = b_valid & b_tag.last     # the group's last pixel leaves stage B
        m.d.comb += [admission.valid.eq(self.inp.valid), admission.last.eq(self.inp.payload.tag.last),
                     self.inp.ready.eq(admission.ready),
                     admission.thresholds_loaded.eq(thresholds.loaded),
                     admission.loading.eq(thresholds.loading), admission.group_done.eq(group_done),
                     admission.thr_out.eq(self.thr_out), admission.pool.eq(self.pool),
                     admission.n_cig_out.eq(self.n_cig_out), admission.start.eq(self.start)]

        # Residual read issued as the pixel is taken; the data arrives while it sits in stage A.
        m.d.comb += [self.res_raddr.eq(self.inp.payload.tag.raddr), self.res_ren.eq(1)]
        m.d.sync += [a_valid.eq(take), a_tag.eq(self.inp.payload.tag)]
        m.d.sync += [a_acc[o].eq(self.inp.payload.acc[o]) for o in range(p_o)]

        # Stage A -> A2, while the residual's read data goes through the engine's register (the
        # block RAMs' clock-to-output, the route from the residual buffer and the adder do not
        # fit one cycle).
        m.d.sync += [a2_valid.eq(a_valid), a2_tag.eq(a_tag)]
        m.d.sync += [a2_acc[o].eq(a_acc[o]) for o in range(p_o)]

        # Stage A2 -> B: v = acc + residual.
        m.d.sync += [b_valid.eq(a2_valid), b_tag.eq(a2_tag)]
        # res_in selects in every output: local register copies, one per eight outputs (one
        # register for all is a route across the die). The descriptor is stable from long before
        # the first pixel arrives, so a copy one cycle behind it is exact.
        res_in = row_copies(m, p_o, "res_in", self.res_in)
        for o in range(p_o):
            res = self.res_rdata[o * rb:(o + 1) * rb].as_signed()
            m.d.sync += b_v[o].eq(a2_acc[o] + Mux(res_in[o], res, 0))

        # Stage B: residual write and sums; thresholds into stage C.
        m.d.comb += [residual.valid.eq(b_valid), residual.raddr.eq(b_tag.raddr),
                     residual.last.eq(b_tag.last), residual.next_valid.eq(a2_valid),
                     residual.next_last.eq(a2_tag.last), residual.res_out.eq(self.res_out),
                     residual.sum.eq(self.sum), residual.start.eq(self.start),
                     residual.res_base.eq(self.res_base),
                     self.res_waddr.eq(residual.res_waddr), self.res_wdata.eq(residual.res_wdata),
                     self.res_wen.eq(residual.res_wen)]
        m.d.comb += [residual.values[o].eq(b_v[o]) for o in range(p_o)]
        m.d.comb += [compare.values[o].eq(b_v[o]) for o in range(p_o)]
        m.d.comb += [compare.thresholds.eq(thresholds.thresholds), compare.negate.eq(thresholds.negate),
                     compare.out_bits.eq(self.out_bits)]
        m.d.sync += [c_valid.eq(b_valid), c_last.eq(b_tag.last), c_final.eq(b_tag.final)]

        # Thresholds: the next group's are loaded after the last pixel of a group has left stage B.
        m.d.comb += [thresholds.start.eq(self.start), thresholds.enabled.eq(self.thr_out),
                     thresholds.thr_base.eq(self.thr_base), thresholds.group_done.eq(group_done),
                     thresholds.pipeline_empty.eq(~a_valid & ~a2_valid & ~b_valid),
                     self.thr_raddr.eq(thresholds.read_addr), self.thr_ren.eq(thresholds.read_en),
                     thresholds.read_data.eq(self.thr_rdata)]

        # Stage C -> D: pool, pack and write.
        m.d.comb += [writer.codes.eq(compare.codes), writer.valid.eq(c_valid),
                     writer.last.eq(c_last), writer.final.eq(c_final),
                     writer.thr_out.eq(self.thr_out), writer.pool.eq(self.pool),
                     writer.n_cig_out.eq(self.n_cig_out), writer.start.eq(self.start),
                     self.code_waddr.eq(writer.code_waddr), self.code_wdata.eq(writer.code_wdata),
                     self.code_wen.eq(writer.code_wen), self.finished.eq(writer.finished)]
        m.d.comb += self.idle.eq(~a_valid & ~a2_valid & ~b_valid & ~c_valid & ~writer.busy
                                 & ~thresholds.loading & ~residual.res_wen & ~writer.code_wen)
        return m
