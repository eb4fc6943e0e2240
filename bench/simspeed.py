"""Simulator speed: Amaranth's pysim against the compiled simulators (CXXRTL, Verilator).

    python -m bench.simspeed                    # tiny and default configs, all backends
    python -m bench.simspeed --configs default --backends cxxrtl,verilator --no-write

For every (configuration, backend) it reports the build time (the first build of a design; later
runs hit the cache under build/cxxrtl/), and cycles per second of wall-clock time in two regimes:

- ``idle``: the SoC clocked with nothing running (the floor of the per-cycle cost);
- ``inference``: a compiled model running on the SoC (the shipped default model when it fits the
  configuration, else a small random network), clocked from CTRL.start until irq, the cycle
  budget or the time limit (pysim gets a small budget: it is ~1000x slower).

The results replace the "## Simulator speed" section of docs/BENCHMARKS.md (other sections are left
alone; the file is created if missing) unless ``--no-write``.
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from bench.report import run_cli
from firmware.session import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Simulator speed"

os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")


def _workload(config, model_path):
    """(name, CompiledModel, image) of a network that fits ``config``."""
    import numpy as np
    from firmware.compiler import compile_model, CompileError
    from model import deploy as mdeploy
    from model.random_deploy import random_deploy
    if model_path and Path(model_path).is_file():
        deploy = mdeploy.load(model_path)
        try:
            cm = compile_model(deploy, config)
            rng = np.random.default_rng(0)
            image = rng.integers(0, 256, size=cm.input_shape, dtype=np.uint8)
            return Path(model_path).name, cm, image
        except CompileError:
            pass
    for seed in range(1, 50):
        deploy = random_deploy(seed, channels=1, height=12, width=12, num_classes=10,
                                max_convs=4, chan_choices=(16, 32))
        try:
            cm = compile_model(deploy, config)
        except CompileError:
            continue
        rng = np.random.default_rng(seed)
        image = rng.integers(0, 256, size=cm.input_shape, dtype=np.uint8)
        return f"random network (seed {seed})", cm, image
    raise RuntimeError("no random network fits this configuration")


async def _clock(transport, budget, chunk, seconds):
    """Clock until irq, ``budget`` cycles or ``seconds`` of wall time (in ``chunk``-cycle steps);
    returns ``(cycles, cpu_seconds, fired)``."""
    cycles, fired = 0, False
    start, cpu = time.perf_counter(), time.process_time()
    while cycles < budget and not fired and time.perf_counter() - start < seconds:
        fired, n = await transport.wait_irq_cycles(min(chunk, budget - cycles))
        cycles += n
    # CPU time of this process: the machine is shared, and wall time would measure the neighbours.
    return cycles, time.process_time() - cpu, fired


async def _inference(transport, compiled, image, budget, chunk, seconds):
    """Clock a run of the parameter-loading program."""
    from firmware.driver import Accelerator, REG, CTRL_START
    acc = Accelerator(transport)
    await acc.identify()
    await acc.load(compiled)
    await transport.write_words(compiled.input_addr, [int(w) for w in compiled.prepare_input(image)])
    await transport.write_words(REG.PROG_ADDR, [compiled.prog_load_addr])
    await transport.write_words(REG.CTRL, [CTRL_START])
    return await _clock(transport, budget, chunk, seconds)


def measure(config_name, backend, *, model_path, pysim_cycles, compiled_cycles, seconds, log):
    from accel.soc import SoC
    from contract.config import CONFIGS
    config = CONFIGS[config_name]
    row = {"config": config_name, "backend": backend}
    start = time.perf_counter()
    if backend == "pysim":
        from firmware.sim_transport import PySimTransport
        transport = PySimTransport(SoC(config))
        budget, chunk = pysim_cycles, 100
    else:
        from firmware.cxxrtl_sim import CxxrtlTransport
        name, _, variant = backend.partition(":")
        log(f"  building {backend} for {config_name} (cached after the first time) ...")
        transport = CxxrtlTransport(config, backend=name, fast_models=variant != "real-mac", quiet=True)
        budget, chunk = compiled_cycles, compiled_cycles
    row["build_s"] = time.perf_counter() - start

    n, wall, _ = asyncio.run(_clock(transport, budget, chunk, seconds))
    row["idle"] = n / wall
    name, compiled, image = _workload(config, model_path)
    row["workload"] = name
    cycles, wall, fired = asyncio.run(_inference(transport, compiled, image, budget, chunk, seconds))
    row["inference"] = cycles / wall
    row["inference_cycles"] = cycles
    row["finished"] = fired
    asyncio.run(transport.close())
    return row


def _table(rows):
    lines = ["| config | backend | build (s) | idle cycles/s | inference cycles/s | workload |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        done = "ran to irq" if r["finished"] else "stopped early"
        lines.append(f"| {r['config']} | {r['backend']} | {r['build_s']:.0f} | {r['idle']:,.0f} | "
                     f"{r['inference']:,.0f} | {r['workload']}, {r['inference_cycles']:,} cycles ({done}) |")
    return lines


def write_section(rows, argv):
    from bench.report import write_section as write, machine, git_revision
    command = " ".join(["python -m bench.simspeed", *argv])
    lines = [f"Measured by `{command}`"
             + f" on {machine()}, shared with other jobs, revision {git_revision()}. Speeds are "
             "simulated cycles per CPU-second of the simulating process (on a shared machine wall "
             "time would measure the neighbours); `build` is this run's wall time to get the "
             "simulator, near 0 when the build was cached under `build/cxxrtl/`. The compiled "
             "backends clock the SoC from C++ (`firmware/cxxrtl/harness.cc`) with the MAC array's "
             "simulation model (`firmware/fast_models.py`); pysim clocks the real SoC from "
             "Amaranth's `Simulator.advance()`.", ""]
    lines += _table(rows)
    best = max((r for r in rows if r["config"] == "default" and r["backend"] != "pysim"),
               key=lambda r: r["inference"], default=None)
    if best is not None:
        verdict = "met" if best["inference"] >= 300_000 else "not met"
        lines += ["", f"Target of the compiled simulator, >= 300,000 cycles/s on the default "
                      f"configuration: {verdict} (best: {best['backend']}, "
                      f"{best['inference']:,.0f} cycles/s during inference)."]
    write(SECTION[3:], lines, doc=DOC)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m bench.simspeed", description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="tiny,default")
    ap.add_argument("--backends", default="pysim,cxxrtl,verilator",
                    help="comma-separated: pysim, cxxrtl, verilator; append ':real-mac' to a "
                         "compiled backend to simulate the real MACArray instead of its model")
    ap.add_argument("--pairs", help="explicit comma-separated config/backend pairs instead of "
                                    "configs x backends, e.g. tiny/pysim,default/verilator")
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--pysim-cycles", type=int, default=3000)
    ap.add_argument("--cycles", type=int, default=3_000_000, help="budget of the compiled backends")
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="wall-time limit of each regime (pysim stops there)")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/BENCHMARKS.md")
    args = ap.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if args.pairs:
        pairs = [tuple(p.split("/", 1)) for p in args.pairs.split(",")]
    else:
        pairs = [(c, b) for c in args.configs.split(",") for b in args.backends.split(",")]
    rows = []

    def work():
        for config_name, backend in pairs:
            log(f"{config_name} / {backend} ...")
            rows.append(measure(config_name, backend, model_path=args.model,
                                pysim_cycles=args.pysim_cycles, compiled_cycles=args.cycles,
                                seconds=args.seconds, log=log))
            r = rows[-1]
            log(f"  idle {r['idle']:,.0f} cycles/s, inference {r['inference']:,.0f} cycles/s")
            if not args.no_write:            # after every row: a long build may be interrupted
                write_section(rows, argv)
        return 0

    status = run_cli(work)
    if status:
        return status
    print("\n".join(_table(rows)))
    if not args.no_write:
        write_section(rows, argv)
        log(f"wrote the '{SECTION}' section of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
