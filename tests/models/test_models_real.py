"""The real provisioned models (`calm-rag models pull`); skipped when they are absent.

Run with `pytest -m slow tests/models`. The autouse fixtures isolate the model cache, so these
tests look at the real one (CALM_RAG_MODEL_CACHE of the calling shell, else the default).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from calm_rag.config import Settings
from calm_rag.errors import CalmRagError
from calm_rag.models import (
    ResolvedModel,
    ensure_transformers_weights,
    resolve_model,
    store,
)

pytestmark = pytest.mark.slow
_REAL_CACHE = Path(os.environ.get("CALM_RAG_MODEL_CACHE") or Settings().model_cache).expanduser()


def _real(name: str, role: str) -> ResolvedModel:
    try:
        return resolve_model(name, role, Settings(model_cache=_REAL_CACHE))
    except CalmRagError as error:
        pytest.skip(f"{name} is not provisioned: {error}")


@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"])
def test_generator_loads_fast_and_answers_in_german(name: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = _real(name, "generator")
    assert resolved.source in ("bundle", "hf-cache")
    folder = ensure_transformers_weights(resolved, settings=Settings(model_cache=_REAL_CACHE))  # first run: converts
    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert time.monotonic() - started < 30
    assert tokenizer.chat_template and getattr(model.config, "quantization_config", None) is None
    messages = [{"role": "user", "content": "Was ist die Hauptstadt von Deutschland? Antworte in einem Satz."}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Berlin" in answer


def test_embedder_matches_translations() -> None:
    from sentence_transformers import SentenceTransformer

    resolved = _real("embeddinggemma-300m", "embedder")
    model = SentenceTransformer(str(resolved.path), device="cpu")
    vectors = model.encode(["Die Katze schläft auf dem Sofa.", "The cat is sleeping on the sofa.",
                            "Quarterly tax filings are due in April."], normalize_embeddings=True)
    assert float(vectors[0] @ vectors[1]) > 0.85
    assert float(vectors[0] @ vectors[2]) < 0.5


@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct", "embeddinggemma-300m"])
def test_bundle_manifest_is_complete_and_pinned(name: str) -> None:
    from calm_rag.models.registry import get_spec

    spec = get_spec(name)
    check = store.bundle_status(spec, _REAL_CACHE)
    if not check.ok:
        pytest.skip(f"{name} bundle not provisioned: {check.reason}")
    assert check.manifest is not None and check.manifest["revision"] == spec.bundle.sha256
    assert check.manifest["complete"] is True
    kept = check.manifest.get("gguf")  # format 2 keeps the generator's GGUF; format 1 converted it at pull
    assert check.manifest["artifact"]["kept"] is bool(kept)
    if kept:
        assert check.manifest["files"][kept]["sha256"] == spec.bundle.sha256
