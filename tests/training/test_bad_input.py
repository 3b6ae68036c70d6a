"""Bad input exits with code 2 and one clear line, before any expensive work where possible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from calm_rag.cli import app
from tests.training.conftest import write_dataset

runner = CliRunner()
PAIR = {"prompt": [{"role": "user", "content": "Q?"}], "chosen": [{"role": "assistant", "content": "Answer: A"}],
        "rejected": [{"role": "assistant", "content": "Answer: B"}]}


def fails(args: list[str], *messages: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for message in messages:
        assert message in " ".join(result.output.split()), result.output


def test_dataset_not_parallel(tmp_path: Path, tiny_lm_path: Path) -> None:
    data = write_dataset(tmp_path / "data")
    lines = (data / "de.jsonl").read_text(encoding="utf-8").splitlines()
    (data / "de.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    fails(["train", str(data), "--languages", "en,de,zh", "--model", str(tiny_lm_path), "--out", str(tmp_path / "o")],
          "files are not parallel, line counts differ: en=4, de=3, zh=4")


def test_pairs_file_missing_field(tmp_path: Path, tiny_lm_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(PAIR) + "\n" + json.dumps({"prompt": "Q?", "chosen": "A"}) + "\n")
    fails(["train", "--pairs", str(pairs), "--model", str(tiny_lm_path), "--out", str(tmp_path / "o")],
          "pairs.jsonl:2: missing field 'rejected'")


def test_dataset_or_pairs(tmp_path: Path) -> None:
    fails(["train", "--out", str(tmp_path / "o")], "give a dataset folder to sample from, or --pairs FILE")


def test_nothing_to_train(tmp_path: Path, dataset: Path, recipe: Path, tiny_lm_path: Path) -> None:
    """A margin of 1.0 is never reached by the random model's soft votes: every question is below the threshold."""
    fails(["train", str(dataset), "--mode", "direct", "--samples", "1", "--min-margin", "1.0", "--model",
           str(tiny_lm_path), "--config", str(recipe), "--out", str(tmp_path / "o")],
          "nothing to train: no preference pairs, because of 4 questions",
          "4 were below the threshold (--min-margin 1.0)")
    assert list(tmp_path.glob(".o*")) == []  # no partial run left behind


def test_adapter_of_another_base(tmp_path: Path, tiny_lm_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "someone/other-model"}))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(PAIR) + "\n")
    fails(["train", "--pairs", str(pairs), "--adapter", str(adapter), "--model", str(tiny_lm_path), "--out",
           str(tmp_path / "o")], "was trained on 'someone/other-model'", "pass the matching --model")


def test_out_of_memory(tmp_path: Path, recipe: Path, tiny_lm_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trl import DPOTrainer

    def oom(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(DPOTrainer, "train", oom)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(PAIR) + "\n")
    fails(["train", "--pairs", str(pairs), "--model", str(tiny_lm_path), "--config", str(recipe), "--batch-size", "2",
           "--out", str(tmp_path / "o")], "out of memory during DPO training (batch_size=2, max_length=256)",
          "lower batch_size")


def test_model_without_chat_template(tmp_path: Path, dataset: Path, recipe: Path) -> None:
    from calm_rag.testing.tiny_lm import build_tiny_causal_lm

    base = build_tiny_causal_lm(tmp_path / "base-model", chat_template=False)
    fails(["train", str(dataset), "--mode", "direct", "--model", str(base), "--config", str(recipe), "--out",
           str(tmp_path / "o")], "has no chat template; CALM samples and trains on chat prompts")
