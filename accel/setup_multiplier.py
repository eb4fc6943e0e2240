"""The per-layer set-up: the products a descriptor implies, by one shift-add multiplier.

The address generator keeps its addresses as running sums (no multiplier on the per-cycle path)
and the descriptor checks compare sizes with the buffers' depths; both need products of
descriptor fields (words per input row, the stride in words, a layer's weight words, ...).
:class:`SetupMultiplier` computes them once per layer, one after the other, with a radix-4
shift-add multiplier (two partial products per cycle), so that they cost no DSP block.
"""

from amaranth.hdl import Module, Signal, Mux, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract import isa


__all__ = ["SetupMultiplier", "PRODUCT_BITS"]


# Bits of each product register (``(name, bits)``; the products are unsigned and wrap)
PRODUCT_BITS = (
    ("words_per_pixel", 16),          # n_cig * nsub: code words per input pixel
    ("taps", 16),                     # k * k
    ("words_per_row", 32),            # w_in * words_per_pixel: code words per input row
    ("group_weight_words", 32),       # k * k * n_cig: weight words per output-channel group
    ("source_words", 32),             # h_in * words_per_row: the source feature map's words
    ("weight_words", 32),             # group_weight_words * n_cog: the layer's weight words
    ("pixels", 32),                   # h_out * w_out (CONV) or h_in * w_in (EMBED)
    ("residual_row_words", 32),       # w_out * n_cog: residual words per output row
    ("residual_words", 32),           # pixels * n_cog
    ("output_pixels", 32),            # h_out * w_out, halved in each dimension when pooling
    ("stride_words", 32),             # stride * words_per_pixel
    ("destination_words", 32),        # the destination bank's words the layer writes
    ("stride_row_words", 32),         # stride * words_per_row
    ("pad_offset", 32),               # pad * (words_per_row + words_per_pixel)
    ("height_span", 32),              # (h_out - 1) * stride
    ("width_span", 32),               # (w_out - 1) * stride
    ("image_bytes", 32),              # EMBED: pixels * emb_c
    ("codes_per_word", 32),           # EMBED: emb_d * (emb_c, or k in window mode)
    ("table_entry_bits", 32),         # EMBED: emb_d * emb_q
)


