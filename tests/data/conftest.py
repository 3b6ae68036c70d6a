"""Helpers for the data tests: record writers, and the count of generated fuzz cases, reported at the end of
the run (see test_fuzz_readers.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

FUZZ_CASES: Counter[str] = Counter()
"""Reader -> malformed inputs the property-based tests generated for it in this run."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show in the normal `pytest -q` output how many malformed inputs each data reader was given."""
    if FUZZ_CASES:
        terminalreporter.write_sep("-", "generated malformed data inputs")
        for reader, count in sorted(FUZZ_CASES.items()):
            terminalreporter.write_line(f"{reader}: {count} cases")


def choice_record(qid: str, lang: str, texts: tuple[str, ...] = ("town", "hospital", "school"), answer: Any = "B",
                  **extra: Any) -> dict[str, Any]:
    record = {"id": qid, "lang": lang, "question": f"Where is {qid}?",
              "choices": [{"label": "ABCDEFGHIJ"[index], "text": text} for index, text in enumerate(texts)],
              "answer": answer, **extra}
    return {key: value for key, value in record.items() if value is not None}


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """One JSON line per record; a str record is written as the line itself."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)) + "\n"
                            for record in records), encoding="utf-8")
    return path


def write_parallel(folder: Path, records: dict[str, list[Any]]) -> Path:
    for lang, rows in records.items():
        write_jsonl(folder / f"{lang}.jsonl", rows)
    return folder
