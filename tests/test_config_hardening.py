"""Settings and the config checks every config class shares: wrong types, numbers out of range, bad device
names and unreadable config files are one line naming the setting and where it came from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from calm_rag.config import Settings, check_device, load_settings, read_toml_table
from calm_rag.errors import CalmRagError


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_devices_torch_can_use(device: str) -> None:
    assert check_device(device) == device


@pytest.mark.parametrize("device", ["bogus", "", "cuda:", "cuda:x", "gpu", "CPU", "cpu ", "cuda:0\n", "cuda:99999"])
def test_other_device_names_are_refused(device: str) -> None:
    with pytest.raises(CalmRagError, match=r"unknown device .*; use auto, cpu, cuda, cuda:N or mps"):
        check_device(device)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calm-rag.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("samples = true", "samples must be an integer, got True"),
    ("samples = 0", "samples must be at least 1, got 0"),
    ("samples = 99999999999999999999", "samples must be at most 2147483647"),
    ("languages = 5", "languages must be a list of strings, got 5"),
    ('languages = ["en", 1]', "languages must be a list of strings"),
    ('languages = "en,xx"', "languages: unknown language code 'xx'"),
    ('device = ["a"]', "device must be a string, got ['a']"),
    ('device = "bogus"', "unknown device 'bogus'"),
    ("index_dir = 5", "index_dir must be a path, got 5"),
    ('generator = ""', "generator must not be empty"),
    ("samples = " + "9" * 5000, "cannot read config"),
    ("x = " + "[" * 3000 + "]" * 3000, "cannot read config"),
    ("nosuch = 1", "unknown settings ['nosuch']"),
])
def test_settings_file_values(tmp_path: Path, text: str, message: str) -> None:
    path = config(tmp_path, text)
    with pytest.raises(CalmRagError) as raised:
        load_settings(path)
    assert message in str(raised.value) and str(path) in str(raised.value)
    assert "\n" not in str(raised.value)


def test_settings_file_values_that_are_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALM_RAG_INDEX_DIR")  # the environment wins over the file
    settings = load_settings(config(tmp_path, 'languages = "en,DE"\nsamples = 2\ndevice = "cuda:1"\n'
                                              'index_dir = "~/idx"\n'))
    assert settings.languages == ("en", "de") and settings.samples == 2 and settings.device == "cuda:1"
    assert settings.index_dir == Path("~/idx").expanduser()


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("CALM_RAG_SAMPLES", "many", "CALM_RAG_SAMPLES: samples: invalid literal"),
    ("CALM_RAG_SAMPLES", "0", "CALM_RAG_SAMPLES: samples must be at least 1"),
    ("CALM_RAG_DEVICE", "bogus", "CALM_RAG_DEVICE: unknown device 'bogus'"),
    ("CALM_RAG_LANGUAGES", "en,xx", "CALM_RAG_LANGUAGES: languages: unknown language code 'xx'"),
    ("CALM_RAG_LANGUAGES", ",", "CALM_RAG_LANGUAGES: languages: no languages given"),
])
def test_environment_values(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(CalmRagError, match=message):
        load_settings()


def test_a_folder_as_calm_rag_config_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALM_RAG_CONFIG", str(tmp_path))
    with pytest.raises(CalmRagError, match=f"cannot read config {tmp_path}: not a file"):
        load_settings()


def test_a_fifo_as_calm_rag_config_is_refused_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "calm-rag.toml"
    os.mkfifo(fifo)
    monkeypatch.setenv("CALM_RAG_CONFIG", str(fifo))
    with pytest.raises(CalmRagError, match="not a file"):
        load_settings()


def test_a_missing_config_file_means_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALM_RAG_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("CALM_RAG_INDEX_DIR")
    monkeypatch.delenv("CALM_RAG_MODEL_CACHE")
    assert load_settings() == Settings()


def test_a_table_that_is_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(CalmRagError, match=r"train must be a table \(\[train\]\), got 5"):
        read_toml_table(config(tmp_path, "train = 5\n"), "train")


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(CalmRagError, match="samples must be an integer, got '3'"):
        Settings(samples="3")  # type: ignore[arg-type]
    with pytest.raises(CalmRagError, match="unknown device 'gpu'"):
        Settings(device="gpu")
