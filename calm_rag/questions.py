"""Question types shared by every path: one multiple-choice question, and its parallel versions.

A `ParallelQuestion` is the same question in several languages (a parallel dataset line,
or a user's question plus the generator's self-translations). Option-order permutation
lives here too because it is a property of how a question is shown, not of the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from calm_rag.errors import CalmRagError
from calm_rag.languages import get_language

OPTION_LABELS = "ABCDEFGHIJ"

MAX_QUESTION_CHARS = 8_000
"""Longest question accepted. MedQA's longest case vignette is 3,983 characters; a 100 KB question made a
prompt whose attention tried to allocate 57 GB. Ten times more than any prompt calm-rag writes for an
option is `MAX_CHOICE_CHARS`."""
MAX_CHOICE_CHARS = 1_000
"""Longest option text (X-CSQA's longest is 206 characters)."""


def check_question_text(text: object, where: str = "") -> str:
    """`text` stripped, if it is a non-empty question of at most `MAX_QUESTION_CHARS` characters."""
    prefix = f"{where}: " if where else ""
    if not isinstance(text, str) or not text.strip():
        raise CalmRagError(f"{prefix}the question is empty" if isinstance(text, str) or text is None
                           else f"{prefix}the question must be a string")
    if len(text) > MAX_QUESTION_CHARS:
        raise CalmRagError(f"{prefix}the question is {len(text):,} characters long; at most {MAX_QUESTION_CHARS:,} "
                           "are accepted")
    return text.strip()


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
    def from_record(cls, record: dict[str, Any], *, where: str = "record", unique_texts: bool = False) -> Question:
        """Build from the dataset/`vote` JSON record format; `where` names the line in errors.

        Refused, so that a result never rests on a malformed record: a missing field, a language that is not
        in the registry, an over-long question, more than ten options or fewer than two, a label outside
        A-J or given twice, an empty or over-long option, and a gold answer that is not one of the labels.
        `unique_texts` also refuses two options with the same text (answers given as option text are then
        ambiguous); datasets allow it, because X-CSQA has such questions (18 of 999 in English)."""
        for key in ("id", "lang", "question"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise CalmRagError(f"{where}: missing or empty field {key!r}")
        try:
            lang = get_language(record["lang"]).code
        except CalmRagError as error:
            raise CalmRagError(f"{where}: {error}") from None
        question = check_question_text(record["question"], where)
        choices = _choices(record.get("choices"), where, unique_texts)
        answer = _answer(record.get("answer"), choices, where)
        return cls(record["id"], lang, question, choices, answer)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"id": self.id, "lang": self.lang, "question": self.question,
                                  "choices": [{"label": c.label, "text": c.text} for c in self.choices]}
        if self.answer is not None:
            record["answer"] = self.answer
        return record


def _choices(raw: Any, where: str, unique_texts: bool) -> tuple[Choice, ...]:
    if raw is None or raw == []:
        return ()
    if not isinstance(raw, list):
        raise CalmRagError(f"{where}: 'choices' must be a list of {{label, text}} objects")
    if len(raw) > len(OPTION_LABELS):
        raise CalmRagError(f"{where}: {len(raw)} choices; at most {len(OPTION_LABELS)} (A-J) are supported")
    if len(raw) < 2:
        raise CalmRagError(f"{where}: a multiple-choice question needs at least 2 choices")
    choices = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or "text" not in item:
            raise CalmRagError(f"{where}: choice {index + 1} is not a {{label, text}} object")
        label, text = item.get("label") or OPTION_LABELS[index], item["text"]
        if not isinstance(label, str) or label not in OPTION_LABELS:
            raise CalmRagError(f"{where}: choice {index + 1} has label {label!r}; labels are single letters A-J")
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = str(text)
        if not isinstance(text, str) or not text.strip():
            raise CalmRagError(f"{where}: choice {label} has no text")
        if len(text) > MAX_CHOICE_CHARS:
            raise CalmRagError(f"{where}: choice {label} is {len(text):,} characters long; at most "
                               f"{MAX_CHOICE_CHARS:,} are accepted")
        choices.append(Choice(label, text))
    labels = [choice.label for choice in choices]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise CalmRagError(f"{where}: the label {repeated[0]} is given to two choices")
    texts = [choice.text.strip() for choice in choices]
    repeated = sorted({text for text in texts if texts.count(text) > 1})
    if unique_texts and repeated:
        raise CalmRagError(f"{where}: two choices have the same text {repeated[0]!r}")
    return tuple(choices)


def _answer(raw: Any, choices: tuple[Choice, ...], where: str) -> str | None:
    """The gold answer: one of the labels for multiple choice, a text (or number) for an open question."""
    if raw is None:
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and not choices:
        raw = str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise CalmRagError(f"{where}: 'answer' must be a non-empty string, got {type(raw).__name__}")
    labels = [choice.label for choice in choices]
    if choices and raw not in labels:
        shown = raw if len(raw) <= 20 else raw[:17] + "..."
        raise CalmRagError(f"{where}: gold answer {shown!r} is not one of the labels {', '.join(labels)}")
    if len(raw) > MAX_QUESTION_CHARS:
        raise CalmRagError(f"{where}: the gold answer is {len(raw):,} characters long; at most "
                           f"{MAX_QUESTION_CHARS:,} are accepted")
    return raw


def make_choices(texts: list[str]) -> tuple[Choice, ...]:
    """User-given option texts -> labelled choices; at least two, at most ten."""
    cleaned = [text.strip() for text in texts]
    if len(cleaned) < 2:
        raise CalmRagError("a multiple-choice question needs at least 2 choices (--choice ... --choice ...)")
    if len(cleaned) > len(OPTION_LABELS):
        raise CalmRagError(f"at most {len(OPTION_LABELS)} choices are supported, got {len(cleaned)}")
    if any(not text for text in cleaned):
        raise CalmRagError("a choice is empty")
    if any(len(text) > MAX_CHOICE_CHARS for text in cleaned):
        raise CalmRagError(f"a choice is longer than {MAX_CHOICE_CHARS:,} characters")
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
