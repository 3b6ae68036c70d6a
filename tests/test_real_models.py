"""End to end with the real offline models (`calm-rag models pull`); skipped when they are absent.

Run with `make test-slow` (or `pytest -m slow`). Uses the fast 0.5B generator in direct mode so
that a run takes minutes, not hours, on a 2-core CPU; the default 1.5B behaves the same way.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.config import Settings
from calm_rag.errors import CalmRagError

pytestmark = pytest.mark.slow
runner = CliRunner()
# conftest isolates the model cache per test; these tests need the real one (the calling shell's).
REAL_CACHE = str(Path(os.environ.get("CALM_RAG_MODEL_CACHE") or Settings().model_cache).expanduser())
CORPUS = Path(__file__).resolve().parents[1] / "examples" / "demo_corpus" / "corpus.jsonl"
GENERATOR = "qwen2.5-coder-0.5b-instruct"
EMBEDDER = "embeddinggemma-300m"
QUESTIONS = {
    "de": ("Wann entdeckte Carl Wilhelm Scheele Sauerstoff?", ["1773", "1774", "1777", "1783"]),
    "zh": ("卡尔·威廉·舍勒是什么时候发现氧气的？", ["1773", "1774", "1777", "1783"]),
}


@pytest.fixture(autouse=True)
def _real_model_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALM_RAG_MODEL_CACHE", REAL_CACHE)


def _require(name: str, role: str) -> None:
    from calm_rag.models import resolve_model

    try:
        resolve_model(name, role=role)
    except CalmRagError as error:
        pytest.skip(f"real model not provisioned: {error}")


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index_dir = tmp_path_factory.mktemp("real-indexes")
    with pytest.MonkeyPatch.context() as patch:  # module scope: runs before the per-test fixtures
        patch.setenv("CALM_RAG_MODEL_CACHE", REAL_CACHE)
        _require(EMBEDDER, "embedder")
        result = runner.invoke(app, ["index", str(CORPUS), "--name", "demo", "--index-dir", str(index_dir),
                                     "--embedder", EMBEDDER, "--json"])
    assert result.exit_code == 0, result.output
    yield index_dir
    shutil.rmtree(index_dir, ignore_errors=True)


@pytest.mark.parametrize("lang", ["de", "zh"])
def test_embedder_ranks_the_spanish_passage_first(demo_index: Path, lang: str) -> None:
    result = runner.invoke(app, ["search", QUESTIONS[lang][0], "--index", "demo", "--index-dir", str(demo_index),
                                 "--top-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["id"].startswith("xquad-r-es-12-0")


@pytest.mark.parametrize("lang", ["de", "zh"])
@pytest.mark.parametrize("with_index", [False, True])
def test_ask_real_question(lang: str, with_index: bool, request: pytest.FixtureRequest) -> None:
    _require(GENERATOR, "generator")
    question, choices = QUESTIONS[lang]
    args = ["ask", question, "--lang", lang, *sum((["--choice", c] for c in choices), []), "--languages", "en,zh,de",
            "--samples", "1", "--mode", "direct", "--model", GENERATOR, "--json"]
    if with_index:
        args += ["--index", "demo", "--index-dir", str(request.getfixturevalue("demo_index")), "--top-k", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["answer"] in {"A", "B", "C", "D"} and answer["lang"] == lang
    assert set(answer["votes"]) == {"en", "zh", "de"}
    assert abs(sum(answer["distribution"].values()) - 1) < 1e-6
    if with_index:
        assert answer["sources"][0]["id"].startswith("xquad-r-es-12-0")
    else:
        assert answer["sources"] == []
