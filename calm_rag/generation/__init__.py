"""The model-facing side: engines behind one `Generator` protocol, batched sampling, direct-mode label
distributions, self-translation and open-question sampling.

Imports are lazy (as in TRL's `_import_structure`): `calm_rag.generation.GenerationConfig` does not pull
in torch; the transformers engine does when it is first named.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ENGINES": "base",
    "GenerationConfig": "base",
    "Generator": "base",
    "check_engine": "base",
    "EngineConfig": "engines",
    "load_generator": "engines",
    "TransformersGenerator": "transformers_engine",
    "SamplingConfig": "sampling",
    "sample_choice_responses": "sampling",
    "Translator": "translation",
}

if TYPE_CHECKING:
    from calm_rag.generation.base import ENGINES, GenerationConfig, Generator, check_engine
    from calm_rag.generation.engines import EngineConfig, load_generator
    from calm_rag.generation.sampling import SamplingConfig, sample_choice_responses
    from calm_rag.generation.transformers_engine import TransformersGenerator
    from calm_rag.generation.translation import Translator

__all__ = ["ENGINES", "EngineConfig", "GenerationConfig", "Generator", "SamplingConfig", "Translator",
           "TransformersGenerator", "check_engine", "load_generator", "sample_choice_responses"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"calm_rag.generation.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'calm_rag.generation' has no attribute {name!r}")
