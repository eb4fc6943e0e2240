"""The embedding unit's lane multiplexers: table entries (or raw pixel bytes) to per-lane codes."""

from amaranth.hdl import Module, Signal, Cat, Mux
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out

from contract.config import EMB_ENTRY_BITS


__all__ = ["EmbeddingLanes"]


class EmbeddingLanes(wiring.Component):
    """Lane ``c*d + j`` gets entry ``c``'s bits ``[j*q, (j+1)*q)``; in raw mode lane ``c`` gets byte ``c``.

    Combinational. ``d`` and ``q`` are constant during a run, so the multiplexers' selects are off
    the timing path. Lanes without a code (beyond ``channels * d``, or of a channel switched off)
    are 0.

    Parameters
    ----------
    lanes : int
        Output lanes (``p_i``).
    channels : int
        Table entries (and pixel bytes) in.
    max_code_bits : int
        The largest ``q`` supported (the configuration's ``a_planes``, at most 8).

    Members
    -------
    entries : ``In(ArrayLayout(EMB_ENTRY_BITS, channels))``
    pixel : ``In(8 * channels)``
        The pixel's bytes (raw mode).
    channel_on : ``In(channels)``
        Channels whose codes reach the lanes (table mode).
    raw : ``In(1)``; emb_c : ``In(3)``
        Raw mode, and its channel count.
    emb_d : ``In(4)``; emb_q : ``In(3)``
        Codes per entry and their width (``emb_d * emb_q <= EMB_ENTRY_BITS``).
    codes : ``Out(ArrayLayout(8, lanes))``
    """

    def __init__(self, lanes, channels, max_code_bits):
        for name, v in (("lanes", lanes), ("channels", channels), ("max_code_bits", max_code_bits)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int, not {v!r}")
            if v < 1:
                raise ValueError(f"{name} must be at least 1, not {v}")
        self.lanes, self.channels, self.max_code_bits = lanes, channels, max_code_bits
        super().__init__({
            "entries": In(data.ArrayLayout(EMB_ENTRY_BITS, channels)),
            "pixel": In(8 * channels),
            "channel_on": In(channels),
            "raw": In(1), "emb_c": In(3), "emb_d": In(4), "emb_q": In(3),
            "codes": Out(data.ArrayLayout(8, lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        nch, nb = self.channels, self.max_code_bits
        for L in range(self.lanes):
            lane = Signal(8, name=f"lane{L}")
            with m.If(self.raw):
                if L < nch:
                    m.d.comb += lane.eq(Mux(L < self.emb_c, self.pixel[8 * L:8 * L + 8], 0))
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
                                code = self.entries[c][j * qv:(j + 1) * qv]
                                m.d.comb += lane.eq(Mux(self.channel_on[c], code, 0))
            m.d.comb += self.codes[L].eq(lane)
        return m
