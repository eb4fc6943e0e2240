"""The boards the accelerator is built for: one :class:`Board` record per name.

Each record names the amaranth-boards platform class, the accelerator configuration that fits the
device, the clocks (input, target, ECP5 PLL), the UART the host bridge uses, the status LEDs and
how to program the board.
"""

from dataclasses import dataclass, field
from functools import cached_property

from amaranth.build import Resource, Pins, Attrs
from amaranth_boards.resources import UARTResource

from contract.config import AccelConfig, DEFAULT, SMALL, DEFAULT85, SMALL25, TINY12, MICRO
from .block_rams import estimate_block_rams
from .pll import ecp5_pll_params


__all__ = ["Board", "BOARDS", "ALIASES", "DEFAULT_BOARD", "DEVICE_RESOURCES"]


# Resources of the devices (LUT4, block RAMs, multipliers), for reports and fit checks.
DEVICE_RESOURCES = {
    "LFE5U-12F": {"LUT4": 12288, "BRAM": 32, "MULT": 28},
    "LFE5U-25F": {"LUT4": 24288, "BRAM": 56, "MULT": 28},
    "LFE5U-45F": {"LUT4": 43848, "BRAM": 108, "MULT": 72},
    "LFE5U-85F": {"LUT4": 83640, "BRAM": 208, "MULT": 156},
    "LFE5UM5G-45F": {"LUT4": 43848, "BRAM": 108, "MULT": 72},
    "LFE5UM5G-85F": {"LUT4": 83640, "BRAM": 208, "MULT": 156},
    "iCE40UP5K": {"LUT4": 5280, "BRAM": 30, "MULT": 8},
}


@dataclass(frozen=True)
class Board:
    """One board the accelerator is built for.

    Parameters
    ----------
    name : str
        Command-line name (``--board``).
    platform_module, platform_class : str
        Where the amaranth-boards platform lives (imported on first use).
    family : str
        ``"ecp5"`` or ``"ice40"``.
    device, package : str
        FPGA device and package, as the platform spells them.
    config_name : str
        Name of the accelerator configuration (``contract.config.CONFIGS``).
    config : AccelConfig
        That configuration.
    clk : (str, int)
        The input clock resource; ``clk_hz`` its frequency.
    target_hz : int
        Frequency of the design clock. On ECP5 a PLL (EHXPLLL) makes it when it differs from
        ``clk_hz``.
    uart : (str, int)
        The UART resource the host bridge uses.
    baud : int
        Default line rate.
    leds : tuple of (str, int, str or None)
        Status LEDs in the order heartbeat, busy, done/irq, link activity: resource name, number,
        subsignal (``"r"``/``"g"``/``"b"`` of an RGB LED) or ``None``. Fewer than four is fine.
    rst : (str, int) or None
        An active-high reset button, if the board has one the design may use.
    extra_resources : tuple
        Resources added to the platform (a UART on header pins for boards without one).
    tool_env : dict
        Environment for the build: amaranth-boards demands some programming tools even for a
        build without programming (see /work/shared/AMARANTH-NOTES.md).
    program : str
        How to program the board by hand (``{bit}`` is the bitstream, ``{svf}`` the SVF file).
    loader_args : tuple of str
        openFPGALoader's arguments naming the board or its cable (``accel.program`` adds the
        bitstream); empty when openFPGALoader cannot program the board.
    bridge_words : int
        Buffer of the UART bridge (largest frame, in words).
    soc_fits : bool
        False when the SoC is known not to fit the device (the build refuses ``--top soc``
        unless forced).
    notes : str
        Anything a user of the board should know.
    placer : str
        nextpnr's placer for this board's build: ``static`` (the ECP5 boards: it routed where
        HeAP's placements did not, docs/BENCHMARKS.md, Builds) or ``heap`` (nextpnr's default).
    seed : int or None
        nextpnr's placement seed for this board's build (None: nextpnr's default). nextpnr is
        deterministic for a given netlist and seed, so a seed that routed keeps routing until the
        gateware changes.
    """
    name: str
    platform_module: str
    platform_class: str
    family: str
    device: str
    package: str
    config_name: str
    config: AccelConfig
    clk: tuple
    clk_hz: int
    target_hz: int
    uart: tuple = ("uart", 0)
    baud: int = 1_000_000
    leds: tuple = ()
    rst: tuple = None
    extra_resources: tuple = ()
    tool_env: dict = field(default_factory=dict)
    program: str = ""
    loader_args: tuple = ()
    bridge_words: int = 256
    soc_fits: bool = True
    notes: str = ""
    placer: str = "static"
    seed: int = None

    @property
    def platform_cls(self):
        """The amaranth-boards platform class."""
        import importlib
        module = importlib.import_module(self.platform_module)
        return getattr(module, self.platform_class)

    def platform(self):
        """A fresh platform instance with the extra resources added."""
        plat = self.platform_cls()
        if self.extra_resources:
            plat.add_resources(list(self.extra_resources))
        return plat

    @property
    def uses_pll(self):
        return self.family == "ecp5" and self.target_hz != self.clk_hz

    @cached_property
    def pll(self):
        """ECP5 PLL dividers for ``target_hz`` (``None`` when the input clock is used as is)."""
        return ecp5_pll_params(self.clk_hz, self.target_hz) if self.uses_pll else None

    def pll_for(self, target_hz):
        """PLL dividers for another target frequency (``None`` when no PLL is needed)."""
        if self.family != "ecp5" or target_hz == self.clk_hz:
            return None
        return ecp5_pll_params(self.clk_hz, target_hz)

    @property
    def resources(self):
        """LUT4 / block RAM / multiplier counts of the device."""
        return DEVICE_RESOURCES[self.device]

    def estimated_block_rams(self, config=None):
        """Block RAMs of the SoC with ``config`` (default: the board's) on this board's device."""
        return estimate_block_rams(self.config if config is None else config, self.family,
                                   bridge_words=self.bridge_words)

    def summary(self):
        pll = self.pll
        clock = (f"{self.clk_hz / 1e6:g} MHz -> PLL -> {pll.f_out_hz / 1e6:g} MHz" if pll
                 else f"{self.clk_hz / 1e6:g} MHz")
        return (f"{self.name:<20} {self.device:<13} {self.package:<7} {self.config_name:<8} "
                f"{f'{self.config.p_o}x{self.config.p_i}':<6} {clock}")


