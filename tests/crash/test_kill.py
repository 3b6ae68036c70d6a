"""kill -9 during `index` (new and incremental), `train` and `eval`: the next run finds the last good state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.crash.conftest import kill_after, run_cli
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


@pytest.mark.parametrize("delay", (9.0,))
def test_train_killed_then_resumed(delay: float, tmp_path: Path, tiny_lm_path: Path) -> None:
    recipe = tmp_path / "fast.toml"
    recipe.write_text(FAST_RECIPE.replace("save_steps = 100", "save_steps = 1"), encoding="utf-8")
    data = write_dataset(tmp_path / "data", questions=8)
    argv = ["train", str(data), "--split", "train", "--mode", "direct", "--samples", "2", "--min-margin", "0",
            "--model", str(tiny_lm_path), "--config", str(recipe), "--out", str(tmp_path / "run"), "--epochs", "3"]
    finished = kill_after(argv, tmp_path, delay)
    if finished is None:
        assert not (tmp_path / "run" / "adapter_model.safetensors").exists()  # nothing half-published
    result = run_cli([*argv, "--resume"] if finished is None else argv + ["--overwrite"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "adapter_model.safetensors").is_file()
    json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))


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
