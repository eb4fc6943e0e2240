"""The compiler and the contract's optional fields (docs/ARCHITECTURE.md 1-2): ``in_gain`` /
``in_offset``, head ``k``, conv ``k`` up to the map (fully connected layers), 8-bit embeddings.

Each refusal is one line naming the layer and the field. Random deploy files using the fields either
compile and then give golden's logits on the reference simulator (every feature map the program
writes included), or are refused with such a line: never a silent wrong result.
"""

import json

import numpy as np
import pytest

from contract.config import DEFAULT85, SMALL, TINY
from firmware.compiler import CompileError, compile_model
from firmware.refsim import feature_maps, run_compiled
from model import golden
from model.deploy import FORMAT, VERSION, pack_bits, validate


def _network(rng, spec, C=1, H=6, W=6, classes=5, first="embed", q=2, d=1):
    """A validated DeployModel from a compact list of conv/head dicts (``cout, k, pad, stride,
    gain, offset, acc, residual``; ``kind="head"``), chained one after the other."""
    layers, arrays = [], {}
    if first == "embed":
        layers.append(dict(name="embed", kind="embed", input="image", d=d, q=q, outputs={"codes": "t0"}))
        arrays["embed.table"] = np.sort(rng.integers(0, 1 << q, (C, 256, d)), axis=1).astype(np.uint8)
        shape = (C * d, H, W, q)
    else:
        layers.append(dict(name="raw", kind="raw_input", input="image", outputs={"codes": "t0"}))
        shape = (C, H, W, 8)
    src, ints = "t0", {}
    for n, L in enumerate(spec):
        cin, h, w, bits = shape
        name = L.get("name", f"l{n + 1}")
        k = L.get("k", 1)
        affine = {}
        if "gain" in L:
            affine["in_gain"] = L["gain"]
        if "offset" in L:
            affine["in_offset"] = L["offset"]
        if L.get("kind") == "head":
            layers.append(dict(name=name, kind="head", input=src, cin=cin, classes=classes, in_bits=bits,
                               outputs={"logits": "logits"}, **affine, **({"k": k} if k != 1 else {})))
            arrays[f"{name}.weight"] = pack_bits(rng.integers(0, 2, (classes, cin, k, k)))
            arrays[f"{name}.scale"] = rng.uniform(0.1, 1, classes).astype(np.float32)
            arrays[f"{name}.bias"] = rng.normal(0, 1, classes).astype(np.float32)
            break
        p, s, cout = L.get("pad", 0), L.get("stride", 1), L["cout"]
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        res = L.get("residual")
        layers.append(dict(name=name, kind="conv", input=src, cin=cin, cout=cout, k=k, stride=s, pad=p,
                           in_bits=bits, residual=res, q=2, pool=None,
                           outputs={"acc": f"x{n + 1}" if L.get("acc") else None, "codes": f"t{n + 1}"},
                           **affine))
        arrays[f"{name}.weight"] = pack_bits(rng.integers(0, 2, (cout, cin, k, k)))
        gain = L.get("gain", 1)
        # random +-1 weights centre v near 0 whatever the input affine
        spread = int(gain * ((1 << bits) - 1) * np.sqrt(cin * k * k) / 2) + 1
        arrays[f"{name}.thresholds"] = np.sort(rng.integers(-spread, spread + 1, (cout, 3)),
                                               axis=1).astype(np.int32)
        arrays[f"{name}.direction"] = rng.choice([-1, 1], cout).astype(np.int8)
        if L.get("acc"):
            ints[f"x{n + 1}"] = (cout, ho, wo)
        src, shape = f"t{n + 1}", (cout, ho, wo, 2)
    header = {"format": FORMAT, "version": VERSION, "input": {"channels": C, "height": H, "width": W},
              "num_classes": classes, "variant": "test", "layers": layers, "training": {}}
    return validate(json.loads(json.dumps(header)), arrays)


def _refused(model, config=TINY):
    with pytest.raises(CompileError) as info:
        compile_model(model, config)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("layer ")
    return msg


