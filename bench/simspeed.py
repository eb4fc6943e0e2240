"""Simulator speed: Amaranth's pysim against the compiled simulators (CXXRTL, Verilator).

    python -m bench.simspeed                    # tiny and default configs, all backends
    python -m bench.simspeed --configs default --backends cxxrtl,verilator --no-write

For every (configuration, backend) it reports the build time (the first build of a design; later
runs hit the cache under build/cxxrtl/), and cycles per second of wall-clock time in two regimes:

- ``idle``: the SoC clocked with nothing running (the floor of the per-cycle cost);
- ``inference``: a compiled model running on the SoC (the shipped default model when it fits the
  configuration, else a small random network), clocked from CTRL.start until irq or until the
  regime's cycle budget (pysim gets a small budget: it is ~1000x slower).

The results replace the "## Simulator speed" section of docs/BENCHMARKS.md (other sections are left
alone; the file is created if missing) unless ``--no-write``.
"""

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Simulator speed"
DEFAULT_MODEL = ROOT / "model" / "shipped" / "default.npz"

os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")


def _workload(config, model_path):
    """(name, CompiledModel, image) of a network that fits ``config``."""
    import numpy as np
    from firmware.compiler import compile_model, CompileError
    from model import deploy as mdeploy
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
        deploy = mdeploy.random_deploy(seed, channels=1, height=12, width=12, num_classes=10,
                                       max_convs=4, chan_choices=(16, 32))
        try:
            cm = compile_model(deploy, config)
        except CompileError:
            continue
        rng = np.random.default_rng(seed)
        image = rng.integers(0, 256, size=cm.input_shape, dtype=np.uint8)
        return f"random network (seed {seed})", cm, image
    raise RuntimeError("no random network fits this configuration")


async def _inference(transport, compiled, image, budget):
    """Cycles/s of a run of the parameter-loading program (``budget`` cycles at most)."""
    from firmware.driver import Accelerator, REG, CTRL_START
    acc = Accelerator(transport)
    await acc.identify()
    await acc.load(compiled)
    await transport.write_words(compiled.input_addr, [int(w) for w in compiled.prepare_input(image)])
    await transport.write_words(REG.PROG_ADDR, [compiled.prog_load_addr])
    await transport.write_words(REG.CTRL, [CTRL_START])
    start = time.perf_counter()
    fired, cycles = await transport.wait_irq_cycles(budget)
    wall = time.perf_counter() - start
    return cycles, wall, fired


async def _idle(transport, cycles):
    start = time.perf_counter()
    _, n = await transport.wait_irq_cycles(cycles)
    return n, time.perf_counter() - start


def measure(config_name, backend, *, model_path, pysim_cycles, compiled_cycles, log):
    from accel.config import CONFIGS
    from accel.soc import SoC
    config = CONFIGS[config_name]
    row = {"config": config_name, "backend": backend}
    start = time.perf_counter()
    dut = SoC(config)
    if backend == "pysim":
        from firmware.sim_transport import PySimTransport
        transport = PySimTransport(dut)
        budget = pysim_cycles
        row["build_s"] = time.perf_counter() - start
    else:
        from firmware.cxxrtl_sim import CxxrtlTransport
        log(f"  building {backend} for {config_name} (cached after the first time) ...")
        transport = CxxrtlTransport(dut, backend=backend, quiet=True)
        budget = compiled_cycles
        row["build_s"] = time.perf_counter() - start

    n, wall = asyncio.run(_idle(transport, budget))
    row["idle"] = n / wall
    name, compiled, image = _workload(config, model_path)
    row["workload"] = name
    cycles, wall, fired = asyncio.run(_inference(transport, compiled, image, budget))
    row["inference"] = cycles / wall
    row["inference_cycles"] = cycles
    row["finished"] = fired
    asyncio.run(transport.close())
    return row


def _table(rows):
    lines = ["| config | backend | build (s) | idle cycles/s | inference cycles/s | workload |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        done = "ran to irq" if r["finished"] else "budget"
        lines.append(f"| {r['config']} | {r['backend']} | {r['build_s']:.0f} | {r['idle']:,.0f} | "
                     f"{r['inference']:,.0f} | {r['workload']}, {r['inference_cycles']:,} cycles ({done}) |")
    return lines


def write_section(rows, argv):
    cpu = platform.processor() or platform.machine()
    body = [SECTION, "",
            f"Measured by `python -m bench.simspeed {' '.join(argv)}`".rstrip() + f" on {os.cpu_count()} "
            f"cores ({cpu}), other jobs sharing the machine; wall-clock time of the simulation "
            "loop only (build excluded; `build` is the time of this run, near 0 when cached). "
            "Compiled backends clock the SoC from C++ (`firmware/cxxrtl/harness.cc`); pysim from "
            "Amaranth's `Simulator.advance()`.", ""] + _table(rows) + [""]
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    start = text.find(SECTION + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + "\n".join(body)
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + "\n".join(body) + ("\n" + text[end + 1:] if end >= 0 else "")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m bench.simspeed", description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="tiny,default")
    ap.add_argument("--backends", default="pysim,cxxrtl,verilator")
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--pysim-cycles", type=int, default=3000)
    ap.add_argument("--cycles", type=int, default=3_000_000, help="budget of the compiled backends")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/BENCHMARKS.md")
    args = ap.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    rows = []
    try:
        for config_name in args.configs.split(","):
            for backend in args.backends.split(","):
                log(f"{config_name} / {backend} ...")
                rows.append(measure(config_name, backend, model_path=args.model,
                                    pysim_cycles=args.pysim_cycles, compiled_cycles=args.cycles,
                                    log=log))
                r = rows[-1]
                log(f"  idle {r['idle']:,.0f} cycles/s, inference {r['inference']:,.0f} cycles/s")
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception as exc:
        log(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return 1
    print("\n".join(_table(rows)))
    if not args.no_write:
        write_section(rows, argv)
        log(f"wrote the '{SECTION}' section of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
