"""The binary-weight MAC array: ``p_o`` output channels x ``p_i`` input channels per cycle.

Weights are bits (1 = +1, 0 = -1); activations arrive as ``a_planes`` bit-planes. For output ``o``
and plane ``b``::

    s_b = sum_i w_oi * a_bi = 2 * popcount(w_o & a_b) - popcount(a_b)
    acc_o += sum_b s_b << (b + shift)

``shift`` (``sub * a_planes`` in the engine) lets activations of any width 1..8 run as
``ceil(bits / a_planes)`` passes. The popcounts are pipelined adder trees with a register after every
``levels_per_stage`` levels, so the array keeps a short critical path at the default 64 x 32 size.
"""

from amaranth.hdl import Module, Signal, Cat, Const, Mux, Array, signed, unsigned
from amaranth.lib import wiring, stream, data
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .synthesis import KEEP_COPY


__all__ = ["MACArray", "mac_input_layout", "SHIFT_BITS"]


SHIFT_BITS = 3  # shift = sub * a_planes <= 7 for any activation width 1..8


def mac_input_layout(p_o, p_i, a_planes, tag_bits=0):
    """Payload of the MAC array's input stream (one word-set per transfer)."""
    fields = {
        "weights": unsigned(p_o * p_i),   # bit o*p_i + i: output o, input lane i
        "acts": unsigned(a_planes * p_i),  # plane b = bits [b*p_i, (b+1)*p_i)
        "shift": unsigned(SHIFT_BITS),
        "first": unsigned(1),              # clear the accumulators before adding this word-set
        "last": unsigned(1),               # emit the accumulators after adding this word-set
    }
    if tag_bits:
        fields["tag"] = unsigned(tag_bits)  # carried along, emitted with the ``last`` word-set
    return data.StructLayout(fields)


def _half_add(x, y):
    # Written as gates rather than ``+`` so that Yosys maps the narrow first levels of the
    # popcount into LUT4s instead of short CCU2C carry chains (which waste half their LUTs).
    return Cat(x ^ y, x & y)


def _ripple_add(x, y):
    """Sum of two equal-width unsigned values as explicit full-adder gates (one bit wider)."""
    bits = []
    carry = Const(0, 1)
    for k in range(len(x)):
        bits.append(x[k] ^ y[k] ^ carry)
        carry = (x[k] & y[k]) | (carry & (x[k] ^ y[k]))
    bits.append(carry)
    return Cat(*bits)


def _tree_stages(n, levels_per_stage):
    """Register stages of a popcount tree of ``n`` bits: between levels, and after the last one."""
    levels = max(1, (n - 1).bit_length())
    return (levels - 1) // levels_per_stage + 1


