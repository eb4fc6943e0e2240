"""Accelerator configurations for the smaller boards, and a block-RAM estimate to choose them.

``accel.config`` names DEFAULT (85F-class), SMALL and TINY. Some devices need something in between
or below; they are defined here rather than in ``accel/config.py``:

* ``DEFAULT85``: DEFAULT with 32 output rows instead of 64 (32x32 = 1,024 binary MACs per
  cycle), the 85F boards' configuration (208 DP16KD; it needs 137). DEFAULT's 64x32 array also
  builds for the LFE5U-85F (51k LUT4, 185 DP16KD): with nextpnr 0.11's router1 it routes at
  about 78 MHz in 20-30 minutes (``python -m accel.build --board ulx3s-85f --config default
  --router router1``); router2, the default, diverges on it (docs/BENCHMARKS.md, Builds). The
  32-row array builds in minutes and suits the default network, whose 28x28 and 14x14 layers
  have 32 output channels: its 3x3 layers run at about 98 % of the array. The shipped model's
  memory image needs 10.5k words of main memory, so DEFAULT's 16,384 words are kept.
* ``SMALL25``: SMALL with half the main memory, for 25F devices (56 DP16KD): SMALL itself needs
  about 64 by the estimate below.
* ``TINY12``: TINY with half the main memory, for the LFE5U-12F (32 DP16KD).
* ``MICRO``: the smallest useful array (8x8) with 1,024 words of main memory, for the iCE40 UP5K
  (30 SB_RAM40_4K of 4 Kbit).

:func:`estimate_block_rams` counts the block RAMs the memories of a configuration need, packing
each memory (wide local buffers: each 32-bit lane column) into the device's block-RAM aspect
ratios. It matched Yosys for DEFAULT on the 85F (218 DP16KD with a 1,024-word residual buffer;
186 against 185 with 512 words) and for DEFAULT85 (138 against 137); it stays an estimate (the
SoC may add memories), the build report has the real count.
"""

from accel.config import AccelConfig, DEFAULT, SMALL, TINY
from firmware.protocol import DEFAULT_MAX_WORDS


__all__ = ["DEFAULT85", "SMALL25", "TINY12", "MICRO", "CONFIGS", "BRAM_SHAPES", "memories",
           "estimate_block_rams"]


DEFAULT85 = DEFAULT.replace(p_o=32)
SMALL25 = SMALL.replace(mem_words=8192)
TINY12 = TINY.replace(mem_words=4096)
MICRO = AccelConfig(p_o=8, p_i=8, acc_bits=16, wbuf_depth=64, thr_depth=32, res_depth=32,
                    bank_depth=256, n_code_banks=2, emb_channels=1, mem_words=1024)

CONFIGS = {"default": DEFAULT, "default85": DEFAULT85, "small": SMALL, "small25": SMALL25, "tiny": TINY, "tiny12": TINY12,
           "micro": MICRO}

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
