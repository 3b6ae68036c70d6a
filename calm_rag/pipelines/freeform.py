"""`FreeformQA`: CALM for open questions (no options), by cross-lingual semantic voting.

ask(question, lang) -> self-translate the question into the other languages (cached) -> sample K
short answers per language in one batched generate call (retrieved passages, if any, in every
language's prompt) -> extract each answer span -> cluster the spans across languages with a
multilingual embedder (`calm_rag.clustering`) -> the consensus cluster, answered in the user's
language: a member written in that language when the cluster has one (the most central), else the
representative translated by the generator.

The multiple-choice path (`CalmQA`) votes on letters; this path votes on meanings, so it needs an
`encode` function (texts -> unit vectors). `load_encoder` builds one from calm-rag's embedder.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calm_rag.clustering import (
    CachedEncoder,
    ClusterConfig,
    Clustering,
    Encode,
    cluster_answers,
    truncate,
)
from calm_rag.config import load_settings
from calm_rag.data import (
    available_languages,
    check_limit,
    check_split,
    first_selected,
    read_jsonl,
    read_parallel_lines,
)
from calm_rag.errors import CalmRagError
from calm_rag.extraction import normalize
from calm_rag.generation.base import GenerationConfig, Generator
from calm_rag.languages import Language, get_language, parse_languages
from calm_rag.progress import StageProgress
from calm_rag.prompts import Message, Passage, format_passages
from calm_rag.questions import MCQuestion, ParallelQuestion
from calm_rag.generation.translation import Translator

_COPULAS = r"(?:(?:is|ist|lautet|wäre|est|serait|è|es|é|sería|será)(?!\w)|是|为|為|は|です|은|는|-|=|→)"
_QUOTES = "\"'“”‘’„«»「」『』‹›`"
_TRAILING = ".。!！?？,，;；:：、 \t"
"""Stripped from both ends of a span (NFKC already folded most full-width forms)."""


# ---- prompting and span extraction --------------------------------------------------------------


def freeform_messages(question: str, lang: str, passages: Sequence[Passage] = ()) -> list[Message]:
    """The user turn asking an open `question` in `lang`: the short-answer instruction, the passages
    (as data, exactly like the multiple-choice prompt), then the question."""
    language = get_language(lang)
    parts = [language.freeform_instruction]
    if passages:
        parts.append(format_passages(passages, lang))
    parts.append(f"{language.question_label}{language.colon}{question.strip()}")
    return [{"role": "user", "content": "\n\n".join(parts)}]


def clean_span(text: str) -> str | None:
    """One answer line without list bullets, wrapping quotes and trailing punctuation; None if nothing
    alphanumeric is left (an empty line, or the template's own "..." echoed back)."""
    span = re.sub(r"^[\s>]*(?:[-•·]\s+)?", "", text).strip(_QUOTES + _TRAILING)
    return span if any(ch.isalnum() for ch in span) else None


def _marker_patterns(language: Language) -> tuple[re.Pattern[str], re.Pattern[str]]:
    alternatives = "|".join(re.escape(normalize(marker)) for marker in language.markers)
    phrases = "|".join(re.escape(normalize(marker)) for marker in language.markers if " " in marker.strip())
    stated = rf"(?:{alternatives})\s*{_COPULAS}" + (rf"|(?:{phrases})(?=\s)" if phrases else "")
    return (re.compile(rf"(?:{alternatives})\s*:", re.IGNORECASE),
            re.compile(rf"(?:{stated})\s*", re.IGNORECASE))


def split_response(text: str, language: Language | str) -> tuple[str, str | None]:
    """(explanation, answer span) of a free-form response.

    The span is what follows the last answer marker with a colon ("Antwort: ...", "答案：...", full-width
    colons and markdown already folded away); on that line, or on the next non-empty line when the
    marker ends its line. Without one, a marker phrase ("The answer is ...", "答案是..."); without that,
    the last non-empty line. The explanation is everything before, without an 'Explanation:' label."""
    lang = get_language(language) if isinstance(language, str) else language
    body = normalize(text).strip()
    with_colon, phrase = _marker_patterns(lang)
    match = None
    for pattern in (with_colon, phrase):
        found = list(pattern.finditer(body))
        if found:
            match = found[-1]
            break
    if match is not None:
        line_start = body.rfind("\n", 0, match.start()) + 1
        explanation = body[:line_start]
        rest = [line for line in body[match.end():].split("\n") if line.strip()]
        span = clean_span(rest[0]) if rest else None
    else:
        lines = [line for line in body.split("\n") if line.strip()]
        explanation = "\n".join(lines[:-1])
        span = clean_span(lines[-1]) if lines else None
    label = re.escape(normalize(lang.explanation_label))
    explanation = re.sub(rf"^(?:{label}|Explanation)\s*:\s*", "", explanation.strip(), flags=re.IGNORECASE)
    return explanation.strip(), span


def extract_span(text: str, language: Language | str) -> str | None:
    """The short answer a free-form response states; None when it states none."""
    return split_response(text, language)[1]


# ---- sampling ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FreeformSample:
    """One sampled response to an open question in one language."""

    lang: str
    text: str
    span: str | None
    """The extracted short answer; None when unparseable."""
    explanation: str
    prompt: tuple[Message, ...]


def sample_answers(generator: Generator, questions: Sequence[ParallelQuestion], languages: Sequence[str],
                   samples: int, generation: GenerationConfig,
                   passages: Sequence[Sequence[Passage]] | None = None,
                   progress: Callable[[int], None] | None = None) -> list[dict[str, list[FreeformSample]]]:
    """For each question: language -> its `samples` responses, all in one batched generate call. A question
    is sampled in the given languages it has a version in."""
    slots: list[tuple[int, str, tuple[Message, ...]]] = []
    results: list[dict[str, list[FreeformSample]]] = []
    for number, question in enumerate(questions):
        present = [lang for lang in languages if lang in question.versions]
        if not present:
            raise CalmRagError(f"question {question.id} has no version in any of {', '.join(languages)}")
        results.append({lang: [] for lang in present})
        context = passages[number] if passages else ()
        for lang in present:
            prompt = tuple(freeform_messages(question.versions[lang].question, lang, context))
            slots.extend((number, lang, prompt) for _ in range(samples))
    outputs = generator.generate([generator.render(prompt) for _, _, prompt in slots], generation, progress=progress)
    for (number, lang, prompt), text in zip(slots, outputs):
        explanation, span = split_response(text, lang)
        results[number][lang].append(FreeformSample(lang, text, span, explanation, prompt))
    return results


def cluster_samples(samples: dict[str, list[FreeformSample]], encode: Encode, config: ClusterConfig) -> Clustering:
    return cluster_answers({lang: [s.span for s in items] for lang, items in samples.items()}, encode, config)


# ---- the pipeline -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FreeformConfig:
    languages: tuple[str, ...] | None = None
    """Languages to ask in (the user's own is always added); None: the settings' languages."""
    samples: int = 3
    """K: samples per language."""
    generation: GenerationConfig = field(default_factory=lambda: GenerationConfig(max_new_tokens=192))
    """Sampling settings; temperature > 0, or the K samples of a language are identical."""
    clustering: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise CalmRagError("samples must be at least 1")


@dataclass(frozen=True)
class FreeformRequest:
    question: str
    lang: str
    passages: Sequence[Passage] = ()
    """Retrieved passages to put in every language's prompt."""


@dataclass
class FreeformAnswer:
    """What `FreeformQA.ask` returns; `to_dict()` is the JSON the CLI prints."""

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


class FreeformQA:
    """Load once, answer many open questions; `encode` embeds answers (see `load_encoder`)."""

    def __init__(self, generator: Generator, encode: Encode, config: FreeformConfig | None = None,
                 translator: Translator | None = None) -> None:
        self.generator = generator
        self.encode = encode
        self.config = config or FreeformConfig()
        self.translator = translator or Translator(generator)

    def ask(self, question: str, lang: str, passages: Sequence[Passage] = ()) -> FreeformAnswer:
        return self.ask_batch([FreeformRequest(question, lang, passages)])[0]

    def ask_batch(self, requests: Sequence[FreeformRequest], languages: Sequence[str] | None = None,
                  samples: int | None = None, progress: StageProgress | None = None) -> list[FreeformAnswer]:
        """Answer several open questions; translation, sampling and embedding are batched across them."""
        started = time.perf_counter()
        report = progress or (lambda stage, done, total: None)
        sources = []
        for number, request in enumerate(requests):
            if not request.question or not request.question.strip():
                raise CalmRagError("the question is empty")
            sources.append(MCQuestion(f"q{number}", get_language(request.lang).code, request.question.strip()))
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

        drawn = sample_answers(self.generator, parallel, order, count, self.config.generation,
                               [list(request.passages) for request in requests], progress=advance)
        report("clustering", 0, len(parallel))
        clusterings = self.cluster(drawn)
        report("clustering", len(parallel), len(parallel))
        answers = self._in_user_language(parallel, clusterings)
        elapsed = round(time.perf_counter() - started, 3)
        return [self._answer(question, by_lang, clustering, answer, translated_from, count, elapsed)
                for question, by_lang, clustering, (answer, translated_from)
                in zip(parallel, drawn, clusterings, answers)]

    def translate_questions(self, sources: Sequence[MCQuestion], languages: Sequence[str]) -> list[ParallelQuestion]:
        """Each question in its own language plus every other language, in one batched translation call."""
        requests = [(q.question, q.lang, lang) for q in sources for lang in languages if lang != q.lang]
        translated = iter(self.translator.translate_many(requests))
        parallel = []
        for question in sources:
            versions = {question.lang: question}
            versions.update({lang: MCQuestion(question.id, lang, next(translated))
                             for lang in languages if lang != question.lang})
            parallel.append(ParallelQuestion(question.id, versions, question.lang))
        return parallel

    def cluster(self, drawn: Sequence[dict[str, list[FreeformSample]]]) -> list[Clustering]:
        """Cluster each question's samples; every distinct answer of the batch is embedded in one call."""
        limit = self.config.clustering.max_chars
        cached = CachedEncoder(self.encode)
        cached([truncate(s.span.strip(), limit) for by_lang in drawn for items in by_lang.values()
                for s in items if s.span])
        return [cluster_samples(by_lang, cached, self.config.clustering) for by_lang in drawn]

    def _in_user_language(self, questions: Sequence[ParallelQuestion], clusterings: Sequence[Clustering]
                          ) -> list[tuple[str | None, str | None]]:
        """(answer in the user's language, the language it was translated from, if it was) per question;
        the translations go in one batched call."""
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

    def _answer(self, question: ParallelQuestion, drawn: dict[str, list[FreeformSample]], clustering: Clustering,
                answer: str | None, translated_from: str | None, samples: int, elapsed: float) -> FreeformAnswer:
        notes = [clustering.message] if clustering.message else []
        if translated_from:
            notes.append(f"answer translated from {translated_from}: no {question.source_lang} sample agreed")
        return FreeformAnswer(
            answer=answer,
            lang=question.source_lang,
            question=question.versions[question.source_lang].question,
            clusters=[cluster.to_dict() for cluster in clustering.clusters],
            consistency=clustering.consistency,
            languages=list(drawn),
            model=self.generator.name,
            samples=samples,
            spans={lang: [s.span for s in items] for lang, items in drawn.items()},
            language_majorities=clustering.language_majorities,
            answer_translated=translated_from is not None,
            abstained=clustering.abstained,
            message="; ".join(notes),
            translations={lang: version.question for lang, version in question.versions.items()},
            elapsed_s=elapsed,
        )


# ---- encoder and data -------------------------------------------------------------------------------


def load_encoder(name_or_path: str | None = None) -> Encode:
    """An `Encode` over calm-rag's embedder (default: the settings' embedder). Answers are compared with
    each other, a symmetric task, so the model's own sentence-similarity prompt is used where it ships
    one (EmbeddingGemma's "STS", with which `DEFAULT_THRESHOLD` was measured); otherwise its query prompt,
    on both sides alike. EmbeddingGemma's query prompt separates short answers worse (same meaning
    0.46-1.00, related-but-different 0.32-0.80), which is why it is not the first choice."""
    from calm_rag.indexes import Embedder

    embedder = Embedder.load(name_or_path)
    prompt = (getattr(embedder.model, "prompts", None) or {}).get("STS")
    if prompt is None:
        return lambda texts: embedder.embed_queries(list(texts))

    def encode(texts: list[str]) -> np.ndarray:
        return embedder.model.encode(list(texts), prompt=prompt, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)

    return encode


XQUAD_QUERIES = "queries.jsonl"
"""The file of the XQuAD-R layout (../shared/data/xquad_r): rows `{"qid", "lang", "squad_id", "para_id",
"question", "answer"}`, one per question and language; rows sharing a `squad_id` are one question."""


def is_open_dataset(folder: Path | str) -> bool:
    """Whether `folder` holds open questions, so commands can route it: the XQuAD-R layout, or parallel
    `<lang>.jsonl` files whose first record (of the first language file) has no choices."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalmRagError(f"dataset folder {folder} does not exist")
    if (folder / XQUAD_QUERIES).is_file():
        return True
    available = available_languages(folder)
    records = read_jsonl(folder / f"{available[0]}.jsonl") if available else []
    return bool(records) and not records[0][1].get("choices")


def load_open_dataset(folder: Path | str, languages: Sequence[str], split: str | None = None,
                      limit: int | None = None) -> list[ParallelQuestion]:
    """The open questions of `split` (all when None) in all `languages`, the first `limit` of them, from
    either layout: a parallel folder (one `<lang>.jsonl` per language, line i of every file the same
    question, each `{"id", "lang", "question", "answer"?, "split"?}` with no `choices`; the checks and
    errors of `load_parallel_dataset`), or the XQuAD-R layout (`queries.jsonl`, see `XQUAD_QUERIES`).

    Gold answers are text in each language, so unlike multiple-choice letters they may differ between
    languages: each stays on its language's version (`versions[lang].answer`); the question's `answer`
    is the first language's."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalmRagError(f"dataset folder {folder} does not exist")
    check_limit(limit)
    if (folder / XQUAD_QUERIES).is_file():
        questions = _xquad_questions(folder / XQUAD_QUERIES, languages, split)
    else:
        questions = _parallel_open_questions(folder, languages, split)
    return first_selected(questions, limit, folder, split, languages)


def _parallel_open_questions(folder: Path, languages: Sequence[str], split: str | None) -> list[ParallelQuestion]:
    questions = []
    for line in read_parallel_lines(folder, languages, split):
        for lang, (number, version) in line.versions.items():
            if version.choices:
                raise CalmRagError(f"{folder / f'{lang}.jsonl'}:{number}: has choices; this is a multiple-choice "
                                   "dataset, not an open-question one")
        if split is None or line.split == split:
            versions = {lang: version for lang, (_, version) in line.versions.items()}
            first = versions[languages[0]]
            questions.append(ParallelQuestion(first.id, versions, languages[0], first.answer))
    return questions


def _xquad_questions(path: Path, languages: Sequence[str], split: str | None) -> list[ParallelQuestion]:
    """One question per `squad_id` present in every language, in the order the file first names each
    `squad_id` (whatever the languages asked for, so a `limit` picks the same questions for any)."""
    by_id: dict[str, dict[str, MCQuestion]] = {}
    present: set[str] = set()
    splits: set[str] = set()
    for number, record in read_jsonl(path):
        where = f"{path}:{number}"
        for key in ("squad_id", "lang"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise CalmRagError(f"{where}: missing or empty field {key!r}")
        squad_id, lang = record["squad_id"], record["lang"]
        record_split = str(record["split"]) if record.get("split") else None
        present.add(lang)
        versions = by_id.setdefault(squad_id, {})
        if record_split:
            splits.add(record_split)
        if lang not in languages or (split is not None and record_split != split):
            continue
        version = MCQuestion.from_record({"id": squad_id, "lang": lang, "question": record.get("question"),
                                          "answer": record.get("answer")}, where=where)
        if lang in versions:
            raise CalmRagError(f"{where}: a second {lang} question for squad_id {squad_id}")
        versions[lang] = version
    missing = [lang for lang in languages if lang not in present]
    if missing:
        raise CalmRagError(f"{path} has no {', '.join(missing)} questions; "
                           f"it has: {', '.join(sorted(present)) or 'none'}")
    check_split(split, splits, path)
    return [ParallelQuestion(squad_id, {lang: versions[lang] for lang in languages}, languages[0],
                             versions[languages[0]].answer)
            for squad_id, versions in by_id.items() if all(lang in versions for lang in languages)]
