"""`calm-rag index` and `calm-rag search` through Typer's CliRunner, including every bad-input case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from calm_rag.cli import app
from tests.indexes.conftest import write_jsonl

runner = CliRunner()


def _run(*args: str | Path):
    return runner.invoke(app, [str(arg) for arg in args])


@pytest.fixture
def built(corpus: Path, tiny_embedder_path: Path) -> Path:
    result = _run("index", corpus / "docs", corpus / "more.jsonl", "--name", "medkb", "--embedder",
                  tiny_embedder_path, "--json")
    assert result.exit_code == 0, result.output
    return corpus


def test_index_list_search_and_update(built: Path, tmp_path: Path) -> None:
    listed = _run("index", "--list", "--json")
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.stdout)
    [row] = data["indexes"]
    assert row["name"] == "medkb" and row["documents"] == 6 and row["chunks"] == 6 and row["dimension"] == 32
    assert row["index_type"] == "flat" and row["size_bytes"] > 0 and row["updated_at"]
    table = _run("index", "--list")
    assert table.exit_code == 0 and "medkb" in table.stdout and "flat" in table.stdout

    found = _run("search", "Paris is the capital of France.", "--index", "medkb", "--top-k", "2", "--json")
    assert found.exit_code == 0, found.output
    results = json.loads(found.stdout)["results"]
    assert len(results) == 2
    assert set(results[0]) >= {"id", "text", "score", "lang", "source", "metadata"}
    assert results[0]["id"] == "r1" and results[0]["metadata"] == {"topic": "geo"} and results[0]["lang"] == "en"
    human = _run("search", "Paris is the capital of France.", "--index", "medkb", "-k", "1")
    assert human.exit_code == 0 and "r1" in human.stdout and "more.jsonl" in human.stdout

    queries = write_jsonl(tmp_path / "queries.jsonl", [{"text": "Madrid es la capital de España.", "id": "q1"},
                                                        {"text": "Paris is the capital of France."}])
    many = _run("search", "--queries", queries, "--index", "medkb", "--top-k", "3", "--json")
    assert many.exit_code == 0, many.output
    lines = [json.loads(line) for line in many.stdout.splitlines()]
    assert [line["query"] for line in lines] == ["Madrid es la capital de España.", "Paris is the capital of France."]
    assert lines[0]["id"] == "q1" and [line["results"][0]["id"] for line in lines] == ["3", "r1"]
    assert all(len(line["results"]) == 3 for line in lines)

    (built / "docs" / "en.txt").write_text("Ibuprofen also reduces fever.", encoding="utf-8")
    (built / "docs" / "zh.md").unlink()
    again = _run("index", built / "docs", "--name", "medkb", "--json")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert report["updated"] == ["docs/en.txt"] and report["removed"] == ["docs/zh.md"] and report["unchanged"] == 1
    assert report["skipped"] == {"binary": 1} and report["chunks"] == 5
    same = _run("index", built / "docs", "--name", "medkb")
    assert same.exit_code == 0 and "up to date" in same.stdout


def _error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "Traceback" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_bad_input_exits_2_with_a_clear_message(built: Path, tmp_path: Path, tiny_embedder_path: Path,
                                                small_embedder_path: Path) -> None:
    docs, embedder = built / "docs", str(tiny_embedder_path)
    (tmp_path / "empty").mkdir()
    _error(_run("index", tmp_path / "empty", "--name", "x", "--embedder", embedder), "no .txt, .md, .jsonl files")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "a.txt").write_bytes(b"\x00\xff")
    _error(_run("index", tmp_path / "bin", "--name", "x", "--embedder", embedder),
           "nothing to index", "binary: bin/a.txt")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": 1, "text": "ok"}, {"id": 2, "body": "no text"}])
    _error(_run("index", bad, "--name", "x", "--embedder", embedder), "bad.jsonl:2: record has no 'text' field")
    skipped = _run("index", bad, "--name", "x", "--embedder", embedder, "--skip-bad-lines")
    assert skipped.exit_code == 0 and "bad.jsonl:2" in skipped.output
    for name in ("../evil", "a/b", ".."):
        _error(_run("index", docs, "--name", name, "--embedder", embedder), "invalid index name")
    _error(_run("index", docs, "--embedder", embedder), "--name NAME")
    _error(_run("index", docs, "--name", "x", "--index-type", "annoy"), "unknown index type 'annoy'")
    _error(_run("index", docs, "--name", "medkb", "--embedder", small_embedder_path),
           "gives 16-dimensional vectors but index 'medkb' holds 32-dimensional vectors from", "tiny-embedder")
    _error(_run("search", "q", "--index", "nope"), "no index named 'nope'", "existing indexes: medkb, x")
    _error(_run("search", "q", "--index", "medkb", "--top-k", "0"), "top-k must be a positive integer, got 0")
    _error(_run("search", "q"), "--index NAME", "existing indexes: medkb, x")
    _error(_run("search", "--index", "medkb"), "give one query")
    _error(_run("search", "q", "--index", "medkb", "--queries", bad), "not both")
    _error(_run("search", "--queries", bad, "--index", "medkb"), "bad.jsonl:2: every line needs")
    _error(_run("search", "--queries", tmp_path / "none.jsonl", "--index", "medkb"), "cannot read queries file")

    folder = tmp_path / "indexes" / "medkb"
    manifest = (folder / "manifest.json").read_text()
    (folder / "manifest.json").write_text("{broken")
    _error(_run("search", "q", "--index", "medkb"), "manifest.json is corrupt")
    (folder / "manifest.json").unlink()
    _error(_run("search", "q", "--index", "medkb"), "manifest.json is missing")
    (folder / "manifest.json").write_text(manifest)
    (folder / "index.faiss").write_bytes(b"junk")
    _error(_run("search", "q", "--index", "medkb"), "index.faiss is corrupt")
    (folder / "index.faiss").unlink()
    _error(_run("search", "q", "--index", "medkb"), "index.faiss is missing")
    rebuilt = _run("index", docs, built / "more.jsonl", "--name", "medkb", "--rebuild", "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(_run("search", "Paris is the capital of France.", "--index", "medkb", "--json").stdout
                      )["results"][0]["id"] == "r1"
