"""Parallel datasets: a folder with one JSONL file per language (`en.jsonl`, `de.jsonl`, ...), where line i
of every file is the same question with the same gold answer (see ../shared/data/README.md).

Loading checks what makes results meaningless if wrong: the files are parallel (same counts,
same ids and gold letters line by line) and the selection is not empty; errors say file and line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from calm_rag.data.jsonl import read_jsonl
from calm_rag.errors import CalmRagError
from calm_rag.questions import ParallelQuestion, Question


def available_languages(folder: Path) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.jsonl"))


def check_limit(limit: int | None) -> None:
    if limit is not None and limit <= 0:
        raise CalmRagError("--limit must be a positive integer")


def check_split(split: str | None, splits: set[str], where: Path | str) -> None:
    """A split asked for must be one the data names; None selects every line."""
    if split is not None and split not in splits:
        raise CalmRagError(f"unknown split {split!r} in {where}; available: {', '.join(sorted(splits)) or 'none'}")


def first_selected(questions: list[ParallelQuestion], limit: int | None, folder: Path, split: str | None,
                   languages: Sequence[str]) -> list[ParallelQuestion]:
    """The first `limit` questions; selecting nothing is an error, not an empty report."""
    if limit is not None:
        questions = questions[:limit]
    if not questions:
        raise CalmRagError(f"no questions selected from {folder} (split={split}, languages={','.join(languages)})")
    return questions


@dataclass(frozen=True)
class ParallelLine:
    """Line i of every language file: language -> (line number, question), and the line's split."""

    versions: dict[str, tuple[int, Question]]
    split: str | None


def read_parallel_lines(folder: Path, languages: Sequence[str], split: str | None) -> list[ParallelLine]:
    """Every line of the `languages` files, checked to be parallel (same line counts, same ids line by
    line), with `split` checked to be one the files name. Callers check what else must agree (gold
    letters, for multiple choice) on every line, then select the lines of `split`."""
    if not folder.is_dir():
        raise CalmRagError(f"dataset folder {folder} does not exist")
    available = available_languages(folder)
    missing = [lang for lang in languages if lang not in available]
    if missing:
        raise CalmRagError(f"{folder} has no {', '.join(missing)} file; it has: {', '.join(available) or 'none'}")

    per_language: dict[str, list[tuple[int, Question, str | None]]] = {}
    splits: set[str] = set()
    for lang in languages:
        path = folder / f"{lang}.jsonl"
        rows = []
        seen: dict[str, int] = {}
        for number, record in read_jsonl(path):
            where = f"{path}:{number}"
            record.setdefault("lang", lang)
            record_split = str(record["split"]) if record.get("split") else None
            if record_split:
                splits.add(record_split)
            question = Question.from_record(record, where=where)
            if question.lang != lang:
                raise CalmRagError(f"{where}: lang {record['lang']!r} in the {lang} file; each file holds one "
                                   "language, named by the file")
            if question.id in seen:
                raise CalmRagError(f"{where}: id {question.id!r} again (first on line {seen[question.id]})")
            seen[question.id] = number
            rows.append((number, question, record_split))
        per_language[lang] = rows

    counts = {lang: len(rows) for lang, rows in per_language.items()}
    if len(set(counts.values())) > 1:
        raise CalmRagError(f"{folder}: files are not parallel, line counts differ: "
                           + ", ".join(f"{lang}={count}" for lang, count in counts.items()))
    check_split(split, splits, folder)

    reference = languages[0]
    lines = []
    for index, (number, first, record_split) in enumerate(per_language[reference]):
        versions = {reference: (number, first)}
        for lang in languages[1:]:
            other_number, other, _ = per_language[lang][index]
            if other.id != first.id:
                raise CalmRagError(f"{folder}: not parallel at {lang}.jsonl line {other_number}: id {other.id!r} "
                                   f"where {reference}.jsonl line {number} has {first.id!r}")
            if other.labels != first.labels:
                raise CalmRagError(f"{folder}: not parallel at {lang}.jsonl line {other_number}: {_options(other)} "
                                   f"where {reference}.jsonl line {number} has {_options(first)}")
            versions[lang] = (other_number, other)
        lines.append(ParallelLine(versions, record_split))
    return lines


def _options(question: Question) -> str:
    return f"{len(question.choices)} choices ({''.join(question.labels)})" if question.choices else "no choices"


def load_parallel_dataset(folder: Path | str, languages: Sequence[str], split: str | None = None,
                          limit: int | None = None) -> list[ParallelQuestion]:
    """The questions of `split` (all splits when None), in all `languages`, first `limit` of them."""
    folder = Path(folder)
    check_limit(limit)
    reference = languages[0]
    questions: list[ParallelQuestion] = []
    for line in read_parallel_lines(folder, languages, split):
        number, first = line.versions[reference]
        for lang, (other_number, other) in line.versions.items():
            if other.answer != first.answer:
                raise CalmRagError(f"{folder}: gold answers differ for {first.id} ({reference}.jsonl line {number}: "
                                   f"{first.answer}, {lang}.jsonl line {other_number}: {other.answer})")
        if split is None or line.split == split:
            versions = {lang: question for lang, (_, question) in line.versions.items()}
            questions.append(ParallelQuestion(first.id, versions, reference, first.answer))
    return first_selected(questions, limit, folder, split, languages)


def dataset_hash(folder: Path | str, languages: Sequence[str]) -> str:
    """sha256 over the language files used, for run manifests; over `queries.jsonl` for a folder in the
    XQuAD-R layout (one file holding every language)."""
    digest = hashlib.sha256()
    folder = Path(folder)
    if not any((folder / f"{lang}.jsonl").is_file() for lang in languages) and (folder / "queries.jsonl").is_file():
        digest.update((folder / "queries.jsonl").read_bytes())
        digest.update(repr(list(languages)).encode())
        return digest.hexdigest()
    for lang in languages:
        digest.update((folder / f"{lang}.jsonl").read_bytes())
    return digest.hexdigest()
