"""The layer engine's descriptor checks: which CONV or EMBED descriptors it refuses (error 5).

A descriptor is refused before the layer touches a buffer when a field is out of range for the
engine or the configuration, or when the layer would read or write beyond a buffer. The checks
compare the set-up multiplier's products (accel/setup_multiplier.py) with the buffers' depths.
firmware/refsim.py states the same checks for the reference simulator.
"""

from amaranth.hdl import Module, Signal, Cat
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract import isa
from contract.config import AccelConfig


__all__ = ["DescriptorCheck", "CONV_CHECKS", "times_const"]


# The CONV checks, one bit each of ``conv_faults`` (in this order)
CONV_CHECKS = (
    "source_bank", "destination_bank", "kernel", "channels", "sizes", "out_bits", "pool", "sum",
    "n_cig_out", "source_words", "destination_words", "weight_words", "threshold_entries",
    "residual_words", "sum_words", "height_span", "width_span",
)


def times_const(value, const):
    """``value * const`` as shifts and adds (a product would infer a DSP multiplier)."""
    return sum(value << bit for bit in range(const.bit_length()) if (const >> bit) & 1)


class DescriptorCheck(wiring.Component):
    """The descriptor checks, combinational (the engine registers them before it acts on them).

    Parameters
    ----------
    config : AccelConfig

    Members
    -------
    desc : ``In(isa.DESCRIPTOR_LAYOUT)``
    source_words, destination_words, weight_words, residual_words, height_span, width_span, codes_per_word, table_entry_bits : ``In(32)``
        The set-up multiplier's products of ``desc``.
    conv_faults : ``Out(len(CONV_CHECKS))``
        One bit per failed CONV check (:data:`CONV_CHECKS`).
    embed_fault : ``Out(1)``
        An EMBED check failed.
    """

    PRODUCTS = ("source_words", "destination_words", "weight_words", "residual_words",
                "height_span", "width_span", "codes_per_word", "table_entry_bits")

    def __init__(self, config):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"DescriptorCheck config must be an AccelConfig, not {config!r}")
        self.config = config
        super().__init__({
            "desc": In(isa.DESCRIPTOR_LAYOUT),
            **{name: In(32) for name in self.PRODUCTS},
            "conv_faults": Out(len(CONV_CHECKS)),
            "embed_fault": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        checks = self._conv_checks(m)
        assert tuple(checks) == CONV_CHECKS
        m.d.comb += self.conv_faults.eq(Cat(*checks.values()))
        m.d.comb += self.embed_fault.eq(self._embed_fault())
        return m

    def _max_nsub(self):
        return -(-8 // self.config.a_planes)     # sub-words of an 8-bit code

    def _conv_checks(self, m):
        cfg, d = self.config, self.desc
        banks = cfg.n_code_banks
        output_channel_words = times_const(d.n_cog, cfg.m)
        threshold_entries = Signal(32)
        m.d.comb += threshold_entries.eq(times_const(d.n_cog, cfg.p_o))
        return dict(
            source_bank=d.src_bank >= banks,
            destination_bank=d.thr_out & ((d.dst_bank >= banks) | (d.dst_bank == d.src_bank)),
            kernel=(d.k == 0) | (d.stride == 0) | (d.pad >= d.k),
            channels=((d.nsub == 0) | (d.nsub > self._max_nsub()) | (d.n_cig == 0) |
                      (d.n_cog == 0)),
            sizes=(d.h_in == 0) | (d.w_in == 0) | (d.h_out == 0) | (d.w_out == 0),
            out_bits=d.thr_out & ((d.out_bits == 0) | (d.out_bits > cfg.max_out_bits)),
            pool=d.pool & (~d.thr_out | d.h_out[0] | d.w_out[0] | d.res_out),
            sum=d.sum & d.res_out,
            n_cig_out=d.thr_out & ((d.n_cig_out == 0) | (d.n_cig_out > output_channel_words) |
                                   (d.n_cig_out + cfg.m <= output_channel_words)),
            source_words=self.source_words > cfg.bank_depth,
            destination_words=d.thr_out & (self.destination_words > cfg.bank_depth),
            weight_words=d.w_base + self.weight_words > cfg.wbuf_depth,
            threshold_entries=d.thr_out & (d.thr_base + threshold_entries > cfg.thr_depth),
            residual_words=((d.res_in | d.res_out) &
                            (d.res_base + self.residual_words > cfg.res_depth)),
            sum_words=d.sum & (d.res_base + d.n_cog > cfg.res_depth),
            height_span=self.height_span + d.k > d.h_in + (d.pad << 1),
            width_span=self.width_span + d.k > d.w_in + (d.pad << 1),
        )

    def _embed_fault(self):
        cfg, d = self.config, self.desc
        window = d.k != 0
        return ((d.dst_bank >= cfg.n_code_banks) | (d.emb_c == 0) |
                (d.emb_c > cfg.emb_channels) |
                (d.nsub == 0) | (d.nsub > self._max_nsub()) | (d.h_in == 0) | (d.w_in == 0) |
                (~d.raw & ((d.emb_d == 0) | (d.emb_q == 0) | (d.emb_q > cfg.a_planes) |
                           (self.codes_per_word > cfg.p_i) | (self.table_entry_bits > 16))) |
                (d.raw & (d.emb_c > cfg.p_i)) |
                (window & ((d.emb_c != 1) | d.raw | (d.nsub != 1) | (d.k > cfg.emb_channels) |
                           (d.stride == 0) | (d.h_out == 0) | (d.w_out == 0))) |
                (self.destination_words > cfg.bank_depth))
