import json
from pathlib import Path

from typer.testing import CliRunner

from calm_rag.cli import app

runner = CliRunner()
CHOICES = {"en": ["town", "hospital", "school"], "de": ["Stadt", "Krankenhaus", "Schule"], "zh": ["镇", "医院", "学校"]}


def record(qid: str, lang: str, responses: list[str], answer: str | None = "B") -> dict:
    item = {"id": qid, "lang": lang, "question": f"{qid}?",
            "choices": [{"label": "ABC"[i], "text": t} for i, t in enumerate(CHOICES[lang])], "responses": responses}
    if answer:
        item["answer"] = answer
    return item


def write(path: Path, records: list, extra_lines: list[str] = ()) -> Path:
    path.write_text("\n".join([json.dumps(r, ensure_ascii=False) for r in records] + list(extra_lines)) + "\n",
                    encoding="utf-8")
    return path


RECORDS = [
    record("q1", "en", ["Answer: B", "Answer: B", "Answer: A"]),
    record("q1", "de", ["Antwort: A", "Antwort: A", "kaputt"]),
    record("q1", "zh", ["答案：B", "医院", "答案：C"]),
    record("q2", "en", ["Answer: C", "Answer: C", "Answer: C"], answer="C"),
    record("q2", "de", ["Antwort: C", "Antwort: C", "Antwort: C"], answer="C"),
    record("q2", "zh", ["答案：C", "答案：C", "答案：C"], answer="C"),
]


def test_vote_report_and_pairs(tmp_path: Path) -> None:
    samples = write(tmp_path / "samples.jsonl", RECORDS)
    pairs_file = tmp_path / "pairs.jsonl"
    result = runner.invoke(app, ["vote", str(samples), "--pairs-out", str(pairs_file), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["questions"] == 2
    assert report["vote_accuracy"] == 1.0  # q1: B has 4 votes of 8 parsed; q2: C
    assert report["accuracy_by_language"] == {"en": 1.0, "de": 0.5, "zh": 1.0}
    assert report["parse_rate_by_language"]["de"] == 5 / 6
    assert report["consistency"] == (1 / 3 + 1.0) / 2
    # q1 disagreeing parsed responses: en A; de A, A; zh C -> 4 pairs; the German ones need translation
    assert report["pairs_by_language"] == {"en": 1, "de": 2, "zh": 1}
    assert report["translated_by_language"] == {"en": 0.0, "de": 1.0, "zh": 0.0}
    assert report["pairs_written"] == 2 and report["pairs_pending_translation"] == 2
    rows = [json.loads(line) for line in pairs_file.read_text(encoding="utf-8").splitlines()]
    assert [(row["lang"], row["majority"], row["translated"]) for row in rows] == [("en", "B", False), ("zh", "B", False)]
    assert rows[1]["chosen"][0]["content"].endswith("答案：B) 医院")


def test_vote_language_filter_and_table(tmp_path: Path) -> None:
    samples = write(tmp_path / "samples.jsonl", RECORDS)
    result = runner.invoke(app, ["vote", str(samples), "--languages", "en,zh"])
    assert result.exit_code == 0, result.output
    assert "Vote accuracy 100.0%" in result.stdout


def test_malformed_line_stops_with_its_number_or_is_skipped(tmp_path: Path) -> None:
    samples = write(tmp_path / "samples.jsonl", RECORDS, ["{not json"])
    result = runner.invoke(app, ["vote", str(samples), "--json"])
    assert result.exit_code == 2 and "samples.jsonl:7" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["vote", str(samples), "--json", "--on-error", "skip"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["skipped_lines"][0].endswith("samples.jsonl:7: not valid JSON (Expecting property name enclosed in double quotes)")


def test_duplicate_id_lang_is_an_error(tmp_path: Path) -> None:
    samples = write(tmp_path / "samples.jsonl", [*RECORDS, RECORDS[0]])
    result = runner.invoke(app, ["vote", str(samples)])
    assert result.exit_code == 2 and "duplicate record for id 'q1' in language 'en'" in result.output


def test_missing_file_and_bad_fields(tmp_path: Path) -> None:
    assert runner.invoke(app, ["vote", str(tmp_path / "none.jsonl")]).exit_code == 2
    bad = dict(RECORDS[0], responses="Answer: B")
    result = runner.invoke(app, ["vote", str(write(tmp_path / "s.jsonl", [bad]))])
    assert result.exit_code == 2 and "'responses' must be a list of strings" in result.output
