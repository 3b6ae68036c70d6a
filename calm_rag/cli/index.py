"""`calm-rag index` (build, update or list search indexes) and `calm-rag search` (retrieval alone)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import typer

from calm_rag.cli.app import cli_command, console, err_console, human_bytes, print_json, print_json_line
from calm_rag.errors import CalmRagError
from calm_rag.indexes import layout
from calm_rag.indexes.chunking import ChunkingConfig
from calm_rag.indexes.embedder import EmbedderConfig
from calm_rag.indexes.index import check_top_k, list_indexes
from calm_rag.indexes.queries import read_queries, search_in_blocks
from calm_rag.indexes.store import INDEX_TYPES


def _index_list(index_dir: str | None, as_json: bool) -> None:
    from rich.table import Table

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
            table.add_row(info.name, "-", "-", f"[red]{info.error}[/]", "-", "-", human_bytes(info.size_bytes), "-")
            continue
        table.add_row(info.name, f"{info.documents:,}", f"{info.chunks:,}", info.embedder, str(info.dimension),
                      info.index_type, human_bytes(info.size_bytes), (info.updated_at or "-").replace("+00:00", "Z"))
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
    from calm_rag.indexes.build import build_index

    if not name:
        raise CalmRagError("give the index a name with --name NAME (or use --list to see the existing ones)")
    layout.validate_name(name)
    if index_type is not None and index_type not in INDEX_TYPES:
        raise CalmRagError(f"unknown index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
    chunking = ChunkingConfig.from_options(chunk_size, chunk_overlap)
    config = EmbedderConfig(dtype="bfloat16" if bf16 else dtype, batch_size=batch_size)  # type: ignore[arg-type]
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
    from calm_rag.indexes.index import Index

    check_top_k(top_k)
    if not index:
        names = layout.existing_names(layout.index_root(index_dir))
        raise CalmRagError("say which index to search with --index NAME; "
                           + (f"existing indexes: {', '.join(names)}" if names else "there are no indexes yet"))
    if (query is None) == (queries is None):
        raise CalmRagError("give one query as an argument, or a file of queries with --queries FILE (not both)")
    if query is not None and not query.strip():
        raise CalmRagError("the query is empty")
    records = read_queries(Path(queries)) if queries is not None else [{"text": query}]
    opened = Index.open(index, index_dir)
    try:
        if queries is None:
            hits = opened.search([records[0]["text"]], top_k)[0]
            if as_json:
                print_json({"results": [hit.to_dict() for hit in hits]})
            else:
                _render_hits(records[0]["text"], hits)
            return
        for record, hits in search_in_blocks(opened, records, top_k):
            if not as_json:
                _render_hits(record["text"], hits)
                continue
            line: dict[str, Any] = {"query": record["text"]}
            if "id" in record:
                line["id"] = record["id"]
            line["results"] = [hit.to_dict() for hit in hits]
            print_json_line(line)
        sys.stdout.flush()
    finally:
        opened.close()
