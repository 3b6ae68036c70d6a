"""CALM preference pairs: responses that agree with the cross-lingual majority are *chosen*,
those that disagree are *rejected*.

Rule (per question and language): every parsed response whose letter differs from the majority
becomes one rejected response, paired with an agreeing response of the same language (cycling
through them). When no response in that language agrees, the chosen one is a majority response
from another language (the first in language order) translated into this language by the
generator; such pairs are marked `translated`. In `direct` mode the chosen answer is simply the
majority option's label and text in this language, so nothing needs translating.

Both answers end in the canonical localized line "Antwort: C) Krankenhaus". In cot mode the pair
keeps the prompt the rejected response saw (options may have been rotated), because the sampled
explanations may refer to its letters. In direct mode nothing was written, so each pair is shown in
a rotation of its own that puts the consensus option at the next letter in turn (A, B, C, ... over
the pairs): the letters of the chosen answers are then uniform, and no letter can stand in for the
content. Without this, one rotation per language confounds letters with agreement: the answers that
disagree with the consensus are mostly the model's favourite positions, so the chosen ones are mostly
the others, and a real run learned to answer "A" or "E" to everything (docs/results.md).

The rejected letters are balanced too. A rotation moves both options of a pair by the same shift, so the
rejected option stays a fixed number of places after the consensus (its offset); the turn is therefore kept
per offset, and within each offset the chosen letters cycle A, B, C, ... and the rejected ones with them.
A letter rejected more often than chosen is a letter the pairs teach against whatever the question: the
clean-pairs run rejected E most (90 of 390) and its answers of E halved, while a full-split run whose pairs
rejected C least (292 of 1,659) drifted to C (and to E, the most rejected there: not all drift is this; see
docs/results.md). Either way it is a confound no pair set needs.
Rows are conversational prompt/chosen/rejected, as TRL's DPOTrainer takes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from calm_rag.languages import get_language
from calm_rag.prompts import Message, Mode, Translate, mcq_messages
from calm_rag.questions import Choice, Question
from calm_rag.responses import ChoiceResponse
from calm_rag.voting.extraction import split_explanation


@dataclass(frozen=True)
class ChoicePairPlan:
    """A rejected response and the response that will become its chosen counterpart."""

    id: str
    lang: str
    majority: str
    rejected: ChoiceResponse
    chosen: ChoiceResponse | None
    """None in direct mode, where the chosen answer is built from the majority option itself."""

    @property
    def needs_translation(self) -> bool:
        return self.chosen is not None and self.chosen.lang != self.lang


@dataclass(frozen=True)
class PreferencePair:
    id: str
    lang: str
    majority: str
    translated: bool
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "lang": self.lang, "majority": self.majority, "translated": self.translated,
                "prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}


def plan_choice_pairs(question_id: str, responses_by_lang: Mapping[str, Sequence[ChoiceResponse]], majority: str,
               mode: Mode = "cot") -> list[ChoicePairPlan]:
    """Every pair this question yields, before any translation."""
    agreeing = {lang: [r for r in responses if r.letter == majority] for lang, responses in responses_by_lang.items()}
    donor = next((responses[0] for responses in agreeing.values() if responses), None)
    plans = []
    for lang, responses in responses_by_lang.items():
        rejected = [r for r in responses if r.letter is not None and r.letter != majority]
        for number, response in enumerate(rejected):
            if mode == "direct":
                chosen = None
            elif agreeing[lang]:
                chosen = agreeing[lang][number % len(agreeing[lang])]
            elif donor is not None:
                chosen = donor
            else:
                continue
            plans.append(ChoicePairPlan(question_id, lang, majority, response, chosen))
    return plans


def _answer(explanation: str, response: ChoiceResponse, original_label: str) -> str:
    """An explanation (possibly empty) followed by the canonical answer line in `response`'s label space."""
    shown = response.shown_label(original_label)
    line = get_language(response.lang).answer_line(shown, response.shown.choice_text(shown))
    return f"{explanation}\n{line}" if explanation else line


