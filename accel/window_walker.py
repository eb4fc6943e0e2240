"""Window mode's walk over the zero-padded image: taps and code-bank destinations per step."""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out

from .embedding_geometry import WindowGeometry, check_max_k


__all__ = ["WindowWalker"]


class WindowWalker(wiring.Component):
    """One virtual pixel of the zero-padded image per ``step``, row by row.

    The walk covers virtual columns ``0..last_column`` and rows ``0..last_row`` (see
    :class:`WindowGeometry`); a virtual pixel is ``inside`` when it lies in the image, and then the
    step consumes the image byte on ``pixel_byte``. The walker keeps the last ``max_k - 1`` bytes of
    the row: tap ``kx`` of the window row ending at the current pixel is ``tap_bytes[kx]`` (tap
    ``win_k - 1`` is ``pixel_byte`` itself), switched off in the padding (``tap_in_padding``).

    The window row ending at the current pixel belongs to window column ``ox`` when the column is
    ``ox * stride + win_k - 1`` with ``ox < w_out``. Its row is a row of windows ``oy`` at tap row
    ``ky = y - oy * stride`` for every ``oy`` with ``0 <= ky < win_k``; the first destination is the
    largest such ``oy`` (``dest_window_y``, at ``dest_tap_row``), code-bank word
    ``(oy * w_out + ox) * win_k + ky`` (``dest_addr``); the window above is ``row_words_minus_stride``
    words before. ``emits`` says that the current pixel ends such a window row.

    Every condition the walk tests is a register written one step ahead (last column, last row,
    inside, the phase of the next window): they start the embedding unit's enables.

    Parameters
    ----------
    max_k : int
        The largest window (the embedding unit's table count).

    Members
    -------
    win_k, stride, pad, h_in, w_in, h_out, w_out : ``In``
        The descriptor's geometry, stable from ``SETUP_CYCLES`` before ``load`` to the walk's end.
    win_k_held, pad_held : ``In``
        ``win_k`` and ``pad`` from a register of the run's parameters, used during the walk.
    load : ``In(1)``
        Begin a walk at virtual pixel (0, 0); two cycles after the geometry is stable.
    step : ``In(1)``
        Move to the next virtual pixel. Only while ``walking``.
    pixel_byte : ``In(8)``
        The image byte of the current pixel (read when ``inside``).
    walking : ``Out(1)``
        Virtual pixels remain.
    inside : ``Out(1)``
        The current virtual pixel lies in the image.
    emits : ``Out(1)``
        The current pixel ends a window row with a destination.
    tap_bytes : ``Out(ArrayLayout(8, max_k))``; tap_in_padding : ``Out(max_k)``
        The window row's taps (for taps ``< win_k``; others are off).
    dest_addr : ``Out(20)``; dest_tap_row : ``Out(5)``; dest_window_y : ``Out(10)``
        The first destination of that window row.
    row_words_minus_stride : ``Out(20)``
        ``w_out * win_k - stride``, for the destinations further up.
    """

    def __init__(self, max_k):
        check_max_k(max_k)
        self.max_k = max_k
        super().__init__({
            "win_k": In(4), "stride": In(2), "pad": In(2),
            "h_in": In(10), "w_in": In(10), "h_out": In(10), "w_out": In(10),
            "win_k_held": In(4), "pad_held": In(2),
            "load": In(1), "step": In(1), "pixel_byte": In(8),
            "walking": Out(1), "inside": Out(1), "emits": Out(1),
            "tap_bytes": Out(data.ArrayLayout(8, max_k)), "tap_in_padding": Out(max_k),
            "dest_addr": Out(20), "dest_tap_row": Out(5), "dest_window_y": Out(10),
            "row_words_minus_stride": Out(20),
        })

    def elaborate(self, platform):
        m = Module()
        nch = self.max_k
        p_win_k, p_pad = self.win_k_held, self.pad_held
        m.submodules.geometry = geometry = WindowGeometry(nch)
        m.d.comb += [geometry.win_k.eq(self.win_k), geometry.stride.eq(self.stride),
                     geometry.pad.eq(self.pad), geometry.h_in.eq(self.h_in),
                     geometry.w_in.eq(self.w_in), geometry.h_out.eq(self.h_out),
                     geometry.w_out.eq(self.w_out)]

        walking = self.walking
        # (w_out-1)*stride + k reaches 1022*3 + 15 with 10-bit w_out: 12 bits
        vx = Signal(12)
        vy = Signal(12)
        vx_last = Signal()     # vx == last column
        vy_last = Signal()
        vw_last_m1 = Signal(12)  # last column - 1
        vh_last_m1 = Signal(12)
        vw_zero = Signal()       # a one-column walk
        x_hi = Signal(12)      # pad + w_in: first virtual column right of the image
        y_hi = Signal(12)
        row_in = Signal()
        # inside (the virtual pixel's column and row are in the image) and phase_zero & ox_ok &
        # row_dest (emits) as registers of their own, written with their parts: they start the
        # step and emit decisions, which enable most of the embedding unit
        inside = self.inside
        phase = Signal(4)      # steps until the last tap of the next window in this row
        phase_zero = Signal()  # phase == 0, written with phase
        ox = Signal(10)        # windows emitted in this row
        ox_ok = Signal()       # ox < w_out
        oxk = Signal(20)       # ox * k
        # The row's first destination: window row oy_st, its row ky_st (>= k: none); each further
        # destination is the window above, ky + stride, at address - (w_out*k - stride).
        oy_st = self.dest_window_y
        ky_st = self.dest_tap_row
        rowbase = Signal(20)   # oy_st * w_out * k
        row_dest = Signal()    # ky_st < k
        wk = Signal(20)        # w_out * k
        wks = self.row_words_minus_stride
        wom1 = Signal(10)      # w_out - 1
        hom1 = Signal(10)
        sm1 = Signal(2)
        taps = [Signal(8, name=f"tap{i}") for i in range(nch - 1)]     # taps[0]: previous pixel
        tpad = [Signal(name=f"tap{i}_pad") for i in range(nch - 1)]
        win_emit = self.emits
        byte = self.pixel_byte

        with m.If(self.step):
            if nch > 1:
                m.d.sync += [taps[0].eq(byte), tpad[0].eq(~inside)]
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

        # Tap kx of the window row ending at this pixel: the current byte is tap k-1, taps[i] is
        # tap k-2-i; a tap in the padding is switched off.
        for c in range(nch):
            tap_byte = Signal(8, name=f"win_byte{c}")
            tap_off = Signal(init=1, name=f"win_off{c}")
            with m.Switch(p_win_k):
                for kv in range(c + 1, nch + 1):
                    with m.Case(kv):
                        if c == kv - 1:
                            m.d.comb += [tap_byte.eq(byte), tap_off.eq(~inside)]
                        else:
                            m.d.comb += [tap_byte.eq(taps[kv - 2 - c]), tap_off.eq(tpad[kv - 2 - c])]
            m.d.comb += [self.tap_bytes[c].eq(tap_byte), self.tap_in_padding[c].eq(tap_off)]
        m.d.comb += self.dest_addr.eq(rowbase + oxk + ky_st)

        vw_last_b, vh_last_b = geometry.last_column, geometry.last_row
        with m.If(self.load):
            m.d.sync += [walking.eq(self.win_k != 0),
                         vx.eq(0), vy.eq(0), vx_last.eq(vw_last_b == 0), vy_last.eq(vh_last_b == 0),
                         phase.eq(self.win_k - 1), phase_zero.eq(self.win_k == 1),
                         ox.eq(0), ox_ok.eq(1), oxk.eq(0),
                         oy_st.eq(0), ky_st.eq(0), rowbase.eq(0), row_dest.eq(1),
                         row_in.eq(self.pad == 0), inside.eq(self.pad == 0),
                         win_emit.eq(self.win_k == 1),
                         x_hi.eq(geometry.image_last_column + 1), y_hi.eq(geometry.image_last_row + 1),
                         vw_last_m1.eq(vw_last_b - 1), vh_last_m1.eq(vh_last_b - 1),
                         vw_zero.eq(vw_last_b == 0),
                         wk.eq(geometry.row_words), wks.eq(geometry.row_words_minus_stride),
                         wom1.eq(self.w_out - 1), hom1.eq(self.h_out - 1), sm1.eq(self.stride - 1)]
        return m
