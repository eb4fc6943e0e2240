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

Parts: :class:`PixelByteRing` (image words to pixels), :class:`WindowWalker` (window mode's walk,
with :class:`WindowGeometry`), :class:`EmbeddingTables` (the block RAMs), :class:`EmbeddingLanes`
(entries to lane codes) and :class:`CodeWordOutput` (sub-words or window destinations); the unit
itself holds the run's parameters, the look-up pipeline's stages and the run control.
"""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from contract.config import AccelConfig, EMB_ENTRY_BITS
from .pixel_byte_ring import PixelByteRing
from .window_walker import WindowWalker
from .embedding_tables import EmbeddingTables
from .embedding_lanes import EmbeddingLanes
from .code_word_output import CodeWordOutput


__all__ = ["EmbeddingUnit", "SETUP_CYCLES"]


SETUP_CYCLES = 2   # from ``start`` until a run begins: the window geometry's two register stages


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
        self.lookup = EmbeddingTables(config.emb_channels)
        self.tables = self.lookup.tables
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
        # ``ready`` is a function of registers a few LUTs deep. The byte ring's ``words.ready`` and
        # ``pixel_present`` are registers (or nearly); the walker's conditions are flags computed
        # one step ahead; the tables' addresses are registered (stage 0) before the block RAMs,
        # and their output (stage 2) before the lane multiplexers. Stages 0, 1 and 2 move when
        # the stage after them is free: the enables chain back from the output register.
        run = Signal()
        win = Signal()         # window mode, latched at start
        setup = Signal(range(SETUP_CYCLES + 1))
        load = Signal()        # the run begins: its counters and walk start
        m.d.comb += load.eq(setup == 1)

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

        m.submodules.ring = ring = PixelByteRing(nch)
        m.submodules.walker = walker = WindowWalker(nch)
        m.submodules.lookup = lookup = self.lookup
        m.submodules.lanes = lanes = EmbeddingLanes(p_i, nch, nb)
        m.submodules.output = output = CodeWordOutput(p_i, nb)

        # --- pipeline stages 0 (addresses), 1 (table read), 2 (entries) and their enables ----------
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
        v2 = Signal()          # stage 2: the tables' output, registered (in ``lookup``)
        bytes2 = Signal(8 * nch)
        chan_on2 = Signal(nch)
        a2 = Signal(20)
        ky2 = Signal(5)
        oy2 = Signal(10)

        en2 = ~v2 | output.accept
        en1 = ~v1 | en2
        en0 = ~v0 | en1

        # A pixel leaves the ring (emit) when stage 0 takes it; in window mode the walker steps
        # over padding without one, and a step that ends a window row with a destination waits
        # for stage 0.
        have_pix = ring.pixel_present
        step = Signal()
        m.d.comb += step.eq(run & win & walker.walking & (~walker.inside | have_pix)
                            & (~walker.emits | en0))
        emit = Signal()
        m.d.comb += emit.eq(run & Mux(win, step & walker.inside, have_pix & en0))
        buf = ring.pixel       # the next pixel's bytes, oldest first

        wiring.connect(m, wiring.flipped(self.pixels), ring.words)
        m.d.comb += [ring.load.eq(load), ring.active.eq(run), ring.n_words.eq(self.n_words),
                     ring.n_pix.eq(self.n_pix), ring.bytes_per_pixel.eq(self.emb_c),
                     ring.bytes_per_pixel_held.eq(p_emb_c), ring.take_pixel.eq(emit)]
        m.d.comb += [walker.win_k.eq(self.win_k), walker.stride.eq(self.stride),
                     walker.pad.eq(self.pad), walker.h_in.eq(self.h_in),
                     walker.w_in.eq(self.w_in), walker.h_out.eq(self.h_out),
                     walker.w_out.eq(self.w_out), walker.win_k_held.eq(p_win_k),
                     walker.pad_held.eq(p_pad), walker.load.eq(load), walker.step.eq(step),
                     walker.pixel_byte.eq(buf[:8])]

        # Stage 0. Window mode: table kx looks up tap kx of the window row ending at this pixel.
        # The addresses are registered before the block RAMs: the ring's read multiplexer and the
        # window-mode choice in front of the tables' address inputs, spread over the chip with
        # the tables, would otherwise be one path.
        chan_on = Signal(nch)
        for c in range(nch):
            m.d.comb += chan_on[c].eq(Mux(win, ~walker.tap_in_padding[c], c < p_emb_c))
            with m.If(en0):
                m.d.sync += addr0[c].eq(Mux(win, walker.tap_bytes[c], buf[8 * c:8 * c + 8]))
        with m.If(en0):
            m.d.sync += [v0.eq(Mux(win, step & walker.emits, emit)), bytes0.eq(buf[:8 * nch]),
                         chan_on0.eq(chan_on), a0.eq(walker.dest_addr),
                         ky0.eq(walker.dest_tap_row), oy0.eq(walker.dest_window_y)]

        # Stages 1 and 2: table look-ups (one block RAM per channel), their entries registered.
        m.d.comb += [lookup.write_addr.eq(self.tw_addr), lookup.write_data.eq(self.tw_data),
                     lookup.write_en.eq(self.tw_en), lookup.read_en.eq(en1), lookup.hold_en.eq(en2)]
        m.d.comb += [lookup.read_addr[c].eq(addr0[c]) for c in range(nch)]
        with m.If(en1):
            m.d.sync += [v1.eq(v0), bytes1.eq(bytes0), chan_on1.eq(chan_on0), a1.eq(a0),
                         ky1.eq(ky0), oy1.eq(oy0)]
        with m.If(en2):
            m.d.sync += [v2.eq(v1), bytes2.eq(bytes1), chan_on2.eq(chan_on1), a2.eq(a1),
                         ky2.eq(ky1), oy2.eq(oy1)]

        # Lane codes, then the output register: nsub sub-words per pixel, or one word per window
        # destination.
        m.d.comb += [lanes.entries.eq(lookup.entries), lanes.pixel.eq(bytes2),
                     lanes.channel_on.eq(chan_on2), lanes.raw.eq(p_raw), lanes.emb_c.eq(p_emb_c),
                     lanes.emb_d.eq(p_emb_d), lanes.emb_q.eq(p_emb_q)]
        m.d.comb += [output.codes.eq(lanes.codes), output.in_valid.eq(v2), output.in_addr.eq(a2),
                     output.in_tap_row.eq(ky2), output.in_window_y.eq(oy2),
                     output.window.eq(win), output.nsub_minus_1.eq(p_nsub_m1),
                     output.stride.eq(p_stride), output.win_k.eq(p_win_k),
                     output.row_words_minus_stride.eq(walker.row_words_minus_stride),
                     output.load.eq(load)]
        wiring.connect(m, wiring.flipped(self.out), output.out)
        m.d.comb += self.out_addr.eq(output.out_addr)

        # --- run control ----------------------------------------------------------------------------
        # A run begins SETUP_CYCLES after ``start``, when the walker's geometry stages hold its
        # values, and ends when every pixel, word, window step and pipeline stage is done.
        with m.If(self.start):
            m.d.sync += setup.eq(SETUP_CYCLES)
        with m.Elif(setup != 0):
            m.d.sync += setup.eq(setup - 1)
        with m.If(load):
            m.d.sync += [run.eq(1), win.eq(self.win_k != 0)]
        with m.Elif(run & ~ring.pixels_left & ~ring.words_left & ~walker.walking & ~v0 & ~v1 & ~v2
                    & ~output.out.valid):
            m.d.sync += run.eq(0)
        m.d.comb += self.busy.eq(run | (setup != 0))
        return m
