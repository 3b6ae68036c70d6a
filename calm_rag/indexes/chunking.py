"""Turn files (.txt, .md, .jsonl) into `Chunk`s: discovery, safe reading, splitting, language tags.

Why each rule:
- Every file gets a stable *key*: the name of the path you passed plus the path inside it
  (`docs/guide/a.md`, `more.jsonl`). Keys, not absolute paths, identify files across runs, so
  re-indexing from another working directory still recognises unchanged files.
- Unreadable, binary or non-UTF-8 files inside a folder are skipped and counted, never fatal:
  one stray PDF in a folder must not stop an index build. A file named on the command line that
  cannot be indexed is an error instead (naming it was a request to index it; skipping it would
  also drop its chunks from an existing index). Files of other types inside folders are counted
  as ignored. A folder with nothing indexable is an error, because an empty index is never wanted.
- Only regular files are read: a FIFO, device or socket (explicit: an error; in a folder:
  skipped) would block the read forever or never end. Files are opened non-blocking and checked
  with fstat, so a file swapped for a FIFO after discovery cannot hang the build either.
- .jsonl: read by the one JSONL reader (`calm_rag.data.jsonl.read_jsonl`: invalid JSON, nesting
  that exhausts the parser, over-long integers are line errors). Each record is checked by
  validation.py (text, id, lang, metadata). The record's `id` becomes the
  chunk id (`<id>#<n>`, n = 0, 1, ... only when the record is split into several chunks), its
  `lang` becomes the chunk language, and every other field is kept as metadata. A bad line is
  an error naming `file:line` (strict, the default), or is skipped with a warning when
  `ChunkingConfig.strict` is False (`--skip-bad-lines`). Records without an `id` get
  `<key>:<line>`.
- .txt/.md chunks are `<key>#<n>`.
- Splitting is LangChain's RecursiveCharacterTextSplitter on paragraph, line and sentence bounds,
  including CJK (。！？；，、), Arabic (؟،) and Devanagari (।) punctuation, so Chinese or Japanese
  text without spaces is cut at sentence ends instead of mid-word. Separators stay at the end of
  the sentence they close.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from calm_rag.data.jsonl import read_jsonl
from calm_rag.errors import CalmRagError
from calm_rag.indexes.langdetect import detect_language
from calm_rag.indexes.records import Chunk
from calm_rag.indexes.validation import record_problem

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
JSONL_SUFFIXES = (".jsonl",)
SUPPORTED = ", ".join(TEXT_SUFFIXES[:2] + JSONL_SUFFIXES)

DEFAULT_SEPARATORS: tuple[str, ...] = (
    "\n\n", "\n",
    "。", "！", "？", "؟", "। ", ". ", "! ", "? ",
    "；", "; ", "，", "、", "،", ", ",
    " ", "",
)
"""Coarse to fine: paragraphs, lines, sentence ends (CJK ones need no space after them), clauses, words, chars."""

_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class ChunkingConfig:
    """How text is cut. Stored in the manifest: an update must cut the same way as the build."""

    chunk_size: int = 800
    """Maximum characters per chunk (characters, not tokens: comparable across scripts)."""
    chunk_overlap: int = 100
    separators: tuple[str, ...] = DEFAULT_SEPARATORS
    strict: bool = True
    """A bad .jsonl line (not JSON, no `text`, a bad field) is an error; False skips it with a warning."""

    def __post_init__(self) -> None:
        if self.chunk_size <= 0:
            raise CalmRagError(f"chunk size must be positive, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise CalmRagError(
                f"chunk overlap must be >= 0 and smaller than the chunk size ({self.chunk_size}), "
                f"got {self.chunk_overlap}")

    @classmethod
    def from_options(cls, chunk_size: int | None, chunk_overlap: int | None) -> ChunkingConfig | None:
        """The config for `--chunk-size` / `--chunk-overlap` (None when neither is given: an update keeps the
        index's own). A size alone gets an overlap of at most a quarter of it, so `--chunk-size 200` works."""
        if chunk_size is None and chunk_overlap is None:
            return None
        size = chunk_size if chunk_size is not None else cls.chunk_size
        overlap = chunk_overlap if chunk_overlap is not None else min(cls.chunk_overlap, max(size, 0) // 4)
        return cls(chunk_size=size, chunk_overlap=overlap)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["separators"] = list(self.separators)
        data.pop("strict")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = True) -> ChunkingConfig:
        return cls(chunk_size=int(data["chunk_size"]), chunk_overlap=int(data["chunk_overlap"]),
                   separators=tuple(data.get("separators", DEFAULT_SEPARATORS)), strict=strict)


@dataclass(frozen=True)
class SourceFile:
    """One indexable file: its stable key, where it is, and a hash of its bytes."""

    key: str
    path: Path
    sha256: str
    size: int
    kind: Literal["text", "jsonl"]


@dataclass
class Discovery:
    """What walking the given paths found."""

    files: list[SourceFile]
    scopes: list[str]
    """Keys of the given paths: a file key, or a folder key that every file under it starts with + '/'."""
    roots: list[Path]
    skipped: dict[str, list[str]] = field(default_factory=dict)
    """reason ('binary', 'not UTF-8', 'unreadable', 'not a regular file') -> keys of files skipped for it."""
    ignored: int = 0
    """Files of other types inside the given folders."""

    @property
    def skipped_count(self) -> int:
        return sum(len(keys) for keys in self.skipped.values())

    def in_scope(self, key: str) -> bool:
        """Whether `key` lies under one of the given paths (so its absence means it was deleted)."""
        return any(key == scope or key.startswith(scope + "/") for scope in self.scopes)


@dataclass
class FileChunks:
    """The chunks of one file and what was skipped on the way."""

    chunks: list[Chunk]
    documents: int
    skipped_lines: int = 0
    warnings: list[str] = field(default_factory=list)


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _kind(path: Path) -> Literal["text", "jsonl"] | None:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    return None


def _read_bytes(path: Path) -> bytes:
    """The bytes of a regular file; FIFOs, devices and sockets are refused without blocking on them."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise _Skip("unreadable" if path.is_file() or not path.exists() else "not a regular file") from error
    with os.fdopen(handle, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise _Skip("not a regular file")
        try:
            data = stream.read()
        except OSError as error:
            raise _Skip("unreadable") from error
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise _Skip("binary")
    return data


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _Skip("not UTF-8") from error


def read_source(source: SourceFile) -> str:
    """The file's text; `CalmRagError` if it changed into something unreadable since discovery."""
    try:
        return _decode(_read_bytes(source.path))
    except _Skip as skip:
        raise CalmRagError(f"{source.key}: became {skip.reason} while indexing") from None


def _walk(folder: Path) -> Iterator[Path]:
    """Files under `folder`, sorted, hidden files and folders (.git, .cache) left out, links not followed."""
    for current, dirs, files in os.walk(folder, followlinks=False, onerror=None):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(current) / name


def discover(paths: Iterable[str | os.PathLike[str]]) -> Discovery:
    """Find the indexable files under `paths` (files or folders, walked recursively) and hash them."""
    given = [Path(p).expanduser() for p in paths]
    if not given:
        raise CalmRagError(f"no files or folders given to index; pass paths to {SUPPORTED} files or folders")
    files: list[SourceFile] = []
    scopes: list[str] = []
    roots: list[Path] = []
    skipped: dict[str, list[str]] = {}
    ignored = 0
    seen_paths: set[Path] = set()
    seen_keys: dict[str, Path] = {}

    def consider(path: Path, key: str, explicit: bool) -> None:
        nonlocal ignored
        kind = _kind(path)
        if kind is None:
            if explicit:
                raise CalmRagError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                                   f"calm-rag indexes {SUPPORTED} files")
            ignored += 1
            return
        resolved = path.resolve()
        if resolved in seen_paths:
            return
        seen_paths.add(resolved)
        try:
            data = _read_bytes(path)
            _decode(data)
        except _Skip as skip:
            if explicit:
                raise CalmRagError(f"{path}: cannot index this file ({skip.reason}); calm-rag indexes UTF-8 "
                                   f"text in regular {SUPPORTED} files") from None
            skipped.setdefault(skip.reason, []).append(key)
            return
        files.append(SourceFile(key=key, path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                                kind=kind))

    for path in given:
        if not path.exists():
            raise CalmRagError(f"no such file or folder: {path}")
        resolved = path.resolve()
        root_key = resolved.name or resolved.anchor.strip("/\\:") or "root"
        if root_key in seen_keys and seen_keys[root_key] != resolved:
            raise CalmRagError(f"{path} and {seen_keys[root_key]} would both be stored as {root_key!r}; "
                               "index them into separate indexes or rename one")
        seen_keys[root_key] = resolved
        scopes.append(root_key)
        roots.append(resolved)
        if path.is_dir():
            before = len(files) + sum(len(v) for v in skipped.values())
            for file in _walk(path):
                consider(file, f"{root_key}/{file.relative_to(path).as_posix()}", explicit=False)
            if len(files) + sum(len(v) for v in skipped.values()) == before:
                raise CalmRagError(f"{path}: no {SUPPORTED} files in this folder"
                                   + (f" ({ignored} files of other types ignored)" if ignored else ""))
        else:
            consider(path, root_key, explicit=True)
    return Discovery(files=files, scopes=scopes, roots=roots, skipped=skipped, ignored=ignored)


