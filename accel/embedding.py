"""The embedding unit: image bytes in, packed code-bank words out (the EMBED descriptor).

Input: 32-bit words of HWC bytes (four per word, little-endian; the last word zero-padded).
Output: for each pixel, ``nsub`` code-bank words (``a_planes`` bit-planes of ``p_i`` lanes) in bank
order ``pix * nsub + s``. Lane ``c*d + j`` holds ``table[c][pixel_c]`` bits ``[j*q, (j+1)*q)``
(docs/ARCHITECTURE.md 1 and 3.1), or in ``raw`` mode lane ``c`` holds the 8-bit pixel itself;
sub-word ``s`` holds bits ``[s*a_planes, (s+1)*a_planes)`` of each lane's code.

The table lives in one 256 x 16 block RAM per image channel, so that all channels of a pixel are
looked up in the same cycle: one pixel per cycle when ``nsub == 1``.

Window mode (``win_k >= 1``, a one-channel image): the unit walks the zero-padded image one pixel
per cycle, keeps the last ``win_k - 1`` pixels of the row, and looks up a whole window row of
``win_k`` pixels at once, pixel ``kx`` through table ``kx`` (the program loads the same table into
each), so that lane ``kx*d + j`` holds tap ``kx``'s code ``j``. Each window row is the code-bank
word ``(oy*w_out + ox)*win_k + ky`` of every window that contains it (one or more, as the windows
overlap), so the next layer reads its ``k x k`` windows as a 1x1 conv over ``win_k`` channel
groups (docs/ARCHITECTURE.md 3.3).
"""

from amaranth.hdl import Module, Signal, Cat, Const, Mux, unsigned
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out
from amaranth.lib.memory import Memory

from .config import AccelConfig, EMB_ENTRY_BITS


__all__ = ["EmbeddingUnit", "SETUP_CYCLES"]


SETUP_CYCLES = 2   # from ``start`` until a run begins: the geometry's two register stages


