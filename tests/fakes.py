"""A deterministic stand-in for `Generator`, for tests of the pipeline logic.

It reads the prompt like a model would: translation prompts come back as "[<target>] <text>";
multiple-choice prompts are answered with the option whose text contains one of `knowledge`'s
strings for that language (so the answer follows the option's *content* through rotations and
translations), or with `fallback` text when it knows nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from calm_rag.generation import GenerationConfig
from calm_rag.languages import LANGUAGES


class FakeGenerator:
    name = "fake-generator"
    has_chat_template = True

    def __init__(self, knowledge: dict[str, str], fallback: str = "Hmm, ich weiß es nicht.") -> None:
        self.knowledge = knowledge
        self.fallback = fallback
        self.generate_calls: list[int] = []

    def render(self, messages: Sequence[dict[str, str]], prefill: str = "") -> str:
        return "\n".join(message["content"] for message in messages) + "\n<assistant>" + prefill

    def _answer(self, prompt: str) -> str:
        translate = re.match(r"Translate the following (\w+) text into (\w+)\..*?\n\n(.*)\n<assistant>", prompt, re.S)
        if translate:
            target = next(code for code, lang in LANGUAGES.items() if lang.name == translate.group(2))
            return f"[{target}] {translate.group(3)}"
        lang = next(code for code, language in LANGUAGES.items() if prompt.startswith(language.instruction)
                    or prompt.startswith(language.direct_instruction))
        wanted = self.knowledge.get(lang)
        for label, text in re.findall(r"^([A-J])\. (.+)$", prompt, re.M):
            if wanted and wanted in text:
                language = LANGUAGES[lang]
                return f"{language.explanation_label}{language.colon}Weil {text}.\n{language.answer_label}{language.colon}{label}"
        return self.fallback

    def generate(self, prompts: Sequence[str], config: GenerationConfig = GenerationConfig(),
                 progress: Callable[[int], None] | None = None) -> list[str]:
        self.generate_calls.append(len(prompts))
        if progress:
            progress(len(prompts))
        return [self._answer(prompt) for prompt in prompts]

    def label_distributions(self, prompts: Sequence[str], label_sets: Sequence[Sequence[str]], batch_size: int = 32,
                            progress: Callable[[int], None] | None = None) -> list[dict[str, float]]:
        results = []
        for prompt, labels in zip(prompts, label_sets):
            match = re.search(r"[:：]\s*([A-J])$", self._answer(prompt))
            chosen = match.group(1) if match else None
            weights = {label: (0.7 if label == chosen else 0.3 / (len(labels) - 1)) if chosen else 1 / len(labels)
                       for label in labels}
            results.append(weights)
        return results
