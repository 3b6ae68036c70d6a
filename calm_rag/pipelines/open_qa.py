"""`OpenQA`: CALM for open questions (no options), by cross-lingual semantic voting.

ask(question, lang) -> self-translate the question into the other languages (cached) -> sample K
short answers per language in one batched generate call (retrieved passages, if any, in every
language's prompt) -> extract each answer span -> cluster the spans across languages with a
multilingual embedder (`calm_rag.voting.clustering`) -> the consensus cluster, answered in the user's
language: a member written in that language when the cluster has one (the most central), else the
representative translated by the generator.

The multiple-choice path (`CalmQA`) votes on letters; this path votes on meanings, so it needs an
`encode` function (texts -> unit vectors). `load_encoder` builds one from calm-rag's embedder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from calm_rag.config import load_settings
from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig, Generator
from calm_rag.generation.open_sampling import gloss_responses, sample_open_responses
from calm_rag.generation.translation import Translator
from calm_rag.languages import get_language, parse_languages
from calm_rag.progress import StageProgress
from calm_rag.prompts import Passage
from calm_rag.questions import ParallelQuestion, Question
from calm_rag.responses import OpenResponse
from calm_rag.voting import ClusterConfig, Clustering, Encode
from calm_rag.voting.clustering import cluster_open_batch


@dataclass(frozen=True)
class OpenConfig:
    languages: tuple[str, ...] | None = None
    """Languages to ask in (the user's own is always added); None: the settings' languages."""
    samples: int = 3
    """K: samples per language."""
    generation: GenerationConfig = field(default_factory=lambda: GenerationConfig(max_new_tokens=192))
    """Sampling settings; temperature > 0, or the K samples of a language are identical."""
    clustering: ClusterConfig = field(default_factory=ClusterConfig)
    continue_spans: bool = True
    """Ask for the short span after the answer label when a response has none of its own."""
    constrain_spans: bool = False
    """Sample under a grammar that ends every response with the answer line, where the engine can (llama.cpp);
    the continuation then only serves the samples that ran out of tokens."""
    gloss_spans: bool = True
    """Translate every span into English too (one batched call) and let answers agree through it: names that are
    no transliteration ("珠穆朗玛峰" and "Mount Everest") do not agree on the embedder's cosine alone."""

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise CalmRagError("samples must be at least 1")


@dataclass(frozen=True)
class OpenRequest:
    question: str
    lang: str
    passages: Sequence[Passage] = ()
    """Retrieved passages to put in every language's prompt."""


@dataclass
class OpenAnswer:
    """What `OpenQA.ask` returns; `to_dict()` is the JSON the CLI prints."""

    answer: str | None
    """The consensus answer in the user's language; None when abstaining."""
    lang: str
    question: str
    clusters: list[dict[str, Any]]
    """Ranked (consensus first): {representative, members [{lang, text}], support {samples, languages}}."""
    consistency: float | None
    """The paper's pairwise consistency, "same cluster" counting as agreement."""
    languages: list[str]
    model: str
    samples: int
    spans: dict[str, list[str | None]]
    """Language -> the extracted answer of each sample (None where unparseable)."""
    span_sources: dict[str, list[str | None]]
    """Language -> where each sample's span came from: the model's own `answer_line` (or `phrase`,
    `last_line`), the `continuation` of its turn after the answer label, or `shortened` (a span still long
    after the continuation, cut by `calm_rag.voting.spans.shorten_span`)."""
    span_clusters: dict[str, list[int | None]]
    """Language -> the rank (index into `clusters`) of the cluster each sample's span joined."""
    span_glosses: dict[str, list[str | None]]
    """Language -> each sample's span in English as the clustering compared it too (None: not translated)."""
    language_majorities: dict[str, int | None]
    """Language -> the rank (index into `clusters`) of its own majority cluster."""
    answer_translated: bool = False
    """The answer was translated from another language: no sample in the user's language agreed."""
    sources: list[dict[str, Any]] = field(default_factory=list)
    """Retrieved passages, filled by the caller."""
    abstained: bool = False
    message: str = ""
    translations: dict[str, str] = field(default_factory=dict)
    """Language -> the question as asked in that language."""
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class OpenQA:
    """Load once, answer many open questions; `encode` embeds answers (see `load_encoder`)."""

    def __init__(self, generator: Generator, encode: Encode, config: OpenConfig | None = None,
                 translator: Translator | None = None) -> None:
        self.generator = generator
        self.encode = encode
        self.config = config or OpenConfig()
        self.translator = translator or Translator(generator)

    def ask(self, question: str, lang: str, passages: Sequence[Passage] = ()) -> OpenAnswer:
        return self.ask_batch([OpenRequest(question, lang, passages)])[0]

    def ask_batch(self, requests: Sequence[OpenRequest], languages: Sequence[str] | None = None,
                  samples: int | None = None, progress: StageProgress | None = None) -> list[OpenAnswer]:
        """Answer several open questions; translation, sampling and embedding are batched across them."""
        started = time.perf_counter()
        report = progress or (lambda stage, done, total: None)
        sources = []
        for number, request in enumerate(requests):
            if not request.question or not request.question.strip():
                raise CalmRagError("the question is empty")
            sources.append(Question(f"q{number}", get_language(request.lang).code, request.question.strip()))
        wanted = parse_languages(list(languages or self.config.languages or load_settings().languages))
        report("translating", 0, len(sources))
        parallel = self.translate_questions(sources, wanted)
        report("translating", len(sources), len(sources))
        count = samples or self.config.samples
        order = list(dict.fromkeys([*wanted, *(q.lang for q in sources)]))
        total = sum(len(question.versions) for question in parallel) * count
        done = 0

        def advance(finished: int) -> None:
            nonlocal done
            done += finished
            report("sampling", done, total)

        drawn = sample_open_responses(self.generator, parallel, order, count, self.config.generation,
                                      [list(request.passages) for request in requests], progress=advance,
                                      continue_spans=self.config.continue_spans,
                                      constrain_spans=self.config.constrain_spans)
        report("clustering", 0, len(parallel))
        if self.config.gloss_spans:
            drawn = gloss_responses(self.translator, drawn)
        clusterings = self.cluster(drawn)
        report("clustering", len(parallel), len(parallel))
        answers = self._in_user_language(parallel, clusterings)
        elapsed = round(time.perf_counter() - started, 3)
        return [self._answer(question, by_lang, clustering, answer, translated_from, count, elapsed)
                for question, by_lang, clustering, (answer, translated_from)
                in zip(parallel, drawn, clusterings, answers)]

    def translate_questions(self, sources: Sequence[Question], languages: Sequence[str]) -> list[ParallelQuestion]:
        """Each question in its own language plus every other language, batched across questions (one generate
        call per translation step: into English, then on from English; `Translator`)."""
        requests = [(q.question, q.lang, lang) for q in sources for lang in languages if lang != q.lang]
        translated = iter(self.translator.translate_many(requests))
        parallel = []
        for question in sources:
            versions = {question.lang: question}
            versions.update({lang: Question(question.id, lang, next(translated))
                             for lang in languages if lang != question.lang})
            parallel.append(ParallelQuestion(question.id, versions, question.lang))
        return parallel

    def cluster(self, drawn: Sequence[dict[str, list[OpenResponse]]]) -> list[Clustering]:
        """Cluster each question's samples; every distinct answer (and gloss) of the batch is embedded in one
        call."""
        return cluster_open_batch(drawn, self.encode, self.config.clustering)

    def _in_user_language(self, questions: Sequence[ParallelQuestion], clusterings: Sequence[Clustering]
                          ) -> list[tuple[str | None, str | None]]:
        """(answer in the user's language, the language it was translated from, if it was) per question;
        the translations are batched across questions."""
        answers: list[tuple[str | None, str | None]] = []
        pending: list[tuple[int, tuple[str, str, str]]] = []
        for number, (question, clustering) in enumerate(zip(questions, clusterings)):
            winner = clustering.winner
            own = winner.central_in(question.source_lang) if winner else None
            answers.append((own.text if own else None, None))
            if winner and not own:
                representative = winner.representative
                pending.append((number, (representative.text, representative.lang, question.source_lang)))
        if pending:
            for (number, request), text in zip(pending, self.translator.translate_many([r for _, r in pending])):
                answers[number] = (text, request[1])
        return answers

    def _answer(self, question: ParallelQuestion, drawn: dict[str, list[OpenResponse]], clustering: Clustering,
                answer: str | None, translated_from: str | None, samples: int, elapsed: float) -> OpenAnswer:
        notes = [clustering.message] if clustering.message else []
        joined = {(member.lang, member.sample): rank for rank, cluster in enumerate(clustering.clusters)
                  for member in cluster.members}
        if translated_from:
            notes.append(f"answer translated from {translated_from}: no {question.source_lang} sample agreed")
        return OpenAnswer(
            answer=answer,
            lang=question.source_lang,
            question=question.versions[question.source_lang].question,
            clusters=[cluster.to_dict() for cluster in clustering.clusters],
            consistency=clustering.consistency,
            languages=list(drawn),
            model=self.generator.name,
            samples=samples,
            spans={lang: [s.span for s in items] for lang, items in drawn.items()},
            span_sources={lang: [s.span_source for s in items] for lang, items in drawn.items()},
            span_clusters={lang: [joined.get((lang, number)) for number in range(len(items))]
                           for lang, items in drawn.items()},
            span_glosses={lang: [s.gloss for s in items] for lang, items in drawn.items()},
            language_majorities=clustering.language_majorities,
            answer_translated=translated_from is not None,
            abstained=clustering.abstained,
            message="; ".join(notes),
            translations={lang: version.question for lang, version in question.versions.items()},
            elapsed_s=elapsed,
        )
