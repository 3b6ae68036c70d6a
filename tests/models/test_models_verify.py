"""Bundles are verified by sha256 at load, cheaply: a same-size edit is refused, an unchanged file is not re-hashed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from calm_rag.config import Settings
from calm_rag.errors import CalmRagError
from calm_rag.generation.engines import EngineConfig, find_gguf, pin_engine
from calm_rag.models import registry, resolve_model, store, verify
from calm_rag.models.pull import pull_model
from tests.models.conftest import install_old_generator_bundle


def _same_size_edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text and len(old) == len(new)
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def embedder_bundle(fake_embedder, settings: Settings) -> Path:
    bundle = fake_embedder()
    return pull_model("tiny-embedder", settings, downloader=bundle.index.download).folder


def test_a_same_size_edit_of_the_embedders_prompt_config_is_refused(embedder_bundle: Path,
                                                                   settings: Settings) -> None:
    _same_size_edit(embedder_bundle / "config_sentence_transformers.json", "search result", "IGNORE ALL!!!")
    with pytest.raises(CalmRagError) as error:
        resolve_model("tiny-embedder", "embedder", settings)
    message = str(error.value)
    assert "config_sentence_transformers.json does not match its sha256" in message and "\n" not in message
    assert message.endswith("run `calm-rag models pull tiny-embedder --force`")


def test_a_same_size_edit_of_an_old_bundles_chat_template_is_refused(fake_generator, tiny_gguf: Path,
                                                                    settings: Settings) -> None:
    spec = fake_generator().spec
    folder = install_old_generator_bundle(settings.model_cache, spec, tiny_gguf)
    resolved = resolve_model("tiny-generator", "generator", settings)
    assert (resolved.source, resolved.path, resolved.gguf) == ("bundle", folder, None)  # old bundles still load
    _same_size_edit(folder / "chat_template.jinja", "assistant", "ASSISTANT")
    with pytest.raises(CalmRagError, match=r"chat_template\.jinja does not match its sha256.*"
                                           r"models pull tiny-generator --force`$"):
        resolve_model("tiny-generator", "generator", settings)


def test_an_edit_with_the_mtime_put_back_is_still_caught(embedder_bundle: Path, settings: Settings) -> None:
    config = embedder_bundle / "config_sentence_transformers.json"
    before = config.stat()
    _same_size_edit(config, "search result", "IGNORE ALL!!!")
    os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))  # what `touch -d` can do; ctime moves anyway
    with pytest.raises(CalmRagError, match="config_sentence_transformers.json does not match"):
        resolve_model("tiny-embedder", "embedder", settings)


def test_a_file_added_to_a_bundle_is_refused(embedder_bundle: Path, settings: Settings) -> None:
    (embedder_bundle / "special_tokens_map.json").write_text("{}")
    with pytest.raises(CalmRagError, match=r"special_tokens_map\.json is not part of the bundle"):
        resolve_model("tiny-embedder", "embedder", settings)


def test_a_bundle_folder_given_by_path_is_verified_too(embedder_bundle: Path, settings: Settings) -> None:
    assert resolve_model(str(embedder_bundle), "embedder", settings).source == "path"
    _same_size_edit(embedder_bundle / "config_sentence_transformers.json", "search result", "IGNORE ALL!!!")
    with pytest.raises(CalmRagError, match=rf"model folder {embedder_bundle} is damaged.*--force`$"):
        resolve_model(str(embedder_bundle), "embedder", settings)


def test_only_changed_files_are_hashed_again(embedder_bundle: Path, settings: Settings,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[str] = []
    real = verify.sha256_file

    def counting(path: Path, progress: object = None) -> str:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(verify, "sha256_file", counting)
    for _ in range(3):
        resolve_model("tiny-embedder", "embedder", settings)
    assert hashed == []  # `pull` stamped what it hashed
    (embedder_bundle / "config.json").touch()  # touched, not changed: hashed once, then stamped again
    resolve_model("tiny-embedder", "embedder", settings)
    resolve_model("tiny-embedder", "embedder", settings)
    assert hashed == ["config.json"]
    hashed.clear()
    spec = registry.get_spec("tiny-embedder")
    assert store.bundle_status(spec, settings.model_cache, deep=True).ok
    assert len(hashed) == 5  # deep: every listed file


def test_a_lost_stamp_costs_one_full_hash(embedder_bundle: Path, settings: Settings,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (embedder_bundle / verify.STAMP_NAME).unlink()
    hashed: list[str] = []
    real = verify.sha256_file
    monkeypatch.setattr(verify, "sha256_file", lambda path, progress=None: hashed.append(path.name) or real(path))
    resolve_model("tiny-embedder", "embedder", settings)
    resolve_model("tiny-embedder", "embedder", settings)
    assert len(hashed) == 5


def test_an_edited_gguf_is_caught_by_the_next_engine_resolution(fake_generator, settings: Settings,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An eval run resolves `--engine auto` once (`pin_engine`); nothing remembers that check past the run."""
    bundle = fake_generator()
    folder = pull_model("tiny-generator", settings, downloader=bundle.index.download).folder
    checked: list[Path] = []
    real = verify.verify_files
    monkeypatch.setattr(verify, "verify_files", lambda folder, files, **options: checked.append(folder)
                        or real(folder, files, **options))
    pinned = pin_engine("tiny-generator", EngineConfig())
    assert pinned.engine == "llama.cpp" and checked == [folder]
    assert pin_engine("tiny-generator", pinned) is pinned and checked == [folder]  # pinned: not looked at again
    gguf = folder / "model.gguf"
    data = bytearray(gguf.read_bytes())
    data[-1] ^= 0xFF
    gguf.write_bytes(bytes(data))
    assert pin_engine("tiny-generator", EngineConfig()).engine == "transformers"  # the damaged bundle is not run
    with pytest.raises(CalmRagError, match=r"model\.gguf does not match its sha256.*models pull tiny-generator"):
        find_gguf("tiny-generator")
