"""A deterministic stand-in for `Generator`, for tests of the pipeline logic.

It reads the prompt like a model would: translation prompts come back as "[<target>] <text>" (a text that
already carries such a tag has it replaced, so a translation through English reads like a direct one);
multiple-choice prompts are answered with the option whose text contains one of `knowledge`'s
strings for that language (so the answer follows the option's *content* through rotations and
translations), open questions with that string itself, or with `fallback` text when it knows nothing.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from calm_rag.generation.base import GenerationConfig
from calm_rag.languages import LANGUAGES


def fake_translation(prompt: str) -> str | None:
    """What the fakes write for a translation prompt (None: it is not one): "[<target>] <text>", from the last
    request in the prompt (the one after the demonstration), any earlier tag replaced."""
    start = prompt.rfind("Translate the following ")
    found = re.match(r"Translate the following \w+ text into (\w+)\.\n\n(.*)\n<assistant>$", prompt[start:], re.S)
    if start < 0 or not found:
        return None
    target = next(code for code, lang in LANGUAGES.items() if lang.name == found.group(1))
    text = re.sub(r"^\[[a-z]{2}\] ", "", found.group(2))
    return f"[{target}] {text}"


class FakeGenerator:
    name = "fake-generator"
    has_chat_template = True
    special_tokens: frozenset[str] = frozenset()
    constrains_decoding = False

    def __init__(self, knowledge: dict[str, str], fallback: str = "Hmm, ich weiß es nicht.") -> None:
        self.knowledge = knowledge
        self.fallback = fallback
        self.generate_calls: list[int] = []

    def render(self, messages: Sequence[dict[str, str]], prefill: str = "") -> str:
        return "\n".join(message["content"] for message in messages) + "\n<assistant>" + prefill

    def _answer(self, prompt: str) -> str:
        translated = fake_translation(prompt)
        if translated is not None:
            return translated
        open_lang = next((code for code, language in LANGUAGES.items()
                          if prompt.startswith(language.open_instruction)), None)
        if open_lang:
            language = LANGUAGES[open_lang]
            known = self.knowledge.get(open_lang)
            if not prompt.endswith("<assistant>"):  # the turn is continued after the answer label
                return f" {known}" if known else ""
            return f"{language.answer_label}{language.colon}{known}" if known else self.fallback
        asked = re.sub(r"^<passages>.*?</passages>\n\n", "", prompt, flags=re.S)  # passages come first
        lang = next(code for code, language in LANGUAGES.items() if asked.startswith(language.instruction)
                    or asked.startswith(language.direct_instruction))
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

    def close(self) -> None:
        pass

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


def concept_encoder(concepts: dict[str, int], calls: list[list[str]] | None = None, dim: int = 512
                    ) -> Callable[[list[str]], np.ndarray]:
    """A fake embedder: texts named in `concepts` share one direction per concept; any other text gets
    its own direction (so it matches only itself). `calls` records each batch it was asked to embed."""

    def encode(texts: list[str]) -> np.ndarray:
        if calls is not None:
            calls.append(list(texts))
        rows = np.zeros((len(texts), dim), dtype=np.float32)
        for row, text in enumerate(texts):
            rows[row, concepts[text] if text in concepts else 16 + zlib.crc32(text.encode()) % (dim - 16)] = 1.0
        return rows

    return encode


class ScriptedGenerator:
    """Answers an open-question prompt in language L with `script[L][k]` for its k-th copy in a batch; a
    prompt continued after the answer label (a span asked for) with `continuations[L]` (nothing by default);
    translation prompts come back as "[<target>] <text>"."""

    name = "scripted"
    has_chat_template = True
    special_tokens: frozenset[str] = frozenset()
    constrains_decoding = False

    def __init__(self, script: dict[str, list[str]], continuations: dict[str, str] | None = None) -> None:
        self.script = script
        self.continuations = continuations or {}
        self.calls: list[list[str]] = []

    def render(self, messages: Sequence[dict[str, str]], prefill: str = "") -> str:
        return "\n".join(message["content"] for message in messages) + "\n<assistant>" + prefill

    def close(self) -> None:
        pass

    def generate(self, prompts: Sequence[str], config: GenerationConfig = GenerationConfig(),
                 progress: Callable[[int], None] | None = None) -> list[str]:
        self.calls.append(list(prompts))
        seen: Counter[str] = Counter()
        outputs = []
        for prompt in prompts:
            translated = fake_translation(prompt)
            if translated is not None:
                outputs.append(translated)
                continue
            lang = next(code for code, language in LANGUAGES.items()
                        if prompt.startswith(language.open_instruction))
            if not prompt.endswith("<assistant>"):  # the turn is continued after the answer label
                outputs.append(self.continuations.get(lang, ""))
                continue
            outputs.append(self.script[lang][seen[prompt] % len(self.script[lang])])
            seen[prompt] += 1
        if progress:
            progress(len(prompts))
        return outputs


class ScriptedChoiceGenerator:
    """Answers a cot multiple-choice prompt in language L with `script[L][k]` for its k-th copy in a batch (the
    text as written, answer line or not); a prompt continued after the answer label is scored by
    `label_distributions` with 0.9 on the shown label whose option contains `continuations[L]` (all labels
    tied when it knows none). Translation prompts come back as "[<target>] <text>". Every prompt given to
    `label_distributions` is kept in `scored`, one list per call."""

    name = "scripted-choice"
    has_chat_template = True
    special_tokens: frozenset[str] = frozenset()
    constrains_decoding = False

    def __init__(self, script: dict[str, list[str]], continuations: dict[str, str] | None = None) -> None:
        self.script = script
        self.continuations = continuations or {}
        self.generated: list[list[str]] = []
        self.scored: list[list[str]] = []

    def render(self, messages: Sequence[dict[str, str]], prefill: str = "") -> str:
        return "\n".join(message["content"] for message in messages) + "\n<assistant>" + prefill

    def close(self) -> None:
        pass

    @staticmethod
    def _lang(prompt: str) -> str:
        return next(code for code, language in LANGUAGES.items() if prompt.startswith(language.instruction))

    def generate(self, prompts: Sequence[str], config: GenerationConfig = GenerationConfig(),
                 progress: Callable[[int], None] | None = None) -> list[str]:
        self.generated.append(list(prompts))
        seen: Counter[str] = Counter()
        outputs = []
        for prompt in prompts:
            translated = fake_translation(prompt)
            if translated is not None:
                outputs.append(translated)
                continue
            lang = self._lang(prompt)
            outputs.append(self.script[lang][seen[lang] % len(self.script[lang])])
            seen[lang] += 1
        if progress:
            progress(len(prompts))
        return outputs

    def label_distributions(self, prompts: Sequence[str], label_sets: Sequence[Sequence[str]], batch_size: int = 32,
                            progress: Callable[[int], None] | None = None) -> list[dict[str, float]]:
        self.scored.append(list(prompts))
        results = []
        for prompt, labels in zip(prompts, label_sets):
            known = self.continuations.get(self._lang(prompt))
            options = dict(re.findall(r"^([A-J])\. (.+)$", prompt.split("\n<assistant>")[0], re.M))
            chosen = next((label for label in labels if known and known in options.get(label, "")), None)
            results.append({label: (0.9 if label == chosen else 0.1 / (len(labels) - 1)) if chosen
                            else 1 / len(labels) for label in labels})
        return results
