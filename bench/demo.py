"""`make demo`: build the default board's bitstream, then run the shipped model on the simulated
accelerator and print accuracy, cycles per image and images/s.

The bitstream is rebuilt only when the design changed: the board's Verilog is elaborated first
(about a minute) and compared with the one the last build used.
"""

import argparse
import filecmp
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOARD = "ecp5"              # alias of the default board (ULX3S-85F)
BOARD_DIR = ROOT / "build" / "ulx3s-85f"
CHECK_DIR = ROOT / "build" / "demo-check"


def _run(title, argv, timeout=None):
    print(f"\n== {title}\n$ python {' '.join(argv)}", flush=True)
    proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)     # the build and the tools it started
        proc.wait()
        print(f"demo: stopped after {timeout / 60:.0f} min (--build-minutes)", file=sys.stderr)
        return 1


def _bitstream_current():
    """True if the last build's bitstream was made from the Verilog the design gives now."""
    bit, verilog, report = BOARD_DIR / "top.bit", BOARD_DIR / "top.v", BOARD_DIR / "report.json"
    if not (bit.exists() and verilog.exists() and report.exists()):
        return False
    if _run("checking whether the bitstream is up to date (elaborating the design)",
            ["-m", "accel.build", "--board", BOARD, "--verilog-only", "--build-dir", str(CHECK_DIR)]):
        return False
    fresh = CHECK_DIR / BOARD_DIR.name / "top.v"
    return fresh.exists() and filecmp.cmp(fresh, verilog, shallow=False)


def _print_report():
    report = BOARD_DIR / "report.md"
    if report.exists():
        print(report.read_text())


def _clock_mhz():
    """The clock the built design runs at: the target, or nextpnr's fmax if that is lower."""
    try:
        report = json.loads((BOARD_DIR / "report.json").read_text())
        achieved = min(c["achieved_mhz"] for c in report["clocks"].values())
        return min(achieved, report["target_mhz"]), achieved, report["target_mhz"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=256, help="Fashion-MNIST test images to run")
    ap.add_argument("--skip-build", action="store_true", help="do not build the bitstream")
    # Bound the build (about 8 minutes for the 85F, docs/BENCHMARKS.md, Builds) so that a build
    # that does not route still lets the demo go on to the simulation.
    ap.add_argument("--build-minutes", type=float,
                    default=float(os.environ.get("DEMO_BUILD_MINUTES", 90)),
                    help="give up the bitstream after this long (default 90, env DEMO_BUILD_MINUTES)")
    args = ap.parse_args(argv)

    failures = 0
    if not args.skip_build:
        if _bitstream_current():
            print(f"bitstream {BOARD_DIR / 'top.bit'} is up to date; not rebuilt")
        else:
            failures += _run("bitstream for the default board (ULX3S-85F); this takes a while",
                             ["-m", "accel.build", "--board", BOARD],
                             timeout=args.build_minutes * 60) != 0
        _print_report()
    run = ["-m", "firmware.run", "--sim", "--board", BOARD, "--images", str(args.images), "--check"]
    clock = _clock_mhz()
    if clock:
        mhz, achieved, target = clock
        print(f"\nclock for images/s: {mhz:.1f} MHz (nextpnr fmax {achieved:.1f} MHz, target {target:.0f} MHz)")
        run += ["--fmax", f"{mhz:.3f}"]
    failures += _run(f"the shipped model on the simulated accelerator ({args.images} images)", run) != 0
    if failures:
        print(f"\ndemo: {failures} step(s) failed (see above)", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
