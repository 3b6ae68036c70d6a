"""Fixtures for the retrieval tests: the tiny embedder loaded once, and a small multilingual corpus; the count
of generated fuzz cases, reported at the end of the run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from calm_rag.indexes.embedder import Embedder

FUZZ_CASES: Counter[str] = Counter()
"""Reader -> inputs the property-based tests generated for it in this run (see test_fuzz_ingestion.py)."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show in the normal `pytest -q` output how many malformed inputs each reader was given."""
    if FUZZ_CASES:
        terminalreporter.write_sep("-", "generated malformed inputs")
        for reader, count in sorted(FUZZ_CASES.items()):
            terminalreporter.write_line(f"{reader}: {count} cases")


ZH_TEXT = "巴黎是法国的首都。北京是中国的首都。长城是世界上最长的城墙。故宫位于北京市中心。"


@pytest.fixture(scope="session")
def embedder(tiny_embedder_path: Path) -> Embedder:
    return Embedder.load(str(tiny_embedder_path))


@pytest.fixture(scope="session")
def small_embedder_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny model of another dimension (16), for dimension-mismatch errors."""
    from calm_rag.testing.tiny_embedder import build_tiny_embedder

    return build_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder-16"), hidden=16, layers=1)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """docs/ (txt, md, nested, a binary and an ignored file) and more.jsonl, under tmp_path/corpus."""
    root = tmp_path / "corpus"
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "en.txt").write_text("Aspirin reduces fever and pain. It is taken as a tablet.", encoding="utf-8")
    (docs / "zh.md").write_text(ZH_TEXT, encoding="utf-8")
    (docs / "sub" / "de.txt").write_text("Berlin ist die Hauptstadt von Deutschland.", encoding="utf-8")
    (docs / "blob.txt").write_bytes(b"\x00\x01\x02binary data")
    (docs / "image.png").write_bytes(b"\x89PNG not indexed")
    write_jsonl(root / "more.jsonl", [
        {"id": "r1", "text": "Paris is the capital of France.", "lang": "en", "topic": "geo"},
        {"id": "r2", "text": "القاهرة هي عاصمة مصر.", "topic": "geo"},
        {"id": 3, "text": "Madrid es la capital de España.", "lang": "es"},
    ])
    return root
