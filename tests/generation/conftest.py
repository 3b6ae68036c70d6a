"""Engine fixtures: the tiny Qwen2 as an HF folder and as an F32 GGUF with the same weights, and a real
llama.cpp server (xllamacpp, in this process, 127.0.0.1) on that GGUF, started once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from calm_rag.generation.llamacpp_engine import LlamaCppOptions, LlamaCppServer

SERVED_NAME = "tiny-qwen2"
SLOTS = 4


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(HF folder, GGUF file) of one tiny random Qwen2."""
    from calm_rag.testing.tiny_gguf import build_tiny_gguf

    return build_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf"))


@pytest.fixture(scope="session")
def llamacpp_server(tiny_pair: tuple[Path, Path]) -> Iterator[LlamaCppServer]:
    """llama.cpp's server on the tiny GGUF with 4 slots."""
    with LlamaCppServer(tiny_pair[1], alias=SERVED_NAME, options=LlamaCppOptions(slots=SLOTS, threads=1)) as server:
        yield server


@pytest.fixture(scope="session")
def tiny_transformers(tiny_pair: tuple[Path, Path]):
    from calm_rag.generation.transformers_engine import TransformersGenerator

    return TransformersGenerator.load(str(tiny_pair[0]), device="cpu")
