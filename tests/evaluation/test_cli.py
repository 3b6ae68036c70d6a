"""`calm-rag eval` end to end on a tiny random model: output, reports, resume, comparison, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.generation.transformers_engine import TransformersGenerator
from tests.evaluation.conftest import QueryRecordingIndex, record_prompts

runner = CliRunner()
LANGUAGES = ("en", "de", "fr")
REQUIRED = ("accuracy_by_language", "mean_accuracy", "vote_accuracy", "consistency", "parse_rate_by_language",
            "n_questions", "model", "adapter", "mode", "letters", "timings")


def run_eval(*args: Any) -> Any:
    return runner.invoke(app, ["eval", *map(str, args)])


def eval_json(*args: Any) -> dict[str, Any]:
    result = run_eval(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def prompts_seen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every prompt the generator scores (direct mode)."""
    return record_prompts(monkeypatch, "label_distributions")


def test_json_report_has_the_promised_fields(dataset: Path, tiny_model: Path, tmp_path: Path,
                                              prompts_seen: list[str]) -> None:
    payload = eval_json(dataset, "--model", tiny_model, "--languages", ",".join(LANGUAGES),
                        "--cache-dir", tmp_path / "cache")
    assert all(key in payload for key in REQUIRED)
    assert payload["n_questions"] == 3 and payload["mode"] == "direct" and payload["adapter"] is None
    assert payload["permute"] is False and payload["split"] == "test"
    assert set(payload["accuracy_by_language"]) == set(LANGUAGES)
    assert payload["parse_rate_by_language"] == {lang: 1.0 for lang in LANGUAGES}  # direct mode always answers
    assert sum(payload["letters"]["overall"].values()) == 3 * len(LANGUAGES)
    assert payload["letters"]["gold"] == {"A": 1, "B": 1, "C": 1}
    assert payload["timings"]["prompts"] == 9 and payload["timings"]["load_s"] >= 0
    assert len(prompts_seen) == 9  # 3 questions x 3 languages, no permutation copies
    assert any("Wo schläft man?" in prompt for prompt in prompts_seen)