def make_splitter(config: ChunkingConfig) -> Any:
    """The LangChain splitter for `config` (imported here: the CLI should not pay for it at start-up)."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(separators=list(config.separators), keep_separator="end",
                                          chunk_size=config.chunk_size, chunk_overlap=config.chunk_overlap,
                                          strip_whitespace=True)


def split_record(text: str, *, record_id: str, source: str, lang: str | None, metadata: dict[str, Any],
                 splitter: Any, suffix_single: bool = False) -> list[Chunk]:
    """Chunks of one record or file. Ids get `#<n>` only when split (or always if `suffix_single`)."""
    pieces = [piece for piece in splitter.split_text(text) if piece.strip()]
    chunks = []
    for position, piece in enumerate(pieces):
        chunk_id = f"{record_id}#{position}" if suffix_single or len(pieces) > 1 else record_id
        chunks.append(Chunk(id=chunk_id, doc_id=record_id, text=piece, source=source,
                            lang=lang or detect_language(piece), metadata=dict(metadata)))
    return chunks


def _jsonl_records(source: SourceFile, config: ChunkingConfig,
                   warnings: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The records of a .jsonl file that pass `record_problem`; a bad line raises or is skipped (`strict`)."""

    def refuse(message: str) -> None:
        if config.strict:
            raise CalmRagError(f"{message} (or pass --skip-bad-lines to skip such lines)")
        warnings.append(f"{message}; line skipped")

    for number, record in read_jsonl(source.path, on_bad_line=refuse):
        problem = record_problem(record)
        if problem is not None:
            refuse(f"{source.path}:{number}: {problem}")
            continue
        yield number, record


def chunk_source(source: SourceFile, config: ChunkingConfig, splitter: Any | None = None) -> FileChunks:
    """Read and chunk one discovered file."""
    splitter = splitter or make_splitter(config)
    if source.kind == "text":
        chunks = split_record(read_source(source), record_id=source.key, source=source.key, lang=None, metadata={},
                              splitter=splitter, suffix_single=True)
        return FileChunks(chunks=chunks, documents=1 if chunks else 0)
    warnings: list[str] = []
    chunks = []
    documents = 0
    for number, record in _jsonl_records(source, config, warnings):
        raw_id = record.get("id")
        record_id = str(raw_id) if raw_id not in (None, "") else f"{source.key}:{number}"
        lang = record.get("lang") or None
        metadata = {key: value for key, value in record.items() if key not in ("text", "id", "lang")}
        chunks.extend(split_record(record["text"], record_id=record_id, source=source.key, lang=lang,
                                   metadata=metadata, splitter=splitter))
        documents += 1
    return FileChunks(chunks=chunks, documents=documents, skipped_lines=len(warnings), warnings=warnings)
