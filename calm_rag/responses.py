"""Sampled answers of the generator, with everything voting and pairs need: `ChoiceResponse` for
multiple-choice questions, `OpenResponse` for open ones.

Letters are kept in two label spaces: `shown` is the question as the model saw it (options
possibly rotated), `label_map` maps its labels back to the original ones, and `letter` /
`distribution` are already in the original label space, so votes from differently ordered
prompts and different languages can be added up directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from calm_rag.prompts import Message
from calm_rag.questions import Question


@dataclass(frozen=True)
class ChoiceResponse:
    lang: str
    text: str
    letter: str | None
    """The extracted answer in the original label space; None when nothing parseable was stated."""
    shown: Question
    label_map: dict[str, str] = field(default_factory=dict)
    """Shown label -> original label (identity when options were not permuted)."""
    distribution: dict[str, float] | None = None
    """`direct` mode: the exact probability of each original label (sums to 1)."""
    prompt: tuple[Message, ...] = ()
    """The exact conversational prompt this response answered (reused as the prompt of DPO pairs)."""
    letter_source: str | None = None
    """Where `letter` came from (`calm_rag.generation.choice_continuation.LetterSource`): the model's own text,
    the continuation of its turn after the answer label when the text stated none, or direct mode's
    distribution; None without a letter, or for answers sampled elsewhere."""

    @property
    def ballot(self) -> dict[str, float]:
        """This response's vote: a soft distribution in direct mode, one full vote otherwise."""
        if self.distribution is not None:
            return dict(self.distribution)
        return {self.letter: 1.0} if self.letter else {}

    def shown_label(self, original: str) -> str:
        """The label under which original option `original` appears in this response's prompt."""
        return next((shown for shown, orig in self.label_map.items() if orig == original), original)


@dataclass(frozen=True)
class OpenResponse:
    """One sampled response to an open question in one language."""

    lang: str
    text: str
    span: str | None
    """The extracted short answer; None when unparseable."""
    explanation: str
    prompt: tuple[Message, ...]
    span_source: str | None = None
    """Where the span came from (`calm_rag.voting.spans.SpanSource`): the model's own answer line, or the
    continuation of its turn after the answer label when that line was missing or too long."""
    gloss: str | None = None
    """The span translated into English (`calm_rag.generation.open_sampling.gloss_responses`), which the
    clustering compares too; None for English spans, spans with nothing to translate, or glossing off."""
