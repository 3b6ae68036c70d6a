"""The RAG path: `ask --index` retrieves passages, puts them in every language's prompt, reports sources."""

import json
from pathlib import Path

from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.indexes import build_index
from calm_rag.pipelines.qa import CalmQA, QAConfig
from tests.fakes import FakeGenerator

runner = CliRunner()
CORPUS = [
    {"id": "es-oxygen", "lang": "es", "text": "El oxígeno lo descubrió Carl Wilhelm Scheele en 1773."},
    {"id": "zh-paris", "lang": "zh", "text": "巴黎是法国的首都。北京是中国的首都。"},
    {"id": "en-fox", "lang": "en", "text": "The quick brown fox jumps over the lazy dog."},
]
CHOICES = ["1773", "1774", "1777"]


def make_index(tmp_path: Path, embedder: Path) -> Path:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in CORPUS), encoding="utf-8")
    build_index([corpus], "kb", embedder=str(embedder), index_dir=tmp_path / "indexes", progress=False)
    return tmp_path / "indexes"


def test_ask_with_index_shows_sources(tmp_path: Path, tiny_lm_path: Path, tiny_embedder_path: Path) -> None:
    index_dir = make_index(tmp_path, tiny_embedder_path)
    args = ["ask", "Wann entdeckte Scheele Sauerstoff?", "--lang", "de", *sum((["--choice", c] for c in CHOICES), []),
            "--languages", "en,de", "--samples", "1", "--model", str(tiny_lm_path), "--max-new-tokens", "6",
            "--index", "kb", "--index-dir", str(index_dir), "--top-k", "2"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    sources = json.loads(result.stdout)["sources"]
    assert len(sources) == 2
    assert {"id", "source", "text", "lang", "score"} <= set(sources[0])
    assert {source["id"] for source in sources} <= {"es-oxygen", "zh-paris", "en-fox"}
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "Sources" in table.stdout


def test_passages_reach_every_language_prompt(tmp_path: Path, tiny_embedder_path: Path) -> None:
    index_dir = make_index(tmp_path, tiny_embedder_path)
    generator = FakeGenerator({"en": "[en] 1773", "de": "1773"})
    prompts: list[str] = []
    original = generator.generate

    def spy(batch: list[str], *args: object, **kwargs: object) -> list[str]:
        prompts.extend(batch)
        return original(batch, *args, **kwargs)

    generator.generate = spy  # type: ignore[method-assign]
    qa = CalmQA(generator, QAConfig(languages=("en", "de"), samples=1, index="kb", index_dir=index_dir, top_k=3))  # type: ignore[arg-type]
    answer = qa.ask("Wann entdeckte Scheele Sauerstoff?", "de", CHOICES)
    assert answer.answer == "A" and len(answer.sources) == 3
    answer_prompts = [p for p in prompts if "<passages>" in p]
    assert len(answer_prompts) == 2  # the English and the German prompt both carry the passages
    assert all("Scheele en 1773" in p for p in answer_prompts)


def test_missing_index_fails_before_generation(tmp_path: Path, tiny_lm_path: Path) -> None:
    result = runner.invoke(app, ["ask", "Frage?", "--lang", "de", "--choice", "a", "--choice", "b", "--model",
                                 str(tiny_lm_path), "--index", "nope", "--index-dir", str(tmp_path)])
    assert result.exit_code == 2 and "nope" in result.output and "Traceback" not in result.output
