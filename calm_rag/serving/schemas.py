"""Request bodies (pydantic): types and shapes here; limits that depend on the server live in `intake`.

The native routes forbid unknown fields (a typo such as `sample` fails loudly instead of being
ignored); the OpenAI route allows them, because OpenAI clients send many (temperature, user, ...)
that calm-rag's own generation settings replace.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from calm_rag.serving.intake import QuestionFields

Languages = list[str] | str | None


class QuestionOptions(BaseModel):
    """The calm-rag options a question may carry (on /v1/ask, or as extra fields of a chat request)."""

    lang: str | None = Field(None, description="The question's language (registry code); detected when absent.")
    choices: list[str] | None = Field(None, description="Answer options; without them the question is open.")
    languages: Languages = Field(None, description="Languages to vote across, e.g. ['en','zh','de'] or 'en,zh,de'.")
    samples: int | None = Field(None, description="Samples per language.")
    mode: Literal["cot", "direct"] | None = Field(None, description="Multiple choice only: cot or direct.")
    top_k: int | None = Field(None, description="Passages to retrieve (needs an index).")
    index: str | None = Field(None, description="Another index of the server's index folder.")

    def fields(self, question: str) -> QuestionFields:
        return QuestionFields(question=question, lang=self.lang, choices=self.choices, languages=self.languages,
                              samples=self.samples, mode=self.mode, top_k=self.top_k, index=self.index)


class AskBody(QuestionOptions):
    model_config = ConfigDict(extra="forbid")

    question: str


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str
    top_k: int = 5
    index: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text: a string, or the text parts of a content list."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(str(part.get("text", "")) for part in self.content or [] if part.get("type") == "text")


class ChatBody(QuestionOptions):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    n: int | None = Field(None, ge=1, le=1, description="Only one answer per request.")

    def question(self) -> str:
        """The last user message: the question (earlier turns are context a voting pipeline cannot use)."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        return ""
