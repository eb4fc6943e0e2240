"""The embedding unit's output register: a pixel's codes as sub-words, or a window row per destination."""

from amaranth.hdl import Module, Signal, Cat, Mux
from amaranth.lib import wiring, stream, data
from amaranth.lib.wiring import In, Out


__all__ = ["CodeWordOutput"]


class CodeWordOutput(wiring.Component):
    """Holds one pixel's lane codes and sends them as code-bank words with their addresses.

    Pixel mode: ``nsub`` words per pixel at consecutive addresses from 0, word ``s`` holding bits
    ``[s*planes, (s+1)*planes)`` of every lane's code (plane-major: bit ``b*lanes + L`` is lane
    ``L``'s bit ``s*planes + b``). Window mode: the same word (``nsub == 1``) once per destination,
    from ``in_addr`` (window row ``in_window_y``, tap row ``in_tap_row``) up through the windows
    above, ``row_words_minus_stride`` words apart, until no window is above (``oy == 0``) or the
    tap row would be ``>= win_k``.

    ``accept`` (the codes register is free) and the ``last`` flag behind it are registers or a gate
    over registers: they enable the embedding unit's whole pipeline.

    Parameters
    ----------
    lanes : int
    planes : int
        Bits per lane per word (``a_planes``).

    Members
    -------
    codes : ``In(ArrayLayout(8, lanes))``; in_valid : ``In(1)``
        The next pixel's (or window row's) codes, taken when ``accept``.
    in_addr : ``In(20)``; in_tap_row : ``In(5)``; in_window_y : ``In(10)``
        Window mode: its first destination.
    accept : ``Out(1)``
    out : ``Out(stream.Signature(planes * lanes))``; out_addr : ``Out(20)``
    window, nsub_minus_1, stride, win_k, row_words_minus_stride : ``In``
        The run's mode, stable during it.
    load : ``In(1)``
        Begin a run: the address and sub-word counters restart.
    """

    def __init__(self, lanes, planes):
        for name, v in (("lanes", lanes), ("planes", planes)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int, not {v!r}")
            if v < 1:
                raise ValueError(f"{name} must be at least 1, not {v}")
        self.lanes, self.planes = lanes, planes
        super().__init__({
            "codes": In(data.ArrayLayout(8, lanes)), "in_valid": In(1),
            "in_addr": In(20), "in_tap_row": In(5), "in_window_y": In(10),
            "accept": Out(1),
            "out": Out(stream.Signature(planes * lanes)), "out_addr": Out(20),
            "window": In(1), "nsub_minus_1": In(4), "stride": In(2), "win_k": In(4),
            "row_words_minus_stride": In(20),
            "load": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        p_i, nb = self.lanes, self.planes
        win, p_nsub_m1, p_stride, p_win_k = self.window, self.nsub_minus_1, self.stride, self.win_k
        out_valid = Signal()
        codes = [Signal(8, name=f"code{L}") for L in range(p_i)]
        s = Signal(4)
        waddr = Signal(20)     # bank address of the word on ``out``
        kyc = Signal(5)        # window mode: window row and column of that address
        oyc = Signal(10)
        last_sub = s == p_nsub_m1
        # The word on ``out`` is its pixel's last sub-word (window mode: its window row's last
        # destination): a register, written with ``s`` and the destination walk, since it feeds
        # every enable of the pipeline.
        last = Signal()
        out_take = ~out_valid | (self.out.ready & last)
        m.d.comb += self.accept.eq(out_take)

        # Window mode: the last destination when no further window is above, or its row would
        # be >= k.
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += s.eq(Mux(last_sub, 0, s + 1))
            with m.If(~win):
                m.d.sync += [waddr.eq(waddr + 1),
                             last.eq(Mux(last_sub, p_nsub_m1 == 0, s + 1 == p_nsub_m1))]
            with m.Elif(~last):
                m.d.sync += [waddr.eq(waddr - self.row_words_minus_stride), kyc.eq(kyc + p_stride),
                             oyc.eq(oyc - 1),
                             last.eq((kyc + (p_stride << 1) >= p_win_k) | (oyc == 1))]
        with m.If(out_take):
            m.d.sync += out_valid.eq(self.in_valid)
            with m.If(self.in_valid):
                m.d.sync += [codes[L].eq(self.codes[L]) for L in range(p_i)]
                with m.If(win):
                    m.d.sync += [waddr.eq(self.in_addr), kyc.eq(self.in_tap_row),
                                 oyc.eq(self.in_window_y),
                                 last.eq((self.in_tap_row + p_stride >= p_win_k)
                                         | (self.in_window_y == 0))]
        m.d.comb += [self.out.valid.eq(out_valid), self.out_addr.eq(waddr)]
        # s * planes kept as a running offset (no multiplier)
        s_off = Signal(range(8 * nb + 8))
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += s_off.eq(Mux(last_sub, 0, s_off + nb))
        bits = []
        for b in range(nb):
            for L in range(p_i):
                bits.append((codes[L] >> (s_off + b))[0])
        m.d.comb += self.out.payload.eq(Cat(*bits))

        with m.If(self.load):
            m.d.sync += [s.eq(0), s_off.eq(0), waddr.eq(0), last.eq(p_nsub_m1 == 0)]
        return m
