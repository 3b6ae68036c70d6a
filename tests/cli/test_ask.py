import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from calm_rag.cli import app

runner = CliRunner()
CHOICES = ["--choice", "Blumenbeet", "--choice", "Florida Keys", "--choice", "Gezeitenbecken",
           "--choice", "Korallenmeer", "--choice", "Aquarium"]


def test_ask_end_to_end_json(tiny_lm_path: Path) -> None:
    result = runner.invoke(app, ["ask", "Wo im Osten der USA findet man eine Anemone?", "--lang", "de", *CHOICES,
                                 "--languages", "en,zh,de", "--samples", "2", "--model", str(tiny_lm_path),
                                 "--max-new-tokens", "12", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    for key in ("answer", "answer_text", "explanation", "lang", "votes", "distribution", "consistency", "languages",
                "model", "sources"):
        assert key in answer
    assert answer["lang"] == "de" and answer["languages"] == ["en", "zh", "de"]
    assert {lang: len(votes) for lang, votes in answer["votes"].items()} == {"en": 2, "zh": 2, "de": 2}
    assert answer["abstained"] == (answer["answer"] is None)
    if answer["distribution"]:
        assert abs(sum(answer["distribution"].values()) - 1) < 1e-6


def test_ask_direct_mode_always_answers(tiny_lm_path: Path) -> None:
    result = runner.invoke(app, ["ask", "Wo findet man eine Anemone?", "--lang", "de", *CHOICES, "--languages",
                                 "en,de", "--samples", "1", "--mode", "direct", "--model", str(tiny_lm_path),
                                 "--max-new-tokens", "8"])
    assert result.exit_code == 0, result.output
    assert "Cross-lingual vote" in result.stdout and "Answer (de)" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["ask", "Frage?", "--lang", "xx", *CHOICES], "unknown language code 'xx'"),
    (["ask", "Frage?", "--lang", "de", "--choice", "nur eine"], "at least 2 choices"),
    (["ask", "  ", "--lang", "de", *CHOICES], "question is empty"),
    (["ask", "Frage?", "--lang", "de", *CHOICES, "--languages", "en,qq"], "unknown language code 'qq'"),
    (["ask", "Frage?", "--lang", "de", *CHOICES, "--model", "/no/such/model"], "/no/such/model"),
    (["ask", "Frage?", "--lang", "de", *CHOICES, "--mode", "fast"], "unknown mode"),
])
def test_ask_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_model_without_chat_template_is_a_clear_error(tmp_path: Path) -> None:
    from calm_rag.testing.tiny_lm import build_tiny_causal_lm

    base = build_tiny_causal_lm(tmp_path / "base", chat_template=False)
    args = ["ask", "Frage?", "--lang", "de", *CHOICES, "--languages", "de", "--samples", "1", "--model", str(base),
            "--max-new-tokens", "4", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "no chat template" in result.output
    assert runner.invoke(app, [*args, "--plain-prompts"]).exit_code == 0


def test_open_question_without_choices(tiny_lm_path: Path, tiny_embedder_path: Path) -> None:
    result = runner.invoke(app, ["ask", "Wie hoch ist der Eiffelturm?", "--lang", "de", "--languages", "en,de",
                                 "--samples", "2", "--model", str(tiny_lm_path), "--embedder", str(tiny_embedder_path),
                                 "--max-new-tokens", "8", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert {"answer", "clusters", "consistency", "sources", "abstained"} <= set(answer)
    assert answer["lang"] == "de" and answer["languages"] == ["en", "de"]
    for cluster in answer["clusters"]:
        assert {"representative", "members", "support"} <= set(cluster)
    table = runner.invoke(app, ["ask", "Wie hoch ist der Eiffelturm?", "--lang", "de", "--languages", "en,de",
                                "--samples", "1", "--model", str(tiny_lm_path), "--embedder", str(tiny_embedder_path),
                                "--max-new-tokens", "8"])
    assert table.exit_code == 0 and "Answer clusters across languages" in table.stdout


def test_open_question_bad_threshold(tiny_lm_path: Path) -> None:
    result = runner.invoke(app, ["ask", "Wie hoch?", "--lang", "de", "--threshold", "3", "--model", str(tiny_lm_path)])
    assert result.exit_code == 2 and "threshold" in result.output


@pytest.mark.parametrize(("flags", "expected"), [
    ([], (True, False, True)),
    (["--no-continue-spans", "--constrain-spans", "--no-gloss-spans"], (False, True, False)),
])
def test_open_span_flags_reach_the_pipeline(monkeypatch: pytest.MonkeyPatch, flags: list[str],
                                            expected: tuple[bool, bool, bool]) -> None:
    from calm_rag.errors import CalmRagError
    from calm_rag.pipelines.qa import CalmQA, QAConfig

    seen: list[QAConfig] = []

    def capture(config: QAConfig) -> CalmQA:
        seen.append(config)
        raise CalmRagError("stopped after reading the settings")

    monkeypatch.setattr(CalmQA, "from_config", capture)
    result = runner.invoke(app, ["ask", "Wie hoch ist der Eiffelturm?", "--lang", "de", *flags])
    assert result.exit_code == 2 and "stopped after reading the settings" in result.output
    [config] = seen
    assert (config.continue_spans, config.constrain_spans, config.gloss_spans) == expected
