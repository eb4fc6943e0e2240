"""The CONV address generator: the loop nest of a layer as running sums, one word-set per cycle.

It walks::

    for cog in range(n_cog):
        for (oy, ox) in output pixels (row-major, or 2x2-window order when pool):
            for ky, kx in taps:
                for word in range(n_cig * nsub):        # channel group cig, sub-word sub
                    code   = bank[((iy*w_in + ix)*n_cig + cig)*nsub + sub]  (0 outside the image)
                    weight = wbuf[w_base + (cog*k*k + ky*k + kx)*n_cig + cig]
                    MAC(weight, code, shift=sub*a_planes, first, last)

with ``iy = oy*stride - pad + ky`` and ``ix = ox*stride - pad + kx``. Every address is a running
sum (no multiplier on the per-cycle path): the products it adds (the stride in words, words per
row, ...) come from the set-up multiplier (accel/setup_multiplier.py), computed once per layer.
"""

import operator
from functools import reduce
from types import SimpleNamespace

from amaranth.hdl import Module, Signal, Mux, signed
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out

from contract import isa
from contract.config import AccelConfig
from .mac_array import SHIFT_BITS
from .output import OUT_TAG_LAYOUT
from .synthesis import KEEP_COPY


__all__ = ["AddressGenerator", "WORD_SET_LAYOUT", "ADDRESS_BITS", "ISSUE_LATENCY"]


# A word-set's side band: ``zero`` (the tap is outside the image: codes 0), the MAC array's
# ``shift`` (sub-word * a_planes), ``first``/``last`` word of an output pixel, and the output
# unit's tag (residual address, last pixel of a group, last pixel of the layer).
WORD_SET_LAYOUT = data.StructLayout({"valid": 1, "zero": 1, "shift": SHIFT_BITS, "first": 1,
                                     "last": 1, "tag": OUT_TAG_LAYOUT})

ADDRESS_BITS = 26      # the code-address running sums (signed: a padded tap's address is < 0)
WEIGHT_ADDRESS_BITS = 18
RESIDUAL_ADDRESS_BITS = 18
COORDINATE_BITS = 13   # signed input coordinates (-pad .. h_in + pad)

# Cycles from the generator's decision to issue a word-set to its side band on ``word_set``:
# the read-address copies, the code reads, their registered data (the weights are read a cycle
# later, through the copies' second stage).
ISSUE_LATENCY = 3


class _WalkCounter:
    """A loop counter of the walk and its registered "at its last value" flag.

    The flag is written together with the counter, from the counter's next value, so that the
    generator's step decisions start at flip-flops instead of behind a comparator.

    Parameters
    ----------
    name : str
    shape : shape
    last_value : Value
        The counter's last value (a register loaded at the start of a layer).
    single_value : Value
        Whether 0 is the last value, from quantities valid before ``last_value`` is loaded (the
        layer's first state and the limits are written in the same cycle).
    """

    def __init__(self, name, shape, last_value, single_value):
        self.value = Signal(shape, name=name)
        self.at_last = Signal(name=f"{name}_at_last")
        self.last_value = last_value
        self.single_value = single_value

    def set(self, value):
        """Statements that set the counter (and its flag) to ``value``."""
        if isinstance(value, int) and value == 0:
            return [self.value.eq(0), self.at_last.eq(self.single_value)]
        return [self.value.eq(value), self.at_last.eq(value == self.last_value)]


