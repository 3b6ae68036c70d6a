"""Parallel datasets: a folder with one JSONL file per language (`en.jsonl`, `de.jsonl`, ...), where line i
of every file is the same question with the same gold answer (see ../shared/data/README.md).

Loading checks what makes results meaningless if wrong: the files are parallel (same counts,
same ids and gold letters line by line) and the selection is not empty; errors say file and line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from calm_rag.errors import CalmRagError
from calm_rag.questions import MCQuestion, ParallelQuestion


def read_jsonl(path: Path, on_bad_line: Callable[[str], None] | None = None) -> list[tuple[int, dict]]:
    """(line number, record) for each non-empty line. A line that is not a JSON object is an error naming
    it, or, with `on_bad_line`, reported to that callback and skipped."""

    def bad(message: str) -> None:
        if on_bad_line is None:
            raise CalmRagError(message)
        on_bad_line(message)

    records = []
    try:
        with path.open(encoding="utf-8-sig") as handle:  # tolerate a byte-order mark
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    bad(f"{path}:{number}: not valid JSON ({error.msg})")
                    continue
                if not isinstance(record, dict):
                    bad(f"{path}:{number}: expected a JSON object")
                    continue
                records.append((number, record))
    except (OSError, UnicodeDecodeError) as error:
        raise CalmRagError(f"cannot read {path}: {error}") from None
    return records


def available_languages(folder: Path) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.jsonl"))


def load_parallel_dataset(folder: Path | str, languages: Sequence[str], split: str | None = None,
                          limit: int | None = None) -> list[ParallelQuestion]:
    """The questions of `split` (all splits when None), in all `languages`, first `limit` of them."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalmRagError(f"dataset folder {folder} does not exist")
    if limit is not None and limit <= 0:
        raise CalmRagError("--limit must be a positive integer")
    available = available_languages(folder)
    missing = [lang for lang in languages if lang not in available]
    if missing:
        raise CalmRagError(f"{folder} has no {', '.join(missing)} file; it has: {', '.join(available) or 'none'}")

    per_language: dict[str, list[tuple[int, MCQuestion, str | None]]] = {}
    splits: set[str] = set()
    for lang in languages:
        path = folder / f"{lang}.jsonl"
        rows = []
        for number, record in read_jsonl(path):
            record.setdefault("lang", lang)
            record_split = record.get("split")
            if record_split:
                splits.add(str(record_split))
            rows.append((number, MCQuestion.from_record(record, where=f"{path}:{number}"), record_split))
        per_language[lang] = rows

    counts = {lang: len(rows) for lang, rows in per_language.items()}
    if len(set(counts.values())) > 1:
        raise CalmRagError(f"{folder}: files are not parallel, line counts differ: "
                           + ", ".join(f"{lang}={count}" for lang, count in counts.items()))
    if split is not None and split not in splits:
        raise CalmRagError(f"unknown split {split!r} in {folder}; available: {', '.join(sorted(splits)) or 'none'}")

    reference = languages[0]
    questions: list[ParallelQuestion] = []
    for index, (number, first, record_split) in enumerate(per_language[reference]):
        versions = {reference: first}
        for lang in languages[1:]:
            other_number, other, _ = per_language[lang][index]
            if other.id != first.id:
                raise CalmRagError(f"{folder}: not parallel at {lang}.jsonl line {other_number}: id {other.id!r} "
                                   f"where {reference}.jsonl line {number} has {first.id!r}")
            if other.answer != first.answer:
                raise CalmRagError(f"{folder}: gold answers differ for {first.id} ({reference}.jsonl line {number}: "
                                   f"{first.answer}, {lang}.jsonl line {other_number}: {other.answer})")
            versions[lang] = other
        if split is None or record_split == split:
            questions.append(ParallelQuestion(first.id, versions, reference, first.answer))
    if limit is not None:
        questions = questions[:limit]
    if not questions:
        raise CalmRagError(f"no questions selected from {folder} (split={split}, languages={','.join(languages)})")
    return questions


def dataset_hash(folder: Path | str, languages: Sequence[str]) -> str:
    """sha256 over the language files used, for run manifests."""
    digest = hashlib.sha256()
    for lang in languages:
        digest.update((Path(folder) / f"{lang}.jsonl").read_bytes())
    return digest.hexdigest()
