"""The configuration object and the descriptor format that every other part builds on."""

import pytest
from hypothesis import given, strategies as st

from contract import isa
from contract.config import AccelConfig, CONFIGS


def test_named_configs_are_valid():
    for name, cfg in CONFIGS.items():
        assert cfg.p_o % cfg.p_i == 0, name


@pytest.mark.parametrize("changes, message", [
    (dict(p_i=12), "p_i must be a multiple of 8"),
    (dict(p_o=48, p_i=32), "must be a multiple of p_i"),
    (dict(mem_words=3000), "power of two"),
    (dict(n_code_banks=1), "n_code_banks"),
    (dict(a_planes=0), "a_planes must be positive"),
])
def test_config_rejects_bad_parameters(changes, message):
    with pytest.raises(ValueError, match=message):
        AccelConfig(**changes)


def test_config_rejects_non_integers():
    with pytest.raises(TypeError, match="p_o"):
        AccelConfig(p_o=32.0)


@given(st.data())
def test_descriptor_round_trip(data):
    fields = {}
    for f in isa.FIELDS:
        if data.draw(st.booleans()):
            fields[f.name] = data.draw(st.integers(0, (1 << f.width) - 1))
    words = isa.pack(**fields)
    assert len(words) == isa.DESCRIPTOR_WORDS
    assert all(0 <= w < 2**32 for w in words)
    out = isa.unpack(words)
    for f in isa.FIELDS:
        assert out[f.name] == fields.get(f.name, 0)


def test_descriptor_rejects_overflow_and_unknown_fields():
    with pytest.raises(isa.DescriptorError, match="k=16 does not fit"):
        isa.pack(k=16)
    with pytest.raises(isa.DescriptorError, match="unknown descriptor field"):
        isa.pack(kernel=3)


def test_isa_doc_is_current():
    from pathlib import Path
    doc = Path(__file__).resolve().parent.parent / "docs" / "ISA.md"
    assert doc.read_text() == isa.markdown(), "run `python -m contract.isa` to regenerate docs/ISA.md"
