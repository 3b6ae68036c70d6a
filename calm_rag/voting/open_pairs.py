"""CALM preference pairs for open questions: answers in the cross-lingual consensus cluster are *chosen*,
answers in other clusters are *rejected*.

The rule mirrors `calm_rag.voting.choice_pairs` with "same cluster" in place of "same letter": per question and
language, every parsed sample outside the consensus cluster becomes one rejected response, paired with
a consensus sample of the same language (cycling through them). When that language has none, the
chosen response is the consensus representative (another language) translated into this language by
the generator, explanation and answer alike; such pairs are marked `translated`. Unparsed samples are
never used: a preference for "any answer" over "no answer" is not what CALM teaches.

Questions where the pipeline abstained or the top clusters tied yield no pairs: a training target needs
a clear consensus. Both sides end in the canonical localized line "Antwort: <answer>". Rows are
`calm_rag.voting.choice_pairs.PreferencePair`s (conversational prompt/chosen/rejected, as TRL's DPOTrainer takes them),
`majority` holding the consensus representative's text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from calm_rag.languages import get_language
from calm_rag.prompts import Translate
from calm_rag.responses import OpenResponse
from calm_rag.voting.choice_pairs import PreferencePair
from calm_rag.voting.clustering import Clustering


@dataclass(frozen=True)
class OpenPairPlan:
    """A rejected sample and the sample that becomes its chosen counterpart."""

    id: str
    lang: str
    majority: str
    rejected: OpenResponse
    chosen: OpenResponse

    @property
    def needs_translation(self) -> bool:
        return self.chosen.lang != self.lang


def answer_text(explanation: str, span: str, lang: str) -> str:
    """An explanation (possibly empty) followed by the canonical final line, e.g. '答案：330米'."""
    language = get_language(lang)
    line = f"{language.answer_label}{language.colon}{span}"
    return f"{explanation}\n{line}" if explanation else line


def plan_open_pairs(question_id: str, samples: Mapping[str, Sequence[OpenResponse]], clustering: Clustering
                        ) -> list[OpenPairPlan]:
    """Every pair one question yields, before any translation. `clustering` must come from these samples."""
    winner = clustering.winner
    if winner is None or clustering.tied:
        return []
    representative = winner.representative
    donor = samples[representative.lang][representative.sample]
    plans = []
    for lang, items in samples.items():
        agreeing = [items[m.sample] for m in winner.members if m.lang == lang]
        rejected = sorted((m for cluster in clustering.clusters[1:] for m in cluster.members if m.lang == lang),
                          key=lambda member: member.sample)
        for number, member in enumerate(rejected):
            chosen = agreeing[number % len(agreeing)] if agreeing else donor
            plans.append(OpenPairPlan(question_id, lang, representative.text, items[member.sample], chosen))
    return plans


def realize_open_pairs(plans: Sequence[OpenPairPlan], translate: Translate | None = None
                           ) -> tuple[list[PreferencePair], list[OpenPairPlan]]:
    """Turn plans into pairs, translating every cross-language chosen answer in one batched call. Plans that
    need translation when no `translate` is given are returned as pending."""
    translated: dict[int, tuple[str, str]] = {}
    to_translate = [plan for plan in plans if plan.needs_translation]
    if translate is not None and to_translate:
        requests = []
        for plan in to_translate:
            if plan.chosen.explanation:
                requests.append((plan.chosen.explanation, plan.chosen.lang, plan.lang))
            requests.append((plan.chosen.span or "", plan.chosen.lang, plan.lang))
        outputs = iter(translate(requests))
        for plan in to_translate:
            explanation = next(outputs) if plan.chosen.explanation else ""
            translated[id(plan)] = (explanation, next(outputs))
    pairs, pending = [], []
    for plan in plans:
        if plan.needs_translation and id(plan) not in translated:
            pending.append(plan)
            continue
        explanation, span = translated.get(id(plan), (plan.chosen.explanation, plan.chosen.span or ""))
        rejected = plan.rejected
        pairs.append(PreferencePair(
            id=plan.id, lang=plan.lang, majority=plan.majority, translated=plan.needs_translation,
            prompt=list(rejected.prompt),
            chosen=[{"role": "assistant", "content": answer_text(explanation, span, plan.lang)}],
            rejected=[{"role": "assistant", "content": answer_text(rejected.explanation, rejected.span or "",
                                                                   plan.lang)}],
        ))
    return pairs, pending

