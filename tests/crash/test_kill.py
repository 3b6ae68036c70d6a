"""kill -9 during `index` (new and incremental), `train` and `eval`: the next run finds the last good state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.crash.conftest import kill_after, kill_when, run_cli
from tests.training.conftest import FAST_RECIPE, write_dataset

DELAYS = (2.0, 6.0)
"""Seconds after the start at which the command is killed: in start-up and loading, and during the work (a
command that finishes first is fine too: the state must then be the finished one)."""


def corpus(folder: Path, texts: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{n}", "text": text, "lang": "en"}) + "\n"
                            for n, text in enumerate(texts)), encoding="utf-8")
    return path


def search_ids(tmp_path: Path) -> set[str] | None:
    result = run_cli(["search", "capital city", "--index", "kb", "--top-k", "200", "--json"], tmp_path)
    if result.returncode != 0:
        assert "Traceback" not in result.stderr, result.stderr
        return None
    return {hit["id"].split("#")[0] for hit in json.loads(result.stdout)["results"]}


@pytest.mark.parametrize("delay", DELAYS)
def test_index_killed_new_or_updated(delay: float, tmp_path: Path, tiny_embedder_path: Path) -> None:
    first = [f"Paris is the capital city of France, number {n}." for n in range(30)]
    docs = corpus(tmp_path / "data", first)
    build = ["index", str(docs), "--name", "kb", "--embedder", str(tiny_embedder_path)]
    finished = kill_after(build, tmp_path, delay)
    assert search_ids(tmp_path) in (None, {f"d{n}" for n in range(30)}) or finished == 0
    assert run_cli(build, tmp_path).returncode == 0  # a rerun finishes what the killed one left
    assert search_ids(tmp_path) == {f"d{n}" for n in range(30)}

    corpus(tmp_path / "data", first + [f"Berlin is the capital city of Germany, number {n}." for n in range(30)])
    finished = kill_after(["index", "--name", "kb"], tmp_path, delay)  # an incremental update, killed
    after = search_ids(tmp_path)
    assert after in ({f"d{n}" for n in range(30)}, {f"d{n}" for n in range(60)}), after  # old or new, never broken
    assert run_cli(["index", "--name", "kb"], tmp_path).returncode == 0
    assert search_ids(tmp_path) == {f"d{n}" for n in range(60)}


def test_train_killed_then_resumed(tmp_path: Path, tiny_lm_path: Path) -> None:
    recipe = tmp_path / "fast.toml"
    recipe.write_text(FAST_RECIPE.replace("save_steps = 100", "save_steps = 1"), encoding="utf-8")
    data = write_dataset(tmp_path / "data", questions=8)
    argv = ["train", str(data), "--split", "train", "--mode", "direct", "--samples", "2", "--min-margin", "0",
            "--model", str(tiny_lm_path), "--config", str(recipe), "--out", str(tmp_path / "run"), "--epochs", "3"]
    # Killed in DPO, once its first checkpoint is written (a fixed delay raced the end of the run on a fast CPU:
    # killed after the run was already published, which is a finished run, not a half-published one).
    checkpoints = tmp_path / ".run.partial" / "work" / "round-1" / "checkpoints"
    finished = kill_when(argv, tmp_path, lambda: any(checkpoints.glob("checkpoint-*")))
    if finished is None:
        assert not (tmp_path / "run" / "adapter_model.safetensors").exists()  # nothing half-published
    result = run_cli([*argv, "--resume"] if finished is None else argv + ["--overwrite"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "adapter_model.safetensors").is_file()
    json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))


def test_train_killed_while_sampling_keeps_the_finished_chunks(tmp_path: Path, tiny_lm_path: Path) -> None:
    recipe = tmp_path / "fast.toml"
    recipe.write_text(FAST_RECIPE, encoding="utf-8")
    data = write_dataset(tmp_path / "data", questions=10)
    argv = ["train", str(data), "--split", "train", "--mode", "direct", "--samples", "2", "--min-margin", "0",
            "--model", str(tiny_lm_path), "--config", str(recipe), "--out", str(tmp_path / "run"),
            "--sample-chunk", "1"]
    round_dir = tmp_path / ".run.partial" / "work" / "round-1"
    chunks = round_dir / "samples.chunks"
    assert kill_when(argv, tmp_path, lambda: (chunks / "0000.jsonl").is_file()) is None
    assert not (round_dir / "samples.jsonl").exists(), "sampling finished before the kill: nothing to resume"
    kept = sorted(chunks.glob("*.jsonl"))
    assert kept and [path.name for path in kept] == [f"{n:04d}.jsonl" for n in range(len(kept))]
    finished = [json.loads(path.read_text(encoding="utf-8")) for path in kept]
    for number, record in enumerate(finished):  # every chunk whole: its question, every language, both samples
        assert record["id"] == f"q{number}" and [len(items) for items in record["languages"].values()] == [2, 2, 2]

    result = run_cli([*argv, "--resume", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    reused = len(kept)
    assert f"round 1: reused {reused} sampled chunk{'s' if reused > 1 else ''}" in summary["notes"]
    samples = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert [record["id"] for record in samples] == [f"q{n}" for n in range(10)]
    assert samples[:reused] == finished


@pytest.mark.parametrize("delay", (7.0,))
def test_eval_killed_then_rerun_reuses_what_finished(delay: float, tmp_path: Path, tiny_lm_path: Path) -> None:
    data = write_dataset(tmp_path / "data", questions=40)
    out = tmp_path / "report"
    argv = ["eval", str(data), "--split", "train", "--languages", "en,de,zh", "--model", str(tiny_lm_path),
            "--batch-size", "4", "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--json"]
    kill_after(argv, tmp_path, delay)
    if (out / "report.json").exists():
        json.loads((out / "report.json").read_text(encoding="utf-8"))  # whole, or not there at all
    result = run_cli(argv, tmp_path)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["n_questions"] == 40
    assert payload["timings"]["questions_cached"] + payload["timings"]["questions_answered"] == 40
