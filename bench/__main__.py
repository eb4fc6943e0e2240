"""Run the benchmark suite, writing the sections of docs/BENCHMARKS.md and the plots in docs/plots/.

    python -m bench                         # everything (long: builds, 64-image runs, 10k-image accuracy)
    python -m bench --quick                 # fewer images and passes, builds only reused
    python -m bench --only utilisation,cpu  # a subset (names or letters: a b d)

Benchmarks, in the order they run:

- ``builds`` (``bench.builds``, if importable): the default board's full build (``--reuse``: an
  existing ``build/<board>/report.json`` is taken as is), which gives the fmax the others use;
- ``utilisation`` (a): per-layer cycles and MAC-array utilisation of the shipped model from the
  hardware counters, plus a bit-exact check of N images against the golden model;
- ``first_layer`` (b): pixel embedding vs float first layer vs 8-bit bit-serial;
- ``cpu`` (d): accelerator images/s (modelled) vs this CPU (PyTorch, numpy golden);
- ``simspeed`` (``bench.simspeed``): simulator speed.

Each benchmark rewrites only its own section; a failing one is reported in one line and the others
still run (exit status 1 if any failed).
"""

import argparse
import importlib
import os
import sys
import time

from firmware.session import DEFAULT_BOARD, resolve_backend

os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

ORDER = ("builds", "utilisation", "first_layer", "cpu", "simspeed")
ALIASES = {"a": "utilisation", "b": "first_layer", "d": "cpu", "cpu_compare": "cpu",
           "first-layer": "first_layer", "util": "utilisation"}


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _have(module):
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer images and passes (minutes, not hours)")
    ap.add_argument("--only", default=None,
                    help=f"comma-separated subset of {','.join(ORDER)} (or a,b,d)")
    ap.add_argument("--images", type=int, default=None,
                    help="images of the utilisation run (default 64, --quick 8)")
    ap.add_argument("--board", default=DEFAULT_BOARD,
                    help=f"board of the build, the configuration and the fmax (default {DEFAULT_BOARD})")
    ap.add_argument("--backend", default="auto", choices=("auto", "cxxrtl", "verilator"),
                    help="compiled simulator (default auto: Verilator when installed, the faster)")
    args = ap.parse_args(argv)
    args.backend = resolve_backend(args.backend)
    if args.only:
        names = []
        for n in args.only.split(","):
            n = ALIASES.get(n.strip(), n.strip())
            if n not in ORDER:
                ap.error(f"--only: unknown benchmark {n!r} (one of {', '.join(ORDER)})")
            names.append(n)
        args.names = [n for n in ORDER if n in names]
    else:
        args.names = list(ORDER)
    return args


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    from bench.report import DOC
    quick = ["--quick"] if args.quick else []
    state = {}
    failed = []

    def transport():
        """One simulator of the board's SoC shared by the benchmarks (loading it once saves the
        benchmarks' own starts)."""
        if "transport" not in state:
            from firmware.session import open_transport, resolve_config
            state["transport"] = open_transport(resolve_config(None, args.board), args.backend)
        return state["transport"]

    def builds():
        if not _have("bench.builds"):
            _log("  bench.builds not importable: skipped")
            return 0
        from bench import builds as B
        from pathlib import Path
        report = Path("build") / args.board / "report.json"
        if args.quick and not report.exists():
            _log(f"  --quick: no build/{args.board}/report.json to reuse, build skipped")
            return 0
        return B.main(["--reuse", "--boards", args.board])

    def utilisation():
        from bench import utilisation as U
        n = args.images or (8 if args.quick else 64)
        res = U.run(["--images", str(n), "--backend", args.backend, "--board", args.board],
                    transport=transport())
        state["acc_cycles"] = (res["cycles"], res["golden_equal"], res["n_images"])
        # A 64-wide network on the same array: every layer but the first has 64 channels.
        wide = U.run(["--images", str(min(n, 16)), "--backend", args.backend, "--board", args.board,
                      "--model", str(U.WIDE_MODEL), "--section", U.WIDE_TITLE],
                     transport=transport())
        ok = res["golden_equal"] == res["n_images"] and wide["golden_equal"] == wide["n_images"]
        return 0 if ok else 2

    def first_layer():
        from bench import first_layer as F
        rows, _ = F.run(quick + ["--images", "2" if args.quick else "4", "--backend", args.backend,
                                 "--board", args.board], transport=transport())
        return 0 if all(r["golden_equal"] == r["n_images"] for r in rows) else 2

    def cpu():
        from bench import cpu_compare as C
        C.run(quick + ["--backend", args.backend, "--board", args.board],
              acc_cycles=state.get("acc_cycles"),
              transport=None if "acc_cycles" in state else transport())
        return 0

    def simspeed():
        if not _have("bench.simspeed"):
            _log("  bench.simspeed not importable: skipped")
            return 0
        from bench import simspeed as S
        extra = ["--seconds", "15", "--cycles", "1000000"] if args.quick else []
        return S.main(extra)

    jobs = dict(builds=builds, utilisation=utilisation, first_layer=first_layer, cpu=cpu,
                simspeed=simspeed)
    t_all = time.monotonic()
    for i, name in enumerate(args.names, 1):
        _log(f"[{i}/{len(args.names)}] {name} ...")
        t0 = time.monotonic()
        try:
            rc = jobs[name]() or 0
        except KeyboardInterrupt:
            _log("interrupted")
            return 130
        except SystemExit as exc:          # a benchmark's own argparse / sys.exit
            rc = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:           # keep going; one line per failure
            _log(f"  error in {name}: {type(exc).__name__}: "
                 f"{str(exc).splitlines()[0] if str(exc) else ''}")
            rc = 1
        dt = time.monotonic() - t0
        _log(f"[{i}/{len(args.names)}] {name}: {'ok' if rc == 0 else f'FAILED ({rc})'} in "
             f"{dt / 60:.1f} min")
        if rc:
            failed.append(name)
    if "transport" in state:
        import asyncio
        asyncio.run(state["transport"].close())
    _log(f"done in {(time.monotonic() - t_all) / 60:.1f} min; sections written to {DOC}"
         + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
