"""Chunking and discovery: CJK splitting, .jsonl ids and metadata, skipped and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from calm_rag.errors import CalmRagError
from calm_rag.indexes.chunking import ChunkingConfig, chunk_source, discover
from calm_rag.indexes.langdetect import detect_language
from tests.indexes.conftest import ZH_TEXT, write_jsonl


def _chunks(path: Path, config: ChunkingConfig):
    [source] = discover([path]).files
    return chunk_source(source, config)


def test_chinese_without_spaces_is_cut_at_sentence_ends(tmp_path: Path) -> None:
    path = tmp_path / "zh.txt"
    path.write_text(ZH_TEXT * 3, encoding="utf-8")
    result = _chunks(path, ChunkingConfig(chunk_size=30, chunk_overlap=0))
    assert len(result.chunks) > 2
    assert all(len(chunk.text) <= 30 for chunk in result.chunks)
    assert all(chunk.text.endswith("。") for chunk in result.chunks)
    assert {chunk.lang for chunk in result.chunks} == {"zh"}
    assert "".join(chunk.text for chunk in result.chunks) == ZH_TEXT * 3
    assert [chunk.id for chunk in result.chunks][:2] == ["zh.txt#0", "zh.txt#1"]


def test_overlap_repeats_text_between_neighbours(tmp_path: Path) -> None:
    path = tmp_path / "en.txt"
    path.write_text(" ".join(f"word{i}" for i in range(60)), encoding="utf-8")
    result = _chunks(path, ChunkingConfig(chunk_size=60, chunk_overlap=20))
    first, second = result.chunks[0].text.split(), result.chunks[1].text.split()
    assert set(first) & set(second)


def test_jsonl_ids_lang_and_metadata_are_kept(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "recs.jsonl", [
        {"id": "a1", "text": "Paris is the capital of France.", "lang": "en", "topic": "geo", "year": 2020},
        {"id": 7, "text": "Berlin ist die Hauptstadt von Deutschland."},
        {"text": "No id here."},
    ])
    result = _chunks(path, ChunkingConfig())
    assert [c.id for c in result.chunks] == ["a1", "7", "recs.jsonl:3"]
    assert result.chunks[0].metadata == {"topic": "geo", "year": 2020}
    assert result.chunks[0].lang == "en" and result.chunks[1].lang == "de"
    assert result.documents == 3 and result.chunks[0].source == "recs.jsonl"


def test_split_jsonl_record_gets_chunk_suffixes(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "long.jsonl", [{"id": "big", "text": ZH_TEXT * 2}, {"id": "small", "text": "Hi."}])
    result = _chunks(path, ChunkingConfig(chunk_size=40, chunk_overlap=0))
    ids = [c.id for c in result.chunks]
    assert ids[0] == "big#0" and ids[1] == "big#1" and ids[-1] == "small"
    assert {c.doc_id for c in result.chunks} == {"big", "small"}


def test_jsonl_line_without_text_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"id": "ok", "text": "fine"}, {"id": "x", "title": "no text"}])
    with pytest.raises(CalmRagError, match=r"bad\.jsonl:2: record has no 'text' field \(fields: 'id', 'title'\)"):
        _chunks(path, ChunkingConfig())


def test_jsonl_bad_lines_can_be_skipped_with_warnings(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok", "text": "fine"}\n{"id": "x"}\nnot json\n["list"]\n{"text": ""}\n', encoding="utf-8")
    result = _chunks(path, ChunkingConfig(strict=False))
    assert [c.id for c in result.chunks] == ["ok"]
    assert result.skipped_lines == 4
    assert any("bad.jsonl:3: not valid JSON" in w for w in result.warnings)


def test_discovery_skips_binary_and_non_utf8_and_ignores_other_types(corpus: Path) -> None:
    (corpus / "docs" / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (corpus / "docs" / ".hidden.txt").write_text("hidden", encoding="utf-8")
    found = discover([corpus / "docs", corpus / "more.jsonl"])
    assert sorted(f.key for f in found.files) == ["docs/en.txt", "docs/sub/de.txt", "docs/zh.md", "more.jsonl"]
    assert found.skipped == {"binary": ["docs/blob.txt"], "not UTF-8": ["docs/latin1.txt"]}
    assert found.ignored == 1 and found.skipped_count == 2
    assert found.in_scope("docs/gone.txt") and found.in_scope("more.jsonl") and not found.in_scope("other.txt")


def test_discovery_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalmRagError, match="no .txt, .md, .jsonl files in this folder"):
        discover([tmp_path / "empty"])
    with pytest.raises(CalmRagError, match="no such file or folder"):
        discover([tmp_path / "missing"])
    (tmp_path / "doc.pdf").write_bytes(b"%PDF")
    with pytest.raises(CalmRagError, match="unsupported file type '.pdf'"):
        discover([tmp_path / "doc.pdf"])
    with pytest.raises(CalmRagError, match="no files or folders given"):
        discover([])


def test_chunking_config_is_validated() -> None:
    with pytest.raises(CalmRagError, match="chunk size must be positive"):
        ChunkingConfig(chunk_size=0)
    with pytest.raises(CalmRagError, match="chunk overlap"):
        ChunkingConfig(chunk_size=10, chunk_overlap=10)


def test_language_detection() -> None:
    assert detect_language(ZH_TEXT) == "zh"
    assert detect_language("القاهرة هي عاصمة مصر والنيل نهر طويل.") == "ar"
    assert detect_language("Berlin ist die Hauptstadt von Deutschland.") == "de"
    assert detect_language("12 34 !!") is None
