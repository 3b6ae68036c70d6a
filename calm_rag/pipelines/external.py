"""Voting over answers sampled elsewhere (another machine, vLLM, a paper's release); the file format is
`calm_rag.data.samples`.

Input: JSONL, one record per (question, language):
`{"id", "lang", "question", "choices": [{"label", "text"}...], "answer"?: gold, "responses": [text, ...]}`.
Records sharing an `id` are the same question in different languages. The responses are taken
as answers to the question in its given option order (no rotation), and go through the same
extraction, voting and pair construction as calm-rag's own samples.
"""

from __future__ import annotations

from typing import Any

from calm_rag.data.samples import SamplesFile
from calm_rag.prompts import Translate
from calm_rag.voting.choice_pairs import ChoicePairPlan, PreferencePair, plan_choice_pairs, realize_choice_pairs
from calm_rag.voting.metrics import QuestionOutcome, summarize
from calm_rag.voting.vote import vote_choice_responses


def vote_samples(samples: SamplesFile, balanced: bool = False, translate: Translate | None = None,
                 with_pairs: bool = False) -> tuple[dict[str, Any], list[PreferencePair]]:
    """The vote report (and, when asked, the preference pairs) for a loaded samples file."""
    outcomes: list[QuestionOutcome] = []
    plans: list[ChoicePairPlan] = []
    for item in samples.questions:
        vote = vote_choice_responses(item.question, item.responses, balanced)
        outcomes.append(QuestionOutcome(item.question.id, item.question.answer, vote,
                                        {lang: len(rs) for lang, rs in item.responses.items()}))
        if with_pairs and vote.winner is not None:
            plans.extend(plan_choice_pairs(item.question.id, item.responses, vote.winner, mode="cot"))
    report = summarize(outcomes, samples.languages)
    report["skipped_lines"] = samples.skipped
    pairs: list[PreferencePair] = []
    if with_pairs:
        pairs, pending = realize_choice_pairs(plans, "cot", translate)
        counts = {lang: sum(plan.lang == lang for plan in plans) for lang in samples.languages}
        needing = {lang: sum(plan.lang == lang and plan.needs_translation for plan in plans)
                   for lang in samples.languages}
        report["pairs_by_language"] = counts
        report["translated_by_language"] = {lang: (needing[lang] / counts[lang] if counts[lang] else 0.0)
                                            for lang in samples.languages}
        report["pairs_written"] = len(pairs)
        report["pairs_pending_translation"] = len(pending)
    return report, pairs
