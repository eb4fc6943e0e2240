"""The embedding unit's byte assembler: 32-bit image words in, one pixel's channel bytes out."""

from amaranth.hdl import Module, Signal, Cat, Mux, signed
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out


__all__ = ["PixelByteRing", "HELD_BYTES", "RING_BYTES"]


HELD_BYTES = 12    # 8 held + one word, so that ``words.ready`` needs no look-ahead
RING_BYTES = 16    # ... kept in a ring of 16 bytes (4-bit pointers wrap by themselves)


class PixelByteRing(wiring.Component):
    """Bytes of 32-bit image words, handed out ``bytes_per_pixel`` at a time.

    A ring of bytes with a read and a write pointer: a word is written at the write pointer, a
    pixel leaves by moving the read pointer, so ``take_pixel`` drives a 4-bit pointer rather than
    the enables of a wide shift register, and the pixel's bytes are selected from the ring by the
    read pointer, a register. ``words.ready`` and ``pixel_present`` are registers or functions of
    registers only: the byte counters' sums are computed for every outcome of (``take_pixel``, a
    word taken) and chosen by them last, so neither precedes a carry chain.

    Parameters
    ----------
    max_bytes_per_pixel : int
        Bytes on ``pixel`` (the embedding unit's table count, at least 1).

    Members
    -------
    words : ``In(stream.Signature(32))``
        Image bytes, four per word, little-endian. Exactly ``n_words`` are taken per run.
    load : ``In(1)``
        Begin a run (while ``active`` is low): the counters take ``n_words``, ``n_pix`` and
        ``bytes_per_pixel``.
    active : ``In(1)``
        The run is on: words are taken and the counters move only while it is high.
    n_words, n_pix : ``In(20)``
        Words and pixels of the run, read at ``load``.
    bytes_per_pixel : ``In(3)``
        Bytes per pixel (the descriptor's ``emb_c``), read at ``load``.
    bytes_per_pixel_held : ``In(3)``
        The same value from a register of the run's parameters, used by the read pointer and the
        counters during the run.
    pixel : ``Out(8 * max_bytes_per_pixel)``
        The next pixel's bytes, oldest first (the first ``bytes_per_pixel`` are its bytes).
    pixel_present : ``Out(1)``
        ``pixel`` holds a pixel's bytes and pixels remain (a register).
    take_pixel : ``In(1)``
        The pixel on ``pixel`` leaves. Only while ``pixel_present`` and ``active``.
    pixels_left : ``Out(1)``
        Pixels remain to be taken (before this cycle's ``take_pixel``).
    words_left : ``Out(1)``
        Words remain to be taken (a register).
    """

    def __init__(self, max_bytes_per_pixel):
        if not isinstance(max_bytes_per_pixel, int) or isinstance(max_bytes_per_pixel, bool):
            raise TypeError(f"max_bytes_per_pixel must be an int, not {max_bytes_per_pixel!r}")
        if not 1 <= max_bytes_per_pixel <= 7:
            raise ValueError(f"max_bytes_per_pixel must be 1..7, not {max_bytes_per_pixel}")
        self.max_bytes_per_pixel = max_bytes_per_pixel
        super().__init__({
            "words": In(stream.Signature(32)),
            "load": In(1), "active": In(1),
            "n_words": In(20), "n_pix": In(20),
            "bytes_per_pixel": In(3), "bytes_per_pixel_held": In(3),
            "pixel": Out(8 * max_bytes_per_pixel),
            "pixel_present": Out(1),
            "take_pixel": In(1),
            "pixels_left": Out(1),
            "words_left": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        emb_c = self.bytes_per_pixel_held
        emit = self.take_pixel
        words_remaining = Signal(20)
        words_more = self.words_left
        # Pixels left, counted a cycle late (emit_q, emit registered, decrements it) so that
        # ``emit`` drives no counter: the pixels left before this cycle's emit are
        # pix_left - emit_q, tested through flags kept with the counter (nz<k>: pix_left != k).
        pix_left = Signal(20)
        emit_q = Signal()
        nz0 = Signal()
        nz1 = Signal()
        nz2 = Signal()
        pix_more = self.pixels_left
        m.d.comb += pix_more.eq(Mux(emit_q, nz1, nz0))

        ring = [Signal(8, name=f"ring{i}") for i in range(RING_BYTES)]
        r_ptr = Signal(4)
        w_ptr = Signal(4)
        front = [Signal(8, name=f"front{i}") for i in range(self.max_bytes_per_pixel)]  # r_ptr + i
        for i, f in enumerate(front):
            with m.Switch(r_ptr):
                for r in range(RING_BYTES):
                    with m.Case(r):
                        m.d.comb += f.eq(ring[(r + i) % RING_BYTES])
        m.d.comb += self.pixel.eq(Cat(*front))
        cnt = Signal(range(HELD_BYTES + 1))
        cnt_mc = Signal(signed(5))   # cnt - emb_c: a pixel's bytes are present when >= 0
        cnt_mce = Signal(signed(5))  # cnt_mc - emb_c: the value after a pixel leaves
        # A pixel's bytes are present and pixels remain (cnt_mc >= 0 and pix_more): a register,
        # written with them for both outcomes of emit.
        have_pix = self.pixel_present

        # Accept a word while at most 8 bytes are held: from registers only, and with room for
        # four more bytes whether or not a pixel leaves in the same cycle.
        accept = self.active & words_more & (cnt <= HELD_BYTES - 4)
        m.d.comb += self.words.ready.eq(accept)
        take_word = accept & self.words.valid

        # A word's byte k goes to ring byte w_ptr + k (from the write pointer, a register, and
        # take_word only: emit plays no part).
        for i in range(RING_BYTES):
            with m.Switch(w_ptr):
                for w in range(RING_BYTES):
                    k = (i - w) % RING_BYTES
                    if k < 4:
                        with m.Case(w):
                            with m.If(take_word):
                                m.d.sync += ring[i].eq(self.words.payload[8 * k:8 * k + 8])
        with m.If(take_word):
            m.d.sync += w_ptr.eq(w_ptr + 4)
        with m.If(emit):
            m.d.sync += r_ptr.eq(r_ptr + emb_c)
        with m.If(self.active):
            # The counters' sums for all four outcomes of (emit, take_word), from registers only:
            # emit and take_word (the stream's valid, from the DMA's side of the chip) only
            # select. cnt_mce = cnt_mc - emb_c is kept as a register of its own for the same reason.
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
                         mce_drop[0].eq(cnt_mce - emb_c), mce_drop[1].eq(cnt_mce - emb_c + 4),
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
            m.d.sync += [words_remaining.eq(words_remaining - 1), words_more.eq(words_remaining != 1)]
        m.d.sync += emit_q.eq(emit)
        with m.If(emit_q):
            m.d.sync += [pix_left.eq(pix_left - 1), nz0.eq(nz1), nz1.eq(nz2), nz2.eq(pix_left != 3)]

        with m.If(self.load):
            m.d.sync += [words_remaining.eq(self.n_words), words_more.eq(self.n_words != 0),
                         pix_left.eq(self.n_pix), emit_q.eq(0), nz0.eq(self.n_pix != 0),
                         nz1.eq(self.n_pix != 1), nz2.eq(self.n_pix != 2),
                         r_ptr.eq(0), w_ptr.eq(0), cnt.eq(0), cnt_mc.eq(-self.bytes_per_pixel),
                         cnt_mce.eq(-2 * self.bytes_per_pixel),
                         have_pix.eq((self.bytes_per_pixel == 0) & (self.n_pix != 0))]
        return m
