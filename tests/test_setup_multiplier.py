"""SetupMultiplier against a Python model: every product of random descriptors, and the cycles."""

from amaranth.sim import Simulator
from hypothesis import given, settings, strategies as st, HealthCheck

from contract import isa
from accel.setup_multiplier import SetupMultiplier, PRODUCT_BITS
from engine_harness import raw_desc_value


WIDTHS = dict(PRODUCT_BITS)
OPERAND_MASK = (1 << 32) - 1     # the multiplicand register
MULTIPLIER_MASK = (1 << 16) - 1  # the multiplier register


def conv_steps(f):
    """``[(product, a, b, products a and b use)]`` of a CONV descriptor ``f`` (a dict)."""
    pool = f["pool"]
    return [
        ("words_per_pixel", lambda p: f["n_cig"], lambda p: f["nsub"], ()),
        ("taps", lambda p: f["k"], lambda p: f["k"], ()),
        ("words_per_row", lambda p: p["words_per_pixel"], lambda p: f["w_in"], ("words_per_pixel",)),
        ("group_weight_words", lambda p: p["taps"], lambda p: f["n_cig"], ("taps",)),
        ("source_words", lambda p: p["words_per_row"], lambda p: f["h_in"], ("words_per_row",)),
        ("weight_words", lambda p: p["group_weight_words"], lambda p: f["n_cog"],
         ("group_weight_words",)),
        ("pixels", lambda p: f["h_out"], lambda p: f["w_out"], ()),
        ("residual_row_words", lambda p: f["w_out"], lambda p: f["n_cog"], ()),
        ("residual_words", lambda p: p["pixels"], lambda p: f["n_cog"], ("pixels",)),
        ("output_pixels", lambda p: f["h_out"] >> pool, lambda p: f["w_out"] >> pool, ()),
        ("stride_words", lambda p: p["words_per_pixel"], lambda p: f["stride"], ("words_per_pixel",)),
        ("destination_words", lambda p: p["output_pixels"], lambda p: f["n_cig_out"],
         ("output_pixels",)),
        ("stride_row_words", lambda p: p["words_per_row"], lambda p: f["stride"], ("words_per_row",)),
        ("pad_offset", lambda p: p["words_per_row"] + p["words_per_pixel"], lambda p: f["pad"],
         ("words_per_row", "words_per_pixel")),
        ("height_span", lambda p: f["h_out"] - 1, lambda p: f["stride"], ()),
        ("width_span", lambda p: f["w_out"] - 1, lambda p: f["stride"], ()),
    ]


def embed_steps(f):
    window = f["k"] != 0
    return [
        ("pixels", lambda p: f["h_in"], lambda p: f["w_in"], ()),
        ("output_pixels", lambda p: f["h_out"], lambda p: f["w_out"], ()),
        ("image_bytes", lambda p: p["pixels"], lambda p: f["emb_c"], ("pixels",)),
        ("codes_per_word", lambda p: f["k"] if window else f["emb_c"], lambda p: f["emb_d"], ()),
        ("destination_words", lambda p: p["output_pixels"] if window else p["pixels"],
         lambda p: f["k"] if window else f["nsub"], ("output_pixels", "pixels")),
        ("table_entry_bits", lambda p: f["emb_d"], lambda p: f["emb_q"], ()),
    ]


def model(fields):
    """(products, cycles from the start pulse to ``done``) of descriptor ``fields``."""
    steps = conv_steps(fields) if fields["op"] == isa.Op.CONV else embed_steps(fields)
    products, cycles, previous = {}, 0, None
    for name, a, b, uses in steps:
        if previous in uses:
            cycles += 1            # the product is not forwarded: a load cycle
        a_value, b_value = a(products) & OPERAND_MASK, b(products) & MULTIPLIER_MASK
        products[name] = (a_value * b_value) & ((1 << WIDTHS[name]) - 1)
        cycles += max(1, -(-b_value.bit_length() // 2))
        previous = name
    return products, cycles


FIELD_NAMES = ("pool", "k", "stride", "pad", "nsub", "h_in", "w_in", "h_out", "w_out", "n_cig",
               "n_cog", "n_cig_out", "emb_c", "emb_d", "emb_q")


@st.composite
def descriptors(draw):
    fields = {name: draw(st.integers(0, (1 << isa.FIELD_BY_NAME[name].width) - 1))
              for name in FIELD_NAMES}
    fields["op"] = draw(st.sampled_from([int(isa.Op.CONV), int(isa.Op.EMBED)]))
    return fields


def run_setup(fields_list):
    """Run the multiplier over each descriptor in turn; returns [(products, cycles)]."""
    dut = SetupMultiplier()
    results = []

    async def bench(ctx):
        for fields in fields_list:
            ctx.set(dut.desc.as_value(), raw_desc_value(**fields))
            ctx.set(dut.start, 1)
            cycles = 0
            while True:
                *_, done = await ctx.tick().sample(dut.done)
                ctx.set(dut.start, 0)
                if done:
                    break
                cycles += 1
                assert cycles < 200, "no done"
            results.append(({name: ctx.get(getattr(dut, name)) for name, _ in PRODUCT_BITS},
                            cycles))
            for _ in range(3):      # idle; the descriptor changes only now
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields_list=st.lists(descriptors(), min_size=1, max_size=4))
def test_products_and_cycles_match_the_model(fields_list):
    for fields, (got, cycles) in zip(fields_list, run_setup(fields_list)):
        want, want_cycles = model(fields)
        for name, value in want.items():
            assert got[name] == value, f"{name}: {got[name]} != {value} ({fields})"
        assert cycles == want_cycles, fields


def test_other_opcodes_start_nothing():
    dut = SetupMultiplier()

    async def bench(ctx):
        for op in (isa.Op.END, isa.Op.LOAD, isa.Op.STORE):
            ctx.set(dut.desc.as_value(), raw_desc_value(op=int(op), n_cig=3, nsub=2))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for _ in range(40):
                *_, done = await ctx.tick().sample(dut.done)
                assert not done
            assert ctx.get(dut.words_per_pixel) == 0

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