_ULX3S_PROGRAM = "openFPGALoader -b ulx3s {bit}   (or: fujprog {bit})"
_ULX3S_LEDS = (("led", 0, None), ("led", 1, None), ("led", 2, None), ("led", 3, None))
_ECPIX5_LEDS = (("rgb_led", 0, "g"), ("rgb_led", 1, "r"), ("rgb_led", 2, "b"), ("rgb_led", 3, "g"))
# OrangeCrab r0.2 has no UART: use the Feather header pins 0 (RX) and 1 (TX) with a 3.3 V
# USB-serial adapter.
_ORANGECRAB_UART = UARTResource(1, rx="0", tx="1", conn=("io", 0),
                                attrs=Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP"))


def _ulx3s(size, config_name, config, target_hz, seed=None):
    # 3 Mbaud: the FT231X's top rate. The bridge's bit period is a whole number of clock cycles
    # within 2 % of it (accel.uart.baud_divisor), so the target clock is one that divides it:
    # 60 MHz -> 20 cycles, 75 MHz -> 25, 50 MHz -> 17 (1.96 % off); 40 MHz does not work (2.6 %).
    return Board(
        name=f"ulx3s-{size.lower()}", platform_module="amaranth_boards.ulx3s",
        platform_class=f"ULX3S_{size}_Platform", family="ecp5", device=f"LFE5U-{size}",
        package="BG381", config_name=config_name, config=config, clk=("clk25", 0),
        clk_hz=25_000_000, target_hz=target_hz, uart=("uart", 0), baud=3_000_000,
        leds=_ULX3S_LEDS, tool_env={"OPENFPGALOADER": "true"}, program=_ULX3S_PROGRAM,
        loader_args=("-b", "ulx3s"), notes="UART through the on-board FT231X (US1 port).", seed=seed)


BOARDS = {b.name: b for b in [
    # Each ULX3S target is a clock its configuration's whole SoC routes at with margin and that
    # makes 3 Mbaud within 2 % (docs/BENCHMARKS.md, "Board clocks"). Built for 75 MHz, TINY12
    # routed at 89.1 MHz and SMALL25 at 78.1 (too little margin for other seeds): 75 and 60 MHz.
    _ulx3s("12F", "tiny12", TINY12, 75_000_000),
    _ulx3s("25F", "small25", SMALL25, 60_000_000),
    # The 45F's SMALL configuration has not been built for this board; 50 MHz like the 85F.
    _ulx3s("45F", "small", SMALL, 50_000_000),
    # DEFAULT85 built for 60 MHz routed at 56.5 (its units' reset, one flip-flop driving both units'
    # registers, took a 13 ns route across the die), built for 40 at 76.9-83.7; the PLL makes
    # 50 MHz, the bridge's bit 17 cycles (1.96 % slow). The end-to-end rate is the link's: 60 MHz
    # would add 20 % to the accelerator's images/s and about nothing to the host's. Seed 7: router2
    # converges on some static placements of this design and diverges on others; seed 7 routed
    # every netlist of the timing work (docs/BENCHMARKS.md, Timing closure).
    _ulx3s("85F", "default85", DEFAULT85, 50_000_000, seed=7),
    Board(name="orangecrab-25f", platform_module="amaranth_boards.orangecrab_r0_2",
          platform_class="OrangeCrabR0_2_25FPlatform", family="ecp5", device="LFE5U-25F",
          package="MG285", config_name="small25", config=SMALL25, clk=("clk", 0),
          clk_hz=48_000_000, target_hz=48_000_000, uart=("uart", 1), baud=115200,
          leds=(("rgb_led", 0, "g"), ("rgb_led", 0, "r"), ("rgb_led", 0, "b")),
          extra_resources=(_ORANGECRAB_UART,), tool_env={"DFU_SUFFIX": "true"},
          program="dfu-suffix -v 1209 -p 5af0 -a {bit} && dfu-util -a 0 -D {bit}  "
                  "(hold the button while plugging in for the DFU bootloader)",
          loader_args=("-b", "orangeCrab"),
          notes="UART on Feather pins 0 (RX) / 1 (TX) through an external 3.3 V USB-serial adapter."),
    Board(name="orangecrab-85f", platform_module="amaranth_boards.orangecrab_r0_2",
          platform_class="OrangeCrabR0_2_85FPlatform", family="ecp5", device="LFE5U-85F",
          package="MG285", config_name="default85", config=DEFAULT85, clk=("clk", 0),
          clk_hz=48_000_000, target_hz=96_000_000, uart=("uart", 1), baud=115200,
          leds=(("rgb_led", 0, "g"), ("rgb_led", 0, "r"), ("rgb_led", 0, "b")),
          extra_resources=(_ORANGECRAB_UART,), tool_env={"DFU_SUFFIX": "true"},
          program="dfu-suffix -v 1209 -p 5af0 -a {bit} && dfu-util -a 0 -D {bit}  "
                  "(hold the button while plugging in for the DFU bootloader)",
          loader_args=("-b", "orangeCrab"),
          notes="UART on Feather pins 0 (RX) / 1 (TX) through an external 3.3 V USB-serial adapter."),
    Board(name="ecpix5-45f", platform_module="amaranth_boards.ecpix5",
          platform_class="ECPIX545Platform", family="ecp5", device="LFE5UM5G-45F",
          package="BG554", config_name="small", config=SMALL, clk=("clk100", 0),
          clk_hz=100_000_000, target_hz=100_000_000, uart=("uart", 0), baud=1_000_000,
          leds=_ECPIX5_LEDS, rst=("rst", 0), tool_env={"OPENFPGALOADER": "true"},
          program="openFPGALoader -c ft2232 {bit}", loader_args=("-b", "ecpix5"),
          notes="UART through the on-board FT2232 (second channel)."),
    Board(name="ecpix5-85f", platform_module="amaranth_boards.ecpix5",
          platform_class="ECPIX585Platform", family="ecp5", device="LFE5UM5G-85F",
          package="BG554", config_name="default85", config=DEFAULT85, clk=("clk100", 0),
          clk_hz=100_000_000, target_hz=100_000_000, uart=("uart", 0), baud=1_000_000,
          leds=_ECPIX5_LEDS, rst=("rst", 0), tool_env={"OPENFPGALOADER": "true"},
          program="openFPGALoader -c ft2232 {bit}", loader_args=("-b", "ecpix5"),
          notes="UART through the on-board FT2232 (second channel)."),
    Board(name="colorlight-5a-75b", platform_module="amaranth_boards.colorlight_5a75b_r7_0",
          platform_class="Colorlight_5A75B_R70Platform", family="ecp5", device="LFE5U-25F",
          package="BG256", config_name="small25", config=SMALL25, clk=("clk25", 0),
          clk_hz=25_000_000, target_hz=50_000_000, uart=("uart", 0), baud=115200, leds=(),
          tool_env={"OPENFPGALOADER": "true"},
          program="openFPGALoader -c ft232 {bit}   (JTAG adapter on J27)",
          loader_args=("-c", "ft232"),
          notes="amaranth-boards puts the UART on the LED (TX, P11) and button (RX, M13) pins: no "
                "status LEDs; connect a 3.3 V USB-serial adapter there."),
    Board(name="icebreaker", platform_module="amaranth_boards.icebreaker",
          platform_class="ICEBreakerPlatform", family="ice40", device="iCE40UP5K",
          package="SG48", config_name="micro", config=MICRO, clk=("clk12", 0),
          clk_hz=12_000_000, target_hz=12_000_000, uart=("uart", 0), baud=115200,
          leds=(("led", 1, None), ("led", 0, None)), tool_env={},
          program="iceprog {bin}", loader_args=("-b", "ice40_generic"), bridge_words=64, soc_fits=False, placer="heap",
          notes="iCE40 UP5K with the MICRO configuration (8x8 array, 1,024 words of main memory), no "
                "PLL. Measured: the SoC needs ~13,900 logic cells and 31 block RAMs, the UP5K has "
                "5,280 and 30, so only `--top bridge` builds for now."),
]}

# ``ecp5`` (and plain ``ulx3s``) is the default board.
DEFAULT_BOARD = "ulx3s-85f"
ALIASES = {"ecp5": DEFAULT_BOARD, "ulx3s": DEFAULT_BOARD, "colorlight": "colorlight-5a-75b"}
