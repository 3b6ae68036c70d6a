"""Self-translation: the generator translates questions, options and explanations itself.

The paper used an external MT service; calm-rag has none offline, so the generator does it
(greedy, one batched call per step). Results are cached per (text, source, target), so a
question asked twice, or options shared between questions, are translated once.

Two things keep a small model's translations usable (measured on the German factual set with
Qwen2.5-Coder-1.5B, docs/results.md): the prompt shows one question translated as a question
(`prompts.TRANSLATION_EXAMPLE`; without it 36 of 90 translated questions came back as statements,
most of them answers), and text goes through English (`pivot`) when neither side is English: such
models translate into and out of English best (German -> French "Spinne" came out as "serpente",
"Schaltjahr" as "anniversaire"; through English, "araignée" and "année bissextile"). The pivot
costs no extra requests where English is among the asked languages (the English version is then
wanted anyway), only a second batched step. A translated question that is no longer a question
(the model answered it) falls back to the direct translation, then to the original text: a
question asked in another language still asks what the user asked; an answer posing as the
question would make that language vote on something nobody asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from calm_rag.generation.base import GenerationConfig, Generator
from calm_rag.prompts import TranslationRequest, translation_messages
from calm_rag.questions import Choice, Question


def clean_translation(output: str, original: str) -> str:
    """Models wrap translations in quotes or add a 'Translation:' prefix; keep the translation only."""
    text = output.strip()
    text = re.sub(r"^(?:translation|übersetzung|traduction|traduzione|翻译|翻訳)\s*[:：]\s*", "", text,
                  flags=re.IGNORECASE)
    if "\n" not in original.strip():
        text = text.split("\n")[0].strip()
    text = text.strip().strip('"“”«»「」『』').strip()
    return text or original


def needs_translation(request: TranslationRequest) -> bool:
    """Text in another language that has words: digits, dates and symbols ("1773", "3.5 %", "1990-2000") read the
    same in every language, and a model asked to translate them only risks changing them (and costs a request)."""
    text, source, target = request
    return source != target and any(character.isalpha() for character in text)


PIVOT_LANGUAGE = "en"
"""The language small models translate into and out of best: the default pivot, and the language every open
answer is also compared in (`calm_rag.generation.open_sampling.gloss_responses`)."""

QUESTION_MARKS = ("?", "？", "؟")


def is_question(text: str) -> bool:
    """Ends with a question mark of any script: what a translated question must still do."""
    return text.rstrip().endswith(QUESTION_MARKS)


def keeps_question(request: TranslationRequest, translation: str | None) -> bool:
    """A translation there is (not None) that is still a question if the text was one."""
    return translation is not None and (is_question(translation) or not is_question(request[0]))


class Translator:
    def __init__(self, generator: Generator, config: GenerationConfig | None = None,
                 pivot: str | None = PIVOT_LANGUAGE) -> None:
        self.generator = generator
        self.config = config or GenerationConfig(temperature=0.0, max_new_tokens=256)
        self.pivot = pivot
        """Translate through this language when neither side is it (None: always directly)."""
        self.cache: dict[TranslationRequest, str] = {}
        """Finished translations, checked."""
        self._outputs: dict[TranslationRequest, str] = {}
        """What the model wrote for each request it was given, cleaned but not checked."""

    def translate_many(self, requests: Sequence[TranslationRequest]) -> list[str]:
        """Translate every request; each step's model calls go out in one batched generate call."""
        missing = list(dict.fromkeys(req for req in requests if req not in self.cache and needs_translation(req)))
        legs = {req: (req[0], req[1], self.pivot) for req in missing if self._pivoted(req)}
        self._generate([*(req for req in missing if req not in legs), *legs.values()])
        onward = {req: (self._outputs[leg], self.pivot, req[2]) for req, leg in legs.items()
                  if keeps_question(leg, self._outputs[leg])}
        self._generate([req for req in onward.values() if needs_translation(req)])
        through = {req: self._outputs.get(second, second[0]) for req, second in onward.items()}
        self._generate([req for req in legs if not keeps_question(req, through.get(req))])
        for req in dict.fromkeys([*missing, *legs.values()]):
            candidates = (through.get(req), self._outputs.get(req))
            self.cache[req] = next((text for text in candidates if keeps_question(req, text)), req[0])
        return [self.cache[req] if needs_translation(req) else req[0] for req in requests]

    def _pivoted(self, request: TranslationRequest) -> bool:
        return self.pivot is not None and self.pivot not in (request[1], request[2])

    def _generate(self, requests: Sequence[TranslationRequest]) -> None:
        """Ask the model for the requests it has not translated yet, in one batched call."""
        todo = list(dict.fromkeys(req for req in requests if req not in self._outputs))
        if not todo:
            return
        prompts = [self.generator.render(translation_messages(*req, self.generator.special_tokens)) for req in todo]
        budget = max(len(req[0]) for req in todo) * 2 + 32
        config = replace(self.config, max_new_tokens=min(self.config.max_new_tokens, budget))
        for req, output in zip(todo, self.generator.generate(prompts, config)):
            self._outputs[req] = clean_translation(output, req[0])

    def translate_questions(self, question: Question, targets: Sequence[str]) -> dict[str, Question]:
        """`question` in each target language; option labels are kept, option texts translated."""
        return self.translate_question_sets([question], targets)[0]

    def translate_question_sets(self, questions: Sequence[Question], targets: Sequence[str]
                                ) -> list[dict[str, Question]]:
        """Several questions into several languages, in one batched call."""
        requests: list[TranslationRequest] = []
        for question in questions:
            for target in targets:
                requests.append((question.question, question.lang, target))
                requests.extend((choice.text, question.lang, target) for choice in question.choices)
        translated = iter(self.translate_many(requests))
        results = []
        for question in questions:
            versions = {}
            for target in targets:
                text = next(translated)
                choices = tuple(Choice(choice.label, next(translated)) for choice in question.choices)
                versions[target] = Question(question.id, target, text, choices, question.answer)
            results.append(versions)
        return results
