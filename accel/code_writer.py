"""The output unit's last stages: 2x2 max-pool, packing codes into code words, and their writes."""

from amaranth.hdl import Module, Signal, Cat, Const, Mux, signed
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out


__all__ = ["CodeWriter"]


class CodeWriter(wiring.Component):
    """Pools a pixel's codes, packs them into ``m = rows / lanes`` code words, writes them one a cycle.

    ``pool``: the codes of 4 consecutive pixels are reduced by their maximum and only every
    fourth pixel writes. A writing pixel's codes become a job of code words ``j`` (rows
    ``j*lanes .. (j+1)*lanes - 1``, plane-major: bit ``b*lanes + i`` is row ``j*lanes + i``'s bit
    ``b``), written at ``opix * n_cig_out + group * m + j`` for ``group * m + j < n_cig_out``, with
    ``opix`` counting written pixels from 0 in each group. Writing pixels must come at least ``m``
    cycles apart (the output unit's input side spaces them). Without ``thr_out`` nothing is written.

    The write is presented from registers the cycle after the job's word is chosen (the address
    adder and the word multiplexer, then the route to a bank's block RAMs, would not fit one
    cycle), and ``finished`` is delayed with it.

    Parameters
    ----------
    rows : int
        Codes per pixel (``p_o``), a multiple of ``lanes``.
    lanes : int
        Codes per code word (``p_i``).
    planes : int
        Bits per code in a code word (``a_planes``).
    code_bits : int
        Width of the codes in (the configuration's ``max_out_bits``).

    Members
    -------
    codes : ``In(ArrayLayout(code_bits, rows))``; valid, last, final : ``In(1)``
        A pixel's codes, whether it ends its group, whether it ends the layer.
    thr_out, pool : ``In(1)``; n_cig_out : ``In(6)``
        The layer's mode and its code words per pixel.
    start : ``In(1)``
        Before a layer.
    code_waddr : ``Out(20)``; code_wdata : ``Out(lanes * planes)``; code_wen : ``Out(1)``
    finished : ``Out(1)``
        Pulse in the cycle the last write of the ``final`` pixel is presented (with nothing to
        write, two cycles after that pixel, or later if an earlier pixel's words are still being
        written).
    busy : ``Out(1)``
        A job is being written.
    """

    def __init__(self, rows, lanes, planes, code_bits):
        for name, v in (("rows", rows), ("lanes", lanes), ("planes", planes),
                        ("code_bits", code_bits)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int, not {v!r}")
            if v < 1:
                raise ValueError(f"{name} must be at least 1, not {v}")
        if rows % lanes:
            raise ValueError(f"rows ({rows}) must be a multiple of lanes ({lanes})")
        self.rows, self.lanes, self.planes, self.code_bits = rows, lanes, planes, code_bits
        super().__init__({
            "codes": In(data.ArrayLayout(code_bits, rows)),
            "valid": In(1), "last": In(1), "final": In(1),
            "thr_out": In(1), "pool": In(1), "n_cig_out": In(6),
            "start": In(1),
            "code_waddr": Out(20), "code_wdata": Out(lanes * planes), "code_wen": Out(1),
            "finished": Out(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p_o, p_i, nb, cb = self.rows, self.lanes, self.planes, self.code_bits
        mm = p_o // p_i
        c_code = [self.codes[o] for o in range(p_o)]
        job_valid = Signal()
        job_words = [Signal(p_i * nb, name=f"job{j}", reset_less=True) for j in range(mm)]
        job_j = Signal(range(max(mm, 2)))
        job_jlast = Signal(range(max(mm, 2)))
        job_addr = Signal(20)
        job_final = Signal()

        pcount = Signal(2)
        cogm = Signal(8)          # group * m
        wpix = Signal(20)         # opix * n_cig_out + group * m
        remaining = Signal(signed(9))
        rem_pos = Signal()
        writes = Signal()         # the pixel in produces a write job
        m.d.comb += writes.eq(self.thr_out & (~self.pool | (pcount == 3)) & rem_pos)
        pmax = [Signal(cb, name=f"pmax{o}") for o in range(p_o)]
        final_now = Signal()
        fin_wait = Signal()
        code_out = [Signal(cb, name=f"pooled{o}") for o in range(p_o)]
        for o in range(p_o):
            m.d.comb += code_out[o].eq(Mux(self.pool & (pcount != 0),
                                           Mux(c_code[o] > pmax[o], c_code[o], pmax[o]), c_code[o]))
        with m.If(job_valid & (job_j == job_jlast)):
            m.d.sync += job_valid.eq(0)
        with m.If(self.valid):
            with m.If(self.pool):
                m.d.sync += pcount.eq(pcount + 1)
                m.d.sync += [pmax[o].eq(code_out[o]) for o in range(p_o)]
            with m.If(writes):
                m.d.sync += [job_valid.eq(1), job_j.eq(0), job_addr.eq(wpix),
                             job_final.eq(self.final),
                             job_jlast.eq(Mux(remaining >= mm, mm - 1, remaining - 1)),
                             wpix.eq(wpix + self.n_cig_out)]
                for j in range(mm):
                    bits = []
                    for b in range(nb):
                        for i in range(p_i):
                            bits.append(code_out[j * p_i + i][b] if b < cb else Const(0, 1))
                    m.d.sync += job_words[j].eq(Cat(*bits))
            with m.Elif(self.final):
                # nothing to write: finished once a job still being written has ended
                m.d.sync += fin_wait.eq(1)
            with m.If(self.last):
                m.d.sync += [cogm.eq(cogm + mm), wpix.eq(cogm + mm), remaining.eq(remaining - mm),
                             rem_pos.eq(remaining > mm)]

        # One code word per cycle, presented from registers.
        code_waddr = Signal.like(self.code_waddr, reset_less=True)
        code_wdata = Signal.like(self.code_wdata, reset_less=True)
        code_wen = self.code_wen
        m.d.sync += [code_waddr.eq(job_addr + job_j), code_wen.eq(job_valid)]
        with m.Switch(job_j):
            for j in range(mm):
                with m.Case(j):
                    m.d.sync += code_wdata.eq(job_words[j])
        m.d.comb += [self.code_waddr.eq(code_waddr), self.code_wdata.eq(code_wdata)]
        with m.If(job_valid & (job_j != job_jlast)):
            m.d.sync += job_j.eq(job_j + 1)
        with m.If(job_valid & (job_j == job_jlast) & job_final):
            m.d.comb += final_now.eq(1)
        with m.If(fin_wait & ~job_valid):
            m.d.comb += final_now.eq(1)
            m.d.sync += fin_wait.eq(0)
        m.d.sync += self.finished.eq(final_now)
        m.d.comb += self.busy.eq(job_valid)

        with m.If(self.start):
            m.d.sync += [pcount.eq(0), cogm.eq(0), wpix.eq(0), fin_wait.eq(0),
                         remaining.eq(self.n_cig_out), rem_pos.eq(self.n_cig_out != 0)]
        return m