class SetupMultiplier(wiring.Component):
    """The products of a CONV or EMBED descriptor, one radix-4 shift-add product at a time.

    Each product takes ``max(1, ceil(bits(b) / 2))`` cycles for its second operand ``b`` (16
    bits at most), written in the cycle of its last partial sum; a product whose operands use
    the product just before it spends one more cycle (see :meth:`_product_states`).

    Members
    -------
    desc : ``In(isa.DESCRIPTOR_LAYOUT)``
        The descriptor, stable from ``start`` until ``done``.
    start : ``In(1)``
        Pulse to compute ``desc``'s products (ignored unless ``desc.op`` is CONV or EMBED).
        While idle the multiplier loads the first product's operands every cycle, so the
        first partial sum comes in the cycle after ``start``.
    done : ``Out(1)``
        High in the cycle that writes the last product (the products are valid after it).
    words_per_pixel, taps, ... : ``Out(bits)``
        The products (:data:`PRODUCT_BITS`), registers held until the next run writes them.
    """

    def __init__(self):
        super().__init__({
            "desc": In(isa.DESCRIPTOR_LAYOUT),
            "start": In(1),
            "done": Out(1),
            **{name: Out(bits) for name, bits in PRODUCT_BITS},
        })

    def conv_steps(self):
        """``[(product, a, b)]`` of a CONV descriptor, in the order they are computed.

        Ordered so that few steps use the product of the step just before it (the product is
        not forwarded: such a step spends a load cycle)."""
        d = self.desc
        pool = d.pool
        return [
            (self.words_per_pixel, d.n_cig, d.nsub),
            (self.taps, d.k, d.k),
            (self.words_per_row, self.words_per_pixel, d.w_in),
            (self.group_weight_words, self.taps, d.n_cig),
            (self.source_words, self.words_per_row, d.h_in),
            (self.weight_words, self.group_weight_words, d.n_cog),
            (self.pixels, d.h_out, d.w_out),
            (self.residual_row_words, d.w_out, d.n_cog),
            (self.residual_words, self.pixels, d.n_cog),
            (self.output_pixels, Mux(pool, d.h_out >> 1, d.h_out),
             Mux(pool, d.w_out >> 1, d.w_out)),
            (self.stride_words, self.words_per_pixel, d.stride),
            (self.destination_words, self.output_pixels, d.n_cig_out),
            (self.stride_row_words, self.words_per_row, d.stride),
            (self.pad_offset, self.words_per_row + self.words_per_pixel, d.pad),
            (self.height_span, d.h_out - 1, d.stride),
            (self.width_span, d.w_out - 1, d.stride),
        ]

    def embed_steps(self):
        """``[(product, a, b)]`` of an EMBED descriptor, in the order they are computed.

        Window mode (``k != 0``): the destination holds ``h_out*w_out`` windows of ``k`` words,
        and a window row of ``k`` taps of ``emb_d`` codes must fit the ``p_i`` lanes (``emb_c``
        is 1 then)."""
        d = self.desc
        window = d.k != 0
        return [
            (self.pixels, d.h_in, d.w_in),
            (self.output_pixels, d.h_out, d.w_out),
            (self.image_bytes, self.pixels, d.emb_c),
            (self.codes_per_word, Mux(window, d.k, d.emb_c), d.emb_d),
            (self.destination_words, Mux(window, self.output_pixels, self.pixels),
             Mux(window, d.k, d.nsub)),
            (self.table_entry_bits, d.emb_d, d.emb_q),
        ]

    def elaborate(self, platform):
        m = Module()
        self._multiplicand = Signal(32)
        self._multiplier = Signal(16)
        self._partial_sum = Signal(32)
        # _partial_sum + the multiplicand times the multiplier's two low bits: the radix-4 step
        self._step_sum = Signal(32)
        # the multiplier's remaining bits are its last two (this cycle writes the product), as a
        # register written with the multiplier, so that no zero test precedes the choice of the
        # multiplicand's next value
        self._last_partial = Signal()
        m.d.comb += self._step_sum.eq(self._partial_sum +
                                      Mux(self._multiplier[0], self._multiplicand, 0) +
                                      Mux(self._multiplier[1], self._multiplicand << 1, 0))
        conv_steps, embed_steps = self.conv_steps(), self.embed_steps()
        is_embed = self.desc.op == isa.Op.EMBED
        with m.FSM(name="setup"):
            with m.State("IDLE"):
                m.d.sync += self._load(Mux(is_embed, embed_steps[0][1], conv_steps[0][1]),
                                       Mux(is_embed, embed_steps[0][2], conv_steps[0][2]))
                with m.If(self.start & (self.desc.op == isa.Op.CONV)):
                    m.next = "C0_RUN"
                with m.Elif(self.start & is_embed):
                    m.next = "E0_RUN"
            self._product_states(m, conv_steps, "C")
            self._product_states(m, embed_steps, "E")
        return m

    def _load(self, a, b):
        """Statements that load a product's operands into the multiplier."""
        return [self._multiplicand.eq(a), self._multiplier.eq(b), self._partial_sum.eq(0),
                self._last_partial.eq((Value.cast(b)[:len(self._multiplier)] >> 2) == 0)]

    def _product_states(self, m, steps, prefix):
        """One radix-4 multiplication per step (states ``<prefix><index>_RUN``). A step's
        operands are loaded as the previous one ends (the first step's by IDLE). Only a step
        whose operand uses the previous product spends a LOAD cycle: the product is not
        forwarded into the multiplicand, so that the sum's two carry chains do not precede the
        multiplicand's multiplexer. The last step returns to IDLE with ``done``."""
        def needs_load(index):
            if index == 0:
                return False      # IDLE loads the first step's operands
            previous_product, (_, a, b) = steps[index - 1][0], steps[index]
            used = Value.cast(b)._rhs_signals() | Value.cast(a)._rhs_signals()
            return previous_product in used

        for index, (product, a, b) in enumerate(steps):
            if needs_load(index):
                with m.State(f"{prefix}{index}_LOAD"):
                    m.d.sync += self._load(a, b)
                    m.next = f"{prefix}{index}_RUN"
            with m.State(f"{prefix}{index}_RUN"):
                with m.If(self._last_partial):
                    m.d.sync += product.eq(self._step_sum)
                    if index + 1 == len(steps):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    elif needs_load(index + 1):
                        m.next = f"{prefix}{index + 1}_LOAD"
                    else:
                        _, next_a, next_b = steps[index + 1]
                        m.d.sync += self._load(next_a, next_b)
                        m.next = f"{prefix}{index + 1}_RUN"
                with m.Else():
                    m.d.sync += [self._partial_sum.eq(self._step_sum),
                                 self._multiplicand.eq(self._multiplicand << 2),
                                 self._multiplier.eq(self._multiplier >> 2),
                                 self._last_partial.eq((self._multiplier >> 4) == 0)]
