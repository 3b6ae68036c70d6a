"""`EvalModel.load`, the model loading of both harnesses: `--engine auto` is resolved once per run, so a
bundle's verified-stamp is looked at once rather than by the base check, the cache key and the load each."""

from __future__ import annotations

from pathlib import Path

import pytest

from calm_rag.evaluation.config import EvalConfig
from calm_rag.evaluation.harness import EvalModel
from calm_rag.generation import engines
from calm_rag.generation.engines import EngineConfig


@pytest.mark.parametrize("compare_base", [False, True])
def test_auto_is_resolved_once_per_run(tiny_model: Path, tiny_adapter: Path, monkeypatch: pytest.MonkeyPatch,
                                       compare_base: bool) -> None:
    looked: list[str] = []
    real = engines._bundle_with_gguf
    monkeypatch.setattr(engines, "_bundle_with_gguf", lambda model: looked.append(model) or real(model))
    under_test = EvalModel.load(str(tiny_model), tiny_adapter, EvalConfig(languages=("en", "de")), "data-hash",
                                compare_base=compare_base, engine=EngineConfig())
    under_test.generator.close()
    assert looked == [str(tiny_model)]
    assert under_test.cache_key["model"]["engine"] == "transformers"
