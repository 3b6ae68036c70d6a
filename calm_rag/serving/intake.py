"""From request fields to a queued question: every limit checked, every option normalised, text escaped.

A request is refused here, before it takes a queue slot, when it is too large (413: question or choice
length; the body's size is `body_limit`'s) or invalid (422: unknown language, too many choices or
samples, top_k past the index, mode on an open question). Questions and choices go through
`calm_rag.prompts.sanitize_passage` with the generator's own special tokens, the function that keeps
retrieved passages from closing their block or the chat turn, so a client cannot smuggle chat control
tokens into any prompt built from them (the prompt builders do not sanitize questions and choices).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from calm_rag.errors import CalmRagError
from calm_rag.indexes.langdetect import detect_language
from calm_rag.languages import LANGUAGES, get_language, parse_languages
from calm_rag.pipelines import QuestionRequest
from calm_rag.prompts import sanitize_passage
from calm_rag.serving.answering import Answering, BatchKey
from calm_rag.serving.config import ServeConfig
from calm_rag.serving.errors import ApiError

CHARS_PER_TOKEN = 4
"""Length budget in characters when the generator has no tokenizer to count with."""


@dataclass(frozen=True)
class QuestionFields:
    """The question part of /v1/ask and /v1/chat/completions, as the client sent it."""

    question: str
    lang: str | None = None
    choices: Sequence[str] | None = None
    languages: Sequence[str] | str | None = None
    samples: int | None = None
    mode: str | None = None
    top_k: int | None = None
    index: str | None = None


class Intake:
    def __init__(self, config: ServeConfig, answering: Answering) -> None:
        self.config = config
        self.answering = answering
        self.tokenizer = getattr(answering.qa.generator, "tokenizer", None)
        self.special_tokens: frozenset[str] = answering.qa.generator.special_tokens

    def length(self, text: str) -> tuple[int, str]:
        """(length, unit): tokens of the generator's tokenizer, else characters."""
        if self.tokenizer is not None and hasattr(self.tokenizer, "encode"):
            return len(self.tokenizer.encode(text, add_special_tokens=False)), "tokens"
        return len(text), "characters"

    def _check_length(self, text: str, limit_tokens: int, param: str, what: str) -> None:
        length, unit = self.length(text)
        limit = limit_tokens if unit == "tokens" else limit_tokens * CHARS_PER_TOKEN
        if length > limit:
            raise ApiError(413, f"{what} is {length} {unit} long; this server takes at most {limit}", param,
                           "too_long")

    def language(self, code: str | None, question: str) -> str:
        """A registry language code: the one given, else the one detected among the registry's."""
        if code is None:
            detected = detect_language(question, among=LANGUAGES)
            if detected is None:
                raise ApiError(422, "cannot tell the question's language; pass lang (one of "
                                    f"{', '.join(LANGUAGES)})", "lang", "invalid_value")
            return detected
        try:
            return get_language(code).code
        except CalmRagError as error:
            raise ApiError(422, str(error), "lang", "invalid_value") from None

    async def prepare(self, fields: QuestionFields) -> tuple[BatchKey, QuestionRequest]:
        """Validate and normalise `fields` into the batch key and the library request (or raise `ApiError`)."""
        question = sanitize_passage(fields.question or "", self.special_tokens)
        if not question:
            raise ApiError(422, "the question is empty", "question", "invalid_value")
        self._check_length(question, self.config.max_question_tokens, "question", "the question")
        lang = self.language(fields.lang, question)
        choices = self._choices(fields.choices)
        kind = "choice" if choices else "open"
        if fields.mode is not None and kind == "open":
            raise ApiError(422, "mode applies to multiple-choice questions only (send choices, or drop mode)",
                           "mode", "invalid_value")
        base = self.answering.qa.config
        key = BatchKey(kind=kind, languages=self._languages(fields.languages), samples=self._samples(fields.samples),
                       mode=None if fields.mode in (None, base.mode) else fields.mode,
                       index=None if fields.index in (None, base.index) else fields.index)
        key = BatchKey(key.kind, key.languages, key.samples, key.mode, await self._top_k(fields.top_k, key.index),
                       key.index)
        request = QuestionRequest(question, lang, list(choices))
        if choices:
            try:
                request.to_question()
            except CalmRagError as error:
                raise ApiError(422, str(error), "choices", "invalid_value") from None
        return key, request

    def _choices(self, choices: Sequence[str] | None) -> list[str]:
        if not choices:
            return []
        if len(choices) > self.config.max_choices:
            raise ApiError(422, f"{len(choices)} choices; this server takes at most {self.config.max_choices}",
                           "choices", "invalid_value")
        cleaned = []
        for number, choice in enumerate(choices):
            text = sanitize_passage(choice, self.special_tokens)
            self._check_length(text, self.config.max_choice_tokens, f"choices.{number}", f"choice {number + 1}")
            cleaned.append(text)
        return cleaned

    def _languages(self, languages: Sequence[str] | str | None) -> tuple[str, ...] | None:
        if languages is None:
            return None
        try:
            codes = tuple(parse_languages(languages if isinstance(languages, str) else list(languages)))
        except CalmRagError as error:
            raise ApiError(422, str(error), "languages", "invalid_value") from None
        return None if list(codes) == self.answering.languages else codes

    def _samples(self, samples: int | None) -> int | None:
        if samples is None:
            return None
        if not 1 <= samples <= self.config.max_samples:
            raise ApiError(422, f"samples must be between 1 and {self.config.max_samples}, got {samples}",
                           "samples", "invalid_value")
        return None if samples == self.answering.samples else samples

    async def index_size(self, name: str | None) -> int | None:
        """Chunks in index `name` (None: the server's), or None when there is no index; opens it off the loop."""
        try:
            index = await anyio.to_thread.run_sync(self.answering.index, name)
        except CalmRagError as error:
            raise ApiError(422, str(error), "index", "invalid_value") from None
        return None if index is None else len(index)

    async def _top_k(self, top_k: int | None, index: str | None) -> int | None:
        size = await self.index_size(index)
        if top_k is None:
            return None
        if size is None:
            raise ApiError(422, "top_k needs an index, and this request has none (start the server with --index, "
                                "or name one with index)", "top_k", "invalid_value")
        return self.check_top_k(top_k, size)

    def check_top_k(self, top_k: int, size: int) -> int:
        cap = min(self.config.max_top_k, size)
        if not 1 <= top_k <= cap:
            raise ApiError(422, f"top_k must be between 1 and {cap} (the server's cap and the index's "
                                f"{size} chunks), got {top_k}", "top_k", "invalid_value")
        return top_k


def options_payload(config: ServeConfig, answering: Answering) -> dict[str, Any]:
    """What a client may ask for, for the page's form and for /v1/info."""
    return {"model": config.model_name or answering.model_name, "index": answering.index_name,
            "languages": answering.languages, "samples": answering.samples, "mode": answering.qa.config.mode,
            "top_k": answering.qa.config.top_k,
            "registry": [{"code": code, "name": language.name} for code, language in LANGUAGES.items()],
            "limits": {"max_question_tokens": config.max_question_tokens, "max_choices": config.max_choices,
                       "max_choice_tokens": config.max_choice_tokens, "max_samples": config.max_samples,
                       "max_top_k": config.max_top_k, "max_body_bytes": config.max_body_bytes}}
