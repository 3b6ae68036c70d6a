"""Shared fixtures: tiny random models built locally, never downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_lm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Qwen2-shaped causal LM (a few hundred KB) with a chat template."""
    from calm_rag.testing.tiny_lm import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def tiny_generator(tiny_lm_path: Path):
    from calm_rag.generation.transformers_engine import TransformersGenerator

    return TransformersGenerator.load(str(tiny_lm_path), device="cpu")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own index and model-cache folders; no user config leaks in."""
    monkeypatch.setenv("CALM_RAG_INDEX_DIR", str(tmp_path / "indexes"))
    monkeypatch.setenv("CALM_RAG_MODEL_CACHE", str(tmp_path / "model-cache"))
    monkeypatch.setenv("CALM_RAG_CONFIG", str(tmp_path / "no-such-calm-rag.toml"))


@pytest.fixture(scope="session")
def tiny_embedder_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 32-dim sentence-transformers model (2-layer BERT, multilingual WordPiece vocab) with
    e5-style `query`/`document` prompts and no Normalize module; see calm_rag/testing/tiny_embedder.py."""
    from calm_rag.testing.tiny_embedder import build_tiny_embedder

    return build_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder"))
