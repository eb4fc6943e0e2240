"""The deploy file (docs/ARCHITECTURE.md, section 2): save, load and validate.

A deploy file is a NumPy ``.npz`` archive holding a ``header`` (UTF-8 JSON stored as a uint8 array)
and one array per layer parameter, named ``"<layer name>.<param>"``. It is the only thing the
compiler (``firmware/``), the golden executor (``model/golden.py``) and the PyTorch model agree on.

Everything is validated when a file is loaded or saved; any violation raises :class:`DeployError`
with a single line naming the layer and field, never a traceback from NumPy or ``zipfile``.

Public API
----------
``save(path, header, arrays)``          validate, then write the archive.
``load(path) -> DeployModel``           read with ``allow_pickle=False`` and validate.
``validate(header, arrays) -> DeployModel``
``pack_bits(bits)`` / ``unpack_bits(packed, shape)``  the weight bit packing of the schema.
"""

import json
import math
import re
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np


__all__ = ["FORMAT", "VERSION", "DeployError", "DeployModel", "TensorInfo", "save", "load",
           "validate", "pack_bits", "unpack_bits", "LAYER_KINDS"]

FORMAT = "pixel-embedding-deploy"
VERSION = 1
LAYER_KINDS = ("embed", "raw_input", "host_conv", "conv", "head")
IMAGE_KINDS = ("embed", "raw_input", "host_conv")

_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
# Generous sanity limits: the schema is wider than any accelerator configuration; the compiler
# checks the configuration-specific limits (k in {1,3}, q <= 2, ...).
_MAX_CHANNELS = 4096
_MAX_SIZE = 4096
_MAX_K = 15
_MAX_STRIDE = 4
_MAX_D = 64


class DeployError(ValueError):
    """A deploy file or header/array set that violates schema version 1 (one-line message)."""


@dataclass(frozen=True)
class TensorInfo:
    """One feature map of the network.

    Members
    -------
    name : str
    kind : str
        ``"image"`` (uint8 input), ``"codes"`` (unsigned ``bits``-bit), ``"ints"`` (signed
        accumulators / residual sums) or ``"logits"``.
    shape : tuple of int
        ``(channels, height, width)``; ``(classes,)`` for logits.
    bits : int or None
        Code width for ``codes`` (8 for the image), None otherwise.
    producer : str or None
        Name of the layer that writes it (None for ``image``).
    """
    name: str
    kind: str
    shape: tuple
    bits: object
    producer: object


@dataclass
class DeployModel:
    """A validated deploy model.

    Members
    -------
    header : dict
        The decoded JSON header.
    arrays : dict of str to numpy.ndarray
        All parameter arrays, by ``"<layer>.<param>"``.
    layers : list of dict
        ``header["layers"]`` with, for convenience, each layer's arrays under ``"arrays"``
        (param name -> array; packed weights also unpacked as ``"weight_bits"`` (Cout, Cin, k, k)
        uint8 0/1 for conv and head) and its derived ``"in_shape"`` / ``"out_shape"``.
    tensors : dict of str to TensorInfo
        Every tensor (``"image"`` included), in production order.
    """
    header: dict
    arrays: dict
    layers: list
    tensors: dict = field(default_factory=dict)

    @property
    def input_shape(self):
        i = self.header["input"]
        return (i["channels"], i["height"], i["width"])

    @property
    def num_classes(self):
        return self.header["num_classes"]

    @property
    def variant(self):
        return self.header["variant"]

    def save(self, path):
        save(path, self.header, self.arrays)


# --- bit packing ---------------------------------------------------------------------------------

def pack_bits(bits):
    """Pack a 0/1 array (any shape, C order) as ``np.packbits(..., axis=None, bitorder="little")``."""
    bits = np.asarray(bits)
    if bits.size and (bits.min() < 0 or bits.max() > 1):
        raise ValueError("pack_bits: bits must be 0 or 1")
    return np.packbits(bits.astype(np.uint8), axis=None, bitorder="little")


