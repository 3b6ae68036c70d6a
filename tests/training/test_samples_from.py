"""`train --samples-from`: round 1 re-votes and re-plans an earlier run's samples without sampling, and refuses a
file that does not fit the run; `--no-dev-check` holds the dev questions out without measuring them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.data.dev_split import split_dev
from calm_rag.data.parallel import load_parallel_dataset
from calm_rag.errors import CalmRagError
from calm_rag.training import dev_check, modeling, rounds, runner
from calm_rag.training.choice_round import sample_round
from calm_rag.training.config import CalmTrainConfig
from calm_rag.training.reuse_samples import producer_warnings
from tests.cli_errors import one_line_exit_2
from tests.training.conftest import write_dataset, write_open_dataset

cli = CliRunner()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return path


def run(argv: list[str]) -> dict[str, Any]:
    result = cli.invoke(app, [*argv, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fail(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("called although every sample comes from --samples-from")


def test_samples_from_replans_an_earlier_runs_samples_without_sampling(
        tmp_path: Path, recipe: Path, tiny_lm_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_dataset(tmp_path / "data", questions=8)
    base = ["train", str(data), "--split", "train", "--mode", "direct", "--samples", "2", "--dev", "2",
            "--model", str(tiny_lm_path), "--config", str(recipe)]

    # the first run samples; --no-dev-check holds the 2 dev questions out and never measures them
    monkeypatch.setattr(dev_check, "measure_dev", fail)
    first = run([*base, "--no-dev-check", "--min-margin", "0", "--out", str(tmp_path / "first")])
    held_out = first["metrics"]["dev_questions"]
    [round_one] = first["metrics"]["rounds"]
    assert len(held_out) == 2 and round_one["dev"] == [] and round_one["training"]["steps"] > 0
    samples_file = tmp_path / "first" / "samples.jsonl"
    samples, pairs = read_jsonl(samples_file), read_jsonl(tmp_path / "first" / "pairs.jsonl")
    assert len(samples) == 6 and {record["id"] for record in samples}.isdisjoint(held_out)
    assert pairs and {pair["id"] for pair in pairs}.isdisjoint(held_out)

    # the same settings on its samples: the same samples and pairs, without sampling or a sampling generator
    monkeypatch.setattr(rounds, "sample_round", fail)
    monkeypatch.setattr(runner, "sample_in_chunks", fail)
    monkeypatch.setattr(runner._Run, "generator", fail)
    out = tmp_path / "again"
    again = run([*base, "--no-dev-check", "--min-margin", "0", "--samples-from", str(samples_file), "--out", str(out)])
    assert read_jsonl(out / "pairs.jsonl") == pairs and read_jsonl(out / "samples.jsonl") == samples
    assert again["metrics"]["rounds"][0]["targets"] == round_one["targets"]
    assert again["metrics"]["rounds"][0]["training"]["steps"] > 0  # DPO still loaded and trained the model
    assert any("nothing sampled" in note for note in again["notes"])
    assert not any("was sampled" in note for note in again["notes"])  # its manifest names this model, no adapter
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["samples_from"] == str(samples_file) and manifest["config"]["dev_check"] is False
    assert manifest["source"]["samples_from"] == str(samples_file.resolve())
    assert len(manifest["source"]["samples_hash"]) == 64

    # a higher --min-margin re-votes the same answers: fewer targets, only the clearer questions' pairs; with
    # two rounds only round 1 comes from the file, round 2 samples the trained model
    margins = {record["id"]: record["vote"]["margin"] for record in samples if record["status"] == "target"}
    paired = {pair["id"] for pair in pairs}
    threshold = max(margins[name] for name in paired)
    assert min(margins.values()) < threshold  # the tiny model's margins differ, so the threshold drops some
    sampled_rounds: list[int] = []

    def round_two_only(generator: Any, questions: Any, config: Any, number: int, *args: Any) -> Any:
        sampled_rounds.append(number)
        return sample_round(generator, questions, config, number, *args)

    monkeypatch.undo()  # restores the generator; put back the counting sampler and the dev-check guard
    monkeypatch.setattr(rounds, "sample_round", round_two_only)
    monkeypatch.setattr(dev_check, "measure_dev", fail)
    clearer = run([*base, "--no-dev-check", "--min-margin", str(threshold), "--rounds", "2", "--samples-from",
                   str(samples_file), "--out", str(tmp_path / "clearer")])
    first_round = clearer["metrics"]["rounds"][0]
    assert first_round["targets"] == sum(margin >= threshold for margin in margins.values()) < round_one["targets"]
    revoted = [record for record in read_jsonl(tmp_path / "clearer" / "samples.jsonl") if record["round"] == 1]
    assert [record["status"] == "target" for record in revoted] == [
        record["id"] in margins and margins[record["id"]] >= threshold for record in samples]  # this run's votes
    replanned = [pair for pair in read_jsonl(tmp_path / "clearer" / "pairs.jsonl") if pair["round"] == 1]
    assert {pair["id"] for pair in replanned} == {name for name in paired if margins[name] >= threshold} != paired
    assert sampled_rounds == [2]


def test_samples_from_refuses_a_file_that_does_not_fit_the_run(
        tmp_path: Path, recipe: Path, tiny_lm_path: Path, tiny_generator: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_dataset(tmp_path / "data", questions=6)
    questions = load_parallel_dataset(data, ("en", "de", "zh"), "train")
    train, dev = split_dev(questions, 2)
    config = CalmTrainConfig(languages=("en", "de", "zh"), mode="direct", samples=2)
    every = [item.to_record(1) for item in sample_round(tiny_generator, questions, config, 1)]
    dev_ids = {question.id for question in dev}
    good = [record for record in every if record["id"] not in dev_ids]
    monkeypatch.setattr(modeling, "load_model", fail)  # every refusal comes before a model is loaded

    def refused(records: list[dict[str, Any]] | str, *extra: str) -> str:
        path = tmp_path / "samples.jsonl"
        if isinstance(records, str):
            path.write_text(records, encoding="utf-8")
        else:
            write_jsonl(path, records)
        return one_line_exit_2(["train", str(data), "--split", "train", "--mode", "direct", "--samples", "2",
                                "--dev", "2", "--model", str(tiny_lm_path), "--config", str(recipe), "--out",
                                str(tmp_path / "run"), "--samples-from", str(path), *extra])

    def edited(change: Any) -> list[dict[str, Any]]:
        records = json.loads(json.dumps(good))
        for record in records:
            change(record)
        return records

    assert "has no round-1 record of 1 of the 4 training questions" in refused(good[1:])
    assert "has several round-1 records of 1 questions" in refused([*good, good[0]])
    assert "of this run's --dev questions" in refused(every)  # the dev questions must stay unseen
    assert "was sampled in direct mode" in refused(good, "--mode", "cot")
    assert "has 2 answers in en, this run takes --samples 3" in refused(good, "--samples", "3")
    assert "has no answers in zh" in refused(edited(lambda record: record["languages"].pop("zh")))
    assert "asked another question" in refused(
        edited(lambda record: record["languages"]["de"][0]["shown"].update(question="Was anderes?")))
    assert "malformed sample record (KeyError" in refused(
        edited(lambda record: record["languages"]["en"][1].pop("label_map")))
    assert "record 2 is not a calm-rag sample record" in refused([good[0], {"id": "q1"}])
    assert "samples.jsonl:1: not valid JSON" in refused("{not json\n")
    assert "holds open-question samples" in refused(edited(lambda record: record.update(clusters=[])))
    assert "does not exist" in one_line_exit_2(
        ["train", str(data), "--split", "train", "--model", str(tiny_lm_path), "--config", str(recipe),
         "--out", str(tmp_path / "run"), "--samples-from", str(tmp_path / "none.jsonl")])
    assert "holds open questions" in one_line_exit_2(
        ["train", str(write_open_dataset(tmp_path / "open")), "--model", str(tiny_lm_path), "--out",
         str(tmp_path / "run"), "--samples-from", str(tmp_path / "samples.jsonl")])
    assert "--pairs samples nothing" in one_line_exit_2(
        ["train", "--pairs", str(tmp_path / "samples.jsonl"), "--model", str(tiny_lm_path), "--out",
         str(tmp_path / "run"), "--samples-from", str(tmp_path / "samples.jsonl")])
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run*"))  # refused before anything


def test_the_settings_read_from_toml(tmp_path: Path) -> None:
    config = CalmTrainConfig.from_dict({"samples_from": "runs/a/samples.jsonl", "dev_check": False})
    assert config.samples_from == Path("runs/a/samples.jsonl") and config.dev_check is False
    assert config.to_dict()["samples_from"] == "runs/a/samples.jsonl"
    assert CalmTrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(CalmRagError, match="samples_from must be a path"):
        CalmTrainConfig.from_dict({"samples_from": 3})
    with pytest.raises(CalmRagError, match="dev_check must be"):
        CalmTrainConfig.from_dict({"dev_check": "no"})


def test_a_file_sampled_by_another_model_or_adapter_is_said(tmp_path: Path) -> None:
    samples = write_jsonl(tmp_path / "samples.jsonl", [])
    config = CalmTrainConfig(model="qwen2.5-coder-1.5b-instruct")
    assert producer_warnings(samples, config, None) == []  # no manifest beside it: nothing known to compare
    manifest = {"config": {"model": "qwen2.5-coder-1.5b-instruct"}, "start_adapter": None}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert producer_warnings(samples, config, None) == []
    assert producer_warnings(samples, CalmTrainConfig(model="qwen2.5-coder-0.5b-instruct"), None) == [
        f"{samples} was sampled by qwen2.5-coder-1.5b-instruct, this run trains qwen2.5-coder-0.5b-instruct: the "
        "pairs are another model's consensus, not this model's own"]
    [adapter] = producer_warnings(samples, config, tmp_path / "adapter")
    assert "starting from adapter None" in adapter and str((tmp_path / "adapter").resolve()) in adapter
    (tmp_path / "manifest.json").write_text("{not json")
    assert producer_warnings(samples, config, None) == []