class EmbeddingUnit(wiring.Component):
    """Embedding table plus the pipeline from image words to packed code words.

    Parameters
    ----------
    config : AccelConfig

    Members
    -------
    pixels : ``In(stream.Signature(32))``
        Image words. Exactly ``n_words`` are consumed per run.
    out : ``Out(stream.Signature(a_planes * p_i))``
        Code words: ``n_pix * nsub`` per run in bank order (``pix * nsub + s``), or in window mode
        ``h_out * w_out * win_k`` (one per window row) in the order the image fills them.
    out_addr : ``Out(20)``
        Code-bank word address of the word on ``out`` (valid with ``out.valid``).
    start : ``In(1)``
        Pulse: begin a run with the parameters below (held stable from ``start`` to the end of
        the run). The run begins ``SETUP_CYCLES`` cycles later.
    n_pix, n_words : ``In(20)``
        Pixels (``h * w``) and input words (``ceil(h * w * emb_c / 4)``) of the run.
    emb_c, emb_d, emb_q, raw, nsub : ``In``
        Descriptor fields (checked by the engine: ``emb_c * emb_d <= p_i``, ``emb_d * emb_q <= 16``).
    win_k, stride, pad, h_in, w_in, h_out, w_out : ``In``
        Window mode when ``win_k != 0`` (the descriptor's ``k``; checked by the engine: ``emb_c == 1``,
        ``nsub == 1``, ``win_k <= emb_channels``, ``win_k * emb_d <= p_i``, ``stride >= 1``).
    busy : ``Out(1)``
        High from the cycle after ``start`` until the last output word has been transferred.
    tw_addr, tw_data, tw_en : ``In``
        Table write port (entry ``c * 256 + pixel``, 16 bits), effective in the cycle ``tw_en`` is high.
    """

    def __init__(self, config):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"EmbeddingUnit config must be an AccelConfig, not {config!r}")
        self.config = config
        n = config.emb_channels * 256
        self.tables = [Memory(shape=unsigned(EMB_ENTRY_BITS), depth=256, init=[])
                       for _ in range(config.emb_channels)]
        super().__init__({
            "pixels": In(stream.Signature(32)),
            "out": Out(stream.Signature(config.code_word_bits)),
            "start": In(1),
            "n_pix": In(20),
            "n_words": In(20),
            "emb_c": In(3),
            "emb_d": In(4),
            "emb_q": In(3),
            "raw": In(1),
            "nsub": In(4),
            "win_k": In(4),
            "stride": In(2),
            "pad": In(2),
            "h_in": In(10),
            "w_in": In(10),
            "h_out": In(10),
            "w_out": In(10),
            "out_addr": Out(20),
            "busy": Out(1),
            "tw_addr": In(range(n)),
            "tw_data": In(EMB_ENTRY_BITS),
            "tw_en": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        p_i, nb, nch = cfg.p_i, cfg.a_planes, cfg.emb_channels

        run = Signal()
        win = Signal()         # window mode, latched at start
        words_left = Signal(20)
        pix_left = Signal(20)

        # --- byte assembler: up to 8 bytes; a pixel leaves when emb_c bytes are present ------------
        buf = Signal(64)
        cnt = Signal(range(9))
        v1 = Signal()          # stage 1: table read in flight
        bytes1 = Signal(8 * nch)
        chan_on1 = Signal(nch)  # stage 1: table channels whose codes reach the lanes
        a1 = Signal(20)        # stage 1, window mode: first destination and its window row/column
        ky1 = Signal(5)
        oy1 = Signal(10)
        out_valid = Signal()
        codes = [Signal(8, name=f"code{L}") for L in range(p_i)]  # output stage, per lane
        s = Signal(4)
        waddr = Signal(20)     # output stage: bank address of the word on ``out``
        kyc = Signal(5)        # output stage, window mode: window row and column of that address
        oyc = Signal(10)

        last_sub = s == self.nsub - 1
        last_dest = Signal()
        last = Mux(win, last_dest, last_sub)
        out_take = ~out_valid | (self.out.ready & last)
        en1 = ~v1 | out_take
        have_pix = (cnt >= self.emb_c) & (pix_left != 0)

        # --- window walker: the zero-padded image, one virtual pixel per step ----------------------
        # Geometry registers, set at start; the comparisons on the pixel path are registered
        # flags (col_in/row_in/ox_ok/row_dest) so that the input ``ready`` stays shallow.
        walking = Signal()
        # (w_out-1)*stride + k reaches 1022*3 + 15 with 10-bit w_out: 12 bits
        vx = Signal(12)
        vy = Signal(12)
        vw_last = Signal(12)   # last virtual column: max(pad + w_in, (w_out-1)*stride + k) - 1
        vh_last = Signal(12)
        x_hi = Signal(12)      # pad + w_in: first virtual column right of the image
        y_hi = Signal(12)
        col_in = Signal()
        row_in = Signal()
        inside = col_in & row_in
        phase = Signal(4)      # steps until the last tap of the next window in this row
        ox_ok = Signal()       # fewer than w_out windows emitted in this row
        oxk = Signal(20)       # ox * k
        # The row's first destination: window row oy_st, its row ky_st (>= k: none); each further
        # destination is the window above, ky + stride, at address - (w_out*k - stride).
        oy_st = Signal(10)
        ky_st = Signal(5)
        rowbase = Signal(20)   # oy_st * w_out * k
        row_dest = Signal()    # ky_st < k
        wk = Signal(20)        # w_out * k
        wks = Signal(20)       # w_out * k - stride
        hom1 = Signal(10)
        sm1 = Signal(2)
        taps = [Signal(8, name=f"tap{i}") for i in range(nch - 1)]     # taps[0]: previous pixel
        tpad = [Signal(name=f"tap{i}_pad") for i in range(nch - 1)]

        win_emit = (phase == 0) & ox_ok & row_dest
        step = Signal()
        m.d.comb += step.eq(run & win & walking & (~inside | have_pix) & (~win_emit | en1))
        emit = Signal()
        m.d.comb += emit.eq(run & Mux(win, step & inside, have_pix & en1))

        after = Signal(range(9))
        m.d.comb += after.eq(cnt - Mux(emit, self.emb_c, 0))
        accept = run & (words_left != 0) & (after <= 4)
        m.d.comb += self.pixels.ready.eq(accept)
        take_word = accept & self.pixels.valid

        shifted = Signal(64)
        with m.Switch(Mux(emit, self.emb_c, 0)):
            for c in range(5):
                with m.Case(c):
                    m.d.comb += shifted.eq(buf >> (8 * c))
        merged = Signal(64)
        m.d.comb += merged.eq(shifted)
        with m.If(take_word):
            with m.Switch(after):
                for k in range(5):
                    with m.Case(k):
                        m.d.comb += merged.eq(shifted | (self.pixels.payload << (8 * k)))
        with m.If(run):
            m.d.sync += [buf.eq(merged), cnt.eq(after + Mux(take_word, 4, 0))]
        with m.If(take_word):
            m.d.sync += words_left.eq(words_left - 1)
        with m.If(emit):
            m.d.sync += pix_left.eq(pix_left - 1)

        with m.If(step):
            if nch > 1:
                m.d.sync += [taps[0].eq(buf[:8]), tpad[0].eq(~inside)]
                m.d.sync += [taps[i].eq(taps[i - 1]) for i in range(1, nch - 1)]
                m.d.sync += [tpad[i].eq(tpad[i - 1]) for i in range(1, nch - 1)]
            with m.If(vx == vw_last):
                m.d.sync += [vx.eq(0), vy.eq(vy + 1), phase.eq(self.win_k - 1), ox_ok.eq(1),
                             oxk.eq(0), col_in.eq(self.pad == 0),
                             row_in.eq((vy + 1 >= self.pad) & (vy + 1 < y_hi))]
                with m.If(vy == vh_last):
                    m.d.sync += walking.eq(0)
                with m.If((oy_st != hom1) & (ky_st == sm1)):
                    m.d.sync += [oy_st.eq(oy_st + 1), ky_st.eq(0), rowbase.eq(rowbase + wk),
                                 row_dest.eq(1)]
                with m.Else():
                    m.d.sync += [ky_st.eq(Mux(ky_st == 31, 31, ky_st + 1)),
                                 row_dest.eq(ky_st + 1 < self.win_k)]
            with m.Else():
                m.d.sync += [vx.eq(vx + 1), col_in.eq((vx + 1 >= self.pad) & (vx + 1 < x_hi)),
                             phase.eq(Mux(phase == 0, sm1, phase - 1))]
                with m.If((phase == 0) & ox_ok):
                    m.d.sync += [oxk.eq(oxk + self.win_k),
                                 ox_ok.eq(oxk + self.win_k != wk)]

        # --- stage 1: table look-ups (one block RAM per channel) -----------------------------------
        # Window mode: table kx looks up tap kx of the window row ending at this pixel (the
        # current byte is tap k-1, taps[i] is tap k-2-i); a tap in the padding is switched off.
        rdata = []
        chan_on = Signal(nch)
        for c, mem in enumerate(self.tables):
            m.submodules[f"table{c}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            tap_byte = Signal(8, name=f"win_byte{c}")
            tap_off = Signal(init=1, name=f"win_off{c}")
            with m.Switch(self.win_k):
                for kv in range(c + 1, nch + 1):
                    with m.Case(kv):
                        if c == kv - 1:
                            m.d.comb += [tap_byte.eq(buf[:8]), tap_off.eq(~inside)]
                        else:
                            m.d.comb += [tap_byte.eq(taps[kv - 2 - c]), tap_off.eq(tpad[kv - 2 - c])]
            m.d.comb += [
                wp.addr.eq(self.tw_addr[:8]),
                wp.data.eq(self.tw_data),
                wp.en.eq(self.tw_en & ((self.tw_addr >> 8) == c)),
                rp.addr.eq(Mux(win, tap_byte, buf[8 * c:8 * c + 8])),
                rp.en.eq(en1),
                chan_on[c].eq(Mux(win, ~tap_off, c < self.emb_c)),
            ]
            rdata.append(rp.data)
        with m.If(en1):
            m.d.sync += [v1.eq(Mux(win, step & win_emit, emit)), bytes1.eq(buf[:8 * nch]),
                         chan_on1.eq(chan_on), a1.eq(rowbase + oxk + ky_st), ky1.eq(ky_st),
                         oy1.eq(oy_st)]

        # --- lane codes: lane c*d + j <- entry c bits [j*q, (j+1)*q); raw: lane c <- pixel c --------
        # d and q are constant during a run, so these multiplexers are off the timing path.
        lane = [Signal(8, name=f"lane{L}") for L in range(p_i)]
        for L in range(p_i):
            with m.If(self.raw):
                if L < nch:
                    m.d.comb += lane[L].eq(Mux(L < self.emb_c, bytes1[8 * L:8 * L + 8], 0))
            with m.Else():
                with m.Switch(Cat(self.emb_q, self.emb_d)):
                    for dv in range(1, 16):
                        c, j = divmod(L, dv)
                        if c >= nch:
                            continue
                        for qv in range(1, min(nb, 8) + 1):
                            if dv * qv > EMB_ENTRY_BITS:
                                continue
                            with m.Case(qv | (dv << 3)):
                                code = rdata[c][j * qv:(j + 1) * qv]
                                m.d.comb += lane[L].eq(Mux(chan_on1[c], code, 0))

        # --- output stage: nsub sub-words per pixel, or one word per window destination ------------
        # last_dest (no further window above, or its row would be >= k) is a register: it feeds
        # the pixel path's enables.
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += s.eq(Mux(last_sub, 0, s + 1))
            with m.If(~win):
                m.d.sync += waddr.eq(waddr + 1)
            with m.Elif(~last_dest):
                m.d.sync += [waddr.eq(waddr - wks), kyc.eq(kyc + self.stride), oyc.eq(oyc - 1),
                             last_dest.eq((kyc + (self.stride << 1) >= self.win_k) | (oyc == 1))]
        with m.If(out_take):
            m.d.sync += out_valid.eq(v1)
            with m.If(v1):
                m.d.sync += [codes[L].eq(lane[L]) for L in range(p_i)]
                with m.If(win):
                    m.d.sync += [waddr.eq(a1), kyc.eq(ky1), oyc.eq(oy1),
                                 last_dest.eq((ky1 + self.stride >= self.win_k) | (oy1 == 0))]
        m.d.comb += [self.out.valid.eq(out_valid), self.out_addr.eq(waddr)]
        # s * a_planes kept as a running offset (no multiplier)
        s_off = Signal(range(8 * nb + 8))
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += s_off.eq(Mux(last_sub, 0, s_off + nb))
        bits = []
        for b in range(nb):
            for L in range(p_i):
                bits.append((codes[L] >> (s_off + b))[0])
        m.d.comb += self.out.payload.eq(Cat(*bits))

        # --- run control ----------------------------------------------------------------------------
        # Window geometry: products by stride (1..3) and k (1..emb_channels) as shifts and adds,
        # in two register stages that follow the (stable) parameters every cycle; a run begins
        # SETUP_CYCLES after ``start``, when both stages hold its values. (In one cycle, from
        # the descriptor to the walker's limits, these were the SoC's critical path.)
        def times_small(x, y, bits):
            return sum(Mux(y[b], x << b, 0) for b in range(bits))
        k_bits = max(1, nch.bit_length())
        w_cover_m1 = Signal(12)   # (w_out - 1) * stride + k - 1: last virtual column windows cover
        h_cover_m1 = Signal(12)
        xh_m1 = Signal(12)        # pad + w_in - 1: last virtual column of the image
        yh_m1 = Signal(12)
        wk_a = Signal(20)
        m.d.sync += [w_cover_m1.eq(times_small(self.w_out - 1, self.stride, 2) + self.win_k - 1),
                     h_cover_m1.eq(times_small(self.h_out - 1, self.stride, 2) + self.win_k - 1),
                     xh_m1.eq(self.pad + self.w_in - 1), yh_m1.eq(self.pad + self.h_in - 1),
                     wk_a.eq(times_small(self.w_out, self.win_k, k_bits))]
        vw_last_b = Signal(12)
        vh_last_b = Signal(12)
        wk_b = Signal(20)
        wks_b = Signal(20)
        m.d.sync += [vw_last_b.eq(Mux(xh_m1 > w_cover_m1, xh_m1, w_cover_m1)),
                     vh_last_b.eq(Mux(yh_m1 > h_cover_m1, yh_m1, h_cover_m1)),
                     wk_b.eq(wk_a), wks_b.eq(wk_a - self.stride)]
        setup = Signal(range(SETUP_CYCLES + 1))
        with m.If(self.start):
            m.d.sync += setup.eq(SETUP_CYCLES)
        with m.Elif(setup != 0):
            m.d.sync += setup.eq(setup - 1)
        with m.If(setup == 1):
            m.d.sync += [run.eq(1), words_left.eq(self.n_words), pix_left.eq(self.n_pix),
                         cnt.eq(0), s.eq(0), s_off.eq(0), waddr.eq(0),
                         win.eq(self.win_k != 0), walking.eq(self.win_k != 0),
                         vx.eq(0), vy.eq(0), phase.eq(self.win_k - 1), ox_ok.eq(1), oxk.eq(0),
                         oy_st.eq(0), ky_st.eq(0), rowbase.eq(0), row_dest.eq(1),
                         col_in.eq(self.pad == 0), row_in.eq(self.pad == 0),
                         x_hi.eq(xh_m1 + 1), y_hi.eq(yh_m1 + 1),
                         vw_last.eq(vw_last_b), vh_last.eq(vh_last_b),
                         wk.eq(wk_b), wks.eq(wks_b),
                         hom1.eq(self.h_out - 1), sm1.eq(self.stride - 1)]
        with m.Elif(run & (pix_left == 0) & (words_left == 0) & ~walking & ~v1 & ~out_valid):
            m.d.sync += run.eq(0)
        m.d.comb += self.busy.eq(run | (setup != 0))
        return m
