"""`make demo`: build the default board's bitstream, run the shipped model on the simulated accelerator.

Each step runs if its parts exist; a missing part is reported plainly instead of failing silently.
"""

import importlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _have(module):
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False


def _step(title, argv):
    print(f"\n== {title}: {' '.join(argv)}", flush=True)
    return subprocess.call([sys.executable, *argv], cwd=ROOT)


def main():
    failures = 0
    if _have("accel.build") and _have("accel.soc"):
        failures += _step("bitstream for the default board", ["-m", "accel.build", "--board", "ecp5"]) != 0
    else:
        print("not built yet: accel.build / accel.soc (the bitstream step is skipped)")
    if _have("firmware.run") and (ROOT / "model" / "shipped" / "default.npz").exists():
        failures += _step("shipped model on the simulated accelerator",
                          ["-m", "firmware.run", "--sim", "--images", "256"]) != 0
    else:
        print("not built yet: firmware.run or model/shipped/default.npz (the simulation step is skipped)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
