"""Random valid deploy files, for tests and the benchmarks' random-network checks.

``random_deploy(seed, ...)`` builds a small valid :class:`model.deploy.DeployModel` with random
shapes, residuals and heads, kept (by default) to what the accelerator implements.
"""

import json
import math

import numpy as np

from .deploy import FORMAT, IMAGE_KINDS, VERSION, pack_bits, validate


__all__ = ["random_deploy"]


def _random_thresholds(rng, cout, q, spread, center=0):
    nthr = (1 << q) - 1
    t = rng.integers(center - spread, center + spread + 1, size=(cout, nthr))
    t.sort(axis=1)
    return t


def random_deploy(seed, *, hardware=True, channels=None, height=None, width=None, first=None,
                  num_classes=None, max_convs=5, chan_choices=None, kernel_choices=None,
                  stride_choices=None, random_pad=False, max_embed_d=None, wide_embed=False,
                  residual_probability=0.6, pool_probability=0.2, acc_probability=0.5,
                  input_maps=False, head_kernel=False):
    """Build a small random valid deploy model (random shapes, residuals, heads).

    Parameters
    ----------
    seed : int
        Everything is derived from ``numpy.random.default_rng(seed)``.
    hardware : bool
        Keep to what the accelerator implements (docs/ARCHITECTURE.md): first layer ``embed``
        (``d*q <= 16``, ``q <= 2``) or ``raw_input``, conv ``k`` in {1, 3} with ``pad = k//2``,
        stride 1 or 2, ``q <= 2``, thresholds within +-32767, ``|v| < 32767``. With False, also
        ``host_conv`` first layers, other kernel sizes/paddings, ``q`` up to 4, stride 3.
    channels, height, width : int, optional
        Input image shape (random when None: 1..3 channels, 4..12 pixels).
    first : str, optional
        Force the first layer kind.
    num_classes : int, optional
    max_convs : int
        Upper bound on conv layers (at least 1 is made).
    chan_choices : sequence of int, optional
        Channel counts to draw conv widths from (default ``(4, 8, 16, 24, 32)``).
    kernel_choices : sequence of int, optional
        Conv kernel sizes to draw from (default ``(1, 3)``, or ``(1, 2, 3, 5)`` without
        ``hardware``). The compiler takes 1..15.
    stride_choices : sequence of int, optional
        Conv strides to draw from (default ``(1, 2)``, or ``(1, 2, 3)`` without ``hardware``).
    random_pad : bool
        Draw each conv's padding from ``0..min(k - 1, 3)`` (the descriptor's ``pad`` field holds
        0..3) instead of ``k // 2`` (``hardware``) or ``0..k-1``.
    max_embed_d : int, optional
        Largest embedding dimension ``d``: drawn from ``1..min(16 // q, max_embed_d)`` (the
        compiler needs ``channels * d <= p_i``), clipped to 15 with ``hardware``. None keeps the
        default draw (``1..16 // q`` clipped to 8).
    wide_embed : bool
        With ``max_embed_d``: draw ``d`` from ``1..max_embed_d`` whatever ``q``, so that some
        embeddings exceed a 16-bit table entry or the 15 codes of ``emb_d`` (the compiler splits
        them over table channels, ``firmware/compiler/table_split.py``).
    residual_probability, pool_probability, acc_probability : float
        How often a conv adds an earlier int map of its output shape (when there is one), max-pools
        its codes (when it has codes only and an even output), and writes its int map (``acc``).

    input_maps : bool
        Give some convs and heads the optional ``in_gain`` (1 or 2) and ``in_offset`` fields
        (docs/ARCHITECTURE.md, section 2; the compiler does not implement them yet).
    head_kernel : bool
        Give the head, half of the time, a ``k`` from 1 to the smaller side of its input map
        (section 2; the compiler implements only ``k = 1``).

    The optional parameters at their defaults draw exactly as before, so that a seed gives the
    same network as it always did.

    Returns
    -------
    DeployModel
        Validated; ``header["training"]`` records the seed.
    """
    for name, choices, low, high in (("kernel_choices", kernel_choices, 1, 15),
                                     ("stride_choices", stride_choices, 1, 3)):
        if choices is not None and (not choices or not all(
                isinstance(v, int) and low <= v <= high for v in choices)):
            raise ValueError(f"{name} must hold integers in {low}..{high}, not {choices!r}")
    if max_embed_d is not None and (not isinstance(max_embed_d, int) or max_embed_d < 1):
        raise ValueError(f"max_embed_d must be a positive integer, not {max_embed_d!r}")
    for name, value in (("residual_probability", residual_probability),
                        ("pool_probability", pool_probability), ("acc_probability", acc_probability)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be in 0..1, not {value!r}")
    rng = np.random.default_rng(seed)
    C = int(channels if channels is not None else rng.integers(1, 4))
    H = int(height if height is not None else rng.integers(4, 13))
    W = int(width if width is not None else rng.integers(4, 13))
    classes = int(num_classes if num_classes is not None else rng.integers(2, 11))
    chan_choices = tuple(chan_choices or (4, 8, 16, 24, 32))
    qmax = 2 if hardware else 4
    if first is None:
        kinds = ["embed", "embed", "raw_input"] + ([] if hardware else ["host_conv"])
        first = kinds[int(rng.integers(len(kinds)))]
    layers, arrays = [], {}
    # codes tensors available as conv inputs: name -> (channels, h, w, bits)
    codes = {}
    ints = {}  # name -> shape
    if first == "embed":
        q = int(rng.integers(1, qmax + 1))
        if max_embed_d is None:
            d = int(rng.integers(1, (16 // q if hardware else 8) + 1))
            d = min(d, 8)
        elif wide_embed:
            d = int(rng.integers(1, max_embed_d + 1))
        else:
            d = int(rng.integers(1, min(16 // q, max_embed_d) + 1))
            if hardware:
                d = min(d, 15)      # the EMBED descriptor's 4-bit emb_d field
        table = rng.integers(0, 1 << q, size=(C, 256, d)).astype(np.uint8)
        if rng.random() < 0.5:  # monotone, thermometer-like tables are the realistic case
            table = np.sort(table, axis=1)
        layers.append({"name": "embed", "kind": "embed", "input": "image", "d": d, "q": q,
                       "outputs": {"codes": "e0"}})
        arrays["embed.table"] = table
        codes["e0"] = (C * d, H, W, q)
    elif first == "raw_input":
        layers.append({"name": "raw", "kind": "raw_input", "input": "image",
                       "outputs": {"codes": "e0"}})
        codes["e0"] = (C, H, W, 8)
    elif first == "host_conv":
        q = int(rng.integers(1, qmax + 1))
        k = int(rng.choice([1, 3]))
        cout = int(rng.choice(chan_choices))
        s = int(rng.integers(1, 3))
        p = k // 2
        wgt = rng.normal(0, 1, size=(cout, C, k, k)).astype(np.float32)
        bias = rng.normal(0, 0.5, size=cout).astype(np.float32)
        spread = 0.5 * math.sqrt(C * k * k)
        thr = np.sort(rng.normal(0, spread, size=(cout, (1 << q) - 1)), axis=1).astype(np.float32)
        layers.append({"name": "hconv", "kind": "host_conv", "input": "image", "k": k,
                       "stride": s, "pad": p, "q": q, "outputs": {"codes": "e0"}})
        arrays.update({"hconv.weight": wgt, "hconv.bias": bias, "hconv.thresholds": thr,
                       "hconv.direction": rng.choice([-1, 1], size=cout).astype(np.int8)})
        ho, wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
        codes["e0"] = (cout, ho, wo, q)
    else:
        raise ValueError(f"first must be one of {IMAGE_KINDS}, not {first!r}")

    # max |v| bound per ints tensor, to keep |v| < 32767 in hardware mode
    bound = {}
    last_codes = "e0"
    nconv = int(rng.integers(1, max_convs + 1))
    for li in range(nconv):
        lname = f"conv{li}"
        # mostly chain on the latest codes, sometimes branch from an earlier one; the accelerator
        # reads 8-bit codes only in the first conv
        srcs = [n for n, c in codes.items() if not (hardware and li > 0 and c[3] == 8)]
        src = last_codes if rng.random() < 0.75 else srcs[int(rng.integers(len(srcs)))]
        cin, h, w, in_bits = codes[src]
        k = int(rng.choice(kernel_choices or ([1, 3] if hardware else [1, 2, 3, 5])))
        if random_pad:
            p = int(rng.integers(0, min(k - 1, 3) + 1))
        else:
            p = k // 2 if hardware else int(rng.integers(0, k))
        s = int(rng.choice(stride_choices or ([1, 2] if hardware else [1, 2, 3])))
        if (h + 2 * p - k) // s + 1 < 1 or (w + 2 * p - k) // s + 1 < 1:
            s, p = 1, (k - 1) // 2 if not hardware else k // 2
            if random_pad:
                p = min(k - 1, 3)
            if (h + 2 * p - k) < 0 or (w + 2 * p - k) < 0:
                k, p = 1, 0
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        # residual candidates with a matching spatial size; adopt their channel count
        cands = [n for n, shp in ints.items() if shp[1:] == (ho, wo)]
        res = None
        if cands and rng.random() < residual_probability:
            res = cands[int(rng.integers(len(cands)))]
            cout = ints[res][0]
        else:
            cout = int(rng.choice(chan_choices))
        want_acc = rng.random() < acc_probability
        want_codes = (not want_acc) or rng.random() < 0.7 or li == nconv - 1 or in_bits == 8
        pool = None
        if want_codes and not want_acc and ho % 2 == 0 and wo % 2 == 0 and ho >= 2 \
                and rng.random() < pool_probability:
            pool = "max2"
        q = int(rng.integers(1, qmax + 1)) if want_codes else None
        bits = rng.integers(0, 2, size=(cout, cin, k, k)).astype(np.uint8)
        acc_max = cin * k * k * ((1 << in_bits) - 1)
        vmax = acc_max + (bound[res] if res else 0)
        if hardware and vmax >= 32767:
            res, vmax = None, acc_max
        layer = {"name": lname, "kind": "conv", "input": src, "cin": cin, "cout": cout, "k": k,
                 "stride": s, "pad": p, "in_bits": in_bits, "residual": res, "q": q,
                 "pool": pool, "outputs": {"acc": f"x{li}" if want_acc else None,
                                           "codes": f"a{li}" if want_codes else None}}
        arrays[f"{lname}.weight"] = pack_bits(bits)
        if want_codes:
            # centre the thresholds on the mean of v so that every code value occurs
            mean_code = ((1 << in_bits) - 1) / 2
            spread = max(2, int(2 * math.sqrt(cin * k * k) * max(1.0, mean_code)))
            thr = _random_thresholds(rng, cout, q, spread)
            if hardware:
                thr = np.clip(thr, -32767, 32767)
            arrays[f"{lname}.thresholds"] = thr.astype(np.int32)
            arrays[f"{lname}.direction"] = rng.choice([-1, 1], size=cout).astype(np.int8)
        if input_maps and rng.random() < 0.3:
            gain = int(rng.integers(1, 3))
            layer["in_gain"] = gain
            layer["in_offset"] = int(rng.integers(0, gain * ((1 << in_bits) - 1) + 1))
            vmax *= gain
        layers.append(layer)
        if want_acc:
            ints[f"x{li}"] = (cout, ho, wo)
            bound[f"x{li}"] = vmax
        if want_codes:
            shp = (ho // 2, wo // 2) if pool else (ho, wo)
            codes[f"a{li}"] = (cout, shp[0], shp[1], q)
            last_codes = f"a{li}"

    cin, h, w, in_bits = codes[last_codes]
    head = {"name": "head", "kind": "head", "input": last_codes, "cin": cin,
            "classes": classes, "in_bits": in_bits, "outputs": {"logits": "logits"}}
    head_k = 1
    if head_kernel and rng.random() < 0.5:
        head_k = int(rng.integers(1, min(h, w) + 1))
        head["k"] = head_k
    if input_maps and rng.random() < 0.3:
        head["in_gain"] = int(rng.integers(1, 3))
        head["in_offset"] = int(rng.integers(0, head["in_gain"] * ((1 << in_bits) - 1) + 1))
    layers.append(head)
    arrays["head.weight"] = pack_bits(rng.integers(0, 2, size=(classes, cin, head_k, head_k)))
    arrays["head.scale"] = rng.uniform(0.01, 1.0, size=classes).astype(np.float32)
    arrays["head.bias"] = rng.normal(0, 1, size=classes).astype(np.float32)
    header = {"format": FORMAT, "version": VERSION,
              "input": {"channels": C, "height": H, "width": W}, "num_classes": classes,
              "variant": f"random-{first}", "layers": layers,
              "training": {"random_deploy_seed": int(seed), "hardware": bool(hardware)}}
    header = json.loads(json.dumps(header))
    return validate(header, arrays)
