"""Voting over answers sampled elsewhere (another machine, vLLM, a paper's release).

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
from typing import Any, Literal

from calm_rag.data import read_jsonl
from calm_rag.errors import CalmRagError
from calm_rag.extraction import extract_letter
from calm_rag.languages import get_language
from calm_rag.metrics import QuestionOutcome, summarize
from calm_rag.pairs import PairPlan, PreferencePair, plan_pairs, realize_pairs
from calm_rag.generation.sampling import vote_responses
from calm_rag.prompts import mcq_messages
from calm_rag.questions import MCQuestion, ParallelQuestion
from calm_rag.responses import Response
from calm_rag.generation.translation import Translator

OnError = Literal["stop", "skip"]


@dataclass
class SampledQuestion:
    question: ParallelQuestion
    responses: dict[str, list[Response]] = field(default_factory=dict)


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
            question = MCQuestion.from_record(record, where=where)
            get_language(question.lang)
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
        if entry.question.answer != question.answer and question.answer is not None:
            problem(f"{where}: gold answer {question.answer!r} differs from {entry.question.answer!r} "
                    f"given for the same id in another language")
            continue
        entry.question.versions[question.lang] = question
        prompt = tuple(mcq_messages(question, "cot"))
        identity = {label: label for label in question.labels}
        entry.responses[question.lang] = [
            Response(question.lang, text, extract_letter(text, question.lang, question.choices), question, identity,
                     None, prompt) for text in responses]
        if question.lang not in seen_languages:
            seen_languages.append(question.lang)
    if not by_id:
        raise CalmRagError(f"{path}: no usable records" + (f" for languages {', '.join(languages)}" if languages else ""))
    return SamplesFile(list(by_id.values()), list(languages or seen_languages), skipped)


def vote_samples(samples: SamplesFile, balanced: bool = False, translator: Translator | None = None,
                 with_pairs: bool = False) -> tuple[dict[str, Any], list[PreferencePair]]:
    """The vote report (and, when asked, the preference pairs) for a loaded samples file."""
    outcomes: list[QuestionOutcome] = []
    plans: list[PairPlan] = []
    for item in samples.questions:
        vote = vote_responses(item.question, item.responses, balanced)
        outcomes.append(QuestionOutcome(item.question.id, item.question.answer, vote,
                                        {lang: len(rs) for lang, rs in item.responses.items()}))
        if with_pairs and vote.winner is not None:
            plans.extend(plan_pairs(item.question.id, item.responses, vote.winner, mode="cot"))
    report = summarize(outcomes, samples.languages)
    report["skipped_lines"] = samples.skipped
    pairs: list[PreferencePair] = []
    if with_pairs:
        pairs, pending = realize_pairs(plans, "cot", translator)
        counts = {lang: sum(plan.lang == lang for plan in plans) for lang in samples.languages}
        needing = {lang: sum(plan.lang == lang and plan.needs_translation for plan in plans)
                   for lang in samples.languages}
        report["pairs_by_language"] = counts
        report["translated_by_language"] = {lang: (needing[lang] / counts[lang] if counts[lang] else 0.0)
                                            for lang in samples.languages}
        report["pairs_written"] = len(pairs)
        report["pairs_pending_translation"] = len(pending)
    return report, pairs
