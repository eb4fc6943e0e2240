"""Simulation models of gateware blocks: the same ports and cycle behaviour, cheaper to simulate.

The compiled simulator (``firmware/cxxrtl_sim.py``) evaluates every operation of the design in every
cycle. ``accel.mac_array.MACArray`` is written for the FPGA: its popcounts are adder trees of
single-bit gates with pipeline registers between levels, thousands of one-bit operations per cycle
at the default 64 x 32 size. ``FastMACArray`` computes the same sums with word-wide SWAR popcounts
(about a dozen word operations per 32 lanes) and delays the *input* word-set through the same number
of enable-gated registers instead of delaying the partial sums, so every output appears in the same
cycle with the same value. ``tests/test_cxxrtl_sim.py`` checks this cycle for cycle against
``MACArray`` in Amaranth's simulator, with random stalls, and the whole SoC built with it against
Amaranth's simulation of the real one.

``use_fast_models(soc)`` swaps the models into an ``accel.soc.SoC`` before it is elaborated.
"""

from amaranth.hdl import Module, Signal, Cat, Const, Mux, signed
from amaranth.lib import wiring

from accel.mac_array import MACArray, SHIFT_BITS, _tree_stages


__all__ = ["FastMACArray", "use_fast_models", "popcount_swar"]


def _rep(pattern, byte_count):
    return int.from_bytes(bytes([pattern]) * byte_count, "little")


def popcount_swar(m, x, name):
    """Popcount of ``x`` (any width) as word operations: SWAR over chunks of at most 64 bits."""
    total = []
    for c in range(0, len(x), 64):
        chunk = x[c:c + 64]
        nb = 1
        while nb * 8 < len(chunk):           # a power-of-two number of bytes; the padding is 0
            nb *= 2
        w = nb * 8
        v = Signal(w, name=f"{name}_{c}")
        s1 = Signal(w, name=f"{name}_{c}_s1")
        s2 = Signal(w, name=f"{name}_{c}_s2")
        s3 = Signal(w, name=f"{name}_{c}_s3")
        m.d.comb += [
            v.eq(chunk),
            s1.eq(v - ((v >> 1) & _rep(0x55, nb))),                       # 2-bit counts
            s2.eq((s1 & _rep(0x33, nb)) + ((s1 >> 2) & _rep(0x33, nb))),  # 4-bit counts
            s3.eq((s2 + (s2 >> 4)) & _rep(0x0F, nb)),                     # byte counts
        ]
        # Add the byte counts by folding halves (at most 64 per byte, no carry between bytes).
        acc = s3
        while len(acc) > 8:
            half = len(acc) // 2
            nxt = Signal(half, name=f"{name}_{c}_f{half}")
            m.d.comb += nxt.eq(acc[:half] + acc[half:])
            acc = nxt
        total.append(acc)
    if len(total) == 1:
        return total[0]
    out = Signal(range(len(x) + 1), name=f"{name}_n")
    m.d.comb += out.eq(sum(total))
    return out


class FastMACArray(MACArray):
    """``MACArray`` with word-level popcounts, for the compiled simulator only.

    Same parameters, ports, ``latency`` and cycle behaviour as :class:`accel.mac_array.MACArray`.
    """

    def elaborate(self, platform):
        m = Module()
        p_o, p_i, nb = self.p_o, self.p_i, self.a_planes

        out_valid = Signal()
        en = Signal()
        m.d.comb += [en.eq(~out_valid | self.out.ready), self.inp.ready.eq(en)]

        # Stage 0 and the tree stages: the whole word-set (valid included) moves through
        # enable-gated registers, as the partial sums and the side band do in MACArray.
        s = Signal(self.inp.payload.shape(), name="s0")
        s_valid = Signal(name="s0_valid")
        with m.If(en):
            m.d.sync += [s.eq(self.inp.payload), s_valid.eq(self.inp.valid)]
        for k in range(_tree_stages(p_i, self.levels_per_stage)):
            r = Signal(self.inp.payload.shape(), name=f"s{k + 1}")
            r_valid = Signal(name=f"s{k + 1}_valid")
            with m.If(en):
                m.d.sync += [r.eq(s), r_valid.eq(s_valid)]
            s, s_valid = r, r_valid

        w = s.weights
        a = s.acts
        planes = [a[b * p_i:(b + 1) * p_i] for b in range(nb)]
        pa = [popcount_swar(m, planes[b], f"pa{b}") for b in range(nb)]
        pa_sum = sum((pa[b] << b) for b in range(nb))
        t_bits = p_i.bit_length() + nb + 2

        # The combine register (MACArray's t and side registers).
        valid_t = Signal()
        shift_t = Signal(SHIFT_BITS)
        first_t = Signal()
        last_t = Signal()
        tag_t = Signal(self.tag_bits) if self.tag_bits else None
        with m.If(en):
            m.d.sync += [valid_t.eq(s_valid), shift_t.eq(s.shift), first_t.eq(s.first),
                         last_t.eq(s.last)]
            if self.tag_bits:
                m.d.sync += tag_t.eq(s.tag)
        ts = []
        for o in range(p_o):
            wo = w[o * p_i:(o + 1) * p_i]
            pcs = [popcount_swar(m, wo & planes[b], f"pc{o}_{b}") for b in range(nb)]
            pos = sum((pcs[b] << (b + 1)) for b in range(nb))
            t = Signal(signed(t_bits), name=f"t{o}")
            with m.If(en):
                m.d.sync += t.eq(pos - pa_sum)
            ts.append(t)

        accs = []
        for o in range(p_o):
            acc = Signal(signed(self.acc_bits), name=f"acc{o}")
            with m.If(en & valid_t):
                m.d.sync += acc.eq(Mux(first_t, 0, acc) + (ts[o] << shift_t))
            accs.append(acc)

        with m.If(en):
            m.d.sync += out_valid.eq(valid_t & last_t)
        m.d.comb += self.out.valid.eq(out_valid)
        if self.tag_bits:
            tag_out = Signal(self.tag_bits)
            with m.If(en & valid_t & last_t):
                m.d.sync += tag_out.eq(tag_t)
            m.d.comb += [self.out.payload.acc.as_value().eq(Cat(*accs)),
                         self.out.payload.tag.eq(tag_out)]
        else:
            m.d.comb += self.out.payload.as_value().eq(Cat(*accs))
        return m


def use_fast_models(soc):
    """Replace the SoC's blocks that have a simulation model by it (before elaboration).

    Returns the list of replaced attribute paths (empty if the SoC has none of them).
    """
    done = []
    engine = getattr(soc, "engine", None)
    mac = getattr(engine, "mac", None)
    if type(mac) is MACArray:
        fast = FastMACArray(mac.p_o, mac.p_i, mac.a_planes, mac.acc_bits, tag_bits=mac.tag_bits,
                            levels_per_stage=mac.levels_per_stage)
        if fast.signature != mac.signature or fast.latency != mac.latency:
            raise AssertionError("FastMACArray no longer matches MACArray's interface")
        engine.mac = fast
        mac._MustUse__silence = True            # replaced on purpose: no UnusedElaboratable warning
        done.append("engine.mac")
    return done