def _matches_golden(model, config, images, maps=True):
    """Compile, run on the reference simulator; logits (and every written map) equal golden's."""
    cm = compile_model(model, config)
    logits_int, results, _ = run_compiled(cm, images, trace=maps)
    ref = golden.run(model, images)
    np.testing.assert_array_equal(logits_int, ref.logits_int)
    if maps:
        for n in range(len(images)):
            got = feature_maps(cm, results[n])
            for name, t in cm.tensors.items():
                if t.kind == "codes" and name in got:
                    np.testing.assert_array_equal(got[name], cm.as_stored(name, ref.tensors[name][n]))
                    assert not got[name + "#padding"].any()
    return cm


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(5).integers(0, 256, (6, 1, 6, 6), dtype=np.uint8)


# --- refusals, one line naming the layer and the field ---------------------------------------------

def test_offset_on_a_padded_conv_is_refused():
    rng = np.random.default_rng(0)
    m = _network(rng, [dict(name="c", cout=8, k=3, pad=1, offset=2), dict(kind="head")])
    assert _refused(m) == ("layer c: in_gain=1, in_offset=2 on a padded conv (pad=1): the offset's share "
                           "depends on the position, the accelerator multiplies the codes")


def test_gain_with_an_acc_output_or_a_residual_is_refused():
    rng = np.random.default_rng(1)
    m = _network(rng, [dict(name="c", cout=8, k=3, gain=2, offset=1, acc=True), dict(kind="head")])
    assert _refused(m).startswith("layer c: in_gain=2, in_offset=1 with an acc output")
    m = _network(rng, [dict(cout=8, k=1, acc=True), dict(name="c", cout=8, k=1, gain=2, residual="x1"),
                       dict(kind="head")])
    assert _refused(m).startswith("layer c: in_gain=2, in_offset=0 with a residual")


def test_affine_fields_outside_the_contract_are_refused():
    """A header handed to the compiler without ``model.deploy``'s validation."""
    rng = np.random.default_rng(2)
    m = _network(rng, [dict(name="c", cout=8, k=1), dict(name="h", kind="head")])
    header = json.loads(json.dumps(m.header))
    header["layers"][1]["in_gain"] = 3
    assert _refused((header, m.arrays)) == "layer c: in_gain=3 outside 1..2"
    header["layers"][1]["in_gain"] = 1
    header["layers"][2]["in_offset"] = 4
    assert _refused((header, m.arrays)) == "layer h: in_offset=4 outside 0..3 (in_gain*(2^in_bits-1))"


def test_head_k_other_than_fully_connected_is_refused():
    rng = np.random.default_rng(3)
    m = _network(rng, [dict(cout=8, k=3, pad=1), dict(name="h", kind="head", k=3)])
    assert _refused(m) == ("layer h: head k=3 on a 6x6 map: the accelerator runs a head as k=1 or as a "
                           "fully connected layer (k = H = W)")


def test_fully_connected_layer_after_a_larger_map_than_the_k_field_is_refused():
    rng = np.random.default_rng(4)
    m = _network(rng, [dict(cout=8, k=1), dict(name="fc", cout=8, k=16), dict(kind="head")], H=16, W=16)
    assert _refused(m, SMALL) == ("layer fc: k=16 outside 1..15 (a fully connected layer runs as a 1x1 "
                                  "conv only right after the image or on a 1x1 map)")


def test_flattened_input_beyond_the_n_cig_field_is_refused():
    rng = np.random.default_rng(5)
    m = _network(rng, [dict(name="fc", cout=8, k=28), dict(kind="head")], H=28, W=28)
    assert _refused(m, TINY) == ("layer fc: the flattened input's cin*k*k=1*28*28 channels need 98 input "
                                 "groups, the n_cig field holds 63")


def test_eight_bit_codes_beyond_the_threshold_range_are_refused():
    """An 8-bit embedding (Brevitas' 8-bit input quantizer) the host writes; a fully connected
    layer over 784 such codes can reach |v| = 199,920, beyond the 16-bit thresholds."""
    rng = np.random.default_rng(6)
    m = _network(rng, [dict(name="fc", cout=8, k=28), dict(kind="head")], H=28, W=28, q=8)
    assert _refused(m, DEFAULT85) == ("layer fc: worst-case |acc| = 199920 exceeds 32766 (16-bit "
                                      "thresholds, 32767 = never passed)")


