"""Draw the map of the code for docs/ARCHITECTURE.md: ``python -m bench.architecture_map``.

Two panels in one PNG (``docs/architecture_map.png``): the folders and what imports what (the
layering that ``tests/test_layering.py`` enforces), and the path one pixel takes from an image file
to a logit, each step naming the file that does it. A test checks that every file named here exists.
"""

import argparse
import textwrap
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PNG = ROOT / "docs" / "architecture_map.png"

# (folder, one line of what it holds); drawn bottom-up: the contract at the bottom.
FOLDERS = [
    ("bench", "benchmarks and long checks: utilisation, builds, soak, model zoo"),
    ("firmware", "host: compiler (package of passes), driver, run helpers, simulators, serial link"),
    ("model", "PyTorch layers and training, deploy file, golden model, QONNX export/import"),
    ("accel", "gateware: SoC, sequencer, DMA, layer engine, MAC array, UART bridge; build, program"),
    ("platforms", "boards (amaranth-boards platforms, PLL) and their block-RAM estimate"),
    ("contract", "what both sides agree on: configuration, ISA, registers, error codes, serial frames"),
]
IMPORTS = [("bench", "firmware"), ("firmware", "accel"), ("firmware", "model"), ("accel", "platforms"),
           ("accel", "contract"), ("platforms", "contract"), ("firmware", "contract")]

# The path of one pixel: (step, file).
PIXEL_PATH = [
    ("image file (PNG) or Fashion-MNIST", "firmware/session.py"),
    ("command line, batch of images", "firmware/run.py"),
    ("input codes for the first layer", "firmware/compiler/host_input.py"),
    ("write input, start, wait, read logits", "firmware/driver.py"),
    ("frames over the serial link", "firmware/serial_transport.py"),
    ("frame format and CRC (both sides)", "contract/protocol.py"),
    ("frames to Wishbone transfers", "accel/uart_bridge.py"),
    ("bus, main memory, registers", "accel/soc.py"),
    ("fetch descriptors, dispatch", "accel/sequencer.py"),
    ("pixels from main memory", "accel/dma.py"),
    ("pixel -> table codes (block RAM)", "accel/embedding.py"),
    ("buffers, window walk, control", "accel/engine.py"),
    ("binary weights x 2-bit codes", "accel/mac_array.py"),
    ("thresholds, residual add, pool, sums", "accel/output.py"),
    ("logits back to main memory (STORE)", "accel/dma.py"),
    ("logits read back, checked against", "model/golden.py"),
]


def named_files():
    """Every file the picture names (a test checks that they exist)."""
    return sorted({path for _, path in PIXEL_PATH})


def draw(png=DEFAULT_PNG):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 8.5), gridspec_kw={"width_ratios": [1, 1.1]})
    for ax in (left, right):
        ax.set_xlim(0, 10)
        ax.axis("off")

    left.set_title("folders (arrows: imports)", fontsize=12, loc="left")
    left.set_ylim(-0.8, 7.4)
    place = {"bench": (2.4, 6.4), "firmware": (2.4, 4.9), "model": (7.6, 4.9), "accel": (2.4, 3.1),
             "platforms": (7.6, 1.9), "contract": (5.0, 0.3)}
    half_width, half_height = 2.1, 0.5
    for name, text in FOLDERS:
        x, y = place[name]
        left.add_patch(FancyBboxPatch((x - half_width, y - half_height), 2 * half_width, 2 * half_height,
                                      boxstyle="round,pad=0.05",
                                      fc="#dde8f5" if name != "contract" else "#f5e6c8", ec="#345"))
        left.text(x, y + 0.22, name + "/", ha="center", va="center", fontsize=11, weight="bold")
        left.text(x, y - 0.18, "\n".join(textwrap.wrap(text, 40)), ha="center", va="center",
                  fontsize=7.2)
    for src, dst in IMPORTS:
        (x0, y0), (x1, y1) = place[src], place[dst]
        if abs(y0 - y1) < 0.1:                      # side by side
            start, end = (x0 + half_width, y0), (x1 - half_width, y1)
        else:
            start, end = (x0, y0 - half_height), (x1, y1 + half_height)
        left.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color="#567", lw=1.1))
    left.text(0.1, 7.3, "tests/ may import everything; nothing imports bench/ or tests/. "
                        "Gateware (accel/) imports no host code.", fontsize=8, va="top")

    right.set_title("the path of a pixel, from an image file to a logit", fontsize=12, loc="left")
    n = len(PIXEL_PATH)
    right.set_ylim(-0.6, n)
    for i, (step, path) in enumerate(PIXEL_PATH):
        y = n - 1 - i
        side = "host" if path.startswith(("firmware", "model")) else (
            "both" if path.startswith("contract") else "FPGA")
        colour = {"host": "#e3f1e0", "both": "#f5e6c8", "FPGA": "#dde8f5"}[side]
        right.add_patch(FancyBboxPatch((0.1, y - 0.36), 9.6, 0.72, boxstyle="round,pad=0.03",
                                       fc=colour, ec="#345", lw=0.8))
        right.text(0.35, y, step, va="center", fontsize=9)
        right.text(9.5, y, path, va="center", ha="right", fontsize=9, family="monospace")
        if i < n - 1:
            right.annotate("", xy=(5.2, y - 0.42), xytext=(5.2, y - 0.36),
                           arrowprops=dict(arrowstyle="-|>", color="#345", lw=0.8))
    right.text(0.1, -0.6, "green: host (Python)   beige: shared contract   blue: FPGA gateware",
               fontsize=8, va="bottom")
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.architecture_map", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_PNG))
    args = parser.parse_args(argv)
    print(f"wrote {draw(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
