"""Import a QONNX graph (Brevitas export or FINN-streamlined) as a deploy file, exactly.

``import_qonnx(path_or_model, input_scale=1.0) -> DeployModel`` walks the cleaned graph in
topological order and keeps, for every float tensor, what it is in integer terms:

- the image (graph input ``= input_scale * pixel``) and the elementwise nodes after it;
- codes: ``float = scale * (gain * code - offset)`` with an unsigned ``bits``-bit code, a
  per-tensor ``scale`` and ``gain`` 1 or 2 (2 for bipolar {-1,+1} activations);
- linear: ``float = chain(scale[o] * v)`` where ``v`` is a deploy layer's integer accumulator
  (plus residual) and ``chain`` the per-channel elementwise nodes seen since (batch norm, Mul, ...).

The input quantizer becomes an ``embed`` layer with ``d = 1``: its table is the float graph's own
output for each of the 256 pixel values, so any input affine is exact. Conv, Gemm and MatMul with
binary weights become ``conv`` layers (a Gemm on a flattened ``C x H x W`` map is a conv whose
kernel covers the map, ``k = H``, no padding, giving a 1 x 1 map); the quantizer that ends a
linear state is folded into that layer's integer thresholds by searching every reachable
accumulator value (``model/streamline.py``). The graph's output (after an optional TopK/ArgMax)
must be a linear state with an affine chain: that layer becomes the ``head``, ``logits = scale *
sum + bias``, a class whose scale is negative gets its weights negated.

The graphs ``model.export_qonnx`` writes come back as the deploy layers they were made from: its
embedding look-up (``Gather`` on a constant table, any ``d`` and ``q``), ``raw_input``, input
mappings, negated accumulators before ``MultiThreshold`` and residual adds are recognised
(docs/ARCHITECTURE.md, section 2.2); its float ``host_conv`` is refused.

Anything else is refused with one line naming the node, its op and the reason
(:class:`QonnxImportError`); the command line then exits 1 and writes nothing.

The graph walk is ``model/qonnx_graph.py``, reading and running single nodes
``model/qonnx_nodes.py``, the threshold search ``model/streamline.py``; docs/ARCHITECTURE.md,
section 2.2, states the rules.
"""

import argparse
import math
import sys
from dataclasses import dataclass

from .deploy import FORMAT, VERSION, DeployError, save, validate
from .qonnx_graph import GraphImporter
from .qonnx_nodes import (MAX_ACTIVATION_BITS, QonnxImportError, load_qonnx,
                          pixels_to_graph_input)


__all__ = ["QonnxImportError", "ImportReport", "import_qonnx", "pixels_to_graph_input",
           "load_qonnx", "MAX_ACTIVATION_BITS", "main"]


@dataclass
class ImportReport:
    """What :func:`import_qonnx` decided, beside the deploy model.

    Members
    -------
    notes : list of str
        One line per choice (the input scale used, 8-bit input codes, ...).
    probes : dict of str to (numpy.ndarray, numpy.ndarray)
        Per folded layer name: ``v`` ``(Cout, L)`` every reachable accumulator value (rows padded
        by repeating the last) and the float graph's codes at those values, for checking the
        thresholds against.
    graph_tensors : dict of str to (str, int, int, float)
        Per deploy codes tensor: the float graph's quantizer output it stands for and the map
        ``(gain, offset, scale)``: ``float = scale * (gain * code - offset)`` (before the
        layer's max-pool, if it has one).
    """
    notes: list
    probes: dict
    graph_tensors: dict


def import_qonnx(path_or_model, *, input_scale=1.0, variant="qonnx", return_report=False):
    """Convert a QONNX graph into a validated deploy model.

    Parameters
    ----------
    path_or_model : str, os.PathLike, onnx.ModelProto or qonnx ModelWrapper
        A Brevitas ``export_qonnx`` graph or a FINN-streamlined one.
    input_scale : float
        The graph input for pixel value ``p`` is ``p * input_scale`` (see
        :func:`pixels_to_graph_input`); 1 by default, ``1/255`` for ``ToTensor`` images.
    variant : str
        The deploy header's ``variant``.
    return_report : bool
        Also return an :class:`ImportReport`.

    Returns
    -------
    DeployModel, or (DeployModel, ImportReport) with ``return_report``

    Raises
    ------
    QonnxImportError
        One line naming the node, its op and why the graph cannot be imported exactly.
    """
    if not isinstance(input_scale, (int, float)) or isinstance(input_scale, bool):
        raise TypeError(f"input_scale must be a number, not {type(input_scale).__name__}")
    if not (math.isfinite(input_scale) and input_scale > 0):
        raise ValueError(f"input_scale must be positive and finite, not {input_scale}")
    model = load_qonnx(path_or_model)
    importer = GraphImporter(model, input_scale)
    classes = importer.run()
    layers = [{k: v for k, v in entry.items() if not k.startswith("_")}
              for entry in importer.layers]
    c, h, w = importer.input_shape
    header = {"format": FORMAT, "version": VERSION,
              "input": {"channels": c, "height": h, "width": w}, "num_classes": classes,
              "variant": variant, "layers": layers,
              "training": {"source": "qonnx import", "input_scale": input_scale}}
    try:
        deploy = validate(header, importer.arrays)
    except DeployError as e:
        raise QonnxImportError(f"the imported network violates the deploy contract: {e}") \
            from None
    notes = [f"input scale {input_scale:g}: pixel p enters the graph as p * {input_scale:g}"]
    report = ImportReport(notes + importer.notes,
                          {e["name"]: e["_codes"] for e in importer.layers if "_codes" in e},
                          importer.graph_tensors)
    return (deploy, report) if return_report else deploy


def main(argv=None):
    """``python -m model.import_qonnx MODEL.onnx -o MODEL.npz [--input-scale S]``."""
    parser = argparse.ArgumentParser(prog="python -m model.import_qonnx",
                                     description="Import a QONNX graph as a deploy file.")
    parser.add_argument("model", help="QONNX (.onnx) file")
    parser.add_argument("-o", "--output", required=True, help="deploy file to write (.npz)")
    parser.add_argument("--input-scale", default="1",
                        help="graph input per pixel unit: 1 (pixels 0..255, default) or e.g. "
                             "1/255 for [0,1] images")
    args = parser.parse_args(argv)
    try:
        text = args.input_scale
        if "/" in text:
            num, den = text.split("/", 1)
            scale = float(num) / float(den)
        else:
            scale = float(text)
    except (ValueError, ZeroDivisionError):
        print(f"error: --input-scale {args.input_scale!r} is not a number", file=sys.stderr)
        return 1
    try:
        deploy, report = import_qonnx(args.model, input_scale=scale, return_report=True)
        save(args.output, deploy.header, deploy.arrays)
    except (QonnxImportError, DeployError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # onnxruntime or qonnx refusing a malformed graph
        detail = str(e).splitlines()[0] if str(e) else ""
        print(f"error: {args.model}: {type(e).__name__}: {detail}", file=sys.stderr)
        return 1
    kinds = ", ".join(f"{layer['name']} {layer['kind']}" for layer in deploy.header["layers"])
    print(f"imported {args.model} -> {args.output}: {kinds}")
    for note in report.notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
