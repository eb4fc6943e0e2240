"""One configuration object for the accelerator, shared by ``accel``, ``firmware`` and ``platforms``.

Every size the gateware, the compiler and the boards agree on lives here, so that a board names one
``AccelConfig`` and everything else derives from it. Parameters are validated when the object is
created, with errors that name the parameter.
"""

from dataclasses import dataclass, asdict, replace


__all__ = ["AccelConfig", "BUF_WEIGHTS", "BUF_THRESHOLDS", "BUF_EMBED", "BUF_RESIDUAL",
           "BUF_CODE_BANK0", "THR_ENTRY_BITS", "EMB_ENTRY_BITS", "THRESHOLDS_PER_CHANNEL",
           "LOCAL_LANE_BITS", "LOCAL_BUF_BITS", "WRITE_ONLY_BUFFERS", "DEFAULT", "SMALL", "TINY",
           "DEFAULT85", "SMALL25", "TINY12", "MICRO", "CONFIGS", "config_by_name", "config_name"]


# Local address space of the DMA (docs/ARCHITECTURE.md, 3.2): 4 bits of buffer id, 20 bits of lane.
LOCAL_BUF_BITS = 4
LOCAL_LANE_BITS = 20

BUF_WEIGHTS = 0
BUF_THRESHOLDS = 1
BUF_EMBED = 2
BUF_RESIDUAL = 3
BUF_CODE_BANK0 = 4
# Buffers the DMA can only write: a program never STOREs parameters back, and reading them would
# need a multiplexer from every lane (2,048 weight bits for the 64x32 array: 5,078 LUT4 on the
# LFE5U-85F) to the DMA. A STORE from them is a LOCAL_RANGE error; local reads return 0.
WRITE_ONLY_BUFFERS = (BUF_WEIGHTS, BUF_THRESHOLDS, BUF_EMBED)

# Threshold entry: three signed 16-bit thresholds and a negate bit (docs/ARCHITECTURE.md, 3.1).
THRESHOLDS_PER_CHANNEL = 3
THR_BITS = 16
THR_ENTRY_BITS = 64
# Embedding table entry: d*q bits of codes, at most 16.
EMB_ENTRY_BITS = 16


def _is_pow2(n):
    return n > 0 and (n & (n - 1)) == 0


@dataclass(frozen=True)
class AccelConfig:
    """Sizes of one accelerator instance.

    Parameters
    ----------
    p_o : int
        Output channels computed in parallel (MAC array rows). A multiple of ``p_i``.
    p_i : int
        Input channels consumed per cycle (MAC array columns). A multiple of 8.
    a_planes : int
        Activation bit-planes processed in parallel per cycle. Wider activations take
        ``ceil(bits / a_planes)`` passes (shift-accumulate).
    acc_bits : int
        Signed accumulator width in the MAC array.
    res_bits : int
        Signed lane width of the residual buffer (the integer residual stream and the logits).
    wbuf_depth, thr_depth, res_depth, bank_depth : int
        Words in the weight buffer, entries in the threshold buffer, words in the residual buffer
        and words in each code bank.
    n_code_banks : int
        Number of code banks (activation ping-pong buffers), 2 to 4.
    emb_channels : int
        Input image channels the embedding table holds (256 entries each).
    mem_words : int
        32-bit words of main memory (block RAM on the Wishbone bus).
    """
    p_o: int = 64
    p_i: int = 32
    a_planes: int = 2
    acc_bits: int = 20
    res_bits: int = 16
    wbuf_depth: int = 512
    thr_depth: int = 1024
    # 512 words of p_o * res_bits: one block RAM deep. 1,024 took 29 more DP16KD, and the default
    # configuration then needed 218 of the LFE5U-85F's 208.
    res_depth: int = 512
    bank_depth: int = 4096
    n_code_banks: int = 3
    emb_channels: int = 4
    mem_words: int = 16384

    def __post_init__(self):
        for name in ("p_o", "p_i", "a_planes", "acc_bits", "res_bits", "wbuf_depth", "thr_depth",
                     "res_depth", "bank_depth", "n_code_banks", "emb_channels", "mem_words"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"AccelConfig.{name} must be an integer, not {value!r}")
            if value <= 0:
                raise ValueError(f"AccelConfig.{name} must be positive, not {value}")
        if self.p_i % 8 != 0:
            raise ValueError(f"AccelConfig.p_i must be a multiple of 8, not {self.p_i}")
        if self.p_o % self.p_i != 0:
            raise ValueError(f"AccelConfig.p_o ({self.p_o}) must be a multiple of p_i ({self.p_i})")
        if not 1 <= self.a_planes <= 8:
            raise ValueError(f"AccelConfig.a_planes must be 1..8, not {self.a_planes}")
        if not 8 <= self.acc_bits <= 32:
            raise ValueError(f"AccelConfig.acc_bits must be 8..32, not {self.acc_bits}")
        if not 8 <= self.res_bits <= 32:
            raise ValueError(f"AccelConfig.res_bits must be 8..32, not {self.res_bits}")
        if self.res_bits < THR_BITS:
            raise ValueError(f"AccelConfig.res_bits must be at least {THR_BITS}, not {self.res_bits}")
        if not 2 <= self.n_code_banks <= 4:
            raise ValueError(f"AccelConfig.n_code_banks must be 2..4, not {self.n_code_banks}")
        if not 1 <= self.emb_channels <= 4:
            raise ValueError(f"AccelConfig.emb_channels must be 1..4, not {self.emb_channels}")
        if not _is_pow2(self.mem_words) or self.mem_words < 1024:
            raise ValueError(f"AccelConfig.mem_words must be a power of two >= 1024, not {self.mem_words}")
        for name in ("wbuf_depth", "thr_depth", "res_depth", "bank_depth"):
            words = getattr(self, name) * self.lanes(name)
            if words > (1 << LOCAL_LANE_BITS):
                raise ValueError(f"AccelConfig.{name} too large for the {LOCAL_LANE_BITS}-bit "
                                 f"local lane address ({words} lanes)")

    # Derived widths -----------------------------------------------------------------------------
    @property
    def macs_per_cycle(self):
        return self.p_o * self.p_i

    @property
    def m(self):
        """Code words written per output pixel and output-channel group (``p_o // p_i``)."""
        return self.p_o // self.p_i

    @property
    def code_word_bits(self):
        return self.a_planes * self.p_i

    @property
    def weight_word_bits(self):
        return self.p_o * self.p_i

    @property
    def res_word_bits(self):
        return self.p_o * self.res_bits

    @property
    def max_out_bits(self):
        """Largest code width a conv layer can write (thresholds per channel + 1 levels)."""
        return min(self.a_planes, 2)

    def word_bits(self, buffer):
        """Word width in bits of a local buffer, by depth-field name or buffer id."""
        key = {"wbuf_depth": BUF_WEIGHTS, "thr_depth": BUF_THRESHOLDS, "res_depth": BUF_RESIDUAL,
               "bank_depth": BUF_CODE_BANK0, "emb": BUF_EMBED}.get(buffer, buffer)
        if key == BUF_WEIGHTS:
            return self.weight_word_bits
        if key == BUF_THRESHOLDS:
            return THR_ENTRY_BITS
        if key == BUF_EMBED:
            return EMB_ENTRY_BITS
        if key == BUF_RESIDUAL:
            return self.res_word_bits
        if BUF_CODE_BANK0 <= key < BUF_CODE_BANK0 + self.n_code_banks:
            return self.code_word_bits
        raise ValueError(f"unknown local buffer {buffer!r}")

    def lanes(self, buffer):
        """32-bit lanes per word of a local buffer."""
        return (self.word_bits(buffer) + 31) // 32

    def depth(self, buffer):
        key = {"wbuf_depth": BUF_WEIGHTS, "thr_depth": BUF_THRESHOLDS, "res_depth": BUF_RESIDUAL,
               "bank_depth": BUF_CODE_BANK0, "emb": BUF_EMBED}.get(buffer, buffer)
        if key == BUF_WEIGHTS:
            return self.wbuf_depth
        if key == BUF_THRESHOLDS:
            return self.thr_depth
        if key == BUF_EMBED:
            return self.emb_channels * 256
        if key == BUF_RESIDUAL:
            return self.res_depth
        if BUF_CODE_BANK0 <= key < BUF_CODE_BANK0 + self.n_code_banks:
            return self.bank_depth
        raise ValueError(f"unknown local buffer {buffer!r}")

    def as_dict(self):
        return asdict(self)

    def replace(self, **changes):
        return replace(self, **changes)


