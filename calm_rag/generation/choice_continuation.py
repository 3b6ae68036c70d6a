"""Multiple-choice letters for chain-of-thought samples that never stated one.

In cot mode the model is asked to explain and then end with "Antwort: X", but small models often run out
of new tokens mid-explanation or never write the line; such a sample has no letter and its language drops
out of the cross-lingual vote (the README demo lost 1-2 of 3 languages that way). So, as open questions do
for their spans (`calm_rag.generation.open_sampling`), every sample without a parsed letter gets its
assistant turn continued: the prompt, the model's own text, a newline, then the localized answer label -
and the letter is read there with direct mode's exact distribution over the option labels
(`Generator.label_distributions`), one more batched call on any engine. Reading the distribution rather than
decoding a few tokens means the result is always one of the shown options, never free text to parse again.

A distribution with no single most likely label (every label tied, as when a server's top logprobs held
none of them and each got the same floor) gives no letter: picking the first label there would be a
position bias, exactly what CALM's vote is meant to cancel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from calm_rag.generation.base import Generator
from calm_rag.prompts import Message, answer_prefill
from calm_rag.questions import Question

LetterSource = Literal["text", "continuation", "direct"]
"""Where a multiple-choice letter came from: parsed from the model's own text (`extract_letter`: its answer
line, a label it stated, or an option's text), read after the answer label appended to that text
(`continuation`), or the argmax of direct mode's distribution (`direct`)."""


def continuation_prefill(text: str, lang: str) -> str:
    """What follows the assistant turn's start when the letter is asked for: the model's own words, kept as
    they are (its explanation is what the letter should follow from), then the answer label."""
    body = text.strip()
    return (body + "\n" if body else "") + answer_prefill(lang)


def top_label(distribution: Mapping[str, float]) -> str | None:
    """The single most likely label; None when the top is tied (no preference to read)."""
    if not distribution:
        return None
    best = max(distribution.values())
    top = [label for label, p in distribution.items() if p == best]
    return top[0] if len(top) == 1 else None


def continued_letters(generator: Generator, prompts: Sequence[Sequence[Message]], texts: Sequence[str],
                      shown: Sequence[Question], batch_size: int = 32) -> list[str | None]:
    """For each unanswered sample (its prompt messages, its generated text, the question as it was shown),
    the shown label the model puts after the answer label following its own text; None where it prefers
    none. Labels are in the shown (possibly rotated) space: mapping them back is the caller's, as for
    parsed letters."""
    if not prompts:
        return []
    rendered = [generator.render(prompt, prefill=continuation_prefill(text, question.lang))
                for prompt, text, question in zip(prompts, texts, shown, strict=True)]
    distributions = generator.label_distributions(rendered, [question.labels for question in shown],
                                                  batch_size=batch_size)
    return [top_label(distribution) for distribution in distributions]
