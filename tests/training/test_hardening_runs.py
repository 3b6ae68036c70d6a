"""No data loss and no traceback around training runs: `--overwrite` replaces only calm-rag runs and never loses
both the old and the new one; a kill during a checkpoint write leaves a run that `--resume` continues from the
last complete checkpoint; bad config values and devices fail before anything is created."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.errors import CalmRagError
from calm_rag.training.artifacts import MARKER, RunFolder, is_run
from calm_rag.training.dpo import checkpoint_complete, last_complete_checkpoint
from tests.cli_errors import one_line_exit_2

runner = CliRunner()
PAIR = {"prompt": [{"role": "user", "content": "Q?"}], "chosen": [{"role": "assistant", "content": "Answer: A"}],
        "rejected": [{"role": "assistant", "content": "Answer: B"}]}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else b"<dir>"
            for path in sorted(folder.rglob("*"))}


# ---- --overwrite ------------------------------------------------------------------------------------------

def unrelated(tmp_path: Path) -> Path:
    folder = tmp_path / "thesis"
    (folder / "chapters").mkdir(parents=True)
    (folder / "chapters" / "one.tex").write_text("years of work")
    (folder / "manifest.json").write_text(json.dumps({"name": "not a calm-rag run"}))
    return folder


def test_overwrite_refuses_a_folder_calm_rag_did_not_write(tmp_path: Path) -> None:
    folder = unrelated(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(CalmRagError, match=f"{folder} is not a calm-rag run"):
        RunFolder.open(folder, overwrite=True)
    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(CalmRagError, match="is not a calm-rag run"):
        RunFolder.open(tmp_path / "notes.txt", overwrite=True)
    (tmp_path / "notes.txt").unlink()
    assert snapshot(tmp_path) == before


def test_train_overwrite_keeps_an_unrelated_folder(tmp_path: Path, tiny_lm_path: Path) -> None:
    """The reported data loss: `train --out DIR --overwrite` on a folder that was not a run deleted it."""
    folder = unrelated(tmp_path)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(PAIR) + "\n")
    before = snapshot(tmp_path)
    line = one_line_exit_2(["train", "--pairs", str(pairs), "--model", str(tiny_lm_path), "--out", str(folder),
                            "--overwrite", "--device", "cpu"])
    assert "is not a calm-rag run" in line and snapshot(tmp_path) == before


def finished_run(out: Path, content: str) -> Path:
    folder = RunFolder.open(out, overwrite=out.exists())
    (folder.partial / "adapter_model.safetensors").write_text(content)
    return folder.finalize()


def test_overwrite_replaces_a_run_and_leaves_nothing_aside(tmp_path: Path) -> None:
    out = finished_run(tmp_path / "run", "old")
    assert is_run(out) and (out / MARKER).is_file()
    finished_run(out, "new")
    assert (out / "adapter_model.safetensors").read_text() == "new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]


def test_a_crash_while_swapping_runs_loses_neither(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = finished_run(tmp_path / "run", "old")
    folder = RunFolder.open(out, overwrite=True)
    (folder.partial / "adapter_model.safetensors").write_text("new")
    real_replace = os.replace

    def killed_before_moving_in(source: object, target: object) -> None:
        if Path(str(source)) == folder.partial:
            raise KeyboardInterrupt  # a kill between moving the old run aside and moving the new one in
        real_replace(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr("calm_rag.training.artifacts.os.replace", killed_before_moving_in)
    with pytest.raises(KeyboardInterrupt):
        folder.finalize()
    contents = {path.name: (path / "adapter_model.safetensors").read_text() for path in tmp_path.iterdir()}
    assert sorted(contents.values()) == ["new", "old"]  # both runs whole: the new one still resumable


def test_a_partial_folder_that_is_not_a_run_is_not_deleted(tmp_path: Path) -> None:
    (tmp_path / ".run.partial").mkdir()
    (tmp_path / ".run.partial" / "data.csv").write_text("1,2,3")
    with pytest.raises(CalmRagError, match="is in the way and is not an interrupted calm-rag run"):
        RunFolder.open(tmp_path / "run", overwrite=True)
    assert (tmp_path / ".run.partial" / "data.csv").read_text() == "1,2,3"


def test_runs_older_than_the_marker_are_still_runs(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({"command": "train", "config": {"mode": "cot"}}))
    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "calm_merge.json").write_text("{}")
    assert is_run(old) and is_run(merged)
    assert not is_run(tmp_path / "missing")


def test_a_damaged_run_record_is_one_line_on_resume(tmp_path: Path) -> None:
    folder = RunFolder.open(tmp_path / "run")
    (folder.work / "run.json").write_text("[1, 2]")
    resumed = RunFolder.open(tmp_path / "run", resume=True)
    with pytest.raises(CalmRagError, match=r"run.json is damaged; pass --overwrite"):
        resumed.check_run_spec({"command": "train"})


# ---- checkpoints -----------------------------------------------------------------------------------------

def checkpoint(folder: Path, step: int) -> Path:
    """A checkpoint with the files the Trainer writes (trainer_state.json last)."""
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"lora_A": torch.ones(4, 4)}, path / "adapter_model.safetensors")
    torch.save({"state": step}, path / "optimizer.pt")
    torch.save({"last_epoch": step}, path / "scheduler.pt")
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


@pytest.mark.parametrize("cut", ["trainer_state.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt"])
def test_the_newest_incomplete_checkpoint_is_skipped_and_removed(tmp_path: Path, cut: str) -> None:
    good, newest = checkpoint(tmp_path, 2), checkpoint(tmp_path, 4)
    data = (newest / cut).read_bytes()
    (newest / cut).write_bytes(data[:len(data) // 2])  # killed mid-write
    assert checkpoint_complete(good) and not checkpoint_complete(newest)
    assert last_complete_checkpoint(tmp_path) == good
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint-2"]


def test_a_checkpoint_missing_its_state_is_incomplete(tmp_path: Path) -> None:
    newest = checkpoint(tmp_path, 3)
    (newest / "trainer_state.json").unlink()
    assert last_complete_checkpoint(tmp_path) is None and not newest.exists()
    assert last_complete_checkpoint(tmp_path / "none") is None


def test_resume_after_a_kill_during_a_checkpoint_write(tmp_path: Path, recipe: Path, tiny_lm_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The reported failure: a run killed while the Trainer wrote checkpoint-N could not be resumed."""
    from trl import DPOTrainer

    recipe.write_text(recipe.read_text().replace("save_steps = 100", "save_steps = 1"))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({**PAIR, "prompt": [{"role": "user", "content": f"Q{i}?"}]}) + "\n"
                             for i in range(8)))
    args = ["train", "--pairs", str(pairs), "--model", str(tiny_lm_path), "--config", str(recipe), "--batch-size", "2",
            "--out", str(tmp_path / "run")]
    original = DPOTrainer._save_checkpoint
    saves: list[int] = []

    def killed_on_second_save(self: DPOTrainer, *a: object, **k: object) -> None:
        saves.append(1)
        original(self, *a, **k)
        if len(saves) == 2:  # checkpoint-2 written, then cut short as a kill would leave it
            weights = Path(self.args.output_dir) / "checkpoint-2" / "adapter_model.safetensors"
            weights.write_bytes(weights.read_bytes()[:100])
            raise KeyboardInterrupt

    monkeypatch.setattr(DPOTrainer, "_save_checkpoint", killed_on_second_save)
    assert runner.invoke(app, args).exit_code == 130
    checkpoints = tmp_path / ".run.partial" / "work" / "round-1" / "checkpoints"
    assert sorted(path.name for path in checkpoints.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]

    monkeypatch.setattr(DPOTrainer, "_save_checkpoint", original)
    result = runner.invoke(app, [*args, "--resume", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert any("resumed from checkpoint-1" in note for note in summary["notes"])
    assert summary["metrics"]["rounds"][0]["training"]["steps"] == 4


# ---- validation before anything is created ---------------------------------------------------------------

@pytest.mark.parametrize(("toml", "message"), [
    ('[train]\nsamples = true\n', "samples must be an integer, got True"),
    ('[train]\nlanguages = 5\n', "languages must be a list of strings, got 5"),
    ('[train]\ndevice = ["a"]\n', "device must be a string, got ['a']"),
    ('[train]\nseed = -1\n', "seed must be at least 0, got -1"),
    ('[train]\ntemperature = nan\n', "temperature must be a finite number, got nan"),
    ('[train]\nbatch_size = 99999999999\n', "batch_size must be at most 2147483647"),
    ('[train]\ndevice = "bogus"\n', "unknown device 'bogus'"),
    ("train = 5\n", "train must be a table"),
])
def test_bad_config_values(tmp_path: Path, toml: str, message: str) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(PAIR) + "\n")
    (tmp_path / "bad.toml").write_text(toml)
    before = snapshot(tmp_path)
    line = one_line_exit_2(["train", "--pairs", str(pairs), "--config", str(tmp_path / "bad.toml"), "--model",
                            str(tmp_path / "no-model"), "--out", str(tmp_path / "o")])
    assert message in line and "bad.toml" in line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--device", "bogus", "unknown device 'bogus'; use auto, cpu, cuda, cuda:N or mps"),
    ("--device", "cuda:x", "unknown device 'cuda:x'"),
    ("--dtype", "float8", "unknown dtype 'float8'"),
])
def test_bad_device_or_dtype_creates_nothing(tmp_path: Path, tiny_lm_path: Path, flag: str, value: str,
                                             message: str) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(PAIR) + "\n")
    before = snapshot(tmp_path)
    line = one_line_exit_2(["train", "--pairs", str(pairs), "--model", str(tiny_lm_path), flag, value, "--out",
                            str(tmp_path / "o")])
    assert message in line and snapshot(tmp_path) == before