class MACArray(wiring.Component):
    """Pipelined binary-weight MAC array with valid/ready streams.

    Parameters
    ----------
    p_o : int
        Output channels (accumulators).
    p_i : int
        Input lanes per activation bit-plane.
    a_planes : int
        Activation bit-planes per word-set (1..8).
    acc_bits : int
        Signed accumulator width; sums wrap modulo ``2**acc_bits``.
    tag_bits : int
        Width of an opaque tag carried from a word-set to the output it ends (0: none).
    levels_per_stage : int
        Adder-tree levels between pipeline registers.
    room_lead : int
        Cycles from ``room`` to the word-set it admits (1..4): the producer's pipeline depth
        between its decision and the array's input.
    act_fanout : int
        Outputs per group. Each group has its own register copies of the signals that every
        output needs: the input activations with their ``popcount(a)`` trees, the shift, valid
        and first side band, and the result FIFO's write enable and pointers (with its own slice
        of the FIFO). One register driving all outputs is a long route across the array; the
        copies, kept apart in synthesis (:mod:`accel.synthesis`), keep the routes short.

    Members
    -------
    inp : ``In(stream.Signature(mac_input_layout(...)))``
        Word-sets. ``ready`` is a register: low only when the 16-deep output FIFO could not take
        the results of the ``last`` word-sets already in flight (a consumer stalled for a while).
    room : ``Out(1)``
        ``ready`` is guaranteed high ``room_lead`` cycles later, whatever is taken until then
        (``room_lead + 1`` or more credits left). A producer that presents a word-set only
        ``room_lead`` cycles after ``room`` never sees ``ready`` low, so it needs no stall logic:
        its memories read every cycle and its pipeline registers have no clock enable.
    out : ``Out(stream.Signature(...))``
        ``ArrayLayout(signed(acc_bits), p_o)`` of the accumulators after each ``last`` word-set, or
        ``StructLayout({"acc": ..., "tag": tag_bits})`` when ``tag_bits > 0``.

    Latency: a ``last`` word-set accepted in cycle ``t`` appears on ``out`` in cycle
    ``t + latency`` (when the FIFO is empty). One word-set per cycle in steady state, no gaps
    between outputs; the pipeline registers have no clock enable.
    """

    def __init__(self, p_o, p_i, a_planes, acc_bits, *, tag_bits=0, levels_per_stage=2,
                 act_fanout=8, room_lead=1):
        for name, value in (("p_o", p_o), ("p_i", p_i), ("a_planes", a_planes),
                            ("acc_bits", acc_bits), ("tag_bits", tag_bits),
                            ("levels_per_stage", levels_per_stage), ("act_fanout", act_fanout),
                            ("room_lead", room_lead)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"MACArray {name} must be an integer, not {value!r}")
        if p_o < 1:
            raise ValueError(f"MACArray p_o must be positive, not {p_o}")
        if p_i < 2:
            raise ValueError(f"MACArray p_i must be at least 2, not {p_i}")
        if not 1 <= a_planes <= 8:
            raise ValueError(f"MACArray a_planes must be 1..8, not {a_planes}")
        need = p_i.bit_length() + a_planes + 2 + 7
        if not need - 7 <= acc_bits <= 48:
            raise ValueError(f"MACArray acc_bits must be {need - 7}..48, not {acc_bits}")
        if tag_bits < 0:
            raise ValueError(f"MACArray tag_bits must be >= 0, not {tag_bits}")
        if levels_per_stage < 1:
            raise ValueError(f"MACArray levels_per_stage must be >= 1, not {levels_per_stage}")
        if act_fanout < 1:
            raise ValueError(f"MACArray act_fanout must be >= 1, not {act_fanout}")
        if not 1 <= room_lead <= 4:
            raise ValueError(f"MACArray room_lead must be 1..4, not {room_lead}")
        self.p_o, self.p_i, self.a_planes, self.acc_bits = p_o, p_i, a_planes, acc_bits
        self.tag_bits = tag_bits
        self.levels_per_stage = levels_per_stage
        self.act_fanout = act_fanout
        self.room_lead = room_lead
        self.acc_layout = data.ArrayLayout(signed(acc_bits), p_o)
        if tag_bits:
            out_layout = data.StructLayout({"acc": self.acc_layout, "tag": unsigned(tag_bits)})
        else:
            out_layout = self.acc_layout
        # input register + tree registers + combine register + shift register + accumulators,
        # then the output FIFO
        self.latency = 1 + _tree_stages(p_i, levels_per_stage) + 3
        self.t_bits = p_i.bit_length() + a_planes + 2   # width of one output's combined sum
        self.fifo_depth = 16
        super().__init__({
            "inp": In(stream.Signature(mac_input_layout(p_o, p_i, a_planes, tag_bits))),
            "out": Out(stream.Signature(out_layout)),
            "room": Out(1),
        })

    def _combined_sums(self, m, s0):
        """The per-output sums ``t_o = sum_b (2 * popcount(w_o & a_b) - popcount(a_b)) << b`` of
        the word-set in ``s0``, as signals registered ``_tree_stages(p_i) + 1`` cycles after it:
        the popcount trees with their pipeline registers, then the combine register.

        The one part of the array a simulation model may replace (``FastMACArray`` computes the
        same values with word-wide popcounts); everything around it is shared.
        """
        p_o, p_i, nb = self.p_o, self.p_i, self.a_planes
        lps = self.levels_per_stage
        n_tree = _tree_stages(p_i, lps)

        def popcount(bits, name):
            items = [_half_add(bits[2 * k], bits[2 * k + 1]) for k in range(len(bits) // 2)]
            if len(bits) % 2:
                items.append(Cat(bits[-1], Const(0, 1)))
            level = 1
            stage = 0
            while len(items) > 1:
                if level % lps == 0:
                    regs = []
                    for k, x in enumerate(items):
                        r = Signal(len(x), name=f"{name}_r{stage}_{k}", reset_less=True)
                        m.d.sync += r.eq(x)
                        regs.append(r)
                    items = regs
                    stage += 1
                nxt = []
                for k in range(len(items) // 2):
                    x, y = items[2 * k], items[2 * k + 1]
                    if len(x) <= 2:
                        nxt.append(_ripple_add(x, y))
                    else:
                        nxt.append(x + y)
                if len(items) % 2:
                    nxt.append(items[-1])
                items = nxt
                level += 1
            r = Signal(len(items[0]), name=f"{name}_out", reset_less=True)
            m.d.sync += r.eq(items[0])
            assert stage + 1 == n_tree, (stage, n_tree)
            return r

        # The activations as ``s0`` holds them, in one register copy per ``act_fanout`` outputs
        # (same values, same cycle as s0.acts), each with its own popcount(a) trees: a shared
        # copy or a shared sum of those trees would be the array's longest route.
        n_copies = -(-p_o // self.act_fanout)
        groups = []
        for g in range(n_copies):
            r = Signal(len(s0.acts), name=f"s0_acts{g}", reset_less=True, attrs=KEEP_COPY)
            m.d.sync += r.eq(self.inp.payload.acts)
            planes = [r[b * p_i:(b + 1) * p_i] for b in range(nb)]
            # popcount(a_b) is shared by the group's outputs: PA = sum_b popcount(a_b) << b.
            pa = [popcount(planes[b], f"pa{g}_{b}") for b in range(nb)]
            groups.append((planes, sum((pa[b] << b) for b in range(nb))))

        w = s0.weights
        ts = []
        for o in range(p_o):
            wo = w[o * p_i:(o + 1) * p_i]
            planes, pa_sum = groups[o // self.act_fanout]
            pcs = [popcount(wo & planes[b], f"pc{o}_{b}") for b in range(nb)]
            # sum_b (2*pc_b - pa_b) << b, with the shared part subtracted once
            pos = sum((pcs[b] << (b + 1)) for b in range(nb))
            t = Signal(signed(self.t_bits), name=f"t{o}", reset_less=True)
            m.d.sync += t.eq(pos - pa_sum)
            ts.append(t)
        return ts

    def elaborate(self, platform):
        m = Module()
        p_o, p_i = self.p_o, self.p_i

        # The data path's registers have no reset (``reset_less``): only the valid bits, the
        # credits and the FIFO pointers do. A reset reaching every pipeline register would be a
        # route to ~10k flip-flops (the units' reset strobe), longer than a clock cycle; the
        # accumulators are cleared by ``first`` anyway, and nothing reads data that is not valid.
        # No pipeline enable: a global stall signal would be a clock-enable net with ~10k loads
        # at the default size, which alone limited the array to ~70 MHz on ECP5. Instead the
        # pipeline always advances and results land in a 16-deep output FIFO (LUT RAM); the input
        # takes a word-set only while a FIFO slot is guaranteed for every ``last`` word-set in
        # flight (credits, a register), so a stalled consumer never loses a result.
        depth = self.fifo_depth
        credits = Signal(range(depth + 1), init=depth)
        # ``room`` is a register of its own (credits >= room_lead + 1, from the credits' next
        # value): it starts the producer's every step decision.
        room = Signal(init=depth >= self.room_lead + 1)
        m.d.comb += [self.inp.ready.eq(credits != 0), self.room.eq(room)]
        take = self.inp.valid & self.inp.ready

        # Stage 0: input register (the weight word comes straight out of block RAM).
        s0 = Signal(self.inp.payload.shape(), name="s0", reset_less=True)
        s0_valid = Signal()
        m.d.sync += [s0.eq(self.inp.payload), s0_valid.eq(take)]

        # Side band (valid, shift, first, last, tag) travels alongside the popcount stages.
        side_fields = Cat(s0_valid, s0.shift, s0.first, s0.last)
        if self.tag_bits:
            side_fields = Cat(side_fields, s0.tag)
        side = side_fields
        sides = []
        n_tree = _tree_stages(p_i, self.levels_per_stage)
        for k in range(n_tree + 2):  # tree stages + the combine and shift registers
            r = Signal(len(side_fields), name=f"side{k + 1}")
            m.d.sync += r.eq(side)
            side = r
            sides.append(r)

        ts = self._combined_sums(m, s0)
        t_bits = self.t_bits

        # Per group of act_fanout outputs, copies of the side band's shift (aligned with t) and of
        # valid and first (aligned with the shifted values), kept apart like the activation
        # copies: each drives a shifter or an accumulator in every output of the array, and one
        # register for all 64 outputs would be the array's longest route.
        side_t = sides[n_tree]          # aligned with t
        side_a = sides[n_tree + 1]      # aligned with the shifted values
        group_shift, group_valid, group_first = [], [], []
        for g in range(-(-p_o // self.act_fanout)):
            shift_g = Signal(SHIFT_BITS, name=f"shift_t{g}", attrs=KEEP_COPY)
            valid_g = Signal(name=f"valid_a{g}", attrs=KEEP_COPY)
            first_g = Signal(name=f"first_a{g}", attrs=KEEP_COPY)
            m.d.sync += [shift_g.eq(sides[n_tree - 1][1:1 + SHIFT_BITS]),
                         valid_g.eq(side_t[0]), first_g.eq(side_t[1 + SHIFT_BITS])]
            group_shift.append(shift_g)
            group_valid.append(valid_g)
            group_first.append(first_g)

        # Shift stage: t << shift in its own register stage, so that the accumulator stage is one
        # AND and one carry chain.
        sh_bits = t_bits + 7
        shifted = []
        for o in range(p_o):
            r = Signal(signed(sh_bits), name=f"sh{o}", reset_less=True)
            m.d.sync += r.eq(ts[o] << group_shift[o // self.act_fanout])
            shifted.append(r)

        tag_t = side_a[3 + SHIFT_BITS:] if self.tag_bits else None

        accs = []
        acc_next = []
        for o in range(p_o):
            acc = Signal(signed(self.acc_bits), name=f"acc{o}", reset_less=True)
            nxt = Signal(signed(self.acc_bits), name=f"acc_next{o}")
            m.d.comb += nxt.eq(Mux(group_first[o // self.act_fanout], 0, acc) + shifted[o])
            with m.If(group_valid[o // self.act_fanout]):
                m.d.sync += acc.eq(nxt)
            accs.append(acc)
            acc_next.append(nxt)

        # Result FIFO, written without a full check: the credits guarantee a free slot for every
        # ``last`` word-set in flight. The write enable is a register of its own (no logic in
        # front of the nets to the LUT-RAM write ports). The
        # accumulators and the tag sit in separate memories so that the accumulator read data
        # feeds nothing but the consumer's pipeline register, which Yosys can then fold into the
        # read port without a clock enable (one memory shared with the tag, which the consumer's
        # control logic reads, got a read register enabled by the consumer's take instead: a
        # ~1,300-load clock-enable net).
        push = Signal()
        push_next = side_t[0] & side_t[2 + SHIFT_BITS]
        m.d.sync += push.eq(push_next)   # aligned with side_a
        produce = Signal(range(depth))
        consume = Signal(range(depth))
        level = Signal(range(depth + 1))
        m.d.comb += self.out.valid.eq(level != 0)
        pop = self.out.valid & self.out.ready
        produce_next = Mux(push, Mux(produce == depth - 1, 0, produce + 1), produce)
        # consume + 1 (wrapped) is a register of its own, so the consumer's ready (pop) only
        # selects the next read pointer: it drives the copies next to every accumulator memory
        consume_inc = Signal(range(depth), init=1 % depth)
        with m.If(pop):
            m.d.sync += consume_inc.eq(Mux(consume_inc == depth - 1, 0, consume_inc + 1))
        consume_next = Mux(pop, consume_inc, consume)
        m.d.sync += [produce.eq(produce_next), consume.eq(consume_next)]
        # One accumulator memory per group of act_fanout outputs, each with its own copy of the
        # write enable and the two pointers (kept apart in synthesis, like the activation
        # copies): one pointer driving the LUT RAMs of all outputs would be a route of about
        # 12 ns at 64 x 32.
        acc_data = []
        for g, o0 in enumerate(range(0, p_o, self.act_fanout)):
            outs = range(o0, min(p_o, o0 + self.act_fanout))
            mem = Memory(shape=len(outs) * self.acc_bits, depth=depth, init=[])
            m.submodules[f"acc_fifo{g}"] = mem
            w_en = Signal(name=f"acc_push{g}", attrs=KEEP_COPY)
            w_addr = Signal(range(depth), name=f"acc_produce{g}", attrs=KEEP_COPY)
            r_addr = Signal(range(depth), name=f"acc_consume{g}", attrs=KEEP_COPY)
            m.d.sync += [w_en.eq(push_next), w_addr.eq(produce_next), r_addr.eq(consume_next)]
            wp = mem.write_port()
            rp = mem.read_port(domain="comb")
            m.d.comb += [wp.addr.eq(w_addr), wp.data.eq(Cat(*(acc_next[o] for o in outs))),
                         wp.en.eq(w_en), rp.addr.eq(r_addr)]
            acc_data.append(rp.data)
        if self.tag_bits:
            # The tag FIFO is flip-flops, and its head a register loaded with the next cycle's
            # head (the word being written when that is it): the consumer turns the tag into
            # block-RAM addresses (the output unit's residual read), and a LUT RAM's read path
            # before them would be too long a path. (A LUT-RAM read port with a register,
            # Yosys maps as an address register before the asynchronous read: no better.)
            # The head's two candidates are prepared from registers, so the consumer's ready
            # (pop) only selects between them: the head if nothing is popped (or the tag being
            # written into the empty FIFO's head slot), the slot after it if one is (the 16:1
            # multiplexer at a pointer computed from ready would be too long a path).
            tags = Array(Signal(self.tag_bits, name=f"tag{k}", reset_less=True)
                         for k in range(depth))
            head = Signal(self.tag_bits, name="tag_head", reset_less=True)
            with m.If(push):
                m.d.sync += tags[produce].eq(tag_t)
            head_stay = Mux(push & (produce == consume), tag_t, head)
            head_pop = Mux(push & (produce == consume_inc), tag_t, tags[consume_inc])
            m.d.sync += head.eq(Mux(pop, head_pop, head_stay))
            m.d.comb += [self.out.payload.acc.as_value().eq(Cat(*acc_data)),
                         self.out.payload.tag.eq(head)]
        else:
            m.d.comb += self.out.payload.as_value().eq(Cat(*acc_data))
        m.d.sync += level.eq(level + push - pop)
        credits_next = Signal.like(credits)
        m.d.comb += credits_next.eq(credits - (take & self.inp.payload.last) + pop)
        m.d.sync += [credits.eq(credits_next), room.eq(credits_next >= self.room_lead + 1)]
        return m
