"""`CalmQA`: the answer-time pipeline, zero-shot or with retrieval (RAG).

ask(question, lang, choices) -> retrieve passages (when an index is set) -> self-translate the
question and options into the other languages -> sample K answers per language in one batched
call (passages in every language's prompt) -> cross-lingual vote -> answer in the user's
language with an explanation written in (or translated into) that language.

Models load once in `from_config`; `ask_batch` batches translation and sampling across
questions, so a QA app answers many questions per generate call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from calm_rag.config import Settings, check_known_keys, load_settings, read_toml_table
from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig, Generator
from calm_rag.generation.engines import EngineConfig, load_generator
from calm_rag.generation.sampling import SamplingConfig, sample_choice_responses
from calm_rag.generation.translation import Translator
from calm_rag.indexes.encoder import load_encoder
from calm_rag.languages import get_language, parse_languages
from calm_rag.pipelines.answer import Answer
from calm_rag.pipelines.open_qa import OpenAnswer, OpenConfig, OpenQA, OpenRequest
from calm_rag.progress import StageProgress
from calm_rag.prompts import Mode, Passage
from calm_rag.questions import ParallelQuestion, Question, check_question_text, make_choices
from calm_rag.responses import ChoiceResponse
from calm_rag.voting import DEFAULT_THRESHOLD, ClusterConfig, Encode
from calm_rag.voting.extraction import split_explanation
from calm_rag.voting.vote import VoteResult, vote_choice_responses

MAX_SLOTS = 16
"""Most llama.cpp slots a question's samples get (each slot holds its own KV cache)."""


