"""Parsers of the FPGA toolchain's reports: nextpnr's ``--report`` JSON and log, Yosys' statistics.

``accel.build`` reads a build's figures through them, and the benchmarks (``bench/``) read the same
files of finished builds. Every parser takes the text or the decoded JSON, not a tool to run.
"""

import json
import re
from collections import defaultdict
from pathlib import Path


__all__ = ["CELL_ROWS", "ECP5_CELLS", "parse_nextpnr_report", "parse_nextpnr_log", "parse_yosys_log",
           "parse_yosys_stat", "over_capacity", "timing_endpoints", "group_endpoints"]


# nextpnr cell types -> report rows, per family.
CELL_ROWS = {
    "ecp5": {"LUT4": "TRELLIS_COMB", "FF": "TRELLIS_FF", "BRAM": "DP16KD", "MULT": "MULT18X18D",
             "IO": "TRELLIS_IO"},
    "ice40": {"LUT4": "ICESTORM_LC", "FF": None, "BRAM": "ICESTORM_RAM", "MULT": "ICESTORM_DSP",
              "SPRAM": "ICESTORM_SPRAM", "IO": "SB_IO"},
}

# The ECP5 technology cells that synth_ecp5's statistics count (``parse_yosys_stat``).
ECP5_CELLS = ("LUT4", "CCU2C", "PFUMX", "L6MUX21", "TRELLIS_FF", "TRELLIS_DPR16X4", "DP16KD",
              "MULT18X18D")


def parse_nextpnr_report(report, family):
    """Utilisation and fmax from nextpnr's ``--report`` JSON (a dict or a path).

    Returns ``(utilization, fmax)``: ``utilization`` maps report rows (``LUT4``, ``FF``, ``BRAM``,
    ``MULT``, ...) to ``{"used", "available", "cell"}``; ``fmax`` maps clock net names to
    ``{"achieved_mhz", "target_mhz"}``.
    """
    if not isinstance(report, dict):
        report = json.loads(Path(report).read_text())
    util = report.get("utilization", {})
    rows = {}
    for row, cell in CELL_ROWS[family].items():
        if cell is not None and cell in util:
            rows[row] = {"used": int(util[cell]["used"]), "available": int(util[cell]["available"]),
                         "cell": cell}
    fmax = {}
    for net, v in report.get("fmax", {}).items():
        fmax[net] = {"achieved_mhz": float(v["achieved"]), "target_mhz": float(v["constraint"])}
    return rows, fmax


_LOG_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz\s+\((PASS|FAIL) at ([\d.]+) MHz\)")
_LOG_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def parse_nextpnr_log(text, family):
    """The same as :func:`parse_nextpnr_report`, from nextpnr's log (the last figures win: the
    log reports fmax after placement and again after routing)."""
    rows = {}
    by_cell = {cell: row for row, cell in CELL_ROWS[family].items() if cell}
    for cell, used, avail in _LOG_UTIL.findall(text):
        if cell in by_cell:
            rows[by_cell[cell]] = {"used": int(used), "available": int(avail), "cell": cell}
    fmax = {}
    for net, achieved, _, target in _LOG_FMAX.findall(text):
        fmax[net] = {"achieved_mhz": float(achieved), "target_mhz": float(target)}
    return rows, fmax


def over_capacity(text, family):
    """``"LUT4 13872/5280, ..."``: the resources a nextpnr log shows over-full ("" when none)."""
    util, _ = parse_nextpnr_log(text, family)
    return ", ".join(f"{row} {v['used']}/{v['available']}" for row, v in util.items()
                     if v["used"] > v["available"])


def parse_yosys_log(text):
    """Cell counts of the last statistics table in a Yosys log (``stat``, run by
    ``synth_ecp5``/``synth_ice40``): ``{cell_type: count}`` for the technology cells."""
    for marker in ("=== design hierarchy ===", "Number of cells"):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
            break
    cells = {}
    for count, name in re.findall(r"^\s+(\d+)\s+([A-Z$][\w$]*)\s*$", text, re.M):
        if not name.startswith("$"):     # $scopeinfo and other internal cells
            cells[name] = int(count)
    return cells


def parse_yosys_stat(text, cells):
    """``{cell: count}`` of the given cell types in the last ``stat`` of a Yosys log (0 when a
    type is absent); reads both Yosys' ``count name`` and older ``name count`` layouts."""
    block = text[text.rfind("Printing statistics"):]    # the last block is the final netlist
    counts = {}
    for cell in cells:
        found = (re.search(rf"^\s+(\d+)\s+{cell}\s*$", block, re.M) or
                 re.search(rf"^\s+{cell}\s+(\d+)\s*$", block, re.M))
        counts[cell] = int(found.group(1)) if found else 0
    return counts


_FF_SUFFIX = re.compile(r"(_TRELLIS_FF_Q|_TRELLIS_FF|_LUT4|_PFUMX|_L6MUX21|_CCU2C|\$)[\w$.\[\]]*$")


def timing_endpoints(report):
    """``[(arrival_ns, cell, port, clock_event)]`` of the clocked endpoints of a nextpnr
    ``--report`` JSON (a dict) written with ``--detailed-timing-report``
    (``python -m accel.build --detailed-timing``).

    Only clock-to-clock paths: a net launched by an input pin (``<async>``, such as the UART's
    receive line into its synchroniser) or captured by an output pin has no period to meet.
    Raises ``ValueError`` when the report has no per-endpoint timing."""
    if "detailed_net_timings" not in report:
        raise ValueError("no per-endpoint timing in the report: build with --detailed-timing")
    out = []
    for net in report["detailed_net_timings"]:
        if net.get("event", "").startswith("<async>"):
            continue
        for ep in net["endpoints"]:
            if ep.get("event", "").startswith("<async>"):
                continue
            delay = ep["delay"]
            out.append((max(delay) if isinstance(delay, list) else delay, ep["cell"], ep["port"],
                        ep.get("event", "")))
    return out


def _signal_name(cell):
    # soc.engine.mac.inp__payload_TRELLIS_FF_Q_1802 -> soc.engine.mac.inp__payload
    name = _FF_SUFFIX.sub("", cell)
    return re.sub(r"\.\d+(\.\d+)*$", "", name)   # block RAM tiles: bank1.0.9 -> bank1


def group_endpoints(endpoints, over=0.0):
    """Endpoints (of :func:`timing_endpoints`) later than ``over`` ns, grouped by the signal
    their cell implements: ``[(worst, count, name)]``, worst first."""
    groups = defaultdict(list)
    for t, cell, port, _ in endpoints:
        if t > over:
            groups[_signal_name(cell)].append(t)
    return sorted(((max(ts), len(ts), name) for name, ts in groups.items()), reverse=True)