class AddressGenerator(wiring.Component):
    """The CONV walk: code-bank and weight-buffer read addresses and each word-set's side band.

    Parameters
    ----------
    config : AccelConfig
    weight_groups : int
        Column groups of the weight buffer; each gets its own copy of the weight read address.

    Members
    -------
    desc : ``In(isa.DESCRIPTOR_LAYOUT)``
        The CONV descriptor, stable while the layer runs.
    words_per_pixel, words_per_row, group_weight_words, residual_row_words, stride_words, stride_row_words, pad_offset : ``In``
        The set-up multiplier's products (accel/setup_multiplier.py).
    latch : ``In(1)``
        Latch the descriptor fields and derived steps the walk uses (a cycle before ``begin``).
    begin : ``In(1)``
        Start the walk at the first word of the layer.
    advance : ``In(1)``
        Issue a word-set this cycle if the walk has one (the MAC array will have room for it).
    code_addr : ``Out(ArrayLayout(range(bank_depth), n_code_banks))``
        Each code bank's read address (a register next to each bank's block RAMs).
    weight_addr : ``Out(ArrayLayout(range(wbuf_depth), weight_groups))``
        Each weight-buffer group's read address, one cycle after the codes' (so that both read
        data leave their block RAMs through a register with nothing before it).
    word_set : ``Out(WORD_SET_LAYOUT)``
        The side band of the word-set whose code-bank data is registered (``bank<k>_q``) and
        whose weights leave the weight buffer in this cycle: ``ISSUE_LATENCY`` cycles after the
        decision to issue it.
    """

    PRODUCTS = (("words_per_pixel", 16), ("words_per_row", 32), ("group_weight_words", 32),
                ("residual_row_words", 32), ("stride_words", 32), ("stride_row_words", 32),
                ("pad_offset", 32))

    def __init__(self, config, *, weight_groups=1):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"AddressGenerator config must be an AccelConfig, not {config!r}")
        if not isinstance(weight_groups, int) or isinstance(weight_groups, bool):
            raise TypeError(f"AddressGenerator weight_groups must be an integer, not "
                            f"{weight_groups!r}")
        if weight_groups < 1:
            raise ValueError(f"AddressGenerator weight_groups must be >= 1, not {weight_groups}")
        self.config = config
        self.weight_groups = weight_groups
        super().__init__({
            "desc": In(isa.DESCRIPTOR_LAYOUT),
            **{name: In(bits) for name, bits in self.PRODUCTS},
            "latch": In(1),
            "begin": In(1),
            "advance": In(1),
            "code_addr": Out(data.ArrayLayout(range(config.bank_depth), config.n_code_banks)),
            "weight_addr": Out(data.ArrayLayout(range(config.wbuf_depth), weight_groups)),
            "word_set": Out(WORD_SET_LAYOUT),
        })

    def elaborate(self, platform):
        m = Module()
        w = self._walk_registers()
        layer = self._latch_layer(m)
        self._begin_layer(m, w, layer)
        self._read_addresses(m, w)
        self._step(m, w, layer)
        return m

    def _walk_registers(self):
        """The walk's state (a namespace of registers and counters)."""
        d = self.desc
        w = SimpleNamespace()
        # loop limits minus one, registered at the start of a layer (shorter compare paths)
        w.last_word = Signal(16)
        w.last_sub = Signal(4)
        w.last_tap = Signal(4)
        w.last_ox = Signal(10)
        w.last_oy = Signal(10)
        w.last_cog = Signal(6)
        w.word = _WalkCounter("word", 16, w.last_word, self.words_per_pixel == 1)
        w.sub = _WalkCounter("sub", 4, w.last_sub, d.nsub == 1)
        w.kx = _WalkCounter("kx", 4, w.last_tap, d.k == 1)
        w.ky = _WalkCounter("ky", 4, w.last_tap, d.k == 1)
        w.ox = _WalkCounter("ox", 10, w.last_ox, d.w_out == 1)
        w.oy = _WalkCounter("oy", 10, w.last_oy, d.h_out == 1)
        w.cog = _WalkCounter("cog", 6, w.last_cog, d.n_cog == 1)
        w.window_y = Signal()          # position in the 2x2 pooling window
        w.window_x = Signal()
        w.shift = Signal(SHIFT_BITS)   # sub * a_planes
        # input coordinates: of the current tap, of the pixel's first tap, of the row's first
        w.in_y = Signal(signed(COORDINATE_BITS))
        w.in_x = Signal(signed(COORDINATE_BITS))
        w.pixel_in_y = Signal(signed(COORDINATE_BITS))
        w.pixel_in_x = Signal(signed(COORDINATE_BITS))
        w.row_in_y = Signal(signed(COORDINATE_BITS))
        # code addresses: of the pixel's first tap, of its row's first pixel, of the current
        # tap, of the current tap row's first tap, and the read address (tap_addr + word)
        w.pixel_addr = Signal(signed(ADDRESS_BITS))
        w.row_addr = Signal(signed(ADDRESS_BITS))
        w.tap_addr = Signal(signed(ADDRESS_BITS))
        w.tap_row_addr = Signal(signed(ADDRESS_BITS))
        w.code_addr = Signal(signed(ADDRESS_BITS))
        # residual-buffer address of the output pixel's word (the output unit's tag), and of
        # its row's first pixel
        w.res_addr = Signal(RESIDUAL_ADDRESS_BITS)
        w.res_row_addr = Signal(RESIDUAL_ADDRESS_BITS)
        # weight read address, and the first weight address of the output-channel group
        w.weight_addr = Signal(WEIGHT_ADDRESS_BITS)
        w.group_weight_addr = Signal(WEIGHT_ADDRESS_BITS)
        w.active = Signal()
        w.settle = Signal()      # the pixel transition is being prepared anew: no step
        w.single = Signal()      # one step per output pixel (k == 1, words_per_pixel == 1)
        return w

    def _latch_layer(self, m):
        """The descriptor fields the walk uses while it runs, latched next to the generator on
        ``latch`` (they come from the sequencer's descriptor register across the chip), and the
        pooled walk's diagonal steps, so that a step is one adder (the addends only need the low
        bits: the running sums wrap at their own widths)."""
        d = self.desc
        layer = SimpleNamespace(
            pool=Signal(name="ag_pool"), stride=Signal.like(d.stride, name="ag_stride"),
            n_cog=Signal.like(d.n_cog, name="ag_n_cog"), h_in=Signal.like(d.h_in, name="ag_h_in"),
            w_in=Signal.like(d.w_in, name="ag_w_in"),
            res_base=Signal.like(d.res_base, name="ag_res_base"),
            neg_pad=Signal(signed(COORDINATE_BITS), name="ag_neg_pad"),
            neg_pad_offset=Signal(signed(ADDRESS_BITS), name="ag_neg_pad_offset"),
            pool_down_addr_step=Signal(ADDRESS_BITS),       # stride_row_words - stride_words
            pool_up_addr_step=Signal(ADDRESS_BITS),         # stride_words - stride_row_words
            pool_down_res_step=Signal(RESIDUAL_ADDRESS_BITS),   # residual_row_words - n_cog
            pool_up_res_step=Signal(RESIDUAL_ADDRESS_BITS))     # n_cog - residual_row_words
        with m.If(self.latch):
            m.d.sync += [layer.pool.eq(d.pool), layer.stride.eq(d.stride),
                         layer.n_cog.eq(d.n_cog), layer.h_in.eq(d.h_in), layer.w_in.eq(d.w_in),
                         layer.res_base.eq(d.res_base), layer.neg_pad.eq(-d.pad),
                         layer.neg_pad_offset.eq(-self.pad_offset)]
            m.d.sync += [
                layer.pool_down_addr_step.eq(self.stride_row_words - self.stride_words),
                layer.pool_up_addr_step.eq(self.stride_words - self.stride_row_words),
                layer.pool_down_res_step.eq(self.residual_row_words - d.n_cog),
                layer.pool_up_res_step.eq(d.n_cog - self.residual_row_words)]
        return layer

    @staticmethod
    def _group_start(w, layer, cog):
        """Statements that put the walk at the first pixel of output-channel group ``cog``."""
        return [*w.ky.set(0), *w.kx.set(0), *w.word.set(0), *w.sub.set(0), w.shift.eq(0),
                w.in_y.eq(layer.neg_pad), w.in_x.eq(layer.neg_pad),
                w.tap_addr.eq(layer.neg_pad_offset), w.tap_row_addr.eq(layer.neg_pad_offset),
                w.code_addr.eq(layer.neg_pad_offset),
                *w.oy.set(0), *w.ox.set(0), w.window_y.eq(0), w.window_x.eq(0),
                w.pixel_in_y.eq(layer.neg_pad), w.pixel_in_x.eq(layer.neg_pad),
                w.row_in_y.eq(layer.neg_pad),
                w.pixel_addr.eq(layer.neg_pad_offset), w.row_addr.eq(layer.neg_pad_offset),
                w.res_addr.eq(layer.res_base + cog), w.res_row_addr.eq(layer.res_base + cog)]

    def _begin_layer(self, m, w, layer):
        d = self.desc
        with m.If(self.begin):
            m.d.sync += self._group_start(w, layer, 0)
            m.d.sync += [*w.cog.set(0), w.weight_addr.eq(d.w_base),
                         w.group_weight_addr.eq(d.w_base), w.active.eq(1),
                         w.single.eq((self.words_per_pixel == 1) & (d.k == 1)),
                         w.last_word.eq(self.words_per_pixel - 1), w.last_sub.eq(d.nsub - 1),
                         w.last_tap.eq(d.k - 1), w.last_ox.eq(d.w_out - 1),
                         w.last_oy.eq(d.h_out - 1), w.last_cog.eq(d.n_cog - 1)]

    def _read_addresses(self, m, w):
        """The block RAMs read at copies of the generator's addresses, one cycle behind them
        (stage 0): the code address once per code bank, the weight address once per weight
        group, a cycle later still. The copies are plain registers, so the step logic drives
        one register each and the copies' long routes to the block RAMs start at a flip-flop."""
        for bank in range(self.config.n_code_banks):
            copy = Signal(signed(ADDRESS_BITS), name=f"bank{bank}_raddr", attrs=KEEP_COPY)
            m.d.sync += copy.eq(w.code_addr)
            m.d.comb += self.code_addr[bank].eq(copy)
        weight_addr_d = Signal(WEIGHT_ADDRESS_BITS)
        m.d.sync += weight_addr_d.eq(w.weight_addr)
        for group in range(self.weight_groups):
            copy = Signal(WEIGHT_ADDRESS_BITS, name=f"weight_raddr{group}", attrs=KEEP_COPY)
            m.d.sync += copy.eq(weight_addr_d)
            m.d.comb += self.weight_addr[group].eq(copy)

    def _step(self, m, w, layer):
        """Issue the current word-set (its side band through the read stages) and step the walk.

        The pixel-level transition (next output pixel, or next output-channel group) is prepared
        every cycle (:class:`_PixelTransition`): a pixel's last step only selects among
        registered candidates, so the walk's branches and adders are off the path of the
        per-cycle step. The preparation is fresh one cycle after the pixel-level registers
        change; a pixel of one step (``single``) therefore waits a cycle (``settle``) after each.
        """
        a_planes = self.config.a_planes
        step = Signal()
        m.d.comb += step.eq(self.advance & ~w.settle)
        tap_last = w.kx.at_last & w.ky.at_last
        group_pixel_last = (w.ox.at_last & w.oy.at_last &
                            (~layer.pool | (w.window_y & w.window_x)))
        tap_inside = ((w.in_y >= 0) & (w.in_y < layer.h_in) &
                      (w.in_x >= 0) & (w.in_x < layer.w_in))
        # stage 0 (the cycle of the read-address copies), stage 1 (the reads), then the
        # registered code words (``word_set``)
        stage0 = Signal(WORD_SET_LAYOUT)
        stage1 = Signal(WORD_SET_LAYOUT)
        m.d.sync += [stage0.valid.eq(step & w.active),
                     stage0.zero.eq(~tap_inside), stage0.shift.eq(w.shift),
                     stage0.first.eq((w.word.value == 0) & (w.kx.value == 0) & (w.ky.value == 0)),
                     stage0.last.eq(w.word.at_last & tap_last),
                     stage0.tag.raddr.eq(w.res_addr), stage0.tag.last.eq(group_pixel_last),
                     stage0.tag.final.eq(group_pixel_last & w.cog.at_last),
                     stage1.eq(stage0), self.word_set.eq(stage1)]
        transition = _PixelTransition(m, w, layer, group_pixel_last, self)
        pixel_end = step & w.active & w.word.at_last & tap_last
        m.d.sync += w.settle.eq((pixel_end & w.single) | self.begin)
        with m.If(step & w.active):
            # inner: sub-words and channel groups of one tap
            with m.If(~w.word.at_last):
                m.d.sync += [*w.word.set(w.word.value + 1), w.code_addr.eq(w.code_addr + 1)]
                with m.If(w.sub.at_last):
                    m.d.sync += [*w.sub.set(0), w.shift.eq(0), w.weight_addr.eq(w.weight_addr + 1)]
                with m.Else():
                    m.d.sync += [*w.sub.set(w.sub.value + 1), w.shift.eq(w.shift + a_planes)]
            with m.Else():
                m.d.sync += [*w.word.set(0), *w.sub.set(0), w.shift.eq(0),
                             w.weight_addr.eq(w.weight_addr + 1)]
                with m.If(~w.kx.at_last):
                    next_tap = w.tap_addr + self.words_per_pixel
                    m.d.sync += [*w.kx.set(w.kx.value + 1), w.in_x.eq(w.in_x + 1),
                                 w.tap_addr.eq(next_tap), w.code_addr.eq(next_tap)]
                with m.Elif(~w.ky.at_last):
                    next_row = w.tap_row_addr + self.words_per_row
                    m.d.sync += [*w.kx.set(0), w.in_x.eq(w.pixel_in_x),
                                 *w.ky.set(w.ky.value + 1), w.in_y.eq(w.in_y + 1),
                                 w.tap_row_addr.eq(next_row), w.tap_addr.eq(next_row),
                                 w.code_addr.eq(next_row)]
                with m.Else():
                    # pixel done: the prepared transition
                    nxt = transition.next
                    m.d.sync += [*w.kx.set(0), *w.ky.set(0),
                                 w.weight_addr.eq(nxt["group_weight_addr"]),
                                 w.in_x.eq(nxt["pixel_in_x"]), w.in_y.eq(nxt["pixel_in_y"]),
                                 w.tap_addr.eq(nxt["pixel_addr"]),
                                 w.tap_row_addr.eq(nxt["pixel_addr"]),
                                 w.code_addr.eq(nxt["pixel_addr"]),
                                 *(transition.registers[name].eq(value)
                                   for name, value in nxt.items())]


