"""The accelerator's program format: 8-word layer descriptors, ISA version 1.

One declarative field table, ``FIELDS``, is the only definition of the format. From it come the
sequencer's decoder (``DESCRIPTOR_LAYOUT``, an Amaranth ``FlexibleLayout``), the compiler's packer
(``pack``/``unpack``) and the reference table in ``docs/ISA.md`` (``markdown()``).
"""

from dataclasses import dataclass

from amaranth.lib import data


__all__ = ["ISA_VERSION", "DESCRIPTOR_WORDS", "DESCRIPTOR_BITS", "Op", "Field", "FIELDS",
           "FIELD_BY_NAME", "DESCRIPTOR_LAYOUT", "pack", "unpack", "markdown", "DescriptorError"]


ISA_VERSION = 1
DESCRIPTOR_WORDS = 8
DESCRIPTOR_BITS = 32 * DESCRIPTOR_WORDS


class Op:
    END = 0
    LOAD = 1
    STORE = 2
    EMBED = 3
    CONV = 4

    NAMES = {0: "END", 1: "LOAD", 2: "STORE", 3: "EMBED", 4: "CONV"}


class DescriptorError(ValueError):
    pass


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    ops: tuple
    doc: str

    @property
    def word(self):
        return self.lsb // 32


_ALL = ("LOAD", "STORE", "EMBED", "CONV")

FIELDS = (
    # word 0: opcode, flags and small geometry
    Field("op",        0,  4, ("END",) + _ALL, "opcode (END 0, LOAD 1, STORE 2, EMBED 3, CONV 4)"),
    Field("res_in",    4,  1, ("CONV",), "add the residual buffer (`res_base`) to the accumulators"),
    Field("res_out",   5,  1, ("CONV",), "write v (acc + residual) to the residual buffer (`res_base`)"),
    Field("thr_out",   6,  1, ("CONV",), "threshold v into `out_bits`-bit codes and write them to `dst_bank`"),
    Field("pool",      7,  1, ("CONV",), "2x2 max-pool on the codes (pixels visited in window order)"),
    Field("sum",       8,  1, ("CONV",), "sum v over all pixels; write the sums of group `cog` at `res_base + cog`"),
    Field("raw",       9,  1, ("EMBED",), "store the 8-bit pixel itself (`nsub` sub-words) instead of table codes"),
    Field("async_dma", 10, 1, ("LOAD", "STORE"), "do not wait for the transfer: the next descriptors run while it moves "
                                                 "(the next descriptor using the DMA, a CONV with `wait_dma`, or END waits for it)"),
    Field("wait_dma",  11, 1, ("CONV",), "wait for an outstanding `async_dma` transfer before starting"),
    Field("k",        12,  4, ("EMBED", "CONV"), "kernel size (1..15); EMBED: 0 plain, 1..emb_channels window mode "
                                                 "(the k x k windows of the next layer, one word per window row)"),
    Field("stride",   16,  2, ("EMBED", "CONV"), "stride (1..3)"),
    Field("pad",      18,  2, ("EMBED", "CONV"), "zero padding (0..3)"),
    Field("out_bits", 20,  4, ("CONV",), "code width of the thresholded output (1..a_planes, at most 2)"),
    Field("nsub",     24,  4, ("EMBED", "CONV"), "sub-words per input code (ceil(bits / a_planes))"),
    Field("src_bank", 28,  2, ("CONV",), "code bank read"),
    Field("dst_bank", 30,  2, ("EMBED", "CONV"), "code bank written"),
    # word 1
    Field("mem_addr", 32, 32, ("LOAD", "STORE", "EMBED"), "main-memory word address"),
    # word 2
    Field("local_addr", 64, 24, ("LOAD", "STORE"), "local address: buffer id [23:20], 32-bit lane [19:0]"),
    # word 3
    Field("count",    96, 16, ("LOAD", "STORE"), "32-bit words per row"),
    Field("rows",    112, 16, ("LOAD", "STORE"), "rows (1 for a 1-D transfer)"),
    # word 4
    Field("mem_stride", 128, 16, ("LOAD", "STORE"), "main-memory words from one row to the next"),
    Field("res_base",   144, 16, ("CONV",), "residual buffer word address"),
    # word 5
    Field("h_in",    160, 10, ("EMBED", "CONV"), "input height"),
    Field("w_in",    170, 10, ("EMBED", "CONV"), "input width"),
    Field("h_out",   180, 10, ("EMBED", "CONV"), "output height of the convolution (before pooling); EMBED: of the windows"),
    # word 6
    Field("w_out",   192, 10, ("EMBED", "CONV"), "output width of the convolution (before pooling); EMBED: of the windows"),
    Field("n_cig",   202,  6, ("CONV",), "input channel groups, ceil(cin / p_i)"),
    Field("n_cog",   208,  6, ("CONV",), "output channel groups, ceil(cout / p_o)"),
    Field("emb_c",   214,  3, ("EMBED",), "image channels (1..emb_channels)"),
    Field("emb_d",   217,  4, ("EMBED",), "embedding dimension d (1..15)"),
    Field("emb_q",   221,  3, ("EMBED",), "embedding code bits q (1..a_planes)"),
    # word 7
    Field("w_base",    224, 12, ("CONV",), "weight buffer word address of the layer"),
    Field("thr_base",  236, 12, ("CONV",), "threshold buffer entry of output channel 0"),
    Field("n_cig_out", 248,  6, ("CONV",), "code groups of the output map, ceil(cout / p_i)"),
)

