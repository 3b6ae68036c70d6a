"""The engines through the commands: `eval` and `train`'s sampling on llama.cpp (the real server, in process)
agree with transformers on the same tiny weights, and `auto` picks llama.cpp when the model has a GGUF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.generation.engines import EngineConfig, resolve_engine
from calm_rag.testing.tiny_gguf import convert_qwen2_to_gguf
from calm_rag.testing.tiny_lm import build_tiny_causal_lm
from tests.training.conftest import FAST_RECIPE, write_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def model_with_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder with the tiny HF model and the same weights as a GGUF: transformers trains it, llama.cpp
    samples it."""
    folder = build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-both"))
    convert_qwen2_to_gguf(folder, folder / "model.gguf")
    return folder


def test_auto_picks_llamacpp_only_where_there_is_a_gguf(model_with_gguf: Path, tiny_lm_path: Path) -> None:
    assert resolve_engine(str(model_with_gguf), EngineConfig()) == "llama.cpp"
    assert resolve_engine(str(tiny_lm_path), EngineConfig()) == "transformers"
    assert resolve_engine(str(model_with_gguf), EngineConfig(engine="transformers")) == "transformers"


def test_engine_config_from_settings_fills_what_the_caller_leaves_open(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no calm-rag.toml here
    monkeypatch.setenv("CALM_RAG_ENGINE", "transformers")
    monkeypatch.setenv("CALM_RAG_DEVICE", "cpu")
    assert (EngineConfig.from_settings().engine, EngineConfig.from_settings().device) == ("transformers", "cpu")
    chosen = EngineConfig.from_settings("llama.cpp", slots=3)
    assert (chosen.engine, chosen.slots) == ("llama.cpp", 3)


def eval_json(data: Path, model: Path, engine: str, cache: Path) -> dict:
    result = runner.invoke(app, ["eval", str(data), "--split", "train", "--languages", "en,de,zh", "--model",
                                 str(model), "--engine", engine, "--cache-dir", str(cache), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_eval_on_llamacpp_matches_transformers_and_caches_apart(model_with_gguf: Path, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", questions=5)
    cache = tmp_path / "cache"
    on_llamacpp = eval_json(data, model_with_gguf, "llama.cpp", cache)
    on_transformers = eval_json(data, model_with_gguf, "transformers", cache)
    assert on_llamacpp["accuracy_by_language"] == on_transformers["accuracy_by_language"]
    assert on_llamacpp["letters"] == on_transformers["letters"]  # same weights, same direct-mode argmax
    assert len(list(cache.glob("*.jsonl"))) == 2  # the engine is part of the cache key


def test_train_samples_on_llamacpp_with_the_previous_rounds_adapter(model_with_gguf: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "fast.toml"
    # a large step: the pairs are letter-balanced on both sides, so no shared letter bias moves every prompt,
    # and at the recipe's 1e-3 the adapter moved the scores by about as much as the 1e-3 threshold below
    recipe.write_text(FAST_RECIPE.replace("learning_rate = 1e-3", "learning_rate = 2e-2"), encoding="utf-8")
    data = write_dataset(tmp_path / "data")
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(data), "--split", "train", "--mode", "direct", "--samples", "2",
                                 "--min-margin", "0", "--rounds", "2", "--engine", "llama.cpp", "--model",
                                 str(model_with_gguf), "--config", str(recipe), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["engine"] == "llama.cpp"
    rounds = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["rounds"]
    assert [metrics["round"] for metrics in rounds] == [1, 2] and all(m["trained"] for m in rounds)
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    first = {(r["id"], lang): [s["distribution"] for s in items] for r in samples if r["round"] == 1
             for lang, items in r["languages"].items()}
    second = {(r["id"], lang): [s["distribution"] for s in items] for r in samples if r["round"] == 2
              for lang, items in r["languages"].items()}
    assert first.keys() == second.keys()
    # round 2 sampled on llama.cpp with round 1's adapter (converted to a GGUF LoRA): the same prompts now
    # score differently
    changed = [key for key in first if any(abs(a[label] - b[label]) > 1e-3 for a, b in zip(first[key], second[key])
                                           for label in a)]
    assert len(changed) >= len(first) // 2  # (languages whose answers agreed already move less)


def test_train_refuses_auto_and_base_url_without_openai(tmp_path: Path, tiny_lm_path: Path) -> None:
    data = write_dataset(tmp_path / "data")
    for flags, message in ((["--engine", "auto"], "must be transformers, llama.cpp or openai"),
                           (["--base-url", "http://127.0.0.1:9/v1"], "--base-url needs --engine openai")):
        result = runner.invoke(app, ["train", str(data), "--model", str(tiny_lm_path), "--out",
                                     str(tmp_path / "x"), *flags])
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert not (tmp_path / "x").exists()
