"""`Answer`: what `CalmQA.ask` returns and what `calm-rag ask --json` prints (the CLI only renders it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Answer:
    answer: str | None
    """The consensus option label; None when the pipeline abstained."""
    answer_text: str | None
    """The consensus option's text in the user's language."""
    explanation: str
    lang: str
    question: str
    choices: list[dict[str, str]]
    votes: dict[str, list[str | None]]
    """Language -> the extracted label of each sample (None where unparseable)."""
    distribution: dict[str, float]
    """Label -> share of the vote."""
    consistency: float | None
    """The paper's pairwise cross-lingual consistency of this question (None with < 2 answering languages)."""
    language_majorities: dict[str, str | None]
    languages: list[str]
    model: str
    mode: str
    samples: int
    support: float
    """Share of the vote the consensus got."""
    letter_sources: dict[str, list[str | None]] = field(default_factory=dict)
    """Language -> where each sample's label came from: "text" (the model's own answer), "continuation"
    (read after the answer label appended to a text that stated none), "direct" (direct mode), None (unparsed)."""
    abstained: bool = False
    message: str = ""
    adapter: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    translations: dict[str, str] = field(default_factory=dict)
    """Language -> the question as asked in that language."""
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