FIELD_BY_NAME = {f.name: f for f in FIELDS}


def _check_table():
    used = 0
    for f in FIELDS:
        mask = ((1 << f.width) - 1) << f.lsb
        if used & mask:
            raise AssertionError(f"descriptor field {f.name} overlaps another")
        if f.lsb // 32 != (f.lsb + f.width - 1) // 32:
            raise AssertionError(f"descriptor field {f.name} crosses a word boundary")
        used |= mask


_check_table()

DESCRIPTOR_LAYOUT = data.FlexibleLayout(DESCRIPTOR_BITS, {
    f.name: data.Field(f.width, f.lsb) for f in FIELDS
})


def pack(**fields):
    """Pack named fields into a list of ``DESCRIPTOR_WORDS`` 32-bit words.

    Unknown names and values that do not fit raise ``DescriptorError``.
    """
    value = 0
    for name, v in fields.items():
        f = FIELD_BY_NAME.get(name)
        if f is None:
            raise DescriptorError(f"unknown descriptor field {name!r}")
        v = int(v)
        if not 0 <= v < (1 << f.width):
            raise DescriptorError(f"descriptor field {name}={v} does not fit in {f.width} bits")
        value |= v << f.lsb
    return [(value >> (32 * i)) & 0xFFFF_FFFF for i in range(DESCRIPTOR_WORDS)]


def unpack(words):
    """Unpack ``DESCRIPTOR_WORDS`` 32-bit words into a dict of every field."""
    if len(words) != DESCRIPTOR_WORDS:
        raise DescriptorError(f"a descriptor has {DESCRIPTOR_WORDS} words, not {len(words)}")
    value = 0
    for i, w in enumerate(words):
        value |= (int(w) & 0xFFFF_FFFF) << (32 * i)
    return {f.name: (value >> f.lsb) & ((1 << f.width) - 1) for f in FIELDS}


def markdown():
    """The descriptor reference as Markdown (written to ``docs/ISA.md``)."""
    lines = [f"# Descriptor format, ISA version {ISA_VERSION}", "",
             "Generated from `contract/isa.py` by `python -m contract.isa`; do not edit by hand.", "",
             f"A descriptor is {DESCRIPTOR_WORDS} little-endian 32-bit words; bit `n` is bit `n % 32` of "
             f"word `n // 32`. Fields not used by an op must be 0.", "",
             "| field | word | bits | ops | meaning |", "|---|---|---|---|---|"]
    for f in FIELDS:
        lo = f.lsb % 32
        lines.append(f"| `{f.name}` | {f.word} | [{lo + f.width - 1}:{lo}] | {', '.join(f.ops)} | {f.doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys
    from pathlib import Path
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "docs" / "ISA.md"
    out.write_text(markdown())
    print(f"wrote {out}")
