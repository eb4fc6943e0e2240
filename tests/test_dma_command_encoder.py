"""The DMA command of a LOAD, STORE or EMBED descriptor, against the ISA's meaning."""

from hypothesis import given, settings, strategies as st

from contract import isa
from accel.dma_command import DmaKind
from accel.dma_command_encoder import DmaCommandEncoder
from simutil import run


def expected_command(fields):
    op = fields["op"]
    if op == isa.Op.LOAD or op == isa.Op.STORE:
        kind = DmaKind.LOAD if op == isa.Op.LOAD else DmaKind.STORE
        return dict(kind=kind.value, mem_addr=fields["mem_addr"], local_addr=fields["local_addr"],
                    count=fields["count"], rows=fields["rows"], mem_stride=fields["mem_stride"])
    # EMBED: h * w * c bytes, four to a word, one contiguous row streamed to the engine
    words = (fields["h_in"] * fields["w_in"] * fields["emb_c"] + 3) // 4
    return dict(kind=DmaKind.STREAM.value, mem_addr=fields["mem_addr"], local_addr=0,
                count=words & 0xFFFF, rows=1, mem_stride=0)


descriptor = st.fixed_dictionaries({
    "op": st.sampled_from([isa.Op.LOAD, isa.Op.STORE, isa.Op.EMBED]),
    "mem_addr": st.integers(0, 2**32 - 1), "local_addr": st.integers(0, 2**24 - 1),
    "count": st.integers(0, 2**16 - 1), "rows": st.integers(0, 2**16 - 1),
    "mem_stride": st.integers(0, 2**16 - 1),
    "h_in": st.integers(0, 1023), "w_in": st.integers(0, 1023), "emb_c": st.integers(0, 7),
})


@settings(max_examples=10, deadline=None)
@given(st.lists(descriptor, min_size=1, max_size=12))
def test_dma_command_of_descriptors(descriptors):
    dut = DmaCommandEncoder()

    async def bench(ctx):
        for fields in descriptors:
            ctx.set(dut.desc.as_value(), sum(w << (32 * i) for i, w in enumerate(isa.pack(**fields))))
            # the EMBED word count is valid two cycles after the descriptor's fields
            await ctx.tick().repeat(2)
            got = ctx.get(dut.command)
            want = expected_command(fields)
            assert {k: int(getattr(got, k)) for k in want} == want, fields

    run(dut, [bench], "dma_command_encoder")
