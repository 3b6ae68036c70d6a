"""`calm-rag train` / `merge` end to end on the tiny random model (seconds each on a CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.generation.transformers_engine import TransformersGenerator
from tests.fakes import FakeGenerator

runner = CliRunner()
ARTIFACTS = {"adapter_config.json", "adapter_model.safetensors", "pairs.jsonl", "samples.jsonl", "metrics.json",
             "manifest.json", "training.png"}


def direct_args(dataset: Path, model: Path, recipe: Path, out: Path) -> list[str]:
    return ["train", str(dataset), "--split", "train", "--mode", "direct", "--samples", "2", "--min-margin", "0",
            "--model", str(model), "--config", str(recipe), "--out", str(out)]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_full_direct_run(tmp_path: Path, dataset: Path, recipe: Path, tiny_lm_path: Path) -> None:
    out = tmp_path / "runs" / "calm"
    result = runner.invoke(app, [*direct_args(dataset, tiny_lm_path, recipe, out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout holds the JSON document only
    assert summary["out"] == str(out) and not summary["resumed"]
    assert ARTIFACTS <= {path.name for path in out.iterdir()}
    assert [path.name for path in out.parent.iterdir()] == ["calm"]  # the partial folder was renamed into place

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["mode"] == "direct" and manifest["config"]["samples"] == 2
    assert len(manifest["source"]["data_hash"]) == 64 and manifest["model"]["path"] == str(tiny_lm_path)
    assert manifest["libraries"]["trl"] and manifest["timings"]["rounds"]["1"]["training_s"] > 0

    metrics = json.loads((out / "metrics.json").read_text())
    first = metrics["rounds"][0]
    assert first["vote"]["questions"] == 4 and first["vote"]["vote_accuracy"] is not None
    assert first["targets"] + sum(first["skipped"].values()) == 4
    assert first["pairs"]["total"] == len(read_jsonl(out / "pairs.jsonl")) > 0
    assert first["pairs"]["translated_share"] == 0.0  # direct-mode pairs never need translation
    assert set(first["answer_letters_by_language"]) == {"en", "de", "zh"}
    assert first["training"]["steps"] > 0 and first["training"]["curves"]["loss"]
    assert (out / "training.png").stat().st_size > 1000

    samples = read_jsonl(out / "samples.jsonl")
    assert [s["id"] for s in samples] == ["q0", "q1", "q2", "q3"]
    response = samples[0]["languages"]["de"][0]
    assert abs(sum(response["distribution"].values()) - 1) < 1e-6 and response["letter"] in "ABCDE"
    assert samples[0]["vote"]["winner"] in "ABCDE" and "margin" in samples[0]["vote"]
    pair = read_jsonl(out / "pairs.jsonl")[0]
    assert pair["prompt"][0]["role"] == "user" and pair["chosen"][0]["role"] == "assistant"
    assert pair["margin"] == next(s["vote"]["margin"] for s in samples if s["id"] == pair["id"])  # for --min-margin

    # the adapter: LoRA only, and B moved away from its zero init; the base weights are untouched
    adapter = load_file(out / "adapter_model.safetensors")
    assert adapter and all("lora_" in name for name in adapter)
    assert any(tensor.abs().sum() > 0 for name, tensor in adapter.items() if "lora_B" in name)
    base = load_file(tiny_lm_path / "model.safetensors")
    loaded = TransformersGenerator.load(str(tiny_lm_path), adapter=out, device="cpu", merge_adapter=False)
    state = loaded.model.state_dict()
    for name, tensor in base.items():
        module, parameter = name.rsplit(".", 1)
        wrapped = state.get(f"base_model.model.{module}.base_layer.{parameter}")  # a layer LoRA wraps
        assert torch.equal(state[f"base_model.model.{name}"] if wrapped is None else wrapped, tensor), name

    # an existing --out is refused ...
    again = runner.invoke(app, direct_args(dataset, tiny_lm_path, recipe, out))
    assert again.exit_code == 2 and "already exists; pass --overwrite" in again.output

    # ... and `merge` folds the adapter into a standalone model
    merged = tmp_path / "merged"
    result = runner.invoke(app, ["merge", str(out), "--out", str(merged)])
    assert result.exit_code == 0, result.output
    merged_weights = load_file(merged / "model.safetensors")
    assert not torch.equal(merged_weights["model.layers.0.self_attn.q_proj.weight"],
                           base["model.layers.0.self_attn.q_proj.weight"])
    assert (merged / "tokenizer.json").is_file()
    wrong = runner.invoke(app, ["merge", str(out), "--out", str(tmp_path / "m2"), "--model", str(tmp_path)])
    assert wrong.exit_code == 2 and "pass the matching --model" in wrong.output


def test_resume_after_interruption(tmp_path: Path, dataset: Path, recipe: Path, tiny_lm_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from trl import DPOTrainer

    recipe.write_text(recipe.read_text().replace("save_steps = 100", "save_steps = 1"))  # checkpoint every step
    out = tmp_path / "calm"
    original_step = DPOTrainer.training_step
    calls = []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(DPOTrainer, "training_step", interrupted)
    result = runner.invoke(app, direct_args(dataset, tiny_lm_path, recipe, out))
    assert result.exit_code == 130 and not out.exists()
    partial = tmp_path / ".calm.partial"
    assert (partial / "work" / "round-1" / "samples.jsonl").is_file()
    assert (partial / "work" / "round-1" / "checkpoints" / "checkpoint-2").is_dir()

    refused = runner.invoke(app, direct_args(dataset, tiny_lm_path, recipe, out))
    assert refused.exit_code == 2 and "pass --resume to continue it" in refused.output
    changed = runner.invoke(app, [*direct_args(dataset, tiny_lm_path, recipe, out), "--resume", "--seed", "7"])
    assert changed.exit_code == 2 and "config.seed: 0 -> 7" in changed.output

    def no_sampling(*args, **kwargs):
        raise AssertionError("resume must reuse the cached samples")

    monkeypatch.setattr(DPOTrainer, "training_step", original_step)
    monkeypatch.setattr("calm_rag.training.choice_round.sample_choice_responses", no_sampling)
    result = runner.invoke(app, [*direct_args(dataset, tiny_lm_path, recipe, out), "--resume", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["resumed"] and any("resumed from checkpoint-2" in note for note in summary["notes"])
    training = summary["metrics"]["rounds"][0]["training"]
    pairs = summary["metrics"]["rounds"][0]["pairs"]["total"]
    assert training["steps"] == -(-pairs // 4)  # every step, the resumed ones included
    assert [step for step, _ in training["curves"]["loss"]] == list(range(1, training["steps"] + 1))
    assert not partial.exists() and (out / "adapter_model.safetensors").is_file()


def test_resume_with_a_smaller_batch_reuses_samples_and_restarts_dpo(
        tmp_path: Path, dataset: Path, recipe: Path, tiny_lm_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Running out of memory in DPO must not cost the sampling: the batch size may change on --resume."""
    from trl import DPOTrainer

    recipe.write_text(recipe.read_text().replace("save_steps = 100", "save_steps = 1"))
    out = tmp_path / "calm"
    original_step = DPOTrainer.training_step
    calls = []

    def out_of_memory(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what the user sees of a kill: the run stops mid-DPO
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(DPOTrainer, "training_step", out_of_memory)
    assert runner.invoke(app, direct_args(dataset, tiny_lm_path, recipe, out)).exit_code == 130
    checkpoints = tmp_path / ".calm.partial" / "work" / "round-1" / "checkpoints"
    assert (checkpoints / "checkpoint-1").is_dir()

    def no_sampling(*args, **kwargs):
        raise AssertionError("resume must reuse the cached samples")

    monkeypatch.setattr(DPOTrainer, "training_step", original_step)
    monkeypatch.setattr("calm_rag.training.choice_round.sample_choice_responses", no_sampling)
    result = runner.invoke(app, [*direct_args(dataset, tiny_lm_path, recipe, out), "--resume", "--batch-size", "2",
                                 "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert any("config.batch_size: 4 -> 2" in note and "DPO starts over" in note for note in summary["notes"])
    assert not any("resumed from checkpoint" in note for note in summary["notes"])
    first = summary["metrics"]["rounds"][0]
    assert first["training"]["steps"] == -(-first["pairs"]["total"] // 2)
    assert json.loads((out / "manifest.json").read_text())["config"]["batch_size"] == 2


def test_pairs_file_with_skewed_targets_warns(tmp_path: Path, recipe: Path, tiny_lm_path: Path) -> None:
    rows = [{"id": f"q{i}", "lang": "en", "majority": "C", "translated": False,
             "prompt": [{"role": "user", "content": f"Question {i}?\nA. x\nB. y\nC. z"}],
             "chosen": [{"role": "assistant", "content": "Answer: C) z"}],
             "rejected": [{"role": "assistant", "content": "Answer: A) x"}]} for i in range(10)]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "mine"
    result = runner.invoke(app, ["train", "--pairs", str(pairs), "--model", str(tiny_lm_path), "--config",
                                 str(recipe), "--batch-size", "10", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert "100% of the consensus answers are 'C'" in result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["rounds"][0]["written_target_letters"] == {"C": 1.0}
    assert len(metrics["warnings"]) == 2  # the consensus letters and the written letters
    assert metrics["rounds"][0]["training"]["steps"] == 1
    assert not (out / "samples.jsonl").exists() and len(read_jsonl(out / "pairs.jsonl")) == 10
    assert json.loads((out / "manifest.json").read_text())["source"]["pairs"] == 10

    # without --json, and not on a terminal (a log), each DPO step is a progress line on stderr
    logged = runner.invoke(app, ["train", "--pairs", str(pairs), "--model", str(tiny_lm_path), "--config",
                                 str(recipe), "--batch-size", "5", "--out", str(tmp_path / "logged")])
    assert logged.exit_code == 0, logged.output
    assert [line.split(" (")[0] for line in logged.stderr.splitlines() if line.startswith("round 1: DPO")] == [
        "round 1: DPO: 1/2", "round 1: DPO: 2/2"]


def test_cot_two_rounds(tmp_path: Path, dataset: Path, recipe: Path, tiny_lm_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny random model rarely writes a parseable explanation, so sampling and translation go through the
    deterministic fake generator, while DPO trains the real tiny model, over two rounds."""
    knowledge = {"en": "fridge", "de": "Regal", "zh": "冰箱"}  # German disagrees with the consensus
    monkeypatch.setattr("calm_rag.training.runner.TransformersGenerator", lambda model, tokenizer, name: FakeGenerator(knowledge))
    out = tmp_path / "cot"
    result = runner.invoke(app, ["train", str(dataset), "--split", "train", "--limit", "2", "--mode", "cot",
                                 "--samples", "2", "--rounds", "2", "--model", str(tiny_lm_path), "--config",
                                 str(recipe), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    rounds = json.loads(result.stdout)["metrics"]["rounds"]
    assert [r["round"] for r in rounds] == [1, 2] and all(r["trained"] for r in rounds)
    assert all(r["pairs"]["translated_share"] == 1.0 and r["pairs"]["by_language"] == {"de": 4} for r in rounds)
    assert all(r["training"]["steps"] == 1 for r in rounds)
    assert [p["round"] for p in read_jsonl(out / "pairs.jsonl")] == [1] * 4 + [2] * 4
    assert [s["round"] for s in read_jsonl(out / "samples.jsonl")] == [1, 1, 2, 2]
    adapter = load_file(out / "adapter_model.safetensors")
    assert not any(".ref." in name for name in adapter)  # round 2's frozen reference copy is not saved
    TransformersGenerator.load(str(tiny_lm_path), adapter=out, device="cpu")
