"""Fashion-MNIST from the IDX ``.gz`` files of the Debian package ``dataset-fashion-mnist``.

Images are returned as uint8 ``(N, 1, 28, 28)`` (the accelerator's input format) and labels as
int64 ``(N,)``. A small deterministic fixture (the first 256 test images) is committed in
``model/fixtures/fmnist_test256.npz`` for tests that must not depend on the installed data.
"""

import gzip
import os
import struct
from pathlib import Path

import numpy as np


__all__ = ["DEFAULT_DATA_DIR", "DataError", "load_fashion_mnist", "load_fixture", "FIXTURE_PATH",
           "CLASSES", "make_fixture"]

DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"
FIXTURE_PATH = Path(__file__).resolve().parent / "fixtures" / "fmnist_test256.npz"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


class DataError(RuntimeError):
    """The dataset is missing or malformed (one-line message)."""


def _read_idx(path, ndim):
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"Fashion-MNIST file {path} not found: install the Debian package "
                        f"'dataset-fashion-mnist' or pass --data-dir DIR") from None
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != 0x0800 + ndim:
        raise DataError(f"{path}: bad IDX magic 0x{magic:08x} (expected uint8, {ndim}-D)")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: {body.size} bytes of data, header says {dims}")
    return body.reshape(dims)


def load_fashion_mnist(split, data_dir=None):
    """Load one split.

    Parameters
    ----------
    split : str
        ``"train"`` (60,000 images) or ``"test"`` (10,000).
    data_dir : str or os.PathLike, optional
        Directory with the four IDX ``.gz`` files (default: ``$FMNIST_DIR`` or
        ``/usr/share/datasets/fashion-mnist``).

    Returns
    -------
    images : numpy.ndarray
        uint8 ``(N, 1, 28, 28)``.
    labels : numpy.ndarray
        int64 ``(N,)``.

    Raises
    ------
    DataError
        One line naming the Debian package and the ``--data-dir`` option when files are missing.
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    data_dir = Path(data_dir or os.environ.get("FMNIST_DIR") or DEFAULT_DATA_DIR)
    if not data_dir.is_dir():
        raise DataError(f"Fashion-MNIST directory {data_dir} not found: install the Debian package "
                        f"'dataset-fashion-mnist' or pass --data-dir DIR")
    fi, fl = _FILES[split]
    images = _read_idx(data_dir / fi, 3)
    labels = _read_idx(data_dir / fl, 1)
    if len(images) != len(labels):
        raise DataError(f"{data_dir}: {len(images)} images but {len(labels)} labels ({split})")
    return images[:, None].copy(), labels.astype(np.int64)


def load_fixture():
    """The committed fixture: the first 256 test images, uint8 ``(256,1,28,28)``, labels int64."""
    with np.load(FIXTURE_PATH, allow_pickle=False) as f:
        return f["images"].copy(), f["labels"].astype(np.int64)


def make_fixture(data_dir=None, n=256):
    """Write ``model/fixtures/fmnist_test256.npz`` from the first ``n`` test images."""
    images, labels = load_fashion_mnist("test", data_dir)
    FIXTURE_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(FIXTURE_PATH, images=images[:n], labels=labels[:n].astype(np.uint8))
    return FIXTURE_PATH
