"""The float32 copy of a GGUF generator: made on first use (not by pull), once, atomically, verified like the rest."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from calm_rag.config import Settings
from calm_rag.errors import CalmRagError
from calm_rag.models import (
    convert,
    ensure_transformers_weights,
    resolve_model,
    store,
    transformers_weights,
    verify,
)
from calm_rag.models.pull import pull_model
from tests.models.conftest import install_old_generator_bundle, write_tiny_gguf


@pytest.fixture
def generator_bundle(fake_generator, settings: Settings) -> Path:
    bundle = fake_generator()
    return pull_model("tiny-generator", settings, downloader=bundle.index.download).folder


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Counts real conversions (each still runs)."""
    calls: list[Path] = []
    real = convert.convert_gguf

    def counting(gguf_path: Path, out_dir: Path, step=None):
        calls.append(gguf_path)
        return real(gguf_path, out_dir, step)

    monkeypatch.setattr(convert, "convert_gguf", counting)
    return calls


def test_first_use_converts_once_into_the_bundle_with_progress(generator_bundle: Path, settings: Settings,
                                                               conversions: list[Path]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    reports: list[tuple[str, int, int]] = []
    resolved = resolve_model("tiny-generator", "generator", settings)
    target = ensure_transformers_weights(resolved, progress=lambda *report: reports.append(report))
    assert target == generator_bundle / "transformers" and conversions == [generator_bundle / "model.gguf"]
    stages = {stage: (done, total) for stage, done, total in reports}
    convert_stage = "tiny-generator: converting the GGUF to float32 safetensors (first use only)"
    assert stages[convert_stage] == (3, 3) and [r[1] for r in reports if r[0] == convert_stage] == [0, 1, 2, 3]
    hashed, total = stages["tiny-generator: hashing the float32 copy"]
    assert hashed == total > 0
    manifest = store.read_manifest(generator_bundle)
    assert manifest is not None and manifest["transformers"]["folder"] == "transformers"
    assert "transformers/model.safetensors" in manifest["transformers"]["files"]
    assert "transformers/model.safetensors" not in manifest["files"]  # the pulled files stay as pulled
    assert "quantization_config" not in json.loads((target / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32)
    assert AutoTokenizer.from_pretrained(target).chat_template and model.config.model_type == "qwen2"

    again = resolve_model("tiny-generator", "generator", settings)
    assert again.gguf == generator_bundle / "model.gguf"
    assert ensure_transformers_weights(again) == target and len(conversions) == 1


def test_resolving_after_conversion_hashes_nothing(generator_bundle: Path, settings: Settings,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_transformers_weights(resolve_model("tiny-generator", "generator", settings))
    monkeypatch.setattr(verify, "sha256_file", lambda *a, **k: pytest.fail("re-hashed an unchanged file"))
    ensure_transformers_weights(resolve_model("tiny-generator", "generator", settings))


def test_an_interrupted_conversion_leaves_nothing_loadable(generator_bundle: Path, settings: Settings,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    before = store.read_manifest(generator_bundle)

    def killed(gguf_path: Path, out_dir: Path, step=None) -> None:
        out_dir.mkdir(parents=True)
        (out_dir / "config.json").write_text("{}")  # half-written
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(convert, "convert_gguf", killed)
        with pytest.raises(KeyboardInterrupt):
            ensure_transformers_weights(resolve_model("tiny-generator", "generator", settings))
    assert sorted(path.name for path in generator_bundle.iterdir()) == [
        "calm-rag-manifest.json", "calm-rag-verified.json", "model.gguf"]
    assert store.read_manifest(generator_bundle) == before
    target = ensure_transformers_weights(resolve_model("tiny-generator", "generator", settings))
    assert (target / "model.safetensors").is_file()


def test_a_copy_renamed_into_place_but_not_recorded_is_made_again(generator_bundle: Path, settings: Settings,
                                                                  conversions: list[Path]) -> None:
    stray = generator_bundle / "transformers"  # killed between the rename and the manifest write
    stray.mkdir()
    (stray / "config.json").write_text('{"model_type": "bogus"}')
    (generator_bundle / ".transformers-build-99999").mkdir()  # and a build of an earlier kill
    resolved = resolve_model("tiny-generator", "generator", settings)  # neither counts, neither blocks
    target = ensure_transformers_weights(resolved)
    assert len(conversions) == 1 and json.loads((target / "config.json").read_text())["model_type"] == "qwen2"
    assert not (generator_bundle / ".transformers-build-99999").exists()


def test_a_changed_float32_copy_is_refused_and_deleting_it_rebuilds_it(generator_bundle: Path, settings: Settings,
                                                                       conversions: list[Path]) -> None:
    target = ensure_transformers_weights(resolve_model("tiny-generator", "generator", settings))
    template = target / "chat_template.jinja"
    template.write_text(template.read_text().replace("assistant", "ASSISTANT"))
    with pytest.raises(CalmRagError, match=r"transformers/chat_template\.jinja does not match its sha256"):
        resolve_model("tiny-generator", "generator", settings)
    shutil.rmtree(target)  # what the message after a re-pull, or a user freeing disk space, does
    resolved = resolve_model("tiny-generator", "generator", settings)
    assert ensure_transformers_weights(resolved) == target and len(conversions) == 2
    assert "ASSISTANT" not in template.read_text()


def test_old_bundles_load_as_they_are(fake_generator, tiny_gguf: Path, settings: Settings,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder = install_old_generator_bundle(settings.model_cache, fake_generator().spec, tiny_gguf)
    monkeypatch.setattr(convert, "convert_gguf", lambda *a, **k: pytest.fail("converted an old bundle again"))
    assert ensure_transformers_weights(resolve_model("tiny-generator", "generator", settings)) == folder


def test_a_gguf_given_by_path_is_converted_into_the_model_cache(tmp_path: Path, tiny_gguf: Path,
                                                                settings: Settings, conversions: list[Path]) -> None:
    gguf = tmp_path / "mine.gguf"
    shutil.copy(tiny_gguf, gguf)
    target = ensure_transformers_weights(resolve_model(str(gguf), "generator", settings))
    assert target.parent == settings.model_cache / "converted" and (target / "model.safetensors").is_file()
    manifest = store.read_manifest(target)
    assert manifest is not None and manifest["source"]["path"] == str(gguf)
    assert manifest["revision"] == verify.sha256_file(gguf)
    assert resolve_model(str(target), "generator", settings).source == "path"  # verified like a bundle
    gguf.touch()  # same bytes: hashed, not converted
    assert ensure_transformers_weights(resolve_model(str(gguf), "generator", settings)) == target
    assert len(conversions) == 1
    write_tiny_gguf(gguf, seed=1)  # other weights at the same path: converted again
    assert ensure_transformers_weights(resolve_model(str(gguf), "generator", settings)) == target
    assert len(conversions) == 2 and store.read_manifest(target)["revision"] == verify.sha256_file(gguf)


def test_two_processes_wanting_the_copy_convert_once(generator_bundle: Path, settings: Settings,
                                                    conversions: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    slow = convert.convert_gguf

    def slower(*args, **kwargs):
        time.sleep(0.5)
        return slow(*args, **kwargs)

    monkeypatch.setattr(convert, "convert_gguf", slower)
    resolved = resolve_model("tiny-generator", "generator", settings)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_transformers_weights(resolved)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [generator_bundle / "transformers"] * 2 and len(conversions) == 1


def test_not_enough_disk_for_the_copy_is_one_clear_line(generator_bundle: Path, settings: Settings,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transformers_weights.shutil, "disk_usage", lambda path: SimpleNamespace(free=10))
    with pytest.raises(CalmRagError, match="not enough free disk space .* use the llama.cpp engine"):
        ensure_transformers_weights(resolve_model("tiny-generator", "generator", settings))
    assert not (generator_bundle / "transformers").exists()


def test_the_transformers_engine_and_training_load_a_gguf_only_bundle(generator_bundle: Path,
                                                                     settings: Settings) -> None:
    from calm_rag.generation.transformers_engine import TransformersGenerator
    from calm_rag.training.modeling import load_model, resolve

    generator = TransformersGenerator.load("tiny-generator", device="cpu")
    assert generator.has_chat_template and generator.name == "calm-rag-tests/tiny-generator"
    loaded = load_model(resolve("tiny-generator"), device="cpu")
    assert loaded.base_id == "calm-rag-tests/tiny-generator" and (generator_bundle / "transformers").is_dir()


def test_models_list_counts_the_float32_copy_once_it_exists(generator_bundle: Path, settings: Settings) -> None:
    from calm_rag.models import list_models

    def size() -> int | None:
        return next(row.size_bytes for row in list_models(settings) if row.name == "tiny-generator")

    gguf_only = size()
    assert gguf_only == (generator_bundle / "model.gguf").stat().st_size
    target = ensure_transformers_weights(resolve_model("tiny-generator", "generator", settings))
    assert size() == gguf_only + sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
    shutil.rmtree(target)  # deleting the copy gives the space back and leaves a good bundle
    assert size() == gguf_only
