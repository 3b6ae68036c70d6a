"""The embedder wrapper: model prompts, normalisation, length-sorted batching, bf16, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calm_rag.errors import CalmRagError
from calm_rag.indexes.embedder import Embedder, EmbedderConfig, ResolvedEmbedder

TEXTS = ["short", "a much longer sentence about the capital of France and its museums", "巴黎是法国的首都。",
         "القاهرة هي عاصمة مصر.", "medium length text here"]


def test_uses_the_models_prompts_and_records_them(embedder: Embedder) -> None:
    assert embedder.prompts == {"query": "query: ", "document": "passage: "}
    description = embedder.describe()
    assert description["dimension"] == 32 and description["normalized"] is True
    assert description["prompts"] == {"query": "query: ", "document": "passage: "}
    query, document = embedder.embed_queries(["Paris"]), embedder.embed_documents(["Paris"])
    assert not np.allclose(query, document)
    raw = embedder.model.encode(["query: Paris"], convert_to_numpy=True)
    assert np.allclose(query[0], raw[0] / np.linalg.norm(raw[0]), atol=1e-5)


def test_vectors_are_unit_length_float32_in_input_order(embedder: Embedder) -> None:
    batch = embedder.embed_documents(TEXTS)
    assert batch.dtype == np.float32 and batch.shape == (len(TEXTS), 32)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    one_by_one = np.vstack([embedder.embed_documents([text]) for text in TEXTS])
    assert np.allclose(batch, one_by_one, atol=1e-4)
    assert embedder.embed_queries([]).shape == (0, 32)


def test_progress_bar_path_gives_same_vectors(embedder: Embedder) -> None:
    small_batches = Embedder(embedder.model, embedder.resolved, EmbedderConfig(batch_size=2))  # slices of 16 texts
    texts = TEXTS * 8
    assert np.allclose(small_batches.embed_documents(texts, progress=True), embedder.embed_documents(texts),
                       atol=1e-5)


def test_bf16_option(tiny_embedder_path: Path) -> None:
    bf16 = Embedder.load(str(tiny_embedder_path), EmbedderConfig(dtype="bfloat16", batch_size=2))
    vectors = bf16.embed_documents(TEXTS)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert bf16.describe()["dtype"] == "bfloat16"


def test_e5_models_get_query_and_passage_prompts(embedder: Embedder) -> None:
    class NoPrompts:
        prompts: dict[str, str] = {}

        def get_embedding_dimension(self) -> int:
            return 32

    e5 = Embedder(NoPrompts(), ResolvedEmbedder(name="multilingual-e5-small", path=Path("."),
                                                hub_id="intfloat/multilingual-e5-small"), EmbedderConfig())
    assert e5.prompts == {"query": "query: ", "document": "passage: "}
    other = Embedder(NoPrompts(), ResolvedEmbedder(name="some-model", path=Path(".")), EmbedderConfig())
    assert other.prompts == {"query": "", "document": ""}


def test_load_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CalmRagError, match="does not exist|unknown model"):
        Embedder.load(str(tmp_path / "no-such-model"))
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(CalmRagError, match="cannot load embedder"):
        Embedder.load(str(tmp_path / "empty-model"))


def test_auto_device_keeps_int8_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CUDA machine 'auto' picks the GPU, except for int8, which only the CPU runs."""
    import torch

    from calm_rag.indexes.embedder import _pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _pick_device("auto", "int8") == "cpu"
    assert _pick_device("auto", "bfloat16") == "cuda" and _pick_device(None, "float32") == "cuda"
    assert _pick_device("cpu", "float32") == "cpu"


def test_int8_dynamic_quantisation_stays_close(tiny_embedder_path: Path, embedder: Embedder) -> None:
    int8 = Embedder.load(str(tiny_embedder_path), EmbedderConfig(dtype="int8"))
    vectors, reference = int8.embed_documents(TEXTS), embedder.embed_documents(TEXTS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert float(np.min(np.sum(vectors * reference, axis=1))) > 0.9


def test_embedders_load_without_hub_kernels(tiny_embedder_path: Path) -> None:
    """As for the generators: transformers would switch Hub kernels on and, on CUDA, fetch layer code."""
    loaded = Embedder.load(str(tiny_embedder_path), EmbedderConfig(device="cpu"))
    assert loaded.model[0].auto_model.use_kernels is False