# Named configurations. Boards in ``platforms/`` pick one of these; the compiler, the runner, the
# builder and the benchmarks accept any of these names.
DEFAULT = AccelConfig()
SMALL = AccelConfig(p_o=16, p_i=16, wbuf_depth=512, thr_depth=512, res_depth=512, bank_depth=2048,
                    n_code_banks=3, mem_words=16384)
# For Amaranth's Python simulator: tiny array, small buffers.
TINY = AccelConfig(p_o=16, p_i=8, acc_bits=16, wbuf_depth=256, thr_depth=128, res_depth=256,
                   bank_depth=1024, n_code_banks=3, emb_channels=3, mem_words=8192)
# The 85F boards' configuration: DEFAULT with 32 output rows (1,024 binary MACs per cycle; 137 of
# the LFE5U-85F's 208 DP16KD). The default network's 28x28 and 14x14 layers have 32 output channels,
# so its 3x3 layers keep the 32-row array about 95 % busy, and the build routes in minutes.
DEFAULT85 = DEFAULT.replace(p_o=32)
# SMALL with half the main memory, for 25F devices (56 DP16KD; SMALL itself needs about 64).
SMALL25 = SMALL.replace(mem_words=8192)
# TINY with half the main memory, for the LFE5U-12F (32 DP16KD).
TINY12 = TINY.replace(mem_words=4096)
# The smallest useful array (8x8) with 1,024 words of main memory, for the iCE40 UP5K
# (30 SB_RAM40_4K of 4 Kbit).
MICRO = AccelConfig(p_o=8, p_i=8, acc_bits=16, wbuf_depth=64, thr_depth=32, res_depth=32,
                    bank_depth=256, n_code_banks=2, emb_channels=1, mem_words=1024)

CONFIGS = {"default": DEFAULT, "default85": DEFAULT85, "small": SMALL, "small25": SMALL25,
           "tiny": TINY, "tiny12": TINY12, "micro": MICRO}


def config_by_name(name):
    """The named :class:`AccelConfig`; an unknown name raises ``ValueError`` listing the valid ones."""
    if name not in CONFIGS:
        raise ValueError(f"unknown configuration {name!r} (one of {', '.join(CONFIGS)})")
    return CONFIGS[name]


def config_name(config):
    """The name of ``config`` in :data:`CONFIGS`, or ``"custom"``."""
    return next((name for name, c in CONFIGS.items() if c == config), "custom")
