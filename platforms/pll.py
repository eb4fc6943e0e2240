"""Clock and reset generation: the ECP5 PLL (EHXPLLL) parameters and a clock/reset block.

:func:`ecp5_pll_params` reproduces the search of Project Trellis' ``ecppll`` (shipped as
``yowasp-ecppll``), including its single-precision arithmetic, so the dividers are the ones that
tool would choose; ``tests/test_platforms.py`` compares them with ``yowasp-ecppll`` when it is
installed.
"""

import math

import numpy as np
from amaranth.hdl import Module, Signal, ClockDomain, ClockSignal, Instance, Const, Elaboratable
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer


__all__ = ["PLLParams", "ecp5_pll_params", "ClockReset"]


# Limits of the ECP5 PLL in MHz (from ecppll, after the ECP5 sysCLOCK PLL usage guide).
PFD_MIN, PFD_MAX = 3.125, 400.0
VCO_MIN, VCO_MAX = 400.0, 800.0
OUTPUT_MIN, OUTPUT_MAX = 10.0, 400.0


class PLLParams:
    """Dividers of an EHXPLLL with CLKOP fed back (``FEEDBK_PATH="CLKOP"``).

    Members
    -------
    refclk_div, feedback_div, output_div : int
        ``CLKI_DIV``, ``CLKFB_DIV``, ``CLKOP_DIV``.
    cphase : int
        ``CLKOP_CPHASE`` (ecppll shifts CLKOP by 180 degrees, truncated as it does; with the
        feedback taken from CLKOP the shift is compensated and does not matter).
    f_in_hz, f_out_hz, f_vco_hz : float
        Input, achieved output and VCO frequencies.
    """
    def __init__(self, refclk_div, feedback_div, output_div, cphase, f_in_hz, f_out_hz, f_vco_hz):
        self.refclk_div = refclk_div
        self.feedback_div = feedback_div
        self.output_div = output_div
        self.cphase = cphase
        self.f_in_hz = f_in_hz
        self.f_out_hz = f_out_hz
        self.f_vco_hz = f_vco_hz

    def as_dict(self):
        return dict(vars(self))

    def __repr__(self):
        return (f"PLLParams(CLKI_DIV={self.refclk_div}, CLKFB_DIV={self.feedback_div}, "
                f"CLKOP_DIV={self.output_div}, CLKOP_CPHASE={self.cphase}, "
                f"{self.f_in_hz / 1e6:g} MHz -> {self.f_out_hz / 1e6:g} MHz, "
                f"VCO {self.f_vco_hz / 1e6:g} MHz)")


def ecp5_pll_params(f_in_hz, f_out_hz):
    """EHXPLLL dividers that bring ``f_in_hz`` closest to ``f_out_hz`` (ties: VCO nearest
    600 MHz), as ``ecppll -i <in> -o <out>`` computes them."""
    if not isinstance(f_in_hz, (int, float)) or not 8e6 <= f_in_hz <= 400e6:
        raise ValueError(f"f_in_hz must be 8..400 MHz for the ECP5 PLL, not {f_in_hz!r}")
    if not isinstance(f_out_hz, (int, float)) or not OUTPUT_MIN * 1e6 <= f_out_hz <= OUTPUT_MAX * 1e6:
        raise ValueError(f"f_out_hz must be 10..400 MHz for the ECP5 PLL, not {f_out_hz!r}")
    f32 = np.float32
    inp = f32(f_in_hz / 1e6)
    out = f32(f_out_hz / 1e6)
    best = None
    error = f32(np.finfo(np.float32).max)
    for input_div in range(1, 129):
        fpfd = f32(inp / f32(input_div))
        if fpfd < PFD_MIN or fpfd > PFD_MAX:
            continue
        for feedback_div in range(1, 81):
            # Only output dividers near the VCO window can qualify; the float32 test below decides.
            lo = max(1, math.floor(VCO_MIN / (float(fpfd) * feedback_div)) - 1)
            hi = min(128, math.ceil(VCO_MAX / (float(fpfd) * feedback_div)) + 1)
            for output_div in range(lo, hi + 1):
                fvco = f32(f32(fpfd * f32(feedback_div)) * f32(output_div))
                if fvco < VCO_MIN or fvco > VCO_MAX:
                    continue
                fout = f32(fvco / f32(output_div))
                err = f32(abs(fout - out))
                if err < error or (err == error and best is not None
                                   and abs(fvco - f32(600)) < abs(best[4] - f32(600))):
                    error = err
                    # ecppll: float ns_phase = 1/(fout*1e6) * 0.5 (double maths, stored as a
                    # float); cphase = ns_phase * (fvco*1e6), truncated to int.
                    ns_phase = f32(1.0 / (float(fout) * 1e6) * 0.5)
                    cphase = int(float(ns_phase) * (float(fvco) * 1e6))
                    best = (input_div, feedback_div, output_div, cphase, fvco, fout)
    if best is None:
        raise ValueError(f"no ECP5 PLL setting reaches {f_out_hz / 1e6:g} MHz from "
                         f"{f_in_hz / 1e6:g} MHz")
    input_div, feedback_div, output_div, cphase, fvco, fout = best
    # Report the exact achieved frequencies (the float32 values are for the search only).
    f_out = f_in_hz / input_div * feedback_div
    return PLLParams(input_div, feedback_div, output_div, cphase, f_in_hz, f_out,
                     f_out * output_div)