class _PixelTransition:
    """The walk's pixel-level registers after the current pixel, as values selected by
    registered one-hot events among registered candidates (``next``: ``{name: value}``; the
    registers themselves: ``registers``).

    The events: the layer's last pixel (end), the last pixel of an output-channel group (cog),
    else the next pixel of the walk, row-major or in 2x2-window order (pool): right (pool: the
    left column of a window), down_left (to the window's lower row), up_right (to the next
    window), row (row-major: to the first column of the next row), window_row (pool: to the
    first column of the next row of windows).
    """

    def __init__(self, m, w, layer, group_pixel_last, generator):
        self.m, self.w, self.layer = m, w, layer
        self.registers = dict(
            ox=w.ox.value, oy=w.oy.value, ox_at_last=w.ox.at_last, oy_at_last=w.oy.at_last,
            window_x=w.window_x, window_y=w.window_y, pixel_in_x=w.pixel_in_x,
            pixel_in_y=w.pixel_in_y, row_in_y=w.row_in_y, pixel_addr=w.pixel_addr,
            row_addr=w.row_addr, res_addr=w.res_addr, res_row_addr=w.res_row_addr,
            cog=w.cog.value, cog_at_last=w.cog.at_last, group_weight_addr=w.group_weight_addr,
            active=w.active)
        self.events = self._events(group_pixel_last)
        candidates = self._candidates(generator)
        self.next = self._selections(candidates)

    def _events(self, group_pixel_last):
        m, w, pool = self.m, self.w, self.layer.pool
        walk = ~group_pixel_last
        conditions = dict(
            end=group_pixel_last & w.cog.at_last,
            cog=group_pixel_last & ~w.cog.at_last,
            right=walk & Mux(pool, ~w.window_x, ~w.ox.at_last),
            down_left=walk & pool & w.window_x & ~w.window_y,
            up_right=walk & pool & w.window_x & w.window_y & ~w.ox.at_last,
            row=walk & ~pool & w.ox.at_last,
            window_row=walk & pool & w.window_x & w.window_y & w.ox.at_last)
        events = {}
        for name, condition in conditions.items():
            events[name] = Signal(name=f"pix_ev_{name}")
            m.d.sync += events[name].eq(condition)
        return events

    def _candidate(self, name, like, value):
        register = Signal.like(like, name=f"pix_next_{name}", reset_less=True)
        self.m.d.sync += register.eq(value)
        return register

    def _candidates(self, generator):
        """Registered candidate values, by the register they are for (shared where two events
        agree)."""
        w, layer = self.w, self.layer
        stride, pool = layer.stride, layer.pool
        ox, oy, cog = w.ox.value, w.oy.value, w.cog.value
        stride_row_words = generator.stride_row_words
        residual_row_words = generator.residual_row_words
        specs = dict(
            addr_right=(w.pixel_addr, w.pixel_addr + generator.stride_words),
            addr_down_left=(w.pixel_addr, w.pixel_addr + layer.pool_down_addr_step),
            addr_up_right=(w.pixel_addr, w.pixel_addr + layer.pool_up_addr_step),
            addr_row=(w.pixel_addr, w.row_addr + stride_row_words),
            addr_window_row=(w.pixel_addr, w.row_addr + (stride_row_words << 1)),
            res_right=(w.res_addr, w.res_addr + layer.n_cog),
            res_down_left=(w.res_addr, w.res_addr + layer.pool_down_res_step),
            res_up_right=(w.res_addr, w.res_addr + layer.pool_up_res_step),
            res_row=(w.res_addr, w.res_row_addr + residual_row_words),
            res_window_row=(w.res_addr, w.res_row_addr + (residual_row_words << 1)),
            res_cog=(w.res_addr, layer.res_base + cog + 1),
            in_x_plus=(w.pixel_in_x, w.pixel_in_x + stride),
            in_x_minus=(w.pixel_in_x, w.pixel_in_x - stride),
            in_y_plus=(w.pixel_in_y, w.pixel_in_y + stride),
            in_y_minus=(w.pixel_in_y, w.pixel_in_y - stride),
            in_y_row=(w.pixel_in_y, w.row_in_y + stride),
            in_y_window_row=(w.pixel_in_y, w.row_in_y + (stride << 1)),
            ox_inc=(ox, ox + 1),
            ox_inc_last=(w.ox.at_last, ox + 1 == w.last_ox),
            ox_dec=(ox, ox - 1),
            ox_dec_last=(w.ox.at_last, ox - 1 == w.last_ox),
            oy_inc=(oy, oy + 1),
            oy_inc_last=(w.oy.at_last, oy + 1 == w.last_oy),
            oy_dec=(oy, oy - 1),
            oy_dec_last=(w.oy.at_last, oy - 1 == w.last_oy),
            ox_zero_last=(w.ox.at_last, w.last_ox == 0),
            oy_zero_last=(w.oy.at_last, w.last_oy == 0),
            cog_inc=(cog, cog + 1),
            cog_inc_last=(w.cog.at_last, cog + 1 == w.last_cog),
            weight_next_group=(w.group_weight_addr,
                                w.group_weight_addr + generator.group_weight_words),
            window_x_walk=(w.window_x, Mux(pool, ~w.window_x, w.window_x)))
        return {name: self._candidate(name, like, value) for name, (like, value) in specs.items()}

    def _select(self, name, cases):
        """One-hot AND-OR of ``cases`` ({event: value}); the register itself otherwise."""
        register = self.registers[name]
        hold = ~reduce(operator.or_, (self.events[e] for e in cases))
        terms = [Mux(self.events[e], value, 0).as_unsigned() for e, value in cases.items()]
        terms.append(Mux(hold, register, 0).as_unsigned())
        selected = Signal.like(register, name=f"pix_sel_{name}")
        self.m.d.comb += selected.eq(reduce(operator.or_, terms))
        return selected

    def _selections(self, c):
        s, layer = self._select, self.layer
        neg_pad, neg_pad_offset = layer.neg_pad, layer.neg_pad_offset
        return dict(
            pixel_addr=s("pixel_addr", dict(right=c["addr_right"], down_left=c["addr_down_left"],
                                            up_right=c["addr_up_right"], row=c["addr_row"],
                                            window_row=c["addr_window_row"], cog=neg_pad_offset)),
            row_addr=s("row_addr", dict(row=c["addr_row"], window_row=c["addr_window_row"],
                                        cog=neg_pad_offset)),
            res_addr=s("res_addr", dict(right=c["res_right"], down_left=c["res_down_left"],
                                        up_right=c["res_up_right"], row=c["res_row"],
                                        window_row=c["res_window_row"], cog=c["res_cog"])),
            res_row_addr=s("res_row_addr", dict(row=c["res_row"], window_row=c["res_window_row"],
                                                cog=c["res_cog"])),
            pixel_in_x=s("pixel_in_x", dict(right=c["in_x_plus"], down_left=c["in_x_minus"],
                                            up_right=c["in_x_plus"], row=neg_pad,
                                            window_row=neg_pad, cog=neg_pad)),
            pixel_in_y=s("pixel_in_y", dict(down_left=c["in_y_plus"], up_right=c["in_y_minus"],
                                            row=c["in_y_row"], window_row=c["in_y_window_row"],
                                            cog=neg_pad)),
            row_in_y=s("row_in_y", dict(row=c["in_y_row"], window_row=c["in_y_window_row"],
                                        cog=neg_pad)),
            ox=s("ox", dict(right=c["ox_inc"], down_left=c["ox_dec"], up_right=c["ox_inc"],
                            row=0, window_row=0, cog=0)),
            ox_at_last=s("ox_at_last", dict(right=c["ox_inc_last"], down_left=c["ox_dec_last"],
                                            up_right=c["ox_inc_last"], row=c["ox_zero_last"],
                                            window_row=c["ox_zero_last"], cog=c["ox_zero_last"])),
            oy=s("oy", dict(down_left=c["oy_inc"], up_right=c["oy_dec"], row=c["oy_inc"],
                            window_row=c["oy_inc"], cog=0)),
            oy_at_last=s("oy_at_last", dict(down_left=c["oy_inc_last"], up_right=c["oy_dec_last"],
                                            row=c["oy_inc_last"], window_row=c["oy_inc_last"],
                                            cog=c["oy_zero_last"])),
            window_x=s("window_x", dict(right=c["window_x_walk"], down_left=c["window_x_walk"],
                                        up_right=c["window_x_walk"],
                                        window_row=c["window_x_walk"], cog=0)),
            window_y=s("window_y", dict(down_left=1, up_right=0, window_row=0, cog=0)),
            cog=s("cog", dict(cog=c["cog_inc"])),
            cog_at_last=s("cog_at_last", dict(cog=c["cog_inc_last"])),
            group_weight_addr=s("group_weight_addr", dict(cog=c["weight_next_group"])),
            active=s("active", dict(end=0)),
        )
