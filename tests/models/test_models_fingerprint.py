"""Content fingerprints: another model at the same path is another key; an unchanged model is the same key, cheaply."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from calm_rag.config import Settings
from calm_rag.errors import CalmRagError
from calm_rag.models import adapter_fingerprint, model_fingerprint, resolve_model
from calm_rag.models.pull import pull_model
from calm_rag.testing.tiny_lm import build_tiny_causal_lm
from tests.models.conftest import install_old_generator_bundle


def _fingerprint(path: Path, settings: Settings) -> str:
    return model_fingerprint(resolve_model(str(path), "generator", settings))


def test_another_model_at_the_same_path_gets_another_fingerprint(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "model"
    build_tiny_causal_lm(folder, seed=0)
    first = _fingerprint(folder, settings)
    assert _fingerprint(folder, settings) == first
    shutil.rmtree(folder)
    build_tiny_causal_lm(folder, seed=1)  # same architecture, same sizes, other weights
    assert _fingerprint(folder, settings) != first


def test_the_fingerprint_follows_content_not_location(tmp_path: Path, settings: Settings) -> None:
    folder = build_tiny_causal_lm(tmp_path / "a")
    copy = tmp_path / "b"
    shutil.copytree(folder, copy)
    assert _fingerprint(copy, settings) == _fingerprint(folder, settings)
    (copy / "README.md").write_text("notes")  # not part of the model
    assert _fingerprint(copy, settings) == _fingerprint(folder, settings)
    template = copy / "chat_template.jinja"
    template.write_text(template.read_text().replace("assistant", "ASSISTANT"))
    assert _fingerprint(copy, settings) != _fingerprint(folder, settings)


def test_a_bundle_is_named_by_its_pinned_weights(fake_generator, settings: Settings, tiny_gguf: Path) -> None:
    bundle = fake_generator()
    pulled = pull_model("tiny-generator", settings, downloader=bundle.index.download)
    assert model_fingerprint(resolve_model("tiny-generator", "generator", settings)) == bundle.spec.bundle.sha256
    shutil.rmtree(pulled.folder)
    install_old_generator_bundle(settings.model_cache, bundle.spec, tiny_gguf)  # the same weights, old layout
    assert model_fingerprint(resolve_model("tiny-generator", "generator", settings)) == bundle.spec.bundle.sha256


def test_a_gguf_file_is_fingerprinted_by_content(tmp_path: Path, tiny_gguf: Path, settings: Settings) -> None:
    from tests.models.conftest import write_tiny_gguf

    copy = tmp_path / tiny_gguf.name
    shutil.copy(tiny_gguf, copy)
    assert _fingerprint(copy, settings) == _fingerprint(tiny_gguf, settings)
    write_tiny_gguf(copy, seed=3)
    assert _fingerprint(copy, settings) != _fingerprint(tiny_gguf, settings)


def test_gigabytes_of_weights_are_not_read_in_full(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "huge"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    weights = folder / "model.safetensors"
    with weights.open("wb") as out:
        out.write(len(header).to_bytes(8, "little") + header)
        out.truncate(100 * 1024**3)  # 100 GB, sparse: a full read would take minutes
    started = time.monotonic()
    _fingerprint(folder, settings)
    assert time.monotonic() - started < 5


def test_adapter_fingerprint_follows_the_adapter_files(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 4}')
    (adapter / "adapter_model.safetensors").write_bytes(b"weights 1")
    first = adapter_fingerprint(adapter)
    (adapter / "calm-rag-lora.gguf").write_bytes(b"derived")  # what calm-rag writes there does not count
    assert adapter_fingerprint(adapter) == first
    (adapter / "adapter_model.safetensors").write_bytes(b"weights 2")
    assert adapter_fingerprint(adapter) != first
    with pytest.raises(CalmRagError, match="not a LoRA adapter folder"):
        adapter_fingerprint(tmp_path)
    with pytest.raises(CalmRagError, match="adapter .*missing not found"):
        adapter_fingerprint(tmp_path / "missing")
