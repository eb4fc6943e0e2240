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

from amaranth.hdl import Module, Signal, Cat, Const, Mux, signed, unsigned
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out
from amaranth.lib.memory import Memory

from contract.config import AccelConfig, EMB_ENTRY_BITS
from .synthesis import NO_COLLISIONS


__all__ = ["EmbeddingUnit", "SETUP_CYCLES"]


SETUP_CYCLES = 2   # from ``start`` until a run begins: the geometry's two register stages
BUF_BYTES = 12     # the byte assembler: 8 held + one word, so ``pixels.ready`` needs no look-ahead
RING_BYTES = 16    # ... kept in a ring of 16 bytes (4-bit pointers wrap by themselves)


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
        # No read needs an entry written in the same cycle: the tables are loaded (LOAD) before
        # an EMBED reads them, and an EMBED waits for the DMA to be idle. NO_COLLISIONS keeps
        # Yosys' old-word emulation (soft logic on every read-data bit) off the block RAMs, so
        # that stage 2's registers become their output registers.
        self.tables = [Memory(shape=unsigned(EMB_ENTRY_BITS), depth=256, init=[],
                              attrs=NO_COLLISIONS)
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

        # Timing structure (why the unit looks the way it does): every enable and every stream
        # ``ready`` is a function of registers a few LUTs deep. ``pixels.ready`` depends on
        # registers only (``cnt``, ``words_more``), which the 12-byte buffer allows without losing
        # a pixel per cycle; conditions the walker tests (last column, last row, last window of a
        # row, pixels left) are flags computed one step ahead; the byte buffer is a ring whose
        # read pointer is all that ``emit`` moves, and its counters' sums are computed for every
        # outcome and chosen by ``emit`` last; the tables' addresses are registered (stage 0)
        # before the block RAMs, and their output (stage 2) before the lane multiplexers.
        run = Signal()
        win = Signal()         # window mode, latched at start
        words_left = Signal(20)
        words_more = Signal()  # words_left != 0
        # Pixels left, counted a cycle late (emit_q, emit registered, decrements it) so that
        # ``emit`` drives no counter: the pixels left before this cycle's emit are
        # pix_left - emit_q, tested through flags kept with the counter (nz<k>: pix_left != k).
        pix_left = Signal(20)
        emit_q = Signal()
        nz0 = Signal()
        nz1 = Signal()
        nz2 = Signal()
        pix_more = Signal()    # pixels left before this cycle's emit
        m.d.comb += pix_more.eq(Mux(emit_q, nz1, nz0))

        # --- byte assembler: up to 12 bytes; a pixel leaves when emb_c bytes are present -----------
        # A ring with a read and a write pointer: a word is written at the write pointer, a
        # pixel leaves by moving the read pointer, so ``emit`` drives a 4-bit pointer rather than
        # the enables of a 96-bit shift register (its fan-out, spread between the DMA side and
        # the tables, was the 64x32 SoC's critical path); the pixel's bytes are selected from
        # the ring by the read pointer, a register.
        ring = [Signal(8, name=f"ring{i}") for i in range(RING_BYTES)]
        r_ptr = Signal(4)
        w_ptr = Signal(4)
        front = [Signal(8, name=f"front{i}") for i in range(max(nch, 1))]   # bytes r_ptr + i
        for i, f in enumerate(front):
            with m.Switch(r_ptr):
                for r in range(RING_BYTES):
                    with m.Case(r):
                        m.d.comb += f.eq(ring[(r + i) % RING_BYTES])
        buf = Cat(*front)      # the next pixel's bytes, oldest first
        cnt = Signal(range(BUF_BYTES + 1))
        cnt_mc = Signal(signed(5))   # cnt - emb_c: a pixel's bytes are present when >= 0
        cnt_mce = Signal(signed(5))  # cnt_mc - emb_c: the value after a pixel leaves
        v0 = Signal()          # stage 0: the pixel's table addresses, registered
        addr0 = [Signal(8, name=f"addr0_{c}") for c in range(nch)]
        bytes0 = Signal(8 * nch)
        chan_on0 = Signal(nch)
        a0 = Signal(20)
        ky0 = Signal(5)
        oy0 = Signal(10)
        v1 = Signal()          # stage 1: table read in flight
        bytes1 = Signal(8 * nch)
        chan_on1 = Signal(nch)  # stage 1: table channels whose codes reach the lanes
        a1 = Signal(20)        # stage 1, window mode: first destination and its window row/column
        ky1 = Signal(5)
        oy1 = Signal(10)
        v2 = Signal()          # stage 2: the tables' output, registered
        # reset-less and loaded straight from the read port, so that the build moves them into
        # the block RAMs' output registers (accel/bram_outreg.py; with a reset they were left
        # in logic, behind the tables' 5.8 ns clock-to-output); v2 says when they hold data
        rdata2 = [Signal(EMB_ENTRY_BITS, name=f"rdata2_{c}", reset_less=True) for c in range(nch)]
        bytes2 = Signal(8 * nch)
        chan_on2 = Signal(nch)
        a2 = Signal(20)
        ky2 = Signal(5)
        oy2 = Signal(10)
        out_valid = Signal()
        codes = [Signal(8, name=f"code{L}") for L in range(p_i)]  # output stage, per lane
        s = Signal(4)
        waddr = Signal(20)     # output stage: bank address of the word on ``out``
        kyc = Signal(5)        # output stage, window mode: window row and column of that address
        oyc = Signal(10)

        # The run's parameters, latched at ``start``: the engine derives them from the descriptor
        # through its own logic, which should not lengthen the paths to this unit's enables.
        p_emb_c = Signal.like(self.emb_c)
        p_nsub_m1 = Signal.like(self.nsub)
        p_win_k = Signal.like(self.win_k)
        p_stride = Signal.like(self.stride)
        p_pad = Signal.like(self.pad)
        p_emb_d = Signal.like(self.emb_d)
        p_emb_q = Signal.like(self.emb_q)
        p_raw = Signal.like(self.raw)
        with m.If(self.start):
            m.d.sync += [p_emb_c.eq(self.emb_c), p_nsub_m1.eq(self.nsub - 1),
                         p_win_k.eq(self.win_k), p_stride.eq(self.stride), p_pad.eq(self.pad),
                         p_emb_d.eq(self.emb_d), p_emb_q.eq(self.emb_q), p_raw.eq(self.raw)]

        last_sub = s == p_nsub_m1
        # The word on ``out`` is its pixel's last sub-word (window mode: its window row's last
        # destination): a register, written with ``s`` and the destination walk, since it feeds
        # every enable of the pipeline.
        last = Signal()
        out_take = ~out_valid | (self.out.ready & last)
        en2 = ~v2 | out_take
        en1 = ~v1 | en2
        en0 = ~v0 | en1
        # A pixel's bytes are present and pixels remain (cnt_mc >= 0 and pix_more): a register,
        # written with them for both outcomes of emit (it starts every enable of the unit).
        have_pix = Signal()

        # --- window walker: the zero-padded image, one virtual pixel per step ----------------------
        # Geometry registers, set at start; the comparisons on the pixel path are registered
        # flags (inside/row_in/ox_ok/row_dest/vx_last/vy_last) so that the enables stay shallow.
        walking = Signal()
        # (w_out-1)*stride + k reaches 1022*3 + 15 with 10-bit w_out: 12 bits
        vx = Signal(12)
        vy = Signal(12)
        vx_last = Signal()     # vx == vw_last (last virtual column)
        vy_last = Signal()
        vw_last_m1 = Signal(12)  # last virtual column - 1: max(pad + w_in, (w_out-1)*stride + k) - 2
        vh_last_m1 = Signal(12)
        vw_zero = Signal()       # a one-column walk
        x_hi = Signal(12)      # pad + w_in: first virtual column right of the image
        y_hi = Signal(12)
        row_in = Signal()
        # inside (the virtual pixel's column and row are in the image) and phase_zero & ox_ok &
        # row_dest as registers of their own, written with their parts: they start the step and
        # emit decisions, which enable most of the unit (the ANDs in front were two more logic
        # levels on the 64x32 SoC's critical path)
        inside = Signal()
        phase = Signal(4)      # steps until the last tap of the next window in this row
        phase_zero = Signal()  # phase == 0, written with phase
        ox = Signal(10)        # windows emitted in this row
        ox_ok = Signal()       # ox < w_out
        oxk = Signal(20)       # ox * k
        # The row's first destination: window row oy_st, its row ky_st (>= k: none); each further
        # destination is the window above, ky + stride, at address - (w_out*k - stride).
        oy_st = Signal(10)
        ky_st = Signal(5)
        rowbase = Signal(20)   # oy_st * w_out * k
        row_dest = Signal()    # ky_st < k
        wk = Signal(20)        # w_out * k
        wks = Signal(20)       # w_out * k - stride
        wom1 = Signal(10)      # w_out - 1
        hom1 = Signal(10)
        sm1 = Signal(2)
        taps = [Signal(8, name=f"tap{i}") for i in range(nch - 1)]     # taps[0]: previous pixel
        tpad = [Signal(name=f"tap{i}_pad") for i in range(nch - 1)]

        win_emit = Signal()
        step = Signal()
        m.d.comb += step.eq(run & win & walking & (~inside | have_pix) & (~win_emit | en0))
        emit = Signal()
        m.d.comb += emit.eq(run & Mux(win, step & inside, have_pix & en0))

        # Accept a word while at most 8 bytes are held: from registers only, and with room for
        # four more bytes whether or not a pixel leaves in the same cycle.
        accept = run & words_more & (cnt <= BUF_BYTES - 4)
        m.d.comb += self.pixels.ready.eq(accept)
        take_word = accept & self.pixels.valid

        # A word's byte k goes to ring byte w_ptr + k (from the write pointer, a register, and
        # take_word only: emit plays no part).
        for i in range(RING_BYTES):
            with m.Switch(w_ptr):
                for w in range(RING_BYTES):
                    k = (i - w) % RING_BYTES
                    if k < 4:
                        with m.Case(w):
                            with m.If(take_word):
                                m.d.sync += ring[i].eq(self.pixels.payload[8 * k:8 * k + 8])
        with m.If(take_word):
            m.d.sync += w_ptr.eq(w_ptr + 4)
        with m.If(emit):
            m.d.sync += r_ptr.eq(r_ptr + p_emb_c)
        with m.If(run):
            # The counters' sums for all four outcomes of (emit, take_word), from registers only:
            # emit and take_word (the stream's valid, from the DMA's side of the chip) only
            # select, so that neither precedes a carry chain. cnt_mce = cnt_mc - emb_c is kept
            # as a register of its own for the same reason.
            def pick(dropped, kept):
                # (dropped, kept): each a pair (without the word, with it)
                return Mux(emit, Mux(take_word, dropped[1], dropped[0]),
                           Mux(take_word, kept[1], kept[0]))
            mc_keep = (cnt_mc, Signal.like(cnt_mc, name="mc_keep4"))
            mc_drop = (cnt_mce, Signal.like(cnt_mc, name="mc_drop4"))
            mce_keep = (cnt_mce, mc_drop[1])
            mce_drop = (Signal.like(cnt_mc, name="mce_drop0"), Signal.like(cnt_mc, name="mce_drop4"))
            cnt4 = Signal.like(cnt, name="cnt4")
            m.d.comb += [mc_keep[1].eq(cnt_mc + 4), mc_drop[1].eq(cnt_mce + 4),
                         mce_drop[0].eq(cnt_mce - p_emb_c), mce_drop[1].eq(cnt_mce - p_emb_c + 4),
                         cnt4.eq(cnt + 4)]
            # pixels left after this cycle's emit, if it emits
            more_after = Mux(emit_q, nz2, nz1)
            m.d.sync += [cnt.eq(pick((cnt_mc, mc_keep[1]), (cnt, cnt4))),
                         cnt_mc.eq(pick(mc_drop, mc_keep)),
                         cnt_mce.eq(pick(mce_drop, mce_keep)),
                         have_pix.eq(Mux(emit,
                                         Mux(take_word, ~mc_drop[1][-1], ~mc_drop[0][-1]) & more_after,
                                         Mux(take_word, ~mc_keep[1][-1], ~mc_keep[0][-1]) & pix_more))]
        with m.If(take_word):
            m.d.sync += [words_left.eq(words_left - 1), words_more.eq(words_left != 1)]
        m.d.sync += emit_q.eq(emit)
        with m.If(emit_q):
            m.d.sync += [pix_left.eq(pix_left - 1), nz0.eq(nz1), nz1.eq(nz2), nz2.eq(pix_left != 3)]

        with m.If(step):
            if nch > 1:
                m.d.sync += [taps[0].eq(buf[:8]), tpad[0].eq(~inside)]
                m.d.sync += [taps[i].eq(taps[i - 1]) for i in range(1, nch - 1)]
                m.d.sync += [tpad[i].eq(tpad[i - 1]) for i in range(1, nch - 1)]
            with m.If(vx_last):
                m.d.sync += [vx.eq(0), vx_last.eq(vw_zero), vy.eq(vy + 1),
                             vy_last.eq(vy == vh_last_m1),
                             phase.eq(p_win_k - 1), phase_zero.eq(p_win_k == 1),
                             ox.eq(0), ox_ok.eq(1),
                             oxk.eq(0)]
                col_in_n = p_pad == 0
                row_in_n = (vy + 1 >= p_pad) & (vy + 1 < y_hi)
                m.d.sync += [row_in.eq(row_in_n), inside.eq(col_in_n & row_in_n)]
                with m.If(vy_last):
                    m.d.sync += walking.eq(0)
                with m.If((oy_st != hom1) & (ky_st == sm1)):
                    m.d.sync += [oy_st.eq(oy_st + 1), ky_st.eq(0), rowbase.eq(rowbase + wk),
                                 row_dest.eq(1), win_emit.eq(p_win_k == 1)]
                with m.Else():
                    row_dest_n = ky_st + 1 < p_win_k
                    m.d.sync += [ky_st.eq(Mux(ky_st == 31, 31, ky_st + 1)),
                                 row_dest.eq(row_dest_n), win_emit.eq((p_win_k == 1) & row_dest_n)]
            with m.Else():
                col_in_n = (vx + 1 >= p_pad) & (vx + 1 < x_hi)
                phase_zero_n = Mux(phase_zero, sm1 == 0, phase == 1)
                ox_ok_n = Mux(phase_zero & ox_ok, ox != wom1, ox_ok)
                m.d.sync += [vx.eq(vx + 1), vx_last.eq(vx == vw_last_m1),
                             inside.eq(col_in_n & row_in),
                             phase.eq(Mux(phase_zero, sm1, phase - 1)),
                             phase_zero.eq(phase_zero_n), ox_ok.eq(ox_ok_n),
                             win_emit.eq(phase_zero_n & ox_ok_n & row_dest)]
                with m.If(phase_zero & ox_ok):
                    m.d.sync += [ox.eq(ox + 1), oxk.eq(oxk + p_win_k)]

        # --- stage 0: the tables' addresses ------------------------------------------------------
        # Window mode: table kx looks up tap kx of the window row ending at this pixel (the
        # current byte is tap k-1, taps[i] is tap k-2-i); a tap in the padding is switched off.
        # The addresses are registered before the block RAMs: the ring's read multiplexer
        # (16:1 by r_ptr) and the window-mode choice in front of the tables' address inputs,
        # spread over the chip with the tables, were the 64x32 SoC's critical path.
        chan_on = Signal(nch)
        for c in range(nch):
            tap_byte = Signal(8, name=f"win_byte{c}")
            tap_off = Signal(init=1, name=f"win_off{c}")
            with m.Switch(p_win_k):
                for kv in range(c + 1, nch + 1):
                    with m.Case(kv):
                        if c == kv - 1:
                            m.d.comb += [tap_byte.eq(buf[:8]), tap_off.eq(~inside)]
                        else:
                            m.d.comb += [tap_byte.eq(taps[kv - 2 - c]), tap_off.eq(tpad[kv - 2 - c])]
            m.d.comb += chan_on[c].eq(Mux(win, ~tap_off, c < p_emb_c))
            with m.If(en0):
                m.d.sync += addr0[c].eq(Mux(win, tap_byte, buf[8 * c:8 * c + 8]))
        with m.If(en0):
            m.d.sync += [v0.eq(Mux(win, step & win_emit, emit)), bytes0.eq(buf[:8 * nch]),
                         chan_on0.eq(chan_on), a0.eq(rowbase + oxk + ky_st), ky0.eq(ky_st),
                         oy0.eq(oy_st)]

        # --- stage 1: table look-ups (one block RAM per channel) -----------------------------------
        for c, mem in enumerate(self.tables):
            m.submodules[f"table{c}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [
                wp.addr.eq(self.tw_addr[:8]),
                wp.data.eq(self.tw_data),
                wp.en.eq(self.tw_en & ((self.tw_addr >> 8) == c)),
                rp.addr.eq(addr0[c]),
                rp.en.eq(en1),
            ]
            # stage 2: the block RAM's output straight into registers (its clock-to-output is
            # most of a 100 MHz cycle)
            with m.If(en2):
                m.d.sync += rdata2[c].eq(rp.data)
        with m.If(en1):
            m.d.sync += [v1.eq(v0), bytes1.eq(bytes0), chan_on1.eq(chan_on0), a1.eq(a0),
                         ky1.eq(ky0), oy1.eq(oy0)]
        with m.If(en2):
            m.d.sync += [v2.eq(v1), bytes2.eq(bytes1), chan_on2.eq(chan_on1), a2.eq(a1),
                         ky2.eq(ky1), oy2.eq(oy1)]

        # --- lane codes: lane c*d + j <- entry c bits [j*q, (j+1)*q); raw: lane c <- pixel c --------
        # d and q are constant during a run, so these multiplexers' selects are off the timing path.
        lane = [Signal(8, name=f"lane{L}") for L in range(p_i)]
        for L in range(p_i):
            with m.If(p_raw):
                if L < nch:
                    m.d.comb += lane[L].eq(Mux(L < p_emb_c, bytes2[8 * L:8 * L + 8], 0))
            with m.Else():
                with m.Switch(Cat(p_emb_q, p_emb_d)):
                    for dv in range(1, 16):
                        c, j = divmod(L, dv)
                        if c >= nch:
                            continue
                        for qv in range(1, min(nb, 8) + 1):
                            if dv * qv > EMB_ENTRY_BITS:
                                continue
                            with m.Case(qv | (dv << 3)):
                                code = rdata2[c][j * qv:(j + 1) * qv]
                                m.d.comb += lane[L].eq(Mux(chan_on2[c], code, 0))

        # --- output stage: nsub sub-words per pixel, or one word per window destination ------------
        # Window mode: the last destination when no further window is above, or its row would
        # be >= k.
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += s.eq(Mux(last_sub, 0, s + 1))
            with m.If(~win):
                m.d.sync += [waddr.eq(waddr + 1),
                             last.eq(Mux(last_sub, p_nsub_m1 == 0, s + 1 == p_nsub_m1))]
            with m.Elif(~last):
                m.d.sync += [waddr.eq(waddr - wks), kyc.eq(kyc + p_stride), oyc.eq(oyc - 1),
                             last.eq((kyc + (p_stride << 1) >= p_win_k) | (oyc == 1))]
        with m.If(out_take):
            m.d.sync += out_valid.eq(v2)
            with m.If(v2):
                m.d.sync += [codes[L].eq(lane[L]) for L in range(p_i)]
                with m.If(win):
                    m.d.sync += [waddr.eq(a2), kyc.eq(ky2), oyc.eq(oy2),
                                 last.eq((ky2 + p_stride >= p_win_k) | (oy2 == 0))]
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
            m.d.sync += [run.eq(1), words_left.eq(self.n_words), words_more.eq(self.n_words != 0),
                         pix_left.eq(self.n_pix), emit_q.eq(0), nz0.eq(self.n_pix != 0),
                         nz1.eq(self.n_pix != 1), nz2.eq(self.n_pix != 2),
                         r_ptr.eq(0), w_ptr.eq(0), cnt.eq(0), cnt_mc.eq(-self.emb_c), cnt_mce.eq(-2 * self.emb_c),
                         have_pix.eq((self.emb_c == 0) & (self.n_pix != 0)),
                         s.eq(0), s_off.eq(0), waddr.eq(0), last.eq(p_nsub_m1 == 0),
                         win.eq(self.win_k != 0), walking.eq(self.win_k != 0),
                         vx.eq(0), vy.eq(0), vx_last.eq(vw_last_b == 0), vy_last.eq(vh_last_b == 0),
                         phase.eq(self.win_k - 1), phase_zero.eq(self.win_k == 1),
                         ox.eq(0), ox_ok.eq(1), oxk.eq(0),
                         oy_st.eq(0), ky_st.eq(0), rowbase.eq(0), row_dest.eq(1),
                         row_in.eq(self.pad == 0), inside.eq(self.pad == 0),
                         win_emit.eq(self.win_k == 1),
                         x_hi.eq(xh_m1 + 1), y_hi.eq(yh_m1 + 1),
                         vw_last_m1.eq(vw_last_b - 1), vh_last_m1.eq(vh_last_b - 1),
                         vw_zero.eq(vw_last_b == 0),
                         wk.eq(wk_b), wks.eq(wks_b), wom1.eq(self.w_out - 1),
                         hom1.eq(self.h_out - 1), sm1.eq(self.stride - 1)]
        with m.Elif(run & ~pix_more & ~words_more & ~walking & ~v0 & ~v1 & ~v2 & ~out_valid):
            m.d.sync += run.eq(0)
        m.d.comb += self.busy.eq(run | (setup != 0))
        return m
