"""DescriptorCheck against a Python statement of the engine's checks (firmware/refsim.py's rules)."""

import random

import pytest
from amaranth.sim import Simulator

from contract import isa
from contract.config import MICRO, TINY, EMB_ENTRY_BITS
from accel.descriptor_check import DescriptorCheck, CONV_CHECKS
from reference import ceil_div
from engine_harness import raw_desc_value


def conv_refused(f, c):
    """Whether the engine refuses CONV descriptor ``f`` on configuration ``c``."""
    k, s, p, nsub = f["k"], f["stride"], f["pad"], f["nsub"]
    H, W, Ho, Wo = f["h_in"], f["w_in"], f["h_out"], f["w_out"]
    n_cig, n_cog, src, dst = f["n_cig"], f["n_cog"], f["src_bank"], f["dst_bank"]
    bad = [min(k, s, nsub, n_cig, n_cog, H, W, Ho, Wo) < 1, p >= k,
           nsub > ceil_div(8, c.a_planes),
           (Ho - 1) * s + k > H + 2 * p or (Wo - 1) * s + k > W + 2 * p,
           src >= c.n_code_banks, H * W * n_cig * nsub > c.bank_depth,
           f["w_base"] + n_cog * k * k * n_cig > c.wbuf_depth,
           f["sum"] and f["res_out"], f["pool"] and (not f["thr_out"] or f["res_out"])]
    if f["res_in"] or f["res_out"]:
        bad.append(f["res_base"] + Ho * Wo * n_cog > c.res_depth)
    if f["sum"]:
        bad.append(f["res_base"] + n_cog > c.res_depth)
    if f["thr_out"]:
        n_out = f["n_cig_out"]
        Hp, Wp = (Ho // 2, Wo // 2) if f["pool"] else (Ho, Wo)
        bad += [dst >= c.n_code_banks, dst == src, not 1 <= f["out_bits"] <= c.max_out_bits,
                f["thr_base"] + n_cog * c.p_o > c.thr_depth,
                not (n_cog - 1) * c.m < n_out <= n_cog * c.m,
                f["pool"] and (Ho % 2 or Wo % 2), Hp * Wp * n_out > c.bank_depth]
    return any(bad)


def embed_refused(f, c):
    """Whether the engine refuses EMBED descriptor ``f`` on configuration ``c``."""
    H, W, C, raw, nsub = f["h_in"], f["w_in"], f["emb_c"], f["raw"], f["nsub"]
    d, q, k = f["emb_d"], f["emb_q"], f["k"]
    bad = [H < 1 or W < 1, not 1 <= nsub <= ceil_div(8, c.a_planes),
           f["dst_bank"] >= c.n_code_banks, not 1 <= C <= c.emb_channels]
    if raw:
        bad.append(C > c.p_i)
    else:
        bad += [d < 1 or not 1 <= q <= c.a_planes, d * q > EMB_ENTRY_BITS, C * d > c.p_i]
    if k:
        bad += [C != 1 or raw or nsub != 1, k > c.emb_channels, k * d > c.p_i,
                min(f["stride"], f["h_out"], f["w_out"]) < 1,
                f["h_out"] * f["w_out"] * k > c.bank_depth]
    else:
        bad.append(H * W * nsub > c.bank_depth)
    return any(bad)


def products(f):
    """The set-up multiplier's products the checks use."""
    window = f["k"] != 0
    pixels_in, pixels_out = f["h_in"] * f["w_in"], f["h_out"] * f["w_out"]
    if f["op"] == isa.Op.CONV:
        pooled = (f["h_out"] >> f["pool"]) * (f["w_out"] >> f["pool"])
        return dict(source_words=pixels_in * f["n_cig"] * f["nsub"],
                    destination_words=pooled * f["n_cig_out"],
                    weight_words=f["k"] * f["k"] * f["n_cig"] * f["n_cog"],
                    residual_words=pixels_out * f["n_cog"],
                    height_span=((f["h_out"] - 1) * f["stride"]) & 0xFFFF_FFFF,
                    width_span=((f["w_out"] - 1) * f["stride"]) & 0xFFFF_FFFF,
                    codes_per_word=0, table_entry_bits=0)
    return dict(source_words=0, weight_words=0, residual_words=0, height_span=0, width_span=0,
                destination_words=pixels_out * f["k"] if window else pixels_in * f["nsub"],
                codes_per_word=(f["k"] if window else f["emb_c"]) * f["emb_d"],
                table_entry_bits=f["emb_d"] * f["emb_q"])


RANGES = dict(k=4, stride=3, pad=3, nsub=5, n_cig=3, n_cog=3, h_in=9, w_in=9, h_out=9, w_out=9,
              src_bank=3, dst_bank=3, thr_out=1, res_in=1, res_out=1, pool=1, sum=1, raw=1,
              out_bits=3, n_cig_out=7, w_base=70, thr_base=40, res_base=40, emb_c=3, emb_d=9,
              emb_q=3)


def random_descriptor(rng, c, op):
    """A descriptor near the boundary of the valid ones: a valid-looking layer with a few fields
    drawn anew over their whole range (``RANGES``)."""
    k = rng.randint(1, 3)
    f = dict(op=int(op), k=k, stride=rng.randint(1, 2), pad=rng.randint(0, k - 1),
             nsub=rng.randint(1, 2), n_cig=1, n_cog=rng.randint(1, 2), h_in=rng.randint(2, 6),
             w_in=rng.randint(2, 6), src_bank=0, dst_bank=1, thr_out=1, res_in=0, res_out=0,
             pool=0, sum=0, raw=0, out_bits=1, w_base=rng.randint(0, 8), thr_base=0, res_base=0,
             emb_c=1, emb_d=rng.randint(1, 4), emb_q=1)
    f["h_out"] = max(1, (f["h_in"] + 2 * f["pad"] - k) // f["stride"] + 1)
    f["w_out"] = max(1, (f["w_in"] + 2 * f["pad"] - k) // f["stride"] + 1)
    f["n_cig_out"] = ceil_div(f["n_cog"] * c.p_o, c.p_i)
    if op == isa.Op.EMBED:
        f["k"] = rng.choice([0, 0, 1])
    for name in rng.sample(sorted(RANGES), rng.randint(0, 2)):
        f[name] = rng.randint(0, RANGES[name])
    return f


@pytest.mark.parametrize("config", [MICRO, TINY], ids=["micro", "tiny"])
def test_verdicts_match_the_rules(config):
    dut = DescriptorCheck(config)
    rng = random.Random(3)
    verdicts = {True: 0, False: 0}

    async def bench(ctx):
        for index in range(600):
            op = isa.Op.CONV if index % 2 else isa.Op.EMBED
            f = random_descriptor(rng, config, op)
            ctx.set(dut.desc.as_value(), raw_desc_value(**f))
            for name, value in products(f).items():
                ctx.set(getattr(dut, name), value)
            if op == isa.Op.CONV:
                got, want = ctx.get(dut.conv_faults) != 0, conv_refused(f, config)
            else:
                got, want = bool(ctx.get(dut.embed_fault)), embed_refused(f, config)
            assert got == want, f"{f}: engine refuses {got}, rules {want}"
            verdicts[want] += 1

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    # both verdicts well represented, so the comparison covers the boundary
    assert min(verdicts.values()) > 100, verdicts


def test_each_conv_check_has_its_bit():
    dut = DescriptorCheck(TINY)
    good = dict(op=int(isa.Op.CONV), k=3, stride=1, pad=1, nsub=1, n_cig=1, n_cog=1, h_in=4,
                w_in=4, h_out=4, w_out=4, src_bank=0, dst_bank=1, thr_out=1, out_bits=1, pool=0,
                n_cig_out=2)
    cases = dict(source_bank=dict(src_bank=3), destination_bank=dict(dst_bank=0),
                 kernel=dict(pad=3), sizes=dict(h_in=0), out_bits=dict(out_bits=0),
                 pool=dict(pool=1, h_out=3), sum=dict(sum=1, res_out=1),
                 n_cig_out=dict(n_cig_out=5), height_span=dict(h_out=5))

    async def bench(ctx):
        for name, change in [("", {}), *cases.items()]:
            f = {**good, **change}
            ctx.set(dut.desc.as_value(), raw_desc_value(**f))
            for product, value in products(f).items():
                ctx.set(getattr(dut, product), value)
            faults = ctx.get(dut.conv_faults)
            want = 0 if not name else 1 << CONV_CHECKS.index(name)
            assert faults & (want or -1) == want, f"{name}: faults {faults:b}"

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
