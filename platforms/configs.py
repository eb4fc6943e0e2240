"""Accelerator configurations for the smaller boards, and a block-RAM estimate to choose them.

``accel.config`` names DEFAULT (85F-class), SMALL and TINY. Some devices need something in between
or below; they are defined here rather than in ``accel/config.py``:

* ``SMALL25``: SMALL with half the main memory, for 25F devices (56 DP16KD): SMALL itself needs
  about 64 by the estimate below.
* ``TINY12``: TINY with half the main memory, for the LFE5U-12F (32 DP16KD).
* ``MICRO``: the smallest useful array (8x8) with 1,024 words of main memory, for the iCE40 UP5K
  (30 SB_RAM40_4K of 4 Kbit).

:func:`estimate_block_rams` counts the block RAMs the memories of a configuration need, packing
each memory into the device's block-RAM aspect ratios. It is an estimate for choosing a
configuration (FIFOs, LUT-RAM choices and the tools' packing change the real figure); the build
report has the real count.
"""

from accel.config import AccelConfig, DEFAULT, SMALL, TINY
from firmware.protocol import DEFAULT_MAX_WORDS


__all__ = ["SMALL25", "TINY12", "MICRO", "CONFIGS", "BRAM_SHAPES", "memories",
           "estimate_block_rams"]


SMALL25 = SMALL.replace(mem_words=8192)
TINY12 = TINY.replace(mem_words=4096)
MICRO = AccelConfig(p_o=8, p_i=8, acc_bits=16, wbuf_depth=64, thr_depth=32, res_depth=32,
                    bank_depth=256, n_code_banks=2, emb_channels=1, mem_words=1024)

CONFIGS = {"default": DEFAULT, "small": SMALL, "small25": SMALL25, "tiny": TINY, "tiny12": TINY12,
           "micro": MICRO}

# (depth, width) aspect ratios of one block RAM. ECP5 DP16KD: 18 Kbit, 36 bits wide only as a
# 512-deep pseudo-dual-port RAM. iCE40 SB_RAM40_4K: 4 Kbit.
BRAM_SHAPES = {
    "ecp5": [(16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)],
    "ice40": [(2048, 2), (1024, 4), (512, 8), (256, 16)],
}


def memories(config, *, bridge_words=DEFAULT_MAX_WORDS):
    """The block memories of one SoC with ``config``: a dict name -> (depth, width, count)."""
    c = config
    return {
        "main memory": (c.mem_words, 32, 1),
        "weight buffer": (c.wbuf_depth, c.weight_word_bits, 1),
        "threshold buffer": (c.thr_depth, 64, 1),
        "embedding table": (c.emb_channels * 256, 16, 1),
        "residual buffer": (c.res_depth, c.res_word_bits, 1),
        "code banks": (c.bank_depth, c.code_word_bits, c.n_code_banks),
        "bridge buffer": (bridge_words, 32, 1),
    }


def _brams_for(depth, width, shapes):
    return min(-(-depth // d) * -(-width // w) for d, w in shapes)


def estimate_block_rams(config, family="ecp5", *, bridge_words=DEFAULT_MAX_WORDS):
    """Estimated block RAMs (DP16KD on ECP5, SB_RAM40_4K on iCE40) of a SoC with ``config``."""
    if family not in BRAM_SHAPES:
        raise ValueError(f"family must be one of {sorted(BRAM_SHAPES)}, not {family!r}")
    shapes = BRAM_SHAPES[family]
    return sum(n * _brams_for(d, w, shapes)
               for d, w, n in memories(config, bridge_words=bridge_words).values())
