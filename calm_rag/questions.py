"""Question types shared by every path: one multiple-choice question, and its parallel versions.

A `ParallelQuestion` is the same question in several languages (a parallel dataset line,
or a user's question plus the generator's self-translations). Option-order permutation
lives here too because it is a property of how a question is shown, not of the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from calm_rag.errors import CalmRagError

OPTION_LABELS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Choice:
    label: str
    text: str


@dataclass(frozen=True)
class Question:
    """One question in one language. `choices` is empty for open (free-form) questions."""

    id: str
    lang: str
    question: str
    choices: tuple[Choice, ...] = ()
    answer: str | None = None
    """Gold letter (or gold text for open questions) where known."""

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(choice.label for choice in self.choices)

    def choice_text(self, label: str) -> str | None:
        return next((choice.text for choice in self.choices if choice.label == label), None)

    def permuted(self, shift: int) -> tuple[Question, dict[str, str]]:
        """The question with its options rotated by `shift` and relabelled A, B, ...

        Returns the shown question and the map shown label -> original label. Cyclic
        shifts put every option in every position equally often over len(choices)
        consecutive shifts, which is what cancels a model's position (letter) bias.
        """
        count = len(self.choices)
        if count == 0 or shift % count == 0:
            return self, {label: label for label in self.labels}
        order = [self.choices[(index + shift) % count] for index in range(count)]
        shown = tuple(Choice(OPTION_LABELS[index], choice.text) for index, choice in enumerate(order))
        mapping = {OPTION_LABELS[index]: choice.label for index, choice in enumerate(order)}
        return Question(self.id, self.lang, self.question, shown, None), mapping

    @classmethod
    def from_record(cls, record: dict[str, Any], *, where: str = "record") -> Question:
        """Build from the dataset/`vote` JSON record format; `where` names the line in errors."""
        for key in ("id", "lang", "question"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise CalmRagError(f"{where}: missing or empty field {key!r}")
        raw_choices = record.get("choices") or []
        if not isinstance(raw_choices, list):
            raise CalmRagError(f"{where}: 'choices' must be a list of {{label, text}} objects")
        choices = []
        for index, item in enumerate(raw_choices):
            if isinstance(item, dict) and "text" in item:
                choices.append(Choice(str(item.get("label") or OPTION_LABELS[index]), str(item["text"])))
            else:
                raise CalmRagError(f"{where}: choice {index + 1} is not a {{label, text}} object")
        answer = record.get("answer")
        return cls(record["id"], record["lang"], record["question"], tuple(choices),
                   str(answer) if answer is not None else None)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"id": self.id, "lang": self.lang, "question": self.question,
                                  "choices": [{"label": c.label, "text": c.text} for c in self.choices]}
        if self.answer is not None:
            record["answer"] = self.answer
        return record


def make_choices(texts: list[str]) -> tuple[Choice, ...]:
    """User-given option texts -> labelled choices; at least two, at most ten."""
    cleaned = [text.strip() for text in texts]
    if len(cleaned) < 2:
        raise CalmRagError("a multiple-choice question needs at least 2 choices (--choice ... --choice ...)")
    if len(cleaned) > len(OPTION_LABELS):
        raise CalmRagError(f"at most {len(OPTION_LABELS)} choices are supported, got {len(cleaned)}")
    if any(not text for text in cleaned):
        raise CalmRagError("a choice is empty")
    repeated = sorted({text for text in cleaned if cleaned.count(text) > 1})
    if repeated:
        raise CalmRagError(f"the same choice is given twice: {', '.join(repeated)}")
    return tuple(Choice(OPTION_LABELS[index], text) for index, text in enumerate(cleaned))


@dataclass
class ParallelQuestion:
    """The same question in several languages; `source_lang` is the language it was asked in."""

    id: str
    versions: dict[str, Question]
    source_lang: str
    answer: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return not self.versions[self.source_lang].choices

    @property
    def labels(self) -> tuple[str, ...]:
        return self.versions[self.source_lang].labels