# --- what compiles runs exactly --------------------------------------------------------------------

def test_fully_connected_first_layer_and_head(images):
    """embed -> FC (k = H, offset folded) -> 1x1 -> FC head with gain 2 and an offset."""
    rng = np.random.default_rng(7)
    m = _network(rng, [dict(name="fc", cout=12, k=6, offset=1), dict(cout=10, k=1, gain=2, offset=1),
                       dict(kind="head", gain=2, offset=3)])
    cm = _matches_golden(m, TINY, images)
    assert cm.input_kind == "host_embed" and cm.host_flat
    # embed -> FC head directly; raw pixels -> FC
    _matches_golden(_network(rng, [dict(kind="head", k=6, offset=2)]), TINY, images)
    _matches_golden(_network(rng, [dict(cout=8, k=6), dict(kind="head")], first="raw_input"), SMALL, images)


def test_fully_connected_head_on_a_map(images):
    """A head with k = H = W on a 3x3 map runs as a 3x3 CONV summed over its one pixel."""
    rng = np.random.default_rng(8)
    m = _network(rng, [dict(cout=8, k=3, pad=1, stride=2), dict(kind="head", k=3, offset=1)])
    cm = _matches_golden(m, TINY, images)
    assert cm.descriptors[cm.layers[-1].desc_index]["fields"]["k"] == 3


def test_eight_bit_embedding_runs_from_the_host(images):
    rng = np.random.default_rng(9)
    m = _network(rng, [dict(cout=8, k=3, pad=0, offset=128), dict(kind="head")], q=8)
    cm = _matches_golden(m, SMALL, images)
    assert cm.input_kind == "host_embed" and not cm.host_flat


def _random_spec(rng, H):
    """A random chain using the new fields (and some the accelerator cannot run)."""
    spec, h = [], H
    for _ in range(int(rng.integers(1, 4))):
        gain = int(rng.integers(1, 3))
        bits = 2
        aff = {}
        if rng.random() < 0.6:
            aff = dict(gain=gain, offset=int(rng.integers(0, gain * ((1 << bits) - 1) + 1)))
        form = rng.choice(["fc", "conv", "pointwise"])
        if form == "fc" or h == 1:
            spec.append(dict(cout=int(rng.choice([4, 9, 16])), k=h, acc=rng.random() < 0.2, **aff))
            h = 1
        elif form == "conv":
            pad = int(rng.integers(0, 2))
            spec.append(dict(cout=int(rng.choice([4, 9, 16])), k=3, pad=pad, acc=rng.random() < 0.2, **aff))
            h = h + 2 * pad - 2
        else:
            spec.append(dict(cout=int(rng.choice([4, 9, 16])), k=1, **aff))
        if h < 1:
            spec.pop()
            break
    head_k = h if rng.random() < 0.5 else 1
    spec.append(dict(kind="head", k=head_k, **(dict(gain=int(rng.integers(1, 3)), offset=1)
                                                 if rng.random() < 0.5 else {})))
    return spec


def test_random_networks_with_the_new_fields_are_exact_or_refused():
    """No silent wrong results: each random network compiles and matches golden on the reference
    simulator, or is refused with one line naming a layer."""
    outcomes = {"ran": 0, "refused": 0}
    images = np.random.default_rng(10).integers(0, 256, (3, 1, 5, 5), dtype=np.uint8)
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        first = "embed" if rng.random() < 0.8 else "raw_input"
        try:
            m = _network(rng, _random_spec(rng, 5), H=5, W=5, first=first,
                         q=int(rng.choice([1, 2, 8])), d=int(rng.integers(1, 3)))
        except ValueError:          # a combination the contract itself rejects (e.g. a conv on 8-bit codes' bound)
            continue
        try:
            _matches_golden(m, SMALL, images, maps=False)
            outcomes["ran"] += 1
        except CompileError as e:
            assert "\n" not in str(e) and str(e).startswith("layer ")
            outcomes["refused"] += 1
    assert outcomes["ran"] >= 10 and outcomes["refused"] >= 3, outcomes
