"""Prompt construction: localized multiple-choice prompts, retrieved passages as data, translation.

Prompts are conversational messages (`[{"role": "user", "content": ...}]`), never pre-rendered
strings: the generator renders them with the model's chat template, and TRL's DPOTrainer
takes the same messages in preference pairs.

Retrieved text is data, not instructions: each passage sits in a delimited, numbered block
labelled with its source and language, and anything that could close the block or the chat
turn (chat special tokens, our own delimiters) is removed from it first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from calm_rag.languages import LANGUAGES, get_language
from calm_rag.questions import MCQuestion

Mode = Literal["cot", "direct"]
Message = dict[str, str]

_CONTROL = re.compile(r"<\|[^|>]{0,40}\|>|</?passages?[^>]*>|\[/?INST\]|</?s>|<(?:start|end)_of_turn>", re.IGNORECASE)


@dataclass(frozen=True)
class Passage:
    """A retrieved passage as the prompt sees it."""

    text: str
    source: str
    lang: str | None = None


def sanitize_passage(text: str) -> str:
    """Strip what could end the passage block or the chat turn."""
    return _CONTROL.sub(" ", text).strip()


def format_passages(passages: Sequence[Passage], lang: str) -> str:
    language = get_language(lang)
    blocks = []
    for number, passage in enumerate(passages, start=1):
        source = sanitize_passage(passage.source).replace('"', "'")
        blocks.append(f'<passage id="{number}" source="{source}" lang="{passage.lang or "?"}">\n'
                      f"{sanitize_passage(passage.text)}\n</passage>")
    return f"{language.context_label}{language.colon.strip()}\n<passages>\n" + "\n".join(blocks) + "\n</passages>"


def question_block(question: MCQuestion) -> str:
    language = get_language(question.lang)
    colon = language.colon
    options = "\n".join(f"{choice.label}. {choice.text}" for choice in question.choices)
    return (f"{language.question_label}{colon}{question.question.strip()}\n"
            f"{language.options_label}{colon.rstrip()}\n{options}")


def mcq_messages(question: MCQuestion, mode: Mode = "cot", passages: Sequence[Passage] = ()) -> list[Message]:
    """The user turn asking `question` in its own language."""
    language = get_language(question.lang)
    instruction = language.instruction if mode == "cot" else language.direct_instruction
    parts = [instruction]
    if passages:
        parts.append(format_passages(passages, question.lang))
    parts.append(question_block(question))
    return [{"role": "user", "content": "\n\n".join(parts)}]


def answer_prefill(lang: str) -> str:
    """What `direct` mode appends after the assistant turn starts: the localized answer label and its
    colon, without a trailing space (the letters live in tokens like ' C', so the space belongs to them)."""
    language = get_language(lang)
    return f"{language.answer_label}{language.colon.rstrip()}"


def translation_messages(text: str, source: str, target: str) -> list[Message]:
    src, tgt = LANGUAGES[source].name, LANGUAGES[target].name
    return [{"role": "user", "content": (
        f"Translate the following {src} text into {tgt}. Reply with the {tgt} translation only, "
        f"without quotes, notes or explanations.\n\n{text}")}]