def _prompt(response: ChoiceResponse, mode: Mode) -> list[Message]:
    return list(response.prompt) if response.prompt else mcq_messages(response.shown, mode)


def original_question(response: ChoiceResponse) -> Question:
    """The question in its original option order, rebuilt from the rotated one the response saw."""
    shown = response.shown
    to_original = response.label_map or {label: label for label in shown.labels}
    texts = {original: shown.choice_text(label) for label, original in to_original.items()}
    return Question(shown.id, shown.lang, shown.question, tuple(Choice(label, texts[label]) for label in sorted(texts)))


def rotated_with(question: Question, option: str, position: int) -> ChoiceResponse:
    """`question` rotated so that original `option` is shown at `position`, as a response that answered it."""
    shift = (question.labels.index(option) - position) % len(question.labels)
    shown, label_map = question.permuted(shift)
    return ChoiceResponse(question.lang, "", option, shown, label_map)


def offset(plan: ChoicePairPlan) -> tuple[int, int]:
    """(option count, places from the consensus option to the rejected one in the original order): what no
    rotation changes, so the key under which a direct pair takes its turn of positions."""
    labels = original_question(plan.rejected).labels
    assert plan.rejected.letter is not None
    return len(labels), (labels.index(plan.rejected.letter) - labels.index(plan.majority)) % len(labels)


def _direct_pair(plan: ChoicePairPlan, position: int) -> PreferencePair:
    """A direct-mode pair shown with the consensus option at `position` (see the module docstring)."""
    assert plan.rejected.letter is not None
    view = rotated_with(original_question(plan.rejected), plan.majority, position)
    return PreferencePair(
        id=plan.id, lang=plan.lang, majority=plan.majority, translated=False,
        prompt=mcq_messages(view.shown, "direct"),
        chosen=[{"role": "assistant", "content": _answer("", view, plan.majority)}],
        rejected=[{"role": "assistant", "content": _answer("", view, plan.rejected.letter)}],
    )


def realize_choice_pairs(plans: Sequence[ChoicePairPlan], mode: Mode = "cot", translate: Translate | None = None
                  ) -> tuple[list[PreferencePair], list[ChoicePairPlan]]:
    """Turn plans into pairs, translating every cross-language chosen explanation in one `translate` call.
    Plans that need translation when no `translate` is given are returned as pending."""
    explanations: dict[int, str] = {}
    to_translate = [plan for plan in plans if plan.needs_translation]
    if translate is not None and to_translate:
        requests = [(split_explanation(plan.chosen.text, plan.chosen.lang), plan.chosen.lang, plan.lang)
                    for plan in to_translate if plan.chosen is not None]
        for plan, text in zip(to_translate, translate(requests)):
            explanations[id(plan)] = text
    pairs: list[PreferencePair] = []
    pending: list[ChoicePairPlan] = []
    turns: Counter[tuple[int, int]] = Counter()
    for plan in plans:
        rejected = plan.rejected
        assert rejected.letter is not None
        if mode == "direct" or plan.chosen is None:
            key = offset(plan)
            pairs.append(_direct_pair(plan, turns[key] % key[0]))
            turns[key] += 1
            continue
        if plan.needs_translation and id(plan) not in explanations:
            pending.append(plan)
            continue
        explanation = explanations.get(id(plan)) or split_explanation(plan.chosen.text, plan.lang)
        chosen_text = _answer(explanation, rejected, plan.majority)
        rejected_text = _answer(split_explanation(rejected.text, plan.lang), rejected, rejected.letter)
        pairs.append(PreferencePair(
            id=plan.id, lang=plan.lang, majority=plan.majority, translated=plan.needs_translation,
            prompt=_prompt(rejected, mode),
            chosen=[{"role": "assistant", "content": chosen_text}],
            rejected=[{"role": "assistant", "content": rejected_text}],
        ))
    return pairs, pending
