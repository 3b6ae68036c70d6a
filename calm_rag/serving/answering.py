"""The server's side of the library: which `CalmQA` answers a batch, and the indexes it may read.

`ask_batch` takes one languages/samples per call and `CalmQA` holds mode, top_k and index in its
config, so a batch is keyed by all of them (`BatchKey`), and a request that asks for another mode,
top_k or index than the server's gets a sibling `CalmQA` built once for that combination. Siblings
share the generator, the translator (and its cache) and the answer embedder: a per-request option
costs a dataclass, never a second copy of a model.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from calm_rag.languages import parse_languages
from calm_rag.pipelines import CalmQA, QuestionRequest
from calm_rag.progress import StageProgress

if TYPE_CHECKING:
    from calm_rag.indexes import Index

Kind = Literal["choice", "open"]
STAGES = ("retrieving", "translating", "sampling", "voting")
"""The pipeline stages a client sees, in order (open questions' "clustering" is their vote)."""


@dataclass(frozen=True)
class BatchKey:
    """What one `ask_batch` call shares; requests with equal keys are answered together."""

    kind: Kind
    languages: tuple[str, ...] | None = None
    """None: the server's languages."""
    samples: int | None = None
    mode: str | None = None
    top_k: int | None = None
    index: str | None = None


class Answering:
    def __init__(self, qa: CalmQA) -> None:
        self.qa = qa
        self._variants: dict[tuple[Any, ...], CalmQA] = {}
        self._indexes: dict[str, Index] = {}
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.qa.generator.name

    @property
    def index_name(self) -> str | None:
        return self.qa.config.index

    @property
    def index_dir(self) -> Path:
        return Path(self.qa.config.index_dir or self.qa.settings.index_dir)

    @property
    def languages(self) -> list[str]:
        return parse_languages(list(self.qa.config.languages or self.qa.settings.languages))

    @property
    def samples(self) -> int:
        return self.qa.config.samples or self.qa.settings.samples

    def index(self, name: str | None) -> Index | None:
        """The index `name` (None: the server's), opened once; blocking, so call it off the event loop.
        An unknown or invalid name raises `CalmRagError` listing the existing ones."""
        if name is None or name == self.qa.config.index:
            return self.qa.index
        with self._lock:
            if name not in self._indexes:
                from calm_rag.indexes import Index

                self._indexes[name] = Index.open(name, index_dir=self.index_dir)
            return self._indexes[name]

    def variant(self, key: BatchKey) -> CalmQA:
        """The `CalmQA` for `key`'s mode, top_k and index: the server's own, or a sibling sharing its models."""
        base = self.qa.config
        mode, top_k, index = key.mode or base.mode, key.top_k or base.top_k, key.index or base.index
        if (mode, top_k, index) == (base.mode, base.top_k, base.index):
            return self.qa
        wanted = (key.kind, mode, top_k, index)
        with self._lock:
            found = self._variants.get(wanted)
        if found is None:
            config = replace(base, mode=mode, top_k=top_k, index=index)  # type: ignore[arg-type]
            found = CalmQA(self.qa.generator, config, self.qa.settings, index=self.index(index),
                           encode=self.qa.encode if key.kind == "open" else None)
            found.translator = self.qa.translator
            with self._lock:
                found = self._variants.setdefault(wanted, found)
        return found

    def run(self, key: BatchKey, requests: Sequence[QuestionRequest], progress: StageProgress) -> list[dict[str, Any]]:
        """Answer one batch (in the worker thread): the `ask --json` object of each question, in order."""
        qa = self.variant(key)

        def report(stage: str, done: int, total: int) -> None:
            if stage == "clustering":
                stage = "voting"
            progress(stage, done, total)
            if stage == "sampling" and total and done >= total:
                progress("voting", 0, len(requests))

        if key.kind == "choice":
            answers: Sequence[Any] = qa.ask_batch(requests, languages=key.languages, samples=key.samples,
                                                  progress=report)
        else:
            answers = qa.ask_open_batch(requests, languages=key.languages, samples=key.samples, progress=report)
        progress("voting", len(requests), len(requests))
        return [answer.to_dict() for answer in answers]
