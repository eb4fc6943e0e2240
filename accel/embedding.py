"""The embedding unit: image bytes in, packed code-bank words out (the EMBED descriptor).

Input: 32-bit words of HWC bytes (four per word, little-endian; the last word zero-padded).
Output: for each pixel, ``nsub`` code-bank words (``a_planes`` bit-planes of ``p_i`` lanes) in bank
order ``pix * nsub + s``. Lane ``c*d + j`` holds ``table[c][pixel_c]`` bits ``[j*q, (j+1)*q)``
(docs/ARCHITECTURE.md 1 and 3.1), or in ``raw`` mode lane ``c`` holds the 8-bit pixel itself;
sub-word ``s`` holds bits ``[s*a_planes, (s+1)*a_planes)`` of each lane's code.

The table lives in one 256 x 16 block RAM per image channel, so that all channels of a pixel are
looked up in the same cycle: one pixel per cycle when ``nsub == 1``.
"""

from amaranth.hdl import Module, Signal, Cat, Const, Mux, unsigned
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out
from amaranth.lib.memory import Memory

from .config import AccelConfig, EMB_ENTRY_BITS


__all__ = ["EmbeddingUnit"]


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
        Code words in bank order (``pix * nsub + s``), ``n_pix * nsub`` per run.
    start : ``In(1)``
        Pulse: begin a run with the parameters below (held stable during the run).
    n_pix, n_words : ``In(20)``
        Pixels (``h * w``) and input words (``ceil(h * w * emb_c / 4)``) of the run.
    emb_c, emb_d, emb_q, raw, nsub : ``In``
        Descriptor fields (checked by the engine: ``emb_c * emb_d <= p_i``, ``emb_d * emb_q <= 16``).
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
        words_left = Signal(20)
        pix_left = Signal(20)

        # --- byte assembler: up to 8 bytes; a pixel leaves when emb_c bytes are present ------------
        buf = Signal(64)
        cnt = Signal(range(9))
        v1 = Signal()          # stage 1: table read in flight
        bytes1 = Signal(8 * nch)
        out_valid = Signal()
        codes = [Signal(8, name=f"code{L}") for L in range(p_i)]  # output stage, per lane
        s = Signal(4)

        last_sub = s == self.nsub - 1
        out_take = ~out_valid | (self.out.ready & last_sub)
        en1 = ~v1 | out_take
        emit = run & (cnt >= self.emb_c) & (pix_left != 0) & en1
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

        # --- stage 1: table look-ups (one block RAM per channel) -----------------------------------
        rdata = []
        for c, mem in enumerate(self.tables):
            m.submodules[f"table{c}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [
                wp.addr.eq(self.tw_addr[:8]),
                wp.data.eq(self.tw_data),
                wp.en.eq(self.tw_en & ((self.tw_addr >> 8) == c)),
                rp.addr.eq(buf[8 * c:8 * c + 8]),
                rp.en.eq(en1),
            ]
            rdata.append(rp.data)
        with m.If(en1):
            m.d.sync += [v1.eq(emit), bytes1.eq(buf[:8 * nch])]

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
                                m.d.comb += lane[L].eq(Mux(c < self.emb_c, code, 0))

        # --- output stage: nsub sub-words per pixel -------------------------------------------------
        with m.If(out_take):
            m.d.sync += out_valid.eq(v1)
            with m.If(v1):
                m.d.sync += [codes[L].eq(lane[L]) for L in range(p_i)]
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += s.eq(Mux(last_sub, 0, s + 1))
        m.d.comb += self.out.valid.eq(out_valid)
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
        with m.If(self.start):
            m.d.sync += [run.eq(1), words_left.eq(self.n_words), pix_left.eq(self.n_pix),
                         cnt.eq(0), s.eq(0), s_off.eq(0)]
        with m.Elif(run & (pix_left == 0) & (words_left == 0) & ~v1 & ~out_valid):
            m.d.sync += run.eq(0)
        m.d.comb += self.busy.eq(run)
        return m
