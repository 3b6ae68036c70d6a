"""The resume cache: finished items of an eval, one JSON line each, in a file named by what produced them.

The file name is a hash of everything that changes the answers: the model (hub id and
revision, or its folder), the adapter's files, the eval settings that matter
(`EvalConfig.fingerprint`), the prompts of the languages used, and the dataset files. A
run with the same inputs continues where an interrupted one stopped; any change starts a
new file instead of mixing answers. Lines are appended and flushed per finished batch of
questions, so a kill loses at most one batch; a torn last line is ignored on reading and cut off before
the next append. The records are whatever the eval keeps (`ItemRecord` for multiple choice, `OpenItemRecord` for open
questions): anything with an `id` that round-trips through `to_json`/`from_json`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

from calm_rag.data.jsonl import write_json
from calm_rag.errors import CalmRagError
from calm_rag.generation.engines import EngineConfig
from calm_rag.languages import get_language

KEY_LENGTH = 20


def model_fingerprint(name: str, engine: EngineConfig) -> dict[str, Any]:
    """Identity of the generator answering: its content fingerprint (a bundle's pinned sha256, or hashes of
    its config, tokenizer and weight headers; `calm_rag.models.model_fingerprint`), so another model at the
    same path never reuses cached answers, and the engine that runs it (llama.cpp on the quantized GGUF and
    transformers in float32 answer differently). A remote server is known only by its URL and served name."""
    from calm_rag.generation.engines import resolve_engine
    from calm_rag.models import model_fingerprint as content_fingerprint
    from calm_rag.models import resolve_model

    kind = resolve_engine(name, engine)
    if kind == "openai":
        return {"model": name, "engine": kind, "server": engine.base_url}
    resolved = resolve_model(name, role="generator")
    return {"model": resolved.hub_id or resolved.name, "weights": content_fingerprint(resolved), "engine": kind,
            "dtype": engine.dtype if kind == "transformers" else "gguf"}


def prompts_fingerprint(languages: Iterable[str]) -> str:
    """Changes when a language's prompt wording changes, which invalidates cached answers."""
    return hashlib.sha256(repr([get_language(lang) for lang in languages]).encode()).hexdigest()


def cache_key(parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:KEY_LENGTH]


class CachedRecord(Protocol):
    """What the cache stores: one finished question, as JSON and back."""

    @property
    def id(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self: ...


Record = TypeVar("Record", bound=CachedRecord)


class ItemCache(Generic[Record]):
    """Append-only JSONL of `record_type` records, with a `.meta.json` beside it that says what the key hashed."""

    def __init__(self, folder: Path, parts: Mapping[str, Any], record_type: type[Record]) -> None:
        self.parts = dict(parts)
        self.key = cache_key(self.parts)
        self.path = Path(folder) / f"{self.key}.jsonl"
        self.record_type = record_type

    def load(self) -> dict[str, Record]:
        """Cached records by question id. A line that does not read back (a write cut short, even inside a
        UTF-8 character; a record of another shape) is skipped: that item is computed again."""
        records: dict[str, Record] = {}
        if not self.path.is_file():
            return records
        try:
            data = self.path.read_bytes()
        except OSError as error:
            raise CalmRagError(f"cannot read the eval cache {self.path}: {error.strerror or error}") from None
        for line in data.splitlines():
            try:
                record = self.record_type.from_json(json.loads(line.decode("utf-8")))
            except (ValueError, RecursionError, KeyError, TypeError, AttributeError, IndexError):
                continue  # ValueError covers UnicodeDecodeError and JSONDecodeError
            records[record.id] = record
        return records

    def append(self, records: Iterable[Record]) -> None:
        """Add finished records; a torn last line (a killed write) is cut off first, so the file stays
        one complete record per line."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            meta = self.path.with_suffix(".meta.json")
            if not meta.exists():
                write_json(meta, self.parts)
            self._drop_torn_tail()
            with self.path.open("a", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
                handle.flush()
        except OSError as error:
            raise CalmRagError(f"cannot write the eval cache {self.path}: {error}") from None

    def _drop_torn_tail(self) -> None:
        """Truncate the file after its last newline: what follows is a record whose write was cut short."""
        if not self.path.is_file():
            return
        with self.path.open("r+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            end = 0
            position = size
            while position > 0 and not end:  # read back in blocks until the last newline
                start = max(0, position - 65536)
                handle.seek(start)
                block = handle.read(position - start)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    end = start + newline + 1
                position = start
            handle.truncate(end)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
