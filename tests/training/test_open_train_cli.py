"""`calm-rag train` on an open-question dataset: sampling and translation through the deterministic fake
generator, clustering through the fake concept encoder, DPO on the real tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from calm_rag.cli import app
from tests.fakes import FakeGenerator, concept_encoder
from tests.training.conftest import write_open_dataset

runner = CliRunner()
CONCEPTS = {"Paris": 0, "巴黎": 0, "[de] Paris": 0, "Berlin": 1}


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    knowledge = {"en": "Paris", "de": "Berlin", "zh": "巴黎"}  # German disagrees with the consensus
    monkeypatch.setattr("calm_rag.training.runner.TransformersGenerator", lambda model, tokenizer, name: FakeGenerator(knowledge))
    monkeypatch.setattr("calm_rag.training.runner.load_encoder", lambda name: concept_encoder(CONCEPTS))


def test_open_questions_train_an_adapter(tmp_path: Path, recipe: Path, tiny_lm_path: Path, fakes: None) -> None:
    data = write_open_dataset(tmp_path / "open")
    out = tmp_path / "open-calm"
    result = runner.invoke(app, ["train", str(data), "--split", "train", "--samples", "2", "--model",
                                 str(tiny_lm_path), "--config", str(recipe), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    metrics = summary["metrics"]
    assert metrics["mode"] == "open"
    [first] = metrics["rounds"]
    assert first["targets"] == 3 and first["target_accuracy"] == 1.0
    assert first["pairs"]["total"] == 6 and first["pairs"]["by_language"] == {"de": 6}
    assert first["vote"]["accuracy_by_language"]["de"] == 0.0 and first["training"]["steps"] > 0

    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert pairs[0]["chosen"][0]["content"] == "Antwort: [de] Paris"
    assert pairs[0]["rejected"][0]["content"] == "Antwort: Berlin"
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert samples[0]["clusters"][0]["representative"] == "Paris" and samples[0]["status"] == "target"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["embedder"]
    assert any("lora_B" in name for name in load_file(out / "adapter_model.safetensors"))


def test_open_questions_refuse_direct_mode(tmp_path: Path, recipe: Path, tiny_lm_path: Path, fakes: None) -> None:
    data = write_open_dataset(tmp_path / "open")
    result = runner.invoke(app, ["train", str(data), "--mode", "direct", "--model", str(tiny_lm_path),
                                 "--config", str(recipe), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--mode cot" in result.output
    assert not (tmp_path / "x").exists()


def test_open_questions_without_consensus_train_nothing(tmp_path: Path, recipe: Path, tiny_lm_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    knowledge = {"en": "Paris", "de": "Berlin", "zh": "Rom"}  # three answers, a tie everywhere
    monkeypatch.setattr("calm_rag.training.runner.TransformersGenerator", lambda model, tokenizer, name: FakeGenerator(knowledge))
    monkeypatch.setattr("calm_rag.training.runner.load_encoder", lambda name: concept_encoder(CONCEPTS))
    data = write_open_dataset(tmp_path / "open")
    out = tmp_path / "none"
    result = runner.invoke(app, ["train", str(data), "--samples", "2", "--model", str(tiny_lm_path),
                                 "--config", str(recipe), "--out", str(out)])
    assert result.exit_code == 2 and "3 were tied" in result.output
    assert not out.exists() and not list(tmp_path.glob(".none*"))


@pytest.mark.parametrize("flag", ["--gloss-spans", "--no-gloss-spans"])
def test_gloss_spans_flag_decides_whether_spans_get_english_glosses(tmp_path: Path, recipe: Path,
                                                                     tiny_lm_path: Path, fakes: None,
                                                                     flag: str) -> None:
    data = write_open_dataset(tmp_path / "open")
    out = tmp_path / "open-calm"
    result = runner.invoke(app, ["train", str(data), "--split", "train", "--samples", "2", "--model",
                                 str(tiny_lm_path), "--config", str(recipe), "--out", str(out), flag])
    assert result.exit_code == 0, result.output
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    glosses = {item["gloss"] for record in samples for lang, items in record["languages"].items() if lang != "en"
               for item in items}
    if flag == "--gloss-spans":
        assert glosses == {"[en] 巴黎", "[en] Berlin"}  # the fakes tag each span as its translation
    else:
        assert glosses == {None}
    assert json.loads((out / "manifest.json").read_text())["config"]["gloss_spans"] is (flag == "--gloss-spans")