@dataclass(frozen=True)
class QAConfig:
    model: str | None = None
    """Generator: short name, hub id or local path (default: settings.generator)."""
    adapter: str | None = None
    languages: tuple[str, ...] | None = None
    samples: int | None = None
    mode: Mode = "cot"
    permute: bool = True
    balanced: bool = False
    index: str | None = None
    index_dir: Path | None = None
    top_k: int = 5
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Which engine runs the generator (transformers, llama.cpp, openai) and its options."""
    embedder: str | None = None
    """Open questions: the embedder that clusters answers by meaning (default: settings.embedder)."""
    continue_spans: bool = True
    """Open questions: ask for the short span after the answer label when a response has none of its own."""
    constrain_spans: bool = False
    """Open questions: sample under the answer-line grammar where the engine can (see `OpenConfig`)."""
    gloss_spans: bool = True
    """Open questions: compare the answers in English too (each span translated; see `OpenConfig.gloss_spans`)."""
    continue_letters: bool = True
    """Multiple choice, cot mode: read the letter after the answer label where a sample's text states none
    (`calm_rag.generation.choice_continuation`); the counterpart of `continue_spans`."""
    cluster_threshold: float = DEFAULT_THRESHOLD
    """Open questions: cosine similarity at which two answers count as the same (see calm_rag.voting.matching)."""
    generation: GenerationConfig = field(default_factory=GenerationConfig)

    def __post_init__(self) -> None:
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k <= 0:
            raise CalmRagError("top-k must be a positive integer")
        if self.mode not in ("cot", "direct"):
            raise CalmRagError(f"unknown mode {self.mode!r}; use cot or direct")
        if self.samples is not None and self.samples < 1:
            raise CalmRagError("samples must be at least 1")
        ClusterConfig(threshold=self.cluster_threshold)

    @classmethod
    def from_toml(cls, path: Path) -> QAConfig:
        """A `[qa]` table (or the whole file), with an optional `[qa.generation]` table."""
        return cls.from_dict(read_toml_table(path, "qa"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QAConfig:
        check_known_keys(cls, data, "QA settings")
        values = dict(data)
        if "generation" in values:
            values["generation"] = GenerationConfig(**values["generation"])
        if "engine" in values:
            values["engine"] = EngineConfig(**values["engine"])
        if "languages" in values:
            values["languages"] = tuple(parse_languages(values["languages"]))
        if "index_dir" in values:
            values["index_dir"] = Path(values["index_dir"])
        return cls(**values)


@dataclass(frozen=True)
class QuestionRequest:
    question: str
    lang: str
    choices: Sequence[str]

    @property
    def is_open(self) -> bool:
        """No choices: an open question, answered by clustering meanings instead of voting on letters."""
        return not self.choices

    def validate(self) -> None:
        """Refuse what cannot be asked (empty question, unknown language, bad choices) before any model loads."""
        self.to_question()

    def to_question(self, question_id: str = "q0") -> Question:
        """Validate (empty question, unknown language, fewer than 2 or duplicate choices) and build the
        question; an open question gets no choices."""
        text = check_question_text(self.question)
        lang = get_language(self.lang).code
        choices = make_choices(list(self.choices)) if self.choices else ()
        return Question(question_id, lang, text, choices)


def _source(hit: Any) -> dict[str, Any]:
    return {"id": hit.id, "source": hit.source, "text": hit.text, "lang": hit.lang, "score": float(hit.score)}


class CalmQA:
    """Load once, answer many: the library entry point for QA apps."""

    def __init__(self, generator: Generator, config: QAConfig | None = None, settings: Settings | None = None,
                 index: Any | None = None, encode: Encode | None = None) -> None:
        self.generator = generator
        self.config = config or QAConfig()
        self.settings = settings or load_settings()
        self.translator = Translator(generator)
        self._index = index
        self._encode = encode

    @classmethod
    def from_config(cls, config: QAConfig | Path | str | None = None, **overrides: Any) -> CalmQA:
        """Build from a `QAConfig`, a TOML file, or defaults; keyword overrides win."""
        if isinstance(config, (str, Path)):
            config = QAConfig.from_toml(Path(config))
        config = replace(config or QAConfig(), **overrides)
        settings = load_settings()
        engine = config.engine
        if engine.slots is None and engine.engine in ("auto", "llama.cpp"):
            # one slot per sample of a question: its languages x samples decode in parallel
            wanted = len(config.languages or settings.languages) * (config.samples or settings.samples)
            engine = replace(engine, slots=max(1, min(MAX_SLOTS, wanted)))
        generator = load_generator(config.model or settings.generator, engine, adapter=config.adapter)
        return cls(generator, config, settings)

    def close(self) -> None:
        """Stop what the generator's engine runs (a llama.cpp server); the object is unusable afterwards."""
        self.generator.close()

    def __enter__(self) -> CalmQA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def index(self) -> Any | None:
        """The retrieval index, opened on first use (checked before any generation work)."""
        if self._index is None and self.config.index:
            from calm_rag.indexes import Index

            self._index = Index.open(self.config.index, index_dir=self.config.index_dir or self.settings.index_dir)
        return self._index

    @property
    def encode(self) -> Encode:
        """The answer embedder for open questions, loaded on first use."""
        if self._encode is None:
            self._encode = load_encoder(self.config.embedder or self.settings.embedder)
        return self._encode

    def ask_open(self, question: str, lang: str, **overrides: Any) -> OpenAnswer:
        """Answer one open question (no options): answers are clustered by meaning across languages."""
        return self.ask_open_batch([QuestionRequest(question, lang, ())], **overrides)[0]

    def ask_open_batch(self, requests: Sequence[QuestionRequest], languages: Sequence[str] | None = None,
                       samples: int | None = None, progress: StageProgress | None = None) -> list[OpenAnswer]:
        """Open questions through the same translation, retrieval and batched sampling as `ask_batch`."""
        for request in requests:
            request.validate()
        hits = self._retrieve([request.question for request in requests], progress)
        freeform = OpenQA(self.generator, self.encode, OpenConfig(
            languages=tuple(self._languages(languages)), samples=samples or self.config.samples or self.settings.samples,
            generation=self.config.generation, clustering=ClusterConfig(threshold=self.config.cluster_threshold),
            continue_spans=self.config.continue_spans, constrain_spans=self.config.constrain_spans,
            gloss_spans=self.config.gloss_spans),
            translator=self.translator)
        answers = freeform.ask_batch(
            [OpenRequest(request.question, request.lang, [Passage(h.text, h.source, h.lang) for h in found])
             for request, found in zip(requests, hits)], progress=progress)
        for answer, found in zip(answers, hits):
            answer.sources = [_source(hit) for hit in found]
        return answers

    def _retrieve(self, questions: list[str], progress: StageProgress | None) -> list[list[Any]]:
        """The top-k passages for each question; empty lists without an index (zero-shot)."""
        if self.index is None:
            return [[] for _ in questions]
        report = progress or (lambda stage, done, total: None)
        report("retrieving", 0, len(questions))
        hits = self.index.search(questions, self.config.top_k)
        report("retrieving", len(questions), len(questions))
        return hits

    def ask(self, question: str, lang: str, choices: Sequence[str], **overrides: Any) -> Answer:
        """Answer one multiple-choice question asked in `lang`."""
        return self.ask_batch([QuestionRequest(question, lang, list(choices))], **overrides)[0]

    def _languages(self, override: Sequence[str] | None) -> list[str]:
        return parse_languages(list(override or self.config.languages or self.settings.languages))

    def ask_batch(self, requests: Sequence[QuestionRequest], languages: Sequence[str] | None = None,
                  samples: int | None = None, progress: StageProgress | None = None) -> list[Answer]:
        """Answer several questions; translation and sampling are batched across all of them."""
        started = time.perf_counter()
        report = progress or (lambda stage, done, total: None)
        if any(request.is_open for request in requests):
            raise CalmRagError("a multiple-choice question needs at least 2 choices (open questions: ask_open_batch)")
        sources = [request.to_question(f"q{number}") for number, request in enumerate(requests)]
        wanted = self._languages(languages)
        union = tuple(dict.fromkeys([*wanted, *(q.lang for q in sources)]))
        sampling = SamplingConfig(
            languages=union, samples=samples or self.config.samples or self.settings.samples,
            mode=self.config.mode, permute=self.config.permute, balanced=self.config.balanced,
            continue_letters=self.config.continue_letters, generation=self.config.generation)

        hits = self._retrieve([q.question for q in sources], progress)

        parallel = self._translate(sources, wanted, report)
        passages = [[Passage(hit.text, hit.source, hit.lang) for hit in found] for found in hits]
        total = sum(len(question.versions) for question in parallel) * sampling.samples
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            report("sampling", done, total)

        responses = sample_choice_responses(self.generator, parallel, sampling, passages, progress=advance)
        votes = [vote_choice_responses(question, by_lang, sampling.balanced) for question, by_lang in zip(parallel, responses)]
        explanations = self._explanations(parallel, responses, votes)
        elapsed = time.perf_counter() - started
        return [self._answer(parallel[i], responses[i], votes[i], explanations[i], hits[i], sampling, elapsed)
                for i in range(len(sources))]

    def _translate(self, sources: list[Question], wanted: list[str], report: StageProgress
                   ) -> list[ParallelQuestion]:
        report("translating", 0, len(sources))
        targets = [[lang for lang in wanted if lang != q.lang] for q in sources]
        requests = [(q.question, q.lang, t) for q, ts in zip(sources, targets) for t in ts]
        requests += [(c.text, q.lang, t) for q, ts in zip(sources, targets) for t in ts for c in q.choices]
        self.translator.translate_many(requests)
        parallel = []
        for question, langs in zip(sources, targets):
            versions = {question.lang: question}
            versions.update(self.translator.translate_questions(question, langs))
            parallel.append(ParallelQuestion(question.id, versions, question.lang))
        report("translating", len(sources), len(sources))
        return parallel

    def _explanations(self, questions: list[ParallelQuestion], responses: list[dict[str, list[ChoiceResponse]]],
                      votes: list[VoteResult]) -> list[str]:
        """A short explanation in the user's language from a response that agrees with the consensus;
        translated from another language's agreeing response when none in the user's language agrees."""
        if self.config.mode == "direct":
            return ["" for _ in questions]
        found: list[str] = []
        pending: list[tuple[int, str, str, str]] = []
        for number, (question, by_lang, vote) in enumerate(zip(questions, responses, votes)):
            winner = vote.winner
            own = [r for r in by_lang.get(question.source_lang, []) if winner and r.letter == winner]
            other = [r for rs in by_lang.values() for r in rs if winner and r.letter == winner]
            found.append(split_explanation(own[0].text, own[0].lang) if own else "")
            if not own and other:
                pending.append((number, split_explanation(other[0].text, other[0].lang), other[0].lang,
                                question.source_lang))
        if pending:
            translated = self.translator.translate_many([(text, src, tgt) for _, text, src, tgt in pending])
            for (number, *_), text in zip(pending, translated):
                found[number] = text
        return found

    def _answer(self, question: ParallelQuestion, responses: dict[str, list[ChoiceResponse]], vote: VoteResult,
                explanation: str, hits: list[Any], sampling: SamplingConfig, elapsed: float) -> Answer:
        source = question.versions[question.source_lang]
        abstained = vote.winner is None
        return Answer(
            answer=vote.winner,
            answer_text=source.choice_text(vote.winner) if vote.winner else None,
            explanation=explanation,
            lang=source.lang,
            question=source.question,
            choices=[{"label": c.label, "text": c.text} for c in source.choices],
            votes={lang: [r.letter for r in items] for lang, items in responses.items()},
            letter_sources={lang: [r.letter_source for r in items] for lang, items in responses.items()},
            distribution=vote.distribution,
            consistency=vote.consistency,
            language_majorities=vote.language_majorities,
            languages=list(responses),
            model=self.generator.name,
            mode=sampling.mode,
            samples=sampling.samples,
            support=vote.support,
            abstained=abstained,
            message=("no sample in any language stated a parseable answer; abstaining" if abstained
                     else ("tie broken deterministically (see calm_rag.voting.vote)" if vote.tied else "")),
            adapter=self.config.adapter,
            sources=[_source(hit) for hit in hits],
            translations={lang: version.question for lang, version in question.versions.items()},
            elapsed_s=round(elapsed, 3),
        )