def test_table_output_and_report_files(dataset: Path, tiny_model: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    out = tmp_path / "report"
    result = run_eval(dataset, "--model", tiny_model, "--languages", "en,de", "--limit", 2, "--out", out)
    assert result.exit_code == 0, result.output
    assert "cross-lingual vote" in result.stdout and "consistency" in result.stdout
    assert json.loads((out / "report.json").read_text())["n_questions"] == 2
    assert "| en |" in (out / "report.md").read_text()
    png = (out / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = imread(out / "report.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert list((tmp_path / "eval").glob("*.jsonl"))  # the default cache: beside the (isolated) model cache


def test_resume_generates_only_the_missing_items(dataset: Path, tiny_model: Path, tmp_path: Path,
                                                 prompts_seen: list[str]) -> None:
    args = (dataset, "--model", tiny_model, "--languages", "en,de,fr", "--cache-dir", tmp_path / "cache")
    first = eval_json(*args)
    assert len(prompts_seen) == 9
    cache_file = next((tmp_path / "cache").glob("*.jsonl"))
    lines = cache_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3

    prompts_seen.clear()
    again = eval_json(*args)
    assert prompts_seen == []  # everything came from the cache
    assert again["timings"]["questions_cached"] == 3
    assert again["accuracy_by_language"] == first["accuracy_by_language"]

    cache_file.write_text("\n".join(lines[:2]) + "\n" + lines[2][:25], encoding="utf-8")  # killed mid-write
    prompts_seen.clear()
    resumed = eval_json(*args)
    assert len(prompts_seen) == 3  # only the torn item, in its 3 languages
    assert resumed["letters"] == first["letters"] and resumed["consistency"] == first["consistency"]

    prompts_seen.clear()
    eval_json(*args, "--fresh")
    assert len(prompts_seen) == 9
    prompts_seen.clear()
    eval_json(*args, "--permute", "--samples", 2)  # other settings: another cache file, all answered
    assert len(prompts_seen) == 18


def ballots(cache: Path, adapter: bool) -> list[float]:
    """Every letter probability stored in the cache file of the adapter (or the base) run, in order."""
    [meta] = [path for path in cache.glob("*.meta.json")
              if (json.loads(path.read_text())["adapter"] is not None) == adapter]
    records = [json.loads(line) for line in meta.with_name(meta.name.replace(".meta.json", ".jsonl")).open()]
    return [p for record in records for lang in sorted(record["ballots"]) for ballot in record["ballots"][lang]
            for _, p in sorted(ballot.items())]


def test_compare_to_base_loads_once_and_reports_deltas(dataset: Path, tiny_model: Path, tiny_adapter: Path,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Any] = []
    original = TransformersGenerator.load.__func__  # type: ignore[attr-defined]

    def counting(cls: type[TransformersGenerator], *args: Any, **kwargs: Any) -> TransformersGenerator:
        loads.append(kwargs.get("adapter"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(TransformersGenerator, "load", classmethod(counting))
    out = tmp_path / "report"
    payload = eval_json(dataset, "--model", tiny_model, "--adapter", tiny_adapter, "--compare-to", "base",
                        "--languages", "en,de", "--out", out, "--cache-dir", out / "cache")
    assert len(loads) == 1
    assert payload["adapter"] == str(tiny_adapter) and payload["baseline"]["adapter"] is None
    base, delta = payload["baseline"], payload["delta"]
    for lang in ("en", "de"):
        assert delta["accuracy_by_language"][lang] == pytest.approx(
            payload["accuracy_by_language"][lang] - base["accuracy_by_language"][lang])
    assert delta["mean_accuracy"] == pytest.approx(payload["mean_accuracy"] - base["mean_accuracy"])
    assert len(list((out / "cache").glob("*.jsonl"))) == 2  # base and adapter answers are cached apart
    assert "Δ" in (out / "report.md").read_text()
    assert [item["id"] for item in payload["per_question"]] == [item["id"] for item in base["per_question"]]
    low, high = delta["ci95"]["mean_accuracy"]
    assert low <= delta["mean_accuracy"] <= high
    assert "95% interval" in (out / "report.md").read_text()

    plain = eval_json(dataset, "--model", tiny_model, "--languages", "en,de", "--cache-dir", tmp_path / "plain")
    assert plain["letters"] == base["letters"]  # disable_adapter() is the base model
    alone = eval_json(dataset, "--model", tiny_model, "--adapter", tiny_adapter, "--languages", "en,de",
                      "--cache-dir", tmp_path / "alone")
    assert alone["letters"] == payload["letters"]
    # the adapter merged for its run after the base run answers like the adapter merged at load
    assert ballots(tmp_path / "alone", adapter=True) == pytest.approx(ballots(out / "cache", adapter=True), abs=1e-4)
    assert ballots(out / "cache", adapter=True) != pytest.approx(ballots(out / "cache", adapter=False), abs=1e-4)

    against_file = eval_json(dataset, "--model", tiny_model, "--adapter", tiny_adapter, "--languages", "en,de",
                             "--compare-to", out / "report.json", "--cache-dir", out / "cache")
    assert against_file["baseline"]["label"] == str(out / "report.json")


def test_index_gives_each_language_its_own_passages(dataset: Path, tiny_model: Path, tmp_path: Path,
                                                    prompts_seen: list[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    index = QueryRecordingIndex()
    monkeypatch.setattr("calm_rag.evaluation.choice_harness.open_index", lambda config, settings: index)
    payload = eval_json(dataset, "--model", tiny_model, "--languages", "en,de", "--index", "wiki", "--top-k", 1,
                        "--limit", 1, "--cache-dir", tmp_path / "cache")
    assert payload["index"] == "wiki" and payload["top_k"] == 1
    assert index.queries == ["What do you drink?", "Was trinkt man?"]
    assert any("PASSAGE FOR Was trinkt man?" in p and "Was trinkt man?" in p for p in prompts_seen)


def test_cot_mode_runs_and_counts_unparsed_answers(dataset: Path, tiny_model: Path, tmp_path: Path) -> None:
    args = (dataset, "--model", tiny_model, "--languages", "en,de", "--limit", 1, "--mode", "cot",
            "--max-new-tokens", 3, "--cache-dir", tmp_path / "cache")
    payload = eval_json(*args)
    assert payload["mode"] == "cot" and payload["n_questions"] == 1 and payload["continue_letters"] is True
    # the random model writes no answer line in 3 tokens: every letter is read after the answer label
    assert payload["parse_rate_by_language"] == {"en": 1.0, "de": 1.0}
    assert payload["continued_by_language"] == {"en": 1.0, "de": 1.0}
    off = eval_json(*args, "--no-continue-letters")
    assert off["parse_rate_by_language"] == {"en": 0.0, "de": 0.0} and off["continue_letters"] is False
    caches = sorted((tmp_path / "cache").glob("*.jsonl"))
    assert len(caches) == 2  # the switch is part of the cache key: the runs never share answers
    sources = {json.dumps(json.loads(path.read_text(encoding="utf-8"))["letter_sources"]) for path in caches}
    assert sources == {json.dumps({"en": ["continuation"], "de": ["continuation"]}),
                       json.dumps({"en": [None], "de": [None]})}


def test_config_file_sets_defaults_and_flags_win(dataset: Path, tiny_model: Path, tmp_path: Path) -> None:
    toml = tmp_path / "eval.toml"
    toml.write_text('[eval]\nlanguages = "en,fr"\nsplit = "all"\n', encoding="utf-8")
    payload = eval_json(dataset, "--model", tiny_model, "--config", toml, "--limit", 2,
                        "--cache-dir", tmp_path / "cache")
    assert payload["languages"] == ["en", "fr"] and payload["split"] is None and payload["n_questions"] == 2


def test_dev_evaluates_the_questions_train_holds_out(dataset: Path, tiny_model: Path, tmp_path: Path) -> None:
    from calm_rag.data.dev_split import split_dev
    from calm_rag.data.parallel import load_parallel_dataset

    held = [question.id for question in split_dev(load_parallel_dataset(dataset, ("en", "de"), "test", None), 2)[1]]
    common = (dataset, "--model", tiny_model, "--languages", "en,de", "--cache-dir", tmp_path / "cache")
    payload = eval_json(*common, "--dev", 2, "--out", tmp_path / "dev")
    assert [row["id"] for row in payload["per_question"]] == held and len(held) == 2
    assert payload["n_questions"] == 2 and payload["dev_questions"] == 2
    assert "held out by --dev 2" in (tmp_path / "dev" / "report.md").read_text(encoding="utf-8")

    first_two = eval_json(*common, "--limit", 2, "--out", tmp_path / "limited")  # as many questions, not the same
    assert first_two["dev_questions"] is None
    result = run_eval(*common, "--dev", 2, "--compare-to", tmp_path / "limited" / "report.json")
    assert result.exit_code == 2 and "differs in dev_questions" in result.stderr
    assert eval_json(*common, "--dev", 2, "--compare-to", tmp_path / "dev" / "report.json")["delta"]


@pytest.mark.parametrize(("extra", "message"), [
    (("--split", "dev"), "unknown split 'dev'"),
    (("--languages", "en,ja"), "has no ja file"),
    (("--limit", "0"), "--limit must be a positive integer"),
    (("--languages", "en,xx"), "unknown language code 'xx'"),
    (("--samples", "3"), "add --permute"),
    (("--dev", "3"), "--dev 3 would hold out all 3 selected questions"),
    (("--compare-to", "base"), "needs --adapter"),
    (("--compare-to", "missing.json"), "cannot read baseline report"),
    (("--adapter", "runs/no-such-adapter"), "adapter runs/no-such-adapter not found"),
    (("--adapter", str(Path(__file__).parent)), "is not a LoRA adapter folder"),
])
def test_bad_input_is_one_line_and_exit_2(dataset: Path, tiny_model: Path, tmp_path: Path,
                                          extra: tuple[str, ...], message: str) -> None:
    result = run_eval(dataset, "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--languages", "en,de",
                      *extra)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_mismatched_parallel_files_are_refused(tmp_path: Path, tiny_model: Path,
                                               make_dataset: Callable[..., Path]) -> None:
    data = make_dataset(tmp_path / "data")
    lines = (data / "de.jsonl").read_text(encoding="utf-8").splitlines()
    (data / "de.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    result = run_eval(data, "--model", tiny_model, "--languages", "en,de", "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 2 and "not parallel" in result.stderr