def unpack_bits(packed, shape):
    """Inverse of :func:`pack_bits`: uint8 0/1 array of ``shape``."""
    n = int(np.prod(shape))
    return np.unpackbits(np.asarray(packed, dtype=np.uint8), count=n,
                         bitorder="little").reshape(shape)


# --- validation ----------------------------------------------------------------------------------

def _fail(msg):
    raise DeployError(msg)


def _int(where, obj, key, lo, hi):
    if key not in obj:
        _fail(f"{where}: missing field '{key}'")
    v = obj[key]
    if not isinstance(v, int) or isinstance(v, bool):
        _fail(f"{where}: field '{key}' must be an integer, not {type(v).__name__} {v!r}")
    if not lo <= v <= hi:
        _fail(f"{where}: field '{key}' = {v} out of range {lo}..{hi}")
    return v


def _keys(where, obj, required, optional=()):
    if not isinstance(obj, dict):
        _fail(f"{where}: must be a JSON object, not {type(obj).__name__}")
    for k in required:
        if k not in obj:
            _fail(f"{where}: missing field '{k}'")
    extra = set(obj) - set(required) - set(optional)
    if extra:
        _fail(f"{where}: unknown field(s) {sorted(extra)}")


def _array(where, arrays, used, name, dtype, shape):
    if name not in arrays:
        _fail(f"{where}: missing array '{name}'")
    a = arrays[name]
    if not isinstance(a, np.ndarray):
        _fail(f"{where}: array '{name}' is not a numpy array")
    if a.dtype != np.dtype(dtype):
        _fail(f"{where}: array '{name}' has dtype {a.dtype}, expected {np.dtype(dtype)}")
    if tuple(a.shape) != tuple(shape):
        _fail(f"{where}: array '{name}' has shape {tuple(a.shape)}, expected {tuple(shape)}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        _fail(f"{where}: array '{name}' contains non-finite values")
    used.add(name)
    return a


def _packed_weight(where, arrays, used, lname, shape):
    n = int(np.prod(shape))
    packed = _array(where, arrays, used, f"{lname}.weight", np.uint8, ((n + 7) // 8,))
    if n % 8:
        # The padding bits of the last byte must be zero, so that a file has one encoding.
        if int(packed[-1]) >> (n % 8):
            _fail(f"{where}: array '{lname}.weight' has nonzero padding bits")
    return unpack_bits(packed, shape)


def _thresholds(where, arrays, used, lname, cout, q, dtype):
    t = _array(where, arrays, used, f"{lname}.thresholds", dtype, (cout, (1 << q) - 1))
    d = _array(where, arrays, used, f"{lname}.direction", np.int8, (cout,))
    if not np.all((d == 1) | (d == -1)):
        _fail(f"{where}: array '{lname}.direction' must hold only +1 and -1")
    return t, d


def _out_name(where, name, tensors):
    if not isinstance(name, str) or not _NAME_RE.match(name):
        _fail(f"{where}: output tensor name {name!r} is not a valid name")
    if name in tensors:
        _fail(f"{where}: output tensor name '{name}' is already used")
    return name


# Optional fields of conv and head layers: the activation an input code stands for is
# a = in_gain * code - in_offset (default 1 and 0, the code itself).
_INPUT_MAP_FIELDS = ("in_gain", "in_offset")


def _input_map(where, layer, in_bits):
    gain = _int(where, layer, "in_gain", 1, 2) if "in_gain" in layer else 1
    offset = _int(where, layer, "in_offset", 0, gain * ((1 << in_bits) - 1)) \
        if "in_offset" in layer else 0
    return gain, offset


def _conv_out(where, h, w, k, s, p):
    ho = (h + 2 * p - k) // s + 1
    wo = (w + 2 * p - k) // s + 1
    if ho < 1 or wo < 1:
        _fail(f"{where}: output would be empty ({h}x{w} input, k={k}, stride={s}, pad={p})")
    return ho, wo


@dataclass
class _LayerCheck:
    """What the per-kind checks of :func:`validate` share about one layer."""
    where: str
    layer: dict
    lname: str
    arrays: dict
    used: set
    tensors: dict
    tin: TensorInfo
    src: str
    entry: dict
    la: dict
    base: tuple
    image_shape: tuple
    num_classes: int


def _check_embed(c):
    """Check the embedding look-up; returns the tensors it makes (``c``: the layer's :class:`_LayerCheck`)."""
    where, layer, lname, arrays, used, tensors = c.where, c.layer, c.lname, c.arrays, c.used, c.tensors
    la, base = c.la, c.base
    c_in, h_in, w_in = c.image_shape
    new_tensors = []
    _keys(where, layer, base + ("d", "q"))
    d = _int(where, layer, "d", 1, _MAX_D)
    q = _int(where, layer, "q", 1, 8)
    _keys(f"{where} outputs", layer["outputs"], ("codes",))
    table = _array(where, arrays, used, f"{lname}.table", np.uint8, (c_in, 256, d))
    if int(table.max()) >= (1 << q):
        _fail(f"{where}: table holds codes >= 2^q = {1 << q}")
    la["table"] = table
    name = _out_name(where, layer["outputs"]["codes"], tensors)
    new_tensors.append(TensorInfo(name, "codes", (c_in * d, h_in, w_in), q, lname))
    return new_tensors


def _check_raw_input(c):
    """Check the raw pixels; returns the tensors it makes (``c``: the layer's :class:`_LayerCheck`)."""
    where, layer, lname, tensors = c.where, c.layer, c.lname, c.tensors
    base = c.base
    c_in, h_in, w_in = c.image_shape
    new_tensors = []
    _keys(where, layer, base)
    _keys(f"{where} outputs", layer["outputs"], ("codes",))
    name = _out_name(where, layer["outputs"]["codes"], tensors)
    new_tensors.append(TensorInfo(name, "codes", (c_in, h_in, w_in), 8, lname))
    return new_tensors


def _check_host_conv(c):
    """Check the float first layer run on the host; returns the tensors it makes (``c``: the layer's :class:`_LayerCheck`)."""
    where, layer, lname, arrays, used, tensors = c.where, c.layer, c.lname, c.arrays, c.used, c.tensors
    entry, la, base = c.entry, c.la, c.base
    c_in, h_in, w_in = c.image_shape
    new_tensors = []
    _keys(where, layer, base + ("k", "stride", "pad", "q"))
    k = _int(where, layer, "k", 1, _MAX_K)
    s = _int(where, layer, "stride", 1, _MAX_STRIDE)
    p = _int(where, layer, "pad", 0, k - 1)
    q = _int(where, layer, "q", 1, 8)
    _keys(f"{where} outputs", layer["outputs"], ("codes",))
    wname = f"{lname}.weight"
    if wname not in arrays or not isinstance(arrays[wname], np.ndarray) \
            or arrays[wname].ndim != 4:
        _fail(f"{where}: missing or non-4-D array '{wname}'")
    cout = int(arrays[wname].shape[0])
    if not 1 <= cout <= _MAX_CHANNELS:
        _fail(f"{where}: output channels {cout} out of range")
    la["weight"] = _array(where, arrays, used, wname, np.float32, (cout, c_in, k, k))
    la["bias"] = _array(where, arrays, used, f"{lname}.bias", np.float32, (cout,))
    la["thresholds"], la["direction"] = _thresholds(where, arrays, used, lname, cout, q,
                                                    np.float32)
    ho, wo = _conv_out(where, h_in, w_in, k, s, p)
    entry["cout"] = cout
    name = _out_name(where, layer["outputs"]["codes"], tensors)
    new_tensors.append(TensorInfo(name, "codes", (cout, ho, wo), q, lname))
    return new_tensors


def _check_conv(c):
    """Check a binary-weight convolution; returns the tensors it makes (``c``: the layer's :class:`_LayerCheck`)."""
    where, layer, lname, arrays, used, tensors = c.where, c.layer, c.lname, c.arrays, c.used, c.tensors
    tin, src, la, base = c.tin, c.src, c.la, c.base
    new_tensors = []
    _keys(where, layer, base + ("cin", "cout", "k", "stride", "pad", "in_bits", "residual",
                                "q", "pool"), _INPUT_MAP_FIELDS)
    cin = _int(where, layer, "cin", 1, _MAX_CHANNELS)
    cout = _int(where, layer, "cout", 1, _MAX_CHANNELS)
    k = _int(where, layer, "k", 1, _MAX_SIZE)  # a fully connected layer: k = H = W
    s = _int(where, layer, "stride", 1, _MAX_STRIDE)
    p = _int(where, layer, "pad", 0, k - 1)
    in_bits = _int(where, layer, "in_bits", 1, 8)
    if cin != tin.shape[0]:
        _fail(f"{where}: cin = {cin} but input '{src}' has {tin.shape[0]} channels")
    if in_bits != tin.bits:
        _fail(f"{where}: in_bits = {in_bits} but input '{src}' holds {tin.bits}-bit codes")
    _input_map(where, layer, in_bits)
    ho, wo = _conv_out(where, tin.shape[1], tin.shape[2], k, s, p)
    _keys(f"{where} outputs", layer["outputs"], ("acc", "codes"))
    acc_name = layer["outputs"]["acc"]
    codes_name = layer["outputs"]["codes"]
    if acc_name is None and codes_name is None:
        _fail(f"{where}: outputs 'acc' and 'codes' are both null")
    res = layer["residual"]
    if res is not None:
        if not isinstance(res, str) or res not in tensors:
            _fail(f"{where}: residual {res!r} does not name an earlier tensor")
        rt = tensors[res]
        if rt.kind != "ints":
            _fail(f"{where}: residual '{res}' is {rt.kind}, not ints")
        if rt.shape != (cout, ho, wo):
            _fail(f"{where}: residual '{res}' has shape {rt.shape}, "
                  f"the output is {(cout, ho, wo)}")
    q = layer["q"]
    if codes_name is None:
        if q is not None:
            _fail(f"{where}: 'q' must be null when no codes are produced")
    else:
        q = _int(where, layer, "q", 1, 8)
    pool = layer["pool"]
    if pool not in (None, "max2"):
        _fail(f"{where}: pool must be null or 'max2', not {pool!r}")
    if pool == "max2":
        if codes_name is None or acc_name is not None:
            _fail(f"{where}: pool 'max2' needs codes and no acc output")
        if ho % 2 or wo % 2:
            _fail(f"{where}: pool 'max2' needs an even output size, not {ho}x{wo}")
    la["weight_bits"] = _packed_weight(where, arrays, used, lname, (cout, cin, k, k))
    la["weight"] = arrays[f"{lname}.weight"]
    if codes_name is not None:
        la["thresholds"], la["direction"] = _thresholds(where, arrays, used, lname, cout,
                                                        q, np.int32)
    if acc_name is not None:
        name = _out_name(where, acc_name, tensors)
        new_tensors.append(TensorInfo(name, "ints", (cout, ho, wo), None, lname))
    if codes_name is not None:
        if codes_name == acc_name:
            _fail(f"{where}: outputs 'acc' and 'codes' have the same name")
        name = _out_name(where, codes_name, tensors)
        shp = (cout, ho // 2, wo // 2) if pool == "max2" else (cout, ho, wo)
        new_tensors.append(TensorInfo(name, "codes", shp, q, lname))
    return new_tensors


def _check_head(c):
    """Check the head; returns the tensors it makes (``c``: the layer's :class:`_LayerCheck`)."""
    where, layer, lname, arrays, used, tensors = c.where, c.layer, c.lname, c.arrays, c.used, c.tensors
    tin, src, la, base = c.tin, c.src, c.la, c.base
    num_classes = c.num_classes
    new_tensors = []
    _keys(where, layer, base + ("cin", "classes", "in_bits"), _INPUT_MAP_FIELDS + ("k",))
    cin = _int(where, layer, "cin", 1, _MAX_CHANNELS)
    classes = _int(where, layer, "classes", 1, 65535)
    in_bits = _int(where, layer, "in_bits", 1, 8)
    hk = _int(where, layer, "k", 1, _MAX_SIZE) if "k" in layer else 1
    if cin != tin.shape[0]:
        _fail(f"{where}: cin = {cin} but input '{src}' has {tin.shape[0]} channels")
    if in_bits != tin.bits:
        _fail(f"{where}: in_bits = {in_bits} but input '{src}' holds {tin.bits}-bit codes")
    _input_map(where, layer, in_bits)
    _conv_out(where, tin.shape[1], tin.shape[2], hk, 1, 0)
    if classes != num_classes:
        _fail(f"{where}: classes = {classes} but num_classes = {num_classes}")
    _keys(f"{where} outputs", layer["outputs"], ("logits",))
    la["weight_bits"] = _packed_weight(where, arrays, used, lname, (classes, cin, hk, hk))
    la["weight"] = arrays[f"{lname}.weight"]
    la["scale"] = _array(where, arrays, used, f"{lname}.scale", np.float32, (classes,))
    if not np.all(la["scale"] > 0):
        _fail(f"{where}: array '{lname}.scale' must be > 0")
    la["bias"] = _array(where, arrays, used, f"{lname}.bias", np.float32, (classes,))
    name = _out_name(where, layer["outputs"]["logits"], tensors)
    new_tensors.append(TensorInfo(name, "logits", (classes,), None, lname))

    return new_tensors


_LAYER_CHECKS = {"embed": _check_embed, "raw_input": _check_raw_input, "host_conv": _check_host_conv,
                 "conv": _check_conv, "head": _check_head}


def validate(header, arrays):
    """Check a header dict and an array dict against schema version 1.

    Parameters
    ----------
    header : dict
        The decoded JSON header.
    arrays : dict of str to numpy.ndarray
        Parameter arrays, without ``header``.

    Returns
    -------
    DeployModel

    Raises
    ------
    DeployError
        One line naming the first violation.
    """
    _keys("header", header, ("format", "version", "input", "num_classes", "variant", "layers",
                             "training"))
    if header["format"] != FORMAT:
        _fail(f"header: format is {header['format']!r}, expected {FORMAT!r}")
    version = header["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version != VERSION:
        _fail(f"header: unsupported version {version!r} (this reader knows version {VERSION})")
    _keys("header.input", header["input"], ("channels", "height", "width"))
    c_in = _int("header.input", header["input"], "channels", 1, 64)
    h_in = _int("header.input", header["input"], "height", 1, _MAX_SIZE)
    w_in = _int("header.input", header["input"], "width", 1, _MAX_SIZE)
    num_classes = _int("header", header, "num_classes", 1, 65535)
    if not isinstance(header["variant"], str):
        _fail("header: field 'variant' must be a string")
    if not isinstance(header["training"], dict):
        _fail("header: field 'training' must be a JSON object")
    layers = header["layers"]
    if not isinstance(layers, list) or not layers:
        _fail("header: field 'layers' must be a non-empty list")
    if not isinstance(arrays, dict):
        _fail("arrays must be a dict")

    tensors = {"image": TensorInfo("image", "image", (c_in, h_in, w_in), 8, None)}
    used = set()
    out_layers = []
    names = set()
    for idx, layer in enumerate(layers):
        where = f"layer {idx}"
        if not isinstance(layer, dict):
            _fail(f"{where}: must be a JSON object")
        lname = layer.get("name")
        if not isinstance(lname, str) or not _NAME_RE.match(lname):
            _fail(f"{where}: 'name' must be a string of letters, digits, '_' or '-' (got {lname!r})")
        if lname in names:
            _fail(f"{where}: duplicate layer name '{lname}'")
        names.add(lname)
        where = f"layer {idx} '{lname}'"
        kind = layer.get("kind")
        if kind not in LAYER_KINDS:
            _fail(f"{where}: unknown kind {kind!r} (expected one of {', '.join(LAYER_KINDS)})")
        src = layer.get("input")
        if not isinstance(src, str) or src not in tensors:
            _fail(f"{where}: input {src!r} does not name an earlier tensor")
        tin = tensors[src]
        if kind in IMAGE_KINDS:
            if idx != 0:
                _fail(f"{where}: a '{kind}' layer must be the first layer")
            if src != "image":
                _fail(f"{where}: a '{kind}' layer reads 'image', not {src!r}")
        else:
            if idx == 0:
                _fail(f"{where}: the first layer must be one of {', '.join(IMAGE_KINDS)}")
            if tin.kind != "codes":
                _fail(f"{where}: input '{src}' is {tin.kind}, a '{kind}' layer needs codes")
        if kind == "head" and idx != len(layers) - 1:
            _fail(f"{where}: the head must be the last layer")
        if kind != "head" and idx == len(layers) - 1:
            _fail(f"{where}: the last layer must be a head")
        base = ("name", "kind", "input", "outputs")
        la = {}
        entry = dict(layer)
        entry["in_shape"] = tin.shape

        check = _LayerCheck(where, layer, lname, arrays, used, tensors, tin, src, entry, la, base,
                            (c_in, h_in, w_in), num_classes)
        new_tensors = _LAYER_CHECKS[kind](check)

        for t in new_tensors:
            tensors[t.name] = t
        entry["out_shape"] = new_tensors[-1].shape
        entry["arrays"] = la
        out_layers.append(entry)

    extra = set(arrays) - used
    if extra:
        _fail(f"unknown array(s) {sorted(extra)[:5]} not used by any layer")
    return DeployModel(header=header, arrays=dict(arrays), layers=out_layers, tensors=tensors)


# --- file I/O ------------------------------------------------------------------------------------

def _encode_header(header):
    try:
        text = json.dumps(header, sort_keys=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise DeployError(f"header is not JSON-serialisable: {e}") from None
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def save(path, header, arrays):
    """Validate ``header`` and ``arrays`` and write a deploy file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (``.npz``; NumPy appends the suffix if it is missing).
    header : dict
        The JSON header (docs/ARCHITECTURE.md, section 2).
    arrays : dict of str to numpy.ndarray
        One array per layer parameter.

    Raises
    ------
    DeployError
        If the model is not valid; nothing is written then.
    """
    # Round-trip the header through JSON first so that what is validated is what gets stored.
    enc = _encode_header(header)
    header = json.loads(enc.tobytes().decode("utf-8"))
    if "header" in arrays:
        _fail("an array may not be called 'header'")
    validate(header, arrays)
    np.savez_compressed(path, header=enc, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})


def load(path):
    """Read and validate a deploy file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    DeployModel

    Raises
    ------
    DeployError
        One line for a missing, truncated or malformed file, an unknown version, or any schema
        violation.
    """
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as f:
            for key in f.files:
                arrays[key] = f[key]
    except FileNotFoundError:
        raise DeployError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, TypeError,
            NotImplementedError, RuntimeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DeployError(f"{path}: not a readable deploy archive ({msg})") from None
    if "header" not in arrays:
        _fail(f"{path}: no 'header' array")
    # np.load hands back a member that is not in .npy format as raw bytes.
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            _fail(f"{path}: member '{key}' is not a NumPy array")
    h = arrays.pop("header")
    if h.dtype != np.uint8 or h.ndim != 1:
        _fail(f"{path}: 'header' must be a 1-D uint8 array, not {h.dtype} {h.shape}")
    try:
        header = json.loads(h.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DeployError(f"{path}: header is not UTF-8 JSON ({e})") from None
    if not isinstance(header, dict):
        _fail(f"{path}: header must be a JSON object")
    try:
        return validate(header, arrays)
    except DeployError as e:
        raise DeployError(f"{path}: {e}") from None
