"""Reading the compiler's input: a deploy model as ``(header, arrays)``, and its packed weights."""

import json
from pathlib import Path

import numpy as np

__all__ = ["DeployFileError", "deploy_parts", "read_deploy_file", "weight_bits"]


class DeployFileError(Exception):
    """A deploy file the command line cannot read (one-line message naming the file)."""


def deploy_parts(deploy):
    """``(header dict, arrays mapping)`` of a deploy model given as a path, a ``model.deploy``
    object, a ``(header, arrays)`` tuple, or a dict with ``header`` and ``arrays``."""
    if isinstance(deploy, (str, Path)):
        try:
            from model import deploy as mdeploy
            deploy = mdeploy.load(deploy)
        except ImportError:
            with np.load(deploy, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            header = json.loads(bytes(arrays.pop("header")).decode("utf-8"))
            return header, arrays
    if isinstance(deploy, tuple):
        return deploy
    if isinstance(deploy, dict):
        return deploy["header"], deploy["arrays"]
    header = getattr(deploy, "header", None)
    arrays = getattr(deploy, "arrays", None)
    if header is None or arrays is None:
        raise TypeError(f"cannot read a deploy model from {type(deploy).__name__}")
    return header, arrays


def read_deploy_file(path):
    """Load and validate the deploy file at ``path`` for the command line.

    Raises
    ------
    DeployFileError
        One line: the file is missing, or ``model.deploy`` rejects it.
    """
    if not Path(path).is_file():
        raise DeployFileError(f"{path}: no such file")
    try:
        from model import deploy as mdeploy
    except ImportError:
        mdeploy = None
    if mdeploy is not None:
        try:
            return mdeploy.load(path)
        except mdeploy.DeployError as e:
            raise DeployFileError(str(e)) from None
    try:
        return deploy_parts(str(path))
    except Exception as e:      # the fallback loader; model.deploy validates properly
        raise DeployFileError(f"{path}: cannot read deploy file ({type(e).__name__}: {e})") from None


def weight_bits(arrays, name, cout, cin, k):
    """The packed ``"<name>.weight"`` array unpacked to 0/1 uint8 ``(cout, cin, k, k)``."""
    packed = np.asarray(arrays[f"{name}.weight"], dtype=np.uint8)
    n = cout * cin * k * k
    return np.unpackbits(packed, bitorder="little")[:n].reshape(cout, cin, k, k)
