"""The dev split: held-out questions are never sampled (so never in a pair), and their direct-mode accuracy is
measured before training and after every epoch, also across an interrupted and resumed DPO."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.data.dev_split import split_dev
from calm_rag.errors import CalmRagError
from calm_rag.questions import ParallelQuestion
from calm_rag.training import dev_check
from tests.cli_errors import one_line_exit_2
from tests.training.conftest import write_dataset, write_open_dataset

runner = CliRunner()
REPORTED = {"epoch", "step", "accuracy_by_language", "mean_accuracy", "vote_accuracy", "consistency"}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_dev_questions_are_a_fixed_seeded_choice_in_the_selection_order() -> None:
    questions = [ParallelQuestion(f"q{n}", {}, "en") for n in range(20)]
    train, dev = split_dev(questions, 5)
    assert len(dev) == 5 and len(train) == 15 and {q.id for q in train}.isdisjoint(q.id for q in dev)
    assert [q.id for q in dev] == sorted((q.id for q in dev), key=lambda name: int(name[1:]))
    assert split_dev(questions, 5) == (train, dev)  # the same questions every run, whatever the run's seed
    assert split_dev(questions, 0) == (questions, [])
    with pytest.raises(CalmRagError, match="--dev 20 would hold out all 20 selected questions"):
        split_dev(questions, 20)


def test_dev_questions_are_held_out_and_measured_each_epoch_across_a_resume(
        tmp_path: Path, recipe: Path, tiny_lm_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe.write_text(recipe.read_text().replace("save_steps = 100", "save_steps = 1"))  # checkpoint every step
    data = write_dataset(tmp_path / "data", questions=7)
    out = tmp_path / "run"
    argv = ["train", str(data), "--split", "train", "--mode", "direct", "--samples", "2", "--min-margin", "0",
            "--model", str(tiny_lm_path), "--config", str(recipe), "--out", str(out), "--epochs", "2", "--dev", "3"]
    measure = dev_check.measure_dev
    measured: list[int] = []

    def stopped_at_the_first_epochs_end(*args: Any, **kwargs: Any) -> dict[str, Any]:
        measured.append(len(args[1]))
        if len(measured) == 2:
            raise KeyboardInterrupt  # stopped while measuring epoch 1; its last step is checkpointed
        return measure(*args, **kwargs)

    monkeypatch.setattr(dev_check, "measure_dev", stopped_at_the_first_epochs_end)
    assert runner.invoke(app, argv).exit_code == 130
    work = tmp_path / ".run.partial" / "work" / "round-1"
    assert [entry["epoch"] for entry in read_jsonl(work / "dev.jsonl")] == [0.0]

    def counted(*args: Any, **kwargs: Any) -> dict[str, Any]:
        measured.append(len(args[1]))
        return measure(*args, **kwargs)

    monkeypatch.setattr(dev_check, "measure_dev", counted)
    measured.clear()
    result = runner.invoke(app, [*argv, "--resume", "--json"])
    assert result.exit_code == 0, result.output
    assert len(measured) == 2  # epoch 1 (the resumed trainer starts with epoch 2) and epoch 2; epoch 0 is kept
    metrics = json.loads(result.stdout)["metrics"]
    held_out = metrics["dev_questions"]
    assert len(held_out) == 3 and json.loads((out / "manifest.json").read_text())["source"]["dev_questions"] == held_out
    assert {pair["id"] for pair in read_jsonl(out / "pairs.jsonl")}.isdisjoint(held_out)
    assert [record["id"] for record in read_jsonl(out / "samples.jsonl")] == [
        f"q{n}" for n in range(7) if f"q{n}" not in held_out]

    [first] = metrics["rounds"]
    assert first["vote"]["questions"] == 4
    dev = first["dev"]
    assert [entry["epoch"] for entry in dev] == [0.0, 1.0, 2.0]
    steps = first["training"]["steps"]
    assert [entry["step"] for entry in dev] == [0, steps // 2, steps]
    for entry in dev:
        assert set(entry) == REPORTED and set(entry["accuracy_by_language"]) == {"en", "de", "zh"}
        accuracies = list(entry["accuracy_by_language"].values())
        assert entry["mean_accuracy"] == pytest.approx(sum(accuracies) / 3)
        assert all(0 <= value <= 1 for value in [*accuracies, entry["vote_accuracy"], entry["consistency"]])
    assert (out / "training.png").stat().st_size > 1000


def test_dev_flag_errors(tmp_path: Path, recipe: Path, tiny_lm_path: Path) -> None:
    data = write_dataset(tmp_path / "data", questions=4)
    base = ["train", str(data), "--split", "train", "--mode", "direct", "--model", str(tiny_lm_path),
            "--config", str(recipe), "--out", str(tmp_path / "run")]
    assert "--dev 4 would hold out all 4 selected questions" in one_line_exit_2([*base, "--dev", "4"])
    assert "--dev 9 would hold out all 3 selected questions" in one_line_exit_2([*base, "--limit", "3", "--dev", "9"])
    assert "'--dev'" in one_line_exit_2([*base, "--dev", "-1"])
    assert not list(tmp_path.glob("*run*"))  # refused before anything was created

    recipe.write_text(recipe.read_text() + "dev_questions = -2\n")
    assert "dev_questions must be at least 0" in one_line_exit_2(base)

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": [{"role": "user", "content": "Q?"}],
                                 "chosen": [{"role": "assistant", "content": "Answer: A"}],
                                 "rejected": [{"role": "assistant", "content": "Answer: B"}]}) + "\n")
    assert "needs the dataset the pairs were sampled from" in one_line_exit_2(
        ["train", "--pairs", str(pairs), "--model", str(tiny_lm_path), "--out", str(tmp_path / "p"), "--dev", "1"])
    assert "a dataset only supplies the --dev questions" in one_line_exit_2(
        ["train", str(data), "--pairs", str(pairs), "--model", str(tiny_lm_path), "--out", str(tmp_path / "p")])
    assert "open questions have none" in one_line_exit_2(
        ["train", str(write_open_dataset(tmp_path / "open")), "--model", str(tiny_lm_path), "--out",
         str(tmp_path / "o"), "--dev", "1"])


def _pair(question_id: str, margin: float) -> dict[str, Any]:
    return {"id": question_id, "lang": "de", "margin": margin,
            "prompt": [{"role": "user", "content": f"Frage {question_id}?"}],
            "chosen": [{"role": "assistant", "content": "Antwort: A"}],
            "rejected": [{"role": "assistant", "content": "Antwort: B"}]}


def test_pairs_from_a_file_are_selected_by_margin_and_measured_on_the_datasets_dev_split(
        tmp_path: Path, recipe: Path, tiny_lm_path: Path) -> None:
    data = write_dataset(tmp_path / "data", questions=7)
    questions = [ParallelQuestion(f"q{n}", {}, "en") for n in range(7)]
    train_ids = [question.id for question in split_dev(questions, 3)[0]]
    dev_ids = [question.id for question in split_dev(questions, 3)[1]]
    pairs = tmp_path / "pairs.jsonl"
    rows = [_pair(question_id, margin) for question_id, margin in zip(train_ids, (0.05, 0.3, 0.25, 0.1))]
    pairs.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "run"
    argv = ["train", str(data), "--split", "train", "--pairs", str(pairs), "--dev", "3", "--min-margin", "0.2",
            "--mode", "direct", "--model", str(tiny_lm_path), "--config", str(recipe), "--out", str(out)]
    result = runner.invoke(app, [*argv, "--json"])
    assert result.exit_code == 0, result.output
    trained = read_jsonl(out / "pairs.jsonl")
    assert [pair["id"] for pair in trained] == [train_ids[1], train_ids[2]]  # margins 0.3 and 0.25 of 4
    source = json.loads((out / "manifest.json").read_text())["source"]
    assert source["pairs"] == 2 and source["pairs_in_file"] == 4 and source["min_margin"] == 0.2
    assert source["dev_questions"] == dev_ids
    [first] = json.loads(result.stdout)["metrics"]["rounds"]
    assert [entry["epoch"] for entry in first["dev"]] == [0.0, 1.0]
    assert all(set(entry) == REPORTED for entry in first["dev"])

    rows.append(_pair(dev_ids[0], 0.9))
    pairs.write_text("".join(json.dumps(row) + "\n" for row in rows))
    message = one_line_exit_2([*argv[:-1], str(tmp_path / "leaky")])
    assert f"1 pairs come from 1 dev questions ({dev_ids[0]})" in message
    assert not (tmp_path / "leaky").exists()
