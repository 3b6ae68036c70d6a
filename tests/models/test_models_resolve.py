"""resolve_model: explicit path > HF cache > (live hub) > offline bundle > one clear error."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from calm_rag.config import Settings
from calm_rag.errors import CalmRagError
from calm_rag.models import ResolvedModel, hub, registry, resolve_model, store
from tests.models.conftest import install_fake_bundle

GEMMA = "embeddinggemma-300m"
QWEN = "qwen2.5-coder-0.5b-instruct"


def test_an_existing_folder_is_used_as_is(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    resolved = resolve_model(str(folder), "generator", settings)
    assert resolved == ResolvedModel(path=folder.resolve(), name=str(folder), hub_id=None, source="path",
                                     revision=None)


def test_a_local_folder_named_like_a_short_name_does_not_replace_the_model(
        tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry.get_spec(GEMMA)
    bundle = install_fake_bundle(settings.model_cache, spec)
    monkeypatch.chdir(tmp_path)
    (tmp_path / GEMMA).mkdir()  # a folder in the working directory named like the short name
    (tmp_path / "google" / "embeddinggemma-300m").mkdir(parents=True)  # ... and like the hub id
    for name in (GEMMA, spec.hub_id):
        resolved = resolve_model(name, "embedder", settings)
        assert (resolved.source, resolved.path) == ("bundle", bundle)
    local = resolve_model(f"./{GEMMA}", "embedder", settings)
    assert local.source == "path" and local.path == (tmp_path / GEMMA).resolve()
    assert resolve_model(str(tmp_path / GEMMA), "embedder", settings).path == (tmp_path / GEMMA).resolve()


def test_an_unprovisioned_short_name_points_at_the_local_folder_syntax(
        tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / QWEN).mkdir()
    with pytest.raises(CalmRagError, match=rf"models pull {QWEN}` \(to use the folder {QWEN} here instead, pass "
                                           rf"\./{QWEN}\)$"):
        resolve_model(QWEN, "generator", settings)


def test_other_relative_folders_still_resolve_without_dot_slash(tmp_path: Path, settings: Settings,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    assert resolve_model("runs/mine", "generator", settings).source == "path"


def test_a_gguf_file_or_a_folder_with_one_resolves_with_its_gguf(tmp_path: Path, settings: Settings,
                                                               tiny_gguf: Path) -> None:
    resolved = resolve_model(str(tiny_gguf), "generator", settings)
    assert (resolved.path, resolved.gguf, resolved.source) == (tiny_gguf, tiny_gguf, "path")
    assert resolve_model(str(tiny_gguf.parent), "generator", settings).gguf == tiny_gguf
    with pytest.raises(CalmRagError, match="is a file; an embedder must be a model folder"):
        resolve_model(str(tiny_gguf), "embedder", settings)
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.gguf").write_bytes(b"x")
    (two / "b.gguf").write_bytes(b"x")
    assert resolve_model(str(two), "generator", settings).gguf is None  # ambiguous: the caller names the file


def test_a_bundle_folder_given_as_path_reports_its_hub_id(settings: Settings) -> None:
    folder = install_fake_bundle(settings.model_cache, registry.get_spec(GEMMA))
    resolved = resolve_model(str(folder), "embedder", settings)
    assert resolved.source == "path" and resolved.hub_id == "google/embeddinggemma-300m"


def test_hf_cache_is_preferred_to_the_bundle(settings: Settings, hf_cache) -> None:
    spec = registry.get_spec(GEMMA)
    snapshot = hf_cache(spec.hub_id, commit="c" * 40)
    install_fake_bundle(settings.model_cache, spec)
    resolved = resolve_model(GEMMA, "embedder", settings)
    assert resolved == ResolvedModel(path=snapshot, name=GEMMA, hub_id=spec.hub_id, source="hf-cache",
                                     revision="c" * 40)


def test_hub_id_resolves_from_hf_cache_even_when_unknown(settings: Settings, hf_cache) -> None:
    snapshot = hf_cache("someone/tiny-llm")
    resolved = resolve_model("someone/tiny-llm", "generator", settings)
    assert resolved.source == "hf-cache" and resolved.path == snapshot and resolved.hub_id == "someone/tiny-llm"


def test_an_incomplete_hf_snapshot_is_skipped(settings: Settings, hf_cache) -> None:
    spec = registry.get_spec(QWEN)
    hf_cache(spec.hub_id, files={"README.md": "only a readme"})
    folder = install_fake_bundle(settings.model_cache, spec)
    assert resolve_model(QWEN, "generator", settings).path == folder


def test_short_name_and_hub_id_resolve_to_the_bundle(settings: Settings) -> None:
    spec = registry.get_spec(QWEN)
    folder = install_fake_bundle(settings.model_cache, spec)
    for name in (QWEN, spec.hub_id, spec.hub_id.lower()):
        resolved = resolve_model(name, "generator", settings)
        assert resolved == ResolvedModel(path=folder, name=name, hub_id=spec.hub_id, source="bundle",
                                         revision=spec.bundle.sha256)


def test_settings_default_to_the_environment(settings: Settings) -> None:
    folder = install_fake_bundle(settings.model_cache, registry.get_spec(QWEN))
    assert resolve_model(QWEN, "generator").path == folder  # CALM_RAG_MODEL_CACHE set by tests/conftest.py


def test_missing_model_says_what_to_run(settings: Settings) -> None:
    with pytest.raises(CalmRagError) as error:
        resolve_model(QWEN, "generator", settings)
    message = str(error.value)
    assert "`calm-rag models pull qwen2.5-coder-0.5b-instruct`" in message and "\n" not in message


@pytest.mark.parametrize("damage", ["incomplete", "missing-file", "wrong-size", "other-weights", "no-manifest"])
def test_a_damaged_bundle_is_not_loaded(settings: Settings, damage: str) -> None:
    spec = registry.get_spec(QWEN)
    folder = install_fake_bundle(settings.model_cache, spec, complete=damage != "incomplete")
    manifest = store.read_manifest(folder)
    assert manifest is not None
    if damage == "missing-file":
        (folder / "config.json").unlink()
    elif damage == "wrong-size":
        (folder / "config.json").write_text("{ }")
    elif damage == "other-weights":
        manifest["revision"] = "0" * 64
        store.write_manifest(folder, manifest)
    elif damage == "no-manifest":
        (folder / store.MANIFEST_NAME).unlink()
    with pytest.raises(CalmRagError, match="damaged .*--force"):
        resolve_model(QWEN, "generator", settings)


def test_unknown_names_and_missing_paths_are_clear_errors(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(CalmRagError, match="unknown model 'qwen-9000'.*known short name"):
        resolve_model("qwen-9000", "generator", settings)
    with pytest.raises(CalmRagError, match="model folder ./no/such/model does not exist"):
        resolve_model("./no/such/model", "generator", settings)
    with pytest.raises(CalmRagError, match="model folder .*model.gguf does not exist"):
        resolve_model(str(tmp_path / "model.gguf"), "generator", settings)
    file = tmp_path / "weights.safetensors"
    file.write_text("x")
    with pytest.raises(CalmRagError, match="is a file"):
        resolve_model(str(file), "generator", settings)
    with pytest.raises(CalmRagError, match="no generator model given"):
        resolve_model("  ", "generator", settings)


def test_unknown_hub_id_offline_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(CalmRagError, match="someone/model is not in the Hugging Face cache.*HF_HUB_OFFLINE"):
        resolve_model("someone/model", "generator", settings)


def test_roles_are_checked(settings: Settings) -> None:
    with pytest.raises(CalmRagError, match="embeddinggemma-300m is an embedder, not a generator"):
        resolve_model(GEMMA, "generator", settings)
    with pytest.raises(CalmRagError, match="role must be one of generator, embedder"):
        resolve_model(GEMMA, "reranker", settings)


def test_live_hub_is_never_tried_when_offline(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "hub_reachable", lambda: pytest.fail("probed the hub while HF_HUB_OFFLINE=1"))
    with pytest.raises(CalmRagError, match="models pull"):
        resolve_model(QWEN, "generator", settings)


def test_unreachable_hub_fails_fast_and_falls_back_to_the_bundle(settings: Settings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    probes: list[tuple[str, int]] = []

    def dns_failure(address: tuple[str, int], timeout: float) -> None:
        probes.append(address)
        raise OSError("Name or service not known")

    monkeypatch.setattr(hub.socket, "create_connection", dns_failure)
    folder = install_fake_bundle(settings.model_cache, registry.get_spec(QWEN))
    started = time.monotonic()
    for _ in range(3):
        assert resolve_model(QWEN, "generator", settings).path == folder
    assert time.monotonic() - started < 2
    assert probes == [("huggingface.co", 443)]  # probed once per process


def test_reachable_hub_downloads_into_the_hf_cache(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                   _offline_hub: Path) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    calls: list[dict[str, object]] = []

    def fake_snapshot_download(repo_id: str, **kwargs: object) -> str:
        calls.append({"repo_id": repo_id, **kwargs})
        if kwargs.get("local_files_only"):
            raise OSError("not cached")
        snapshot = _offline_hub / "downloaded" / ("d" * 40)
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text(json.dumps({}))
        (snapshot / "model.safetensors").write_text("w")
        return str(snapshot)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    resolved = resolve_model(QWEN, "generator", settings)
    assert resolved.source == "hf-cache" and resolved.revision == "d" * 40
    assert calls[-1]["repo_id"] == "Qwen/Qwen2.5-Coder-0.5B-Instruct" and calls[-1]["etag_timeout"] == 5
