"""`calm-rag eval` on open-question datasets end to end on the tiny random LM and the tiny embedder: routing,
the JSON keys, report files, resume, XQuAD-R's layout, retrieval, the base comparison, flags of the
wrong kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.generation.transformers_engine import TransformersGenerator
from tests.evaluation.conftest import QueryRecordingIndex, record_prompts, write_open_dataset

runner = CliRunner()
REQUIRED = ("accuracy_by_language", "exact_match_by_language", "mean_accuracy", "mean_exact_match", "vote_accuracy",
            "vote_exact_match", "consistency", "parse_rate_by_language", "n_questions", "abstained", "model",
            "adapter", "mode", "embedder", "threshold", "timings", "cache")
QUESTIONS = {
    "en": [("o1", "What is the capital of France?", "Paris"), ("o2", "How tall is the Eiffel Tower?", "330 m"),
           ("o3", "Who wrote Faust?", "Goethe")],
    "de": [("o1", "Was ist die Hauptstadt Frankreichs?", "Paris"), ("o2", "Wie hoch ist der Eiffelturm?", "330 Meter"),
           ("o3", "Wer schrieb Faust?", "Goethe")],
}


@pytest.fixture
def open_data(tmp_path: Path) -> Path:
    return write_open_dataset(tmp_path / "open", QUESTIONS)


@pytest.fixture
def xquad(tmp_path: Path) -> Path:
    folder = tmp_path / "xquad_r"
    folder.mkdir()
    rows = [{"qid": f"{lang}|{qid}", "lang": lang, "squad_id": qid, "para_id": "0|0", "question": question,
             "answer": answer} for lang, items in QUESTIONS.items() for qid, question, answer in items]
    (folder / "queries.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")
    return folder


@pytest.fixture
def prompts_seen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every prompt the generator generates for."""
    return record_prompts(monkeypatch, "generate")


def run_eval(data: Path, model: Path, embedder: Path, *args: Any) -> Any:
    return runner.invoke(app, ["eval", str(data), "--model", str(model), "--embedder", str(embedder),
                               "--languages", "en,de", "--max-new-tokens", "6", *map(str, args)])