class ClockReset(Elaboratable):
    """The ``sync`` clock domain of a board: the input clock, through an ECP5 PLL when
    ``pll`` is given, and a reset held until the PLL locks (and while the optional reset
    button is pressed), released synchronously.

    Parameters
    ----------
    clk_resource : (str, int)
        The board's clock input resource.
    f_in_hz : float
        Its frequency.
    pll : PLLParams or None
        PLL dividers (ECP5 only); ``None`` uses the input clock directly.
    rst_resource : (str, int) or None
        An active-high reset input (a button) from the platform, if any.

    Members
    -------
    domain : ClockDomain
        The ``sync`` domain this block drives; the parent adds it to its module
        (``m.domains.sync = crg.domain``) so the domain is defined at the top.
    f_sync_hz : float
        Frequency of the ``sync`` domain.
    locked : Signal
        PLL lock (1 without a PLL), for a status LED.
    """
    def __init__(self, clk_resource, f_in_hz, pll=None, rst_resource=None):
        self.clk_resource = clk_resource
        self.f_in_hz = f_in_hz
        self.pll = pll
        self.rst_resource = rst_resource
        self.f_sync_hz = pll.f_out_hz if pll is not None else f_in_hz
        self.locked = Signal()
        self.domain = ClockDomain("sync")

    def elaborate(self, platform):
        m = Module()
        cd_sync = self.domain
        clk_io = platform.request(*self.clk_resource, dir="-")
        m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_io)
        rst_in = Const(0)
        if self.rst_resource is not None:
            rst_io = platform.request(*self.rst_resource, dir="-")
            m.submodules.rst_buf = rst_buf = io.Buffer("i", rst_io)
            rst_in = rst_buf.i

        if self.pll is None:
            m.d.comb += [cd_sync.clk.eq(clk_buf.i), self.locked.eq(1)]
            platform.add_clock_constraint(cd_sync.clk, self.f_in_hz)
        else:
            p = self.pll
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{p.f_in_hz / 1e6:g}",
                a_FREQUENCY_PIN_CLKOP=f"{p.f_out_hz / 1e6:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
                a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=p.refclk_div,
                p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p.output_div,
                p_CLKOP_CPHASE=p.cphase, p_CLKOP_FPHASE=0,
                p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p.feedback_div,
                i_RST=0, i_STDBY=0, i_CLKI=clk_buf.i,
                o_CLKOP=cd_sync.clk, i_CLKFB=cd_sync.clk,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
                i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_LOCK=self.locked,
            )
            # nextpnr derives the PLL output clock from the input constraint, and checks it
            # against the explicit constraint on the output.
            platform.add_clock_constraint(clk_buf.i, self.f_in_hz)
            platform.add_clock_constraint(cd_sync.clk, p.f_out_hz)

        m.submodules.rst_sync = ResetSynchronizer(~self.locked | rst_in, domain="sync")
        return m
