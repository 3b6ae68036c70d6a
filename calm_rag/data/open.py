"""Open-question datasets (no options): parallel `<lang>.jsonl` folders and XQuAD-R's `queries.jsonl`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from calm_rag.data.jsonl import read_jsonl
from calm_rag.data.parallel import available_languages, check_limit, check_split, first_selected, read_parallel_lines
from calm_rag.errors import CalmRagError
from calm_rag.languages import is_language_tag
from calm_rag.questions import ParallelQuestion, Question

XQUAD_QUERIES = "queries.jsonl"
"""The file of the XQuAD-R layout (../shared/data/xquad_r): rows `{"qid", "lang", "squad_id", "para_id",
"question", "answer"}`, one per question and language; rows sharing a `squad_id` are one question."""


def is_open_dataset(folder: Path | str) -> bool:
    """Whether `folder` holds open questions, so commands can route it: the XQuAD-R layout, or parallel
    `<lang>.jsonl` files whose first record (of the first language file) has no choices."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalmRagError(f"dataset folder {folder} does not exist")
    if (folder / XQUAD_QUERIES).is_file():
        return True
    available = available_languages(folder)
    records = read_jsonl(folder / f"{available[0]}.jsonl") if available else []
    return bool(records) and not records[0][1].get("choices")


def load_open_dataset(folder: Path | str, languages: Sequence[str], split: str | None = None,
                      limit: int | None = None) -> list[ParallelQuestion]:
    """The open questions of `split` (all when None) in all `languages`, the first `limit` of them, from
    either layout: a parallel folder (one `<lang>.jsonl` per language, line i of every file the same
    question, each `{"id", "lang", "question", "answer"?, "split"?}` with no `choices`; the checks and
    errors of `load_parallel_dataset`), or the XQuAD-R layout (`queries.jsonl`, see `XQUAD_QUERIES`).

    Gold answers are text in each language, so unlike multiple-choice letters they may differ between
    languages: each stays on its language's version (`versions[lang].answer`); the question's `answer`
    is the first language's."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalmRagError(f"dataset folder {folder} does not exist")
    check_limit(limit)
    if (folder / XQUAD_QUERIES).is_file():
        questions = _xquad_questions(folder / XQUAD_QUERIES, languages, split)
    else:
        questions = _parallel_open_questions(folder, languages, split)
    return first_selected(questions, limit, folder, split, languages)


def _parallel_open_questions(folder: Path, languages: Sequence[str], split: str | None) -> list[ParallelQuestion]:
    questions = []
    for line in read_parallel_lines(folder, languages, split):
        for lang, (number, version) in line.versions.items():
            if version.choices:
                raise CalmRagError(f"{folder / f'{lang}.jsonl'}:{number}: has choices; this is a multiple-choice "
                                   "dataset, not an open-question one")
        if split is None or line.split == split:
            versions = {lang: version for lang, (_, version) in line.versions.items()}
            first = versions[languages[0]]
            questions.append(ParallelQuestion(first.id, versions, languages[0], first.answer))
    return questions


def _xquad_questions(path: Path, languages: Sequence[str], split: str | None) -> list[ParallelQuestion]:
    """One question per `squad_id` present in every language, in the order the file first names each
    `squad_id` (whatever the languages asked for, so a `limit` picks the same questions for any)."""
    by_id: dict[str, dict[str, Question]] = {}
    present: set[str] = set()
    splits: set[str] = set()
    seen: dict[tuple[str, str], int] = {}
    for number, record in read_jsonl(path):
        where = f"{path}:{number}"
        for key in ("squad_id", "lang"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise CalmRagError(f"{where}: missing or empty field {key!r}")
        squad_id, lang = record["squad_id"], record["lang"]
        if not is_language_tag(lang):
            raise CalmRagError(f"{where}: lang {lang[:40]!r} is not a language code (e.g. en, de, zh, pt-BR)")
        if (squad_id, lang) in seen:
            raise CalmRagError(f"{where}: a second {lang} question for squad_id {squad_id} (first on line "
                               f"{seen[squad_id, lang]})")
        seen[squad_id, lang] = number
        record_split = str(record["split"]) if record.get("split") else None
        present.add(lang)
        versions = by_id.setdefault(squad_id, {})
        if record_split:
            splits.add(record_split)
        if lang not in languages or (split is not None and record_split != split):
            continue
        versions[lang] = Question.from_record({"id": squad_id, "lang": lang, "question": record.get("question"),
                                               "answer": record.get("answer")}, where=where)
    missing = [lang for lang in languages if lang not in present]
    if missing:
        raise CalmRagError(f"{path} has no {', '.join(missing)} questions; "
                           f"it has: {', '.join(sorted(present)) or 'none'}")
    check_split(split, splits, path)
    return [ParallelQuestion(squad_id, {lang: versions[lang] for lang in languages}, languages[0],
                             versions[languages[0]].answer)
            for squad_id, versions in by_id.items() if all(lang in versions for lang in languages)]
