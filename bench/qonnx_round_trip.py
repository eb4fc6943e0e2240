"""The QONNX round trip of a deploy file on the Fashion-MNIST test set.

    python -m bench.qonnx_round_trip [--model model/shipped/default.npz] [--executor-images N]

Exports the deploy file with ``model.export_qonnx``, imports the export back with
``model.import_qonnx``, runs ``model.golden`` on both over the 10,000 test images and qonnx's
executor (``cleanup_model``, ``execute_onnx``) on the export over the first ``N`` of them (all by
default), and prints how many images give equal predictions, integer logits and float logits.
qonnx's per-node datatype checks are off (``SANITIZE_QUANT_TENSORS=0``) for speed; the tests
(``tests/test_qonnx_export.py``) run them.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _equal_rows(a, b):
    return int(np.all(a == b, axis=1).sum())


def _executor(proto, images, batch_size):
    """qonnx's executor on ``images`` in batches; returns (integer logits, float logits)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model
    wrapper = cleanup_model(ModelWrapper(proto))
    name = wrapper.graph.input[0].name
    outputs = [o.name for o in wrapper.graph.output]
    logits_int, logits = [], []
    for start in range(0, len(images), batch_size):
        result = execute_onnx(wrapper, {name: images[start:start + batch_size]
                                        .astype(np.float32)})
        logits_int.append(result[outputs[0]])
        logits.append(result[outputs[1]])
    return np.concatenate(logits_int), np.concatenate(logits)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.qonnx_round_trip",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "model" / "shipped" / "default.npz"),
                        help="deploy file (default: the shipped model)")
    parser.add_argument("--executor-images", type=int, default=10000,
                        help="images for qonnx's executor (default 10000: all)")
    parser.add_argument("--batch-size", type=int, default=500,
                        help="images per executor run (default 500)")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder")
    args = parser.parse_args(argv)
    if args.executor_images < 0 or args.batch_size < 1:
        print("error: --executor-images must be >= 0 and --batch-size >= 1", file=sys.stderr)
        return 1
    os.environ.setdefault("SANITIZE_QUANT_TENSORS", "0")
    from model import golden
    from model.data import DataError, load_fashion_mnist
    from model.deploy import DeployError, load
    from model.export_qonnx import export_qonnx
    from model.import_qonnx import QonnxImportError, import_qonnx

    try:
        images, labels = load_fashion_mnist("test", args.data_dir)
        original = load(args.model)
    except (DataError, DeployError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    executor_images = min(args.executor_images, len(images))
    t0, cpu0 = time.perf_counter(), time.process_time()
    try:
        export = export_qonnx(original)  # the importer reads a graph of batch 1
        t1 = time.perf_counter()
        imported = import_qonnx(export, variant=original.variant)
    except (ValueError, QonnxImportError) as e:
        print(f"error: {args.model}: {e}", file=sys.stderr)
        return 1
    t2 = time.perf_counter()
    before = golden.run(original, images, keep_tensors=False)
    after = golden.run(imported, images, keep_tensors=False)
    t3 = time.perf_counter()
    # the graph's batch is fixed: the executor runs whole batches, the last one padded
    padded = -(-executor_images // args.batch_size) * args.batch_size
    batch = images[np.arange(padded) % len(images)] if executor_images else images[:0]
    if executor_images:
        export = export_qonnx(original, batch_size=args.batch_size)
        executor_int, executor_float = _executor(export, batch, args.batch_size)
        executor_int, executor_float = executor_int[:executor_images], \
            executor_float[:executor_images]
    t4 = time.perf_counter()

    n = len(images)
    kinds = [layer["kind"] for layer in imported.layers]
    print(f"{args.model}: {n} test images, export {t1 - t0:.2f} s, import {t2 - t1:.2f} s "
          f"({', '.join(kinds)}), golden on both {t3 - t2:.1f} s")
    same_predictions = int((after.predictions == before.predictions).sum())
    print(f"imported vs original (golden): predictions equal {same_predictions}/{n}, "
          f"integer logits equal {_equal_rows(after.logits_int, before.logits_int)}/{n}, "
          f"float logits equal {_equal_rows(after.logits, before.logits)}/{n}")
    print(f"accuracy: original {float((before.predictions == labels).mean()):.4f}, imported "
          f"{float((after.predictions == labels).mean()):.4f}")
    if executor_images:
        m = executor_images
        reference = before.logits_int[:m], before.logits[:m]
        predictions = np.argmax(executor_float, axis=1)
        print(f"qonnx executor on the export vs golden on the original, {m} images in "
              f"{t4 - t3:.1f} s: predictions equal "
              f"{int((predictions == before.predictions[:m]).sum())}/{m}, integer logits equal "
              f"{_equal_rows(executor_int, reference[0])}/{m}, float logits equal "
              f"{_equal_rows(executor_float, reference[1])}/{m}")
    print(f"total {t4 - t0:.0f} s wall, {time.process_time() - cpu0:.0f} s CPU (this process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