def eval_json(*args: Any) -> dict[str, Any]:
    result = run_eval(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_report_and_resume(open_data: Path, tiny_lm_path: Path, tiny_embedder_path: Path, tmp_path: Path,
                                prompts_seen: list[str]) -> None:
    cache = tmp_path / "cache"
    payload = eval_json(open_data, tiny_lm_path, tiny_embedder_path, "--cache-dir", cache)
    assert all(key in payload for key in REQUIRED) and "letters" not in payload
    assert payload["mode"] == "open" and payload["n_questions"] == 3 and payload["split"] is None
    assert payload["embedder"] == str(tiny_embedder_path) and payload["threshold"] == 0.8
    assert set(payload["accuracy_by_language"]) == set(payload["exact_match_by_language"]) == {"en", "de"}
    assert all(0.0 <= rate <= 1.0 for rate in payload["parse_rate_by_language"].values())
    assert payload["timings"]["questions_answered"] == 3 and payload["timings"]["prompts"] == 6
    glossing = [prompt for prompt in prompts_seen if "Translate the following" in prompt]
    sampled = [prompt for prompt in prompts_seen if prompt.endswith("<|im_start|>assistant\n") and prompt not in glossing]
    continued = [prompt for prompt in prompts_seen if prompt not in sampled and prompt not in glossing]
    assert len(sampled) == 6 and any("Wer schrieb Faust?" in prompt for prompt in sampled)
    assert all(prompt.endswith(("Answer:", "Antwort:")) for prompt in continued)  # spans asked for, never more

    prompts_seen.clear()
    again = eval_json(open_data, tiny_lm_path, tiny_embedder_path, "--cache-dir", cache, "--threshold", 0.5)
    assert prompts_seen == [] and again["timings"]["questions_answered"] == 0  # rescored from the cache
    assert again["timings"]["questions_cached"] == 3 and again["threshold"] == 0.5
    assert again["parse_rate_by_language"] == payload["parse_rate_by_language"]

    eval_json(open_data, tiny_lm_path, tiny_embedder_path, "--cache-dir", cache, "--samples", 2)
    sampled = [prompt for prompt in prompts_seen
               if prompt.endswith("<|im_start|>assistant\n") and "Translate the following" not in prompt]
    assert len(sampled) == 12  # other settings: another cache file, all sampled (2 per language)
    assert len(list(cache.glob("*.jsonl"))) == 2

    prompts_seen.clear()
    own = eval_json(open_data, tiny_lm_path, tiny_embedder_path, "--cache-dir", cache, "--no-continue-spans")
    assert own["timings"]["questions_answered"] == 3  # the stored spans were continued: not reused without
    assert all(prompt.endswith("<|im_start|>assistant\n") for prompt in prompts_seen)  # and none is continued
    assert len(list(cache.glob("*.jsonl"))) == 3
    assert all(0.0 <= rate <= 1.0 for rate in own["short_span_rate_by_language"].values())


def test_table_output_and_report_files(open_data: Path, tiny_lm_path: Path, tiny_embedder_path: Path,
                                       tmp_path: Path) -> None:
    from matplotlib.image import imread

    out = tmp_path / "report"
    result = run_eval(open_data, tiny_lm_path, tiny_embedder_path, "--limit", 2, "--out", out,
                      "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert "cross-lingual vote (exact)" in result.stdout and "answer letters" not in result.stdout
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["n_questions"] == 2 and report["mode"] == "open"
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "| en |" in text and "exact match" in text and "semantic match" in text
    assert (out / "report.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    image = imread(out / "report.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_xquad_r_layout_with_an_index(xquad: Path, tiny_lm_path: Path, tiny_embedder_path: Path, tmp_path: Path,
                                      prompts_seen: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    index = QueryRecordingIndex()
    monkeypatch.setattr("calm_rag.evaluation.open_harness.open_index", lambda config, settings: index)
    payload = eval_json(xquad, tiny_lm_path, tiny_embedder_path, "--index", "xquad", "--top-k", 1, "--limit", 2,
                        "--cache-dir", tmp_path / "cache")
    assert payload["n_questions"] == 2 and payload["index"] == "xquad" and payload["top_k"] == 1
    assert index.queries == ["What is the capital of France?", "Was ist die Hauptstadt Frankreichs?",
                             "How tall is the Eiffel Tower?", "Wie hoch ist der Eiffelturm?"]
    assert any("PASSAGE FOR Wie hoch" in p and "Wie hoch ist der Eiffelturm?" in p for p in prompts_seen)


def test_compare_to_base(open_data: Path, tiny_lm_path: Path, tiny_embedder_path: Path, tiny_adapter: Path,
                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Any] = []
    original = TransformersGenerator.load.__func__  # type: ignore[attr-defined]

    def counting(cls: type[TransformersGenerator], *args: Any, **kwargs: Any) -> TransformersGenerator:
        loads.append(kwargs.get("adapter"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(TransformersGenerator, "load", classmethod(counting))
    out = tmp_path / "report"
    payload = eval_json(open_data, tiny_lm_path, tiny_embedder_path, "--adapter", tiny_adapter, "--compare-to",
                        "base", "--limit", 2, "--out", out, "--cache-dir", out / "cache")
    assert len(loads) == 1
    assert payload["adapter"] == str(tiny_adapter) and payload["baseline"]["adapter"] is None
    base, delta = payload["baseline"], payload["delta"]
    for key in ("accuracy_by_language", "exact_match_by_language"):
        assert delta[key]["de"] == pytest.approx(payload[key]["de"] - base[key]["de"])
    assert delta["vote_exact_match"] == pytest.approx(payload["vote_exact_match"] - base["vote_exact_match"])
    assert len(list((out / "cache").glob("*.jsonl"))) == 2
    assert "Δ exact" in (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("extra", "message"), [
    (("--permute",), ("holds open questions (no choices), and these options are for multiple-choice datasets only: "
                      "--permute/--no-permute")),
    (("--mode", "direct", "--balanced"), "multiple-choice datasets only: --mode, --balanced/--unbalanced"),
    (("--threshold", "3"), "threshold must be in [-1, 1]"),
    (("--split", "test"), "unknown split 'test'"),
    (("--languages", "en,fr"), "has no fr questions; it has: de, en"),
    (("--compare-to", "base"), "needs --adapter"),
    (("--dev", "1"), "multiple-choice datasets only: --dev"),
])
def test_bad_input_is_one_line_and_exit_2(xquad: Path, tiny_lm_path: Path, tiny_embedder_path: Path,
                                          tmp_path: Path, extra: tuple[str, ...], message: str) -> None:
    result = run_eval(xquad, tiny_lm_path, tiny_embedder_path, "--cache-dir", tmp_path / "cache", *extra)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_open_only_flags_are_refused_for_multiple_choice(dataset: Path, tiny_lm_path: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", str(dataset), "--model", str(tiny_lm_path), "--threshold", "0.7",
                                 "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 2
    assert "holds multiple-choice questions, and these options are for open-question datasets only: --threshold" \
        in result.stderr
