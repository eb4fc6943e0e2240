"""A block-RAM estimate of an accelerator configuration, to choose one for a device.

:func:`estimate_block_rams` counts the block RAMs the memories of a configuration need, packing
each memory (wide local buffers: each 32-bit lane column) into the device's block-RAM aspect
ratios. It matched Yosys for DEFAULT on the 85F (186 DP16KD against 185) and for DEFAULT85 (138
against 137); it stays an estimate (the SoC may add memories), the build report has the real count.
"""

from contract.protocol import DEFAULT_MAX_WORDS


__all__ = ["BRAM_SHAPES", "memories", "estimate_block_rams"]


# (depth, width) aspect ratios of one block RAM. ECP5 DP16KD: 18 Kbit, 36 bits wide only as a
# 512-deep pseudo-dual-port RAM. iCE40 SB_RAM40_4K: 4 Kbit.
BRAM_SHAPES = {
    "ecp5": [(16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)],
    "ice40": [(2048, 2), (1024, 4), (512, 8), (256, 16)],
}


def _lanes(bits):
    """(width, count) of the columns a local buffer of ``bits``-bit words is stored in: the engine
    writes 32-bit lanes separately (write granularity 32), so a wide buffer is ``bits / 32``
    independent 32-bit columns, each packed into block RAM on its own."""
    lanes = -(-bits // 32)
    return (bits, 1) if lanes == 1 else (32, lanes)


def memories(config, *, bridge_words=DEFAULT_MAX_WORDS):
    """The block memories of one SoC with ``config``: a dict name -> (depth, width, count), wide
    buffers counted as ``count`` 32-bit columns."""
    c = config
    mems = {
        "main memory": (c.mem_words, 32, 1),
        "embedding tables": (256, 16, c.emb_channels),     # one table per image channel
        "bridge buffer": (bridge_words, 32, 1),
        "sequencer profile": (64, 32, 1),                  # per-descriptor cycle counters
    }
    for name, bits, depth, n in (("weight buffer", c.weight_word_bits, c.wbuf_depth, 1),
                                 ("threshold buffer", 64, c.thr_depth, 1),
                                 ("residual buffer", c.res_word_bits, c.res_depth, 1),
                                 ("code banks", c.code_word_bits, c.bank_depth, c.n_code_banks)):
        width, lanes = _lanes(bits)
        mems[name] = (depth, width, lanes * n)
    return mems


def _brams_for(depth, width, shapes):
    return min(-(-depth // d) * -(-width // w) for d, w in shapes)


def estimate_block_rams(config, family="ecp5", *, bridge_words=DEFAULT_MAX_WORDS):
    """Estimated block RAMs (DP16KD on ECP5, SB_RAM40_4K on iCE40) of a SoC with ``config``."""
    if family not in BRAM_SHAPES:
        raise ValueError(f"family must be one of {sorted(BRAM_SHAPES)}, not {family!r}")
    shapes = BRAM_SHAPES[family]
    return sum(n * _brams_for(d, w, shapes)
               for d, w, n in memories(config, bridge_words=bridge_words).values())
