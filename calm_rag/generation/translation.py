"""Self-translation: the generator translates questions, options and explanations itself.

The paper used an external MT service; calm-rag has none offline, so the generator does it
(greedy, one batched call per round). Results are cached per (text, source, target), so a
question asked twice, or options shared between questions, are translated once.
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


class Translator:
    def __init__(self, generator: Generator, config: GenerationConfig | None = None) -> None:
        self.generator = generator
        self.config = config or GenerationConfig(temperature=0.0, max_new_tokens=256)
        self.cache: dict[TranslationRequest, str] = {}

    def translate_many(self, requests: Sequence[TranslationRequest]) -> list[str]:
        """Translate every request, with all cache misses in one batched generate call."""
        missing = list(dict.fromkeys(req for req in requests if req not in self.cache and needs_translation(req)))
        if missing:
            prompts = [self.generator.render(translation_messages(*req, self.generator.special_tokens)) for req in missing]
            budget = max(len(req[0]) for req in missing) * 2 + 32
            config = replace(self.config, max_new_tokens=min(self.config.max_new_tokens, budget))
            for req, output in zip(missing, self.generator.generate(prompts, config)):
                self.cache[req] = clean_translation(output, req[0])
        return [self.cache[req] if needs_translation(req) else req[0] for req in requests]

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
