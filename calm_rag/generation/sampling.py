"""CALM sampling: every question in every language, K samples each, in few batched calls.

Option-order permutation is the source of variation between samples: sample k of the i-th
language sees the options rotated by i*K + k positions (see `Question.permuted`), and its
answer is mapped back to the original labels before voting. Over the L*K samples every option
appears in every position about equally often, which cancels a model's preference for one
letter. In `direct` mode each "sample" is the exact label distribution of one rotation.

In `cot` mode a sample whose text states no letter is continued after the answer label and its letter read
there (`calm_rag.generation.choice_continuation`, on by default: `continue_letters`); each response records
where its letter came from (`letter_source`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig, Generator
from calm_rag.generation.choice_continuation import LetterSource, continued_letters
from calm_rag.languages import PAPER_LANGUAGES, get_language
from calm_rag.prompts import Mode, Passage, answer_prefill, mcq_messages
from calm_rag.questions import ParallelQuestion, Question
from calm_rag.responses import ChoiceResponse
from calm_rag.voting.extraction import extract_letter

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SamplingConfig:
    languages: tuple[str, ...] = PAPER_LANGUAGES
    samples: int = 3
    """K: samples per language (rotations per language in direct mode)."""
    mode: Mode = "cot"
    permute: bool = True
    balanced: bool = False
    """Language-balanced voting: each language's samples share one vote."""
    continue_letters: bool = True
    """cot mode: read the letter after the answer label, appended to the sample's own text, where that text
    states none (one more batched direct-mode call); off leaves such samples unparsed."""
    generation: GenerationConfig = field(default_factory=GenerationConfig)

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise CalmRagError("samples must be at least 1")
        if self.mode not in ("cot", "direct"):
            raise CalmRagError(f"unknown mode {self.mode!r}; use cot or direct")
        for code in self.languages:
            get_language(code)


@dataclass(frozen=True)
class _Slot:
    question: int
    lang: str
    shown: Question
    label_map: dict[str, str]
    prompt: tuple[dict[str, str], ...]


def _languages_of(question: ParallelQuestion, languages: Sequence[str]) -> list[str]:
    """The configured languages this question has a version in (every one, for parallel datasets)."""
    present = [lang for lang in languages if lang in question.versions]
    if not present:
        raise CalmRagError(f"question {question.id} has no version in any of {', '.join(languages)}")
    return present


def _slots(questions: Sequence[ParallelQuestion], config: SamplingConfig,
           passages: Sequence[Sequence[Passage]] | None, special_tokens: frozenset[str]) -> list[_Slot]:
    slots = []
    for number, question in enumerate(questions):
        context = passages[number] if passages else ()
        for lang in _languages_of(question, config.languages):
            lang_index = config.languages.index(lang)
            for sample in range(config.samples):
                shift = lang_index * config.samples + sample if config.permute else 0
                shown, label_map = question.versions[lang].permuted(shift)
                slots.append(_Slot(number, lang, shown, label_map, tuple(mcq_messages(shown, config.mode, context, special_tokens))))
    return slots


def _cot_letters(generator: Generator, slots: Sequence[_Slot], texts: Sequence[str], config: SamplingConfig
                 ) -> tuple[list[str | None], list[LetterSource | None]]:
    """Each cot sample's shown letter and its source: parsed from its text, else (with `continue_letters`) read
    after the answer label appended to that text, all such samples in one call; None where neither gives one."""
    letters = [extract_letter(text, slot.lang, slot.shown.choices) for slot, text in zip(slots, texts)]
    sources: list[LetterSource | None] = ["text" if letter else None for letter in letters]
    pending = [index for index, letter in enumerate(letters) if letter is None and config.continue_letters]
    continued = continued_letters(generator, [slots[i].prompt for i in pending], [texts[i] for i in pending],
                                  [slots[i].shown for i in pending], config.generation.batch_size)
    for index, letter in zip(pending, continued):
        if letter is not None:
            letters[index], sources[index] = letter, "continuation"
    return letters, sources


def sample_choice_responses(generator: Generator, questions: Sequence[ParallelQuestion], config: SamplingConfig,
                     passages: Sequence[Sequence[Passage]] | None = None, progress: Progress | None = None
                     ) -> list[dict[str, list[ChoiceResponse]]]:
    """For each question: language -> its K responses, in sample order. A question is sampled in the
    configured languages it has a version in."""
    slots = _slots(questions, config, passages, generator.special_tokens)
    results: list[dict[str, list[ChoiceResponse]]] = [
        {lang: [] for lang in _languages_of(question, config.languages)} for question in questions]
    if config.mode == "direct":
        prompts = [generator.render(slot.prompt, prefill=answer_prefill(slot.lang)) for slot in slots]
        distributions = generator.label_distributions(prompts, [slot.shown.labels for slot in slots],
                                                      batch_size=config.generation.batch_size, progress=progress)
        for slot, shown_distribution in zip(slots, distributions):
            distribution = {slot.label_map[label]: p for label, p in shown_distribution.items()}
            best_shown = max(shown_distribution, key=shown_distribution.__getitem__)
            text = get_language(slot.lang).answer_line(best_shown, slot.shown.choice_text(best_shown))
            results[slot.question][slot.lang].append(ChoiceResponse(
                slot.lang, text, slot.label_map[best_shown], slot.shown, slot.label_map, distribution, slot.prompt,
                "direct"))
    else:
        prompts = [generator.render(slot.prompt) for slot in slots]
        texts = generator.generate(prompts, config.generation, progress=progress)
        shown_letters, sources = _cot_letters(generator, slots, texts, config)
        for slot, text, shown_letter, source in zip(slots, texts, shown_letters, sources):
            letter = slot.label_map[shown_letter] if shown_letter else None
            results[slot.question][slot.lang].append(
                ChoiceResponse(slot.lang, text, letter, slot.shown, slot.label_map, None, slot.prompt, source))
    return results
