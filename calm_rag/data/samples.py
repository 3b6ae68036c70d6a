"""Samples files: answers sampled elsewhere (another machine, vLLM, a paper's release), read and validated.

Input: JSONL, one record per (question, language):
`{"id", "lang", "question", "choices": [{"label", "text"}...], "answer"?: gold, "responses": [text, ...]}`.
Records sharing an `id` are the same question in different languages. The responses are taken
as answers to the question in its given option order (no rotation), and go through the same
extraction, voting and pair construction as calm-rag's own samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from calm_rag.data.jsonl import read_jsonl
from calm_rag.errors import CalmRagError
from calm_rag.prompts import mcq_messages
from calm_rag.questions import ParallelQuestion, Question
from calm_rag.responses import ChoiceResponse
from calm_rag.voting.extraction import extract_letter

OnError = Literal["stop", "skip"]


@dataclass
class SampledQuestion:
    question: ParallelQuestion
    responses: dict[str, list[ChoiceResponse]] = field(default_factory=dict)


@dataclass
class SamplesFile:
    questions: list[SampledQuestion]
    languages: list[str]
    skipped: list[str]
    """One message per skipped line (with --on-error skip)."""


def load_samples(path: Path, languages: Sequence[str] | None = None, on_error: OnError = "stop") -> SamplesFile:
    """Read and validate a samples file; malformed lines and duplicate (id, lang) records either stop
    with an error naming the line or are skipped and reported."""
    if not path.is_file():
        raise CalmRagError(f"samples file {path} does not exist")
    by_id: dict[str, SampledQuestion] = {}
    seen_languages: list[str] = []
    skipped: list[str] = []

    def problem(message: str) -> None:
        if on_error == "stop":
            raise CalmRagError(f"{message} (use --on-error skip to skip such lines)")
        skipped.append(message)

    for number, record in read_jsonl(path, problem):
        where = f"{path}:{number}"
        try:
            question = Question.from_record(record, where=where, unique_texts=True)
            if len(question.choices) < 2:
                raise CalmRagError(f"{where}: needs at least 2 choices")
            responses = record.get("responses")
            if not isinstance(responses, list) or not all(isinstance(item, str) for item in responses):
                raise CalmRagError(f"{where}: 'responses' must be a list of strings")
        except CalmRagError as error:
            problem(str(error))
            continue
        if languages and question.lang not in languages:
            continue
        entry = by_id.get(question.id)
        if entry is None:
            entry = by_id[question.id] = SampledQuestion(ParallelQuestion(question.id, {}, question.lang,
                                                                          question.answer))
        if question.lang in entry.question.versions:
            problem(f"{where}: duplicate record for id {question.id!r} in language {question.lang!r}")
            continue
        other = next(iter(entry.question.versions.values()), None)
        if other is not None and other.labels != question.labels:
            problem(f"{where}: {len(question.choices)} choices ({''.join(question.labels)}) where the {other.lang} "
                    f"record of id {question.id!r} has {len(other.choices)} ({''.join(other.labels)})")
            continue
        if entry.question.answer != question.answer and question.answer is not None:
            problem(f"{where}: gold answer {question.answer!r} differs from {entry.question.answer!r} "
                    f"given for the same id in another language")
            continue
        entry.question.versions[question.lang] = question
        prompt = tuple(mcq_messages(question, "cot"))
        identity = {label: label for label in question.labels}
        entry.responses[question.lang] = [
            ChoiceResponse(question.lang, text, extract_letter(text, question.lang, question.choices), question, identity,
                     None, prompt) for text in responses]
        if question.lang not in seen_languages:
            seen_languages.append(question.lang)
    if not by_id:
        raise CalmRagError(f"{path}: no usable records" + (f" for languages {', '.join(languages)}" if languages else ""))
    return SamplesFile(list(by_id.values()), list(languages or seen_languages), skipped)
