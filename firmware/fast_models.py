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

import warnings

from amaranth.hdl import Signal, Cat, signed
from accel.mac_array import MACArray, _tree_stages


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


def plane_popcounts_swar(m, x, n_planes, name):
    """Popcounts of the ``n_planes`` equal, byte-aligned slices of ``x`` (at most 64 bits in all)
    with one shared SWAR: the byte counts of the whole word, then each slice's bytes folded."""
    width = len(x)
    plane = width // n_planes
    assert width <= 64 and plane % 8 == 0 and plane * n_planes == width
    v = Signal(width, name=f"{name}_v")
    s1 = Signal(width, name=f"{name}_s1")
    s2 = Signal(width, name=f"{name}_s2")
    s3 = Signal(width, name=f"{name}_s3")
    nb = width // 8
    m.d.comb += [
        v.eq(x),
        s1.eq(v - ((v >> 1) & _rep(0x55, nb))),
        s2.eq((s1 & _rep(0x33, nb)) + ((s1 >> 2) & _rep(0x33, nb))),
        s3.eq((s2 + (s2 >> 4)) & _rep(0x0F, nb)),
    ]
    counts = []
    for b in range(n_planes):
        acc = s3[b * plane:(b + 1) * plane]
        while len(acc) > 8:
            half = (len(acc) // 16) * 8 if len(acc) % 16 else len(acc) // 2
            nxt = Signal(len(acc) - half, name=f"{name}_{b}_f{len(acc)}")
            m.d.comb += nxt.eq(acc[:half] + acc[half:])      # byte lanes; no carry between them
            acc = nxt
        cnt = Signal(range(plane + 1), name=f"{name}_{b}")
        m.d.comb += cnt.eq(acc[:8])
        counts.append(cnt)
    return counts


class FastMACArray(MACArray):
    """``MACArray`` with word-level popcounts, for the compiled simulator only.

    Same parameters, ports, ``latency`` and cycle behaviour as :class:`accel.mac_array.MACArray`:
    only :meth:`MACArray._combined_sums` is replaced; the input stage, side band, shift stage,
    accumulators and result FIFO are MACArray's own.
    """

    def _combined_sums(self, m, s0):
        p_o, p_i, nb = self.p_o, self.p_i, self.a_planes
        # MACArray's popcount outputs are n_tree registers after s0: delay the word-set as much,
        # then compute the popcounts combinationally and register the combined sums.
        s = s0
        for k in range(_tree_stages(p_i, self.levels_per_stage)):
            r = Signal(s0.shape(), name=f"s{k + 1}")
            m.d.sync += r.eq(s)
            s = r

        w = s.weights
        a = s.acts
        planes = [a[b * p_i:(b + 1) * p_i] for b in range(nb)]
        joint = nb * p_i <= 64 and p_i % 8 == 0
        if joint:
            pa = plane_popcounts_swar(m, a, nb, "pa")
        else:
            pa = [popcount_swar(m, planes[b], f"pa{b}") for b in range(nb)]
        pa_sum = sum((pa[b] << b) for b in range(nb))

        ts = []
        for o in range(p_o):
            wo = w[o * p_i:(o + 1) * p_i]
            if joint:       # all planes in one 64-bit SWAR (the default 32 lanes x 2 planes)
                pcs = plane_popcounts_swar(m, Cat(*([wo] * nb)) & a, nb, f"pc{o}")
            else:
                pcs = [popcount_swar(m, wo & planes[b], f"pc{o}_{b}") for b in range(nb)]
            pos = sum((pcs[b] << (b + 1)) for b in range(nb))
            t = Signal(signed(self.t_bits), name=f"t{o}")
            m.d.sync += t.eq(pos - pa_sum)
            ts.append(t)
        return ts


# The part of MACArray that FastMACArray replaces, as it was when the two were checked against each
# other (tests/test_cxxrtl_sim.py): a model of another version could differ in some cycle, so
# use_fast_models keeps the real array then. The rest of the array is shared code.
def mac_array_fingerprint():
    import hashlib
    import inspect
    from accel import mac_array
    parts = [mac_array.MACArray._combined_sums, mac_array._tree_stages, mac_array._half_add,
             mac_array._ripple_add]
    text = "".join(inspect.getsource(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


VALIDATED_MAC_ARRAY = "ad794e314aec9cef"


def use_fast_models(soc):
    """Replace the SoC's blocks that have a simulation model by it (before elaboration).

    Returns the list of replaced attribute paths (empty if the SoC has none of them).
    """
    done = []
    engine = getattr(soc, "engine", None)
    mac = getattr(engine, "mac", None)
    if type(mac) is MACArray:
        if mac_array_fingerprint() != VALIDATED_MAC_ARRAY:
            warnings.warn("accel/mac_array.py changed since FastMACArray was checked against it; "
                          "simulating the real MACArray (slower). Update firmware/fast_models.py "
                          "and VALIDATED_MAC_ARRAY once tests/test_cxxrtl_sim.py passes.",
                          stacklevel=2)
            return done
        fast = FastMACArray(mac.p_o, mac.p_i, mac.a_planes, mac.acc_bits, tag_bits=mac.tag_bits,
                            levels_per_stage=mac.levels_per_stage, act_fanout=mac.act_fanout,
                            room_lead=mac.room_lead)
        if fast.signature != mac.signature or fast.latency != mac.latency:
            raise AssertionError("FastMACArray no longer matches MACArray's interface")
        engine.mac = fast
        mac._MustUse__silence = True            # replaced on purpose: no UnusedElaboratable warning
        done.append("engine.mac")
    return done
