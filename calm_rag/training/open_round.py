"""One CALM round on open questions: sample free-form answers -> cluster by meaning across languages ->
target threshold -> preference pairs.

The multiple-choice round (`choice_round.py`) votes on letters; here the vote is the cross-lingual
semantic clustering of `calm_rag.voting.clustering`, and a question becomes a training target when its
consensus cluster is clear: not abstained, not tied, and holding at least `min_support` of all
samples. Pairs follow `calm_rag.voting.open_pairs` (same-cluster samples chosen, other clusters
rejected; a language with no consensus sample gets the representative translated by the model).

Samples are kept as JSON records holding every sampled text and its extracted span, so `--resume`
rebuilds the clusterings from them (embedding is cheap and deterministic) instead of sampling again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import Generator
from calm_rag.generation.open_sampling import gloss_responses, sample_open_responses
from calm_rag.generation.translation import Translator
from calm_rag.prompts import Translate
from calm_rag.questions import ParallelQuestion
from calm_rag.responses import OpenResponse
from calm_rag.training.choice_round import Status
from calm_rag.training.config import CalmTrainConfig
from calm_rag.voting import (
    ClusterConfig,
    Clustering,
    Encode,
    consensus_answer,
    own_answer,
    semantic_match,
)
from calm_rag.voting.clustering import cluster_open_batch
from calm_rag.voting.open_pairs import plan_open_pairs, realize_open_pairs

Progress = Callable[[int], None]


@dataclass(frozen=True)
class OpenQuestionSamples:
    """One open question's samples in every language, their clustering, and whether it became a target."""

    question: ParallelQuestion
    samples: dict[str, list[OpenResponse]]
    clustering: Clustering
    status: Status

    @property
    def target(self) -> str | None:
        """The consensus cluster's representative answer, when the question is a training target."""
        winner = self.clustering.winner
        return winner.representative.text if self.status == "target" and winner else None

    def to_record(self, round_number: int) -> dict[str, Any]:
        clustering = self.clustering
        return {
            "round": round_number, "id": self.question.id, "status": self.status, "target": self.target,
            "gold": {lang: version.answer for lang, version in self.question.versions.items()},
            "consistency": clustering.consistency, "tied": clustering.tied,
            "clusters": [cluster.to_dict() for cluster in clustering.clusters],
            "languages": {lang: [{"text": s.text, "span": s.span, "span_source": s.span_source, "gloss": s.gloss,
                                  "explanation": s.explanation, "prompt": list(s.prompt)} for s in items]
                          for lang, items in self.samples.items()},
        }


def cluster_config(config: CalmTrainConfig) -> ClusterConfig:
    return ClusterConfig(threshold=config.cluster_threshold)


def choose_open_target(clustering: Clustering, config: CalmTrainConfig) -> Status:
    """Whether the consensus is clear enough to train towards (see the module docstring), and why not."""
    winner = clustering.winner
    if winner is None:
        return "abstained"
    if clustering.tied:
        return "tied"
    return "target" if winner.samples_share >= config.min_support else "below_threshold"


def judge_open(questions: Sequence[ParallelQuestion], drawn: Sequence[dict[str, list[OpenResponse]]],
               encode: Encode, config: CalmTrainConfig) -> list[OpenQuestionSamples]:
    """Cluster every question's samples (each distinct answer embedded once) and pick the targets."""
    clusterings = cluster_open_batch(drawn, encode, cluster_config(config))
    return [OpenQuestionSamples(question, by_lang, clustering, choose_open_target(clustering, config))
            for question, by_lang, clustering in zip(questions, drawn, clusterings, strict=True)]


def sample_open_round(generator: Generator, encode: Encode, questions: Sequence[ParallelQuestion],
                      config: CalmTrainConfig, round_number: int, progress: Progress | None = None,
                      seed_offset: int = 0) -> list[OpenQuestionSamples]:
    """Sample every question in every language (one batched generate call), then cluster and pick targets.
    `seed_offset`: the round's prompts before these questions (see `CalmTrainConfig.sampling_config`)."""
    generation = config.sampling_config(round_number, seed_offset).generation
    drawn = sample_open_responses(generator, questions, config.languages, config.samples, generation, progress=progress)
    if config.gloss_spans:
        drawn = gloss_responses(Translator(generator), drawn)
    return judge_open(questions, drawn, encode, config)


def open_samples_from_records(questions: Sequence[ParallelQuestion], records: Sequence[Mapping[str, Any]],
                              encode: Encode, config: CalmTrainConfig, where: str) -> list[OpenQuestionSamples]:
    """Rebuild a round's samples from its cached records (clusterings and targets are recomputed)."""
    if [record["id"] for record in records] != [question.id for question in questions]:
        raise CalmRagError(f"{where} does not match the selected questions; start over with --overwrite")
    drawn = [{lang: [OpenResponse(lang, item["text"], item["span"], item["explanation"], tuple(item["prompt"]),
                                  item.get("span_source"), item.get("gloss"))
                     for item in items] for lang, items in record["languages"].items()} for record in records]
    return judge_open(questions, drawn, encode, config)


def build_open_pairs(samples: Sequence[OpenQuestionSamples], translate: Translate | None, round_number: int
                     ) -> list[dict[str, Any]]:
    """Preference-pair records for every target question (cross-language chosen answers translated)."""
    plans = [plan for item in samples if item.status == "target"
             for plan in plan_open_pairs(item.question.id, item.samples, item.clustering)]
    pairs, pending = realize_open_pairs(plans, translate)
    if pending:
        raise CalmRagError(f"{len(pending)} pairs need a translated chosen answer but no translate function was given")
    return [{**pair.to_record(), "round": round_number} for pair in pairs]


def open_no_pairs_reason(samples: Sequence[OpenQuestionSamples], config: CalmTrainConfig) -> str:
    """Why a round produced nothing to train on, in numbers the user can act on."""
    counts = Counter(item.status for item in samples)
    return (f"of {len(samples)} open questions, {counts['target']} had a clear consensus but every answer was in "
            f"it (nothing to prefer), {counts['below_threshold']} had a consensus below --min-support "
            f"{config.min_support}, {counts['tied']} were tied and {counts['abstained']} had no consensus "
            f"(no two answers agreed, or nothing parseable; the clustering threshold is {config.cluster_threshold})")


def open_sampling_metrics(samples: Sequence[OpenQuestionSamples], languages: Sequence[str], encode: Encode,
                          threshold: float) -> dict[str, Any]:
    """The consensus quality, scored like `calm-rag eval` on open questions (semantic match of each language's
    own answer and of the consensus with that language's gold, where gold exists), the skipped questions,
    and each language's parse rate."""
    statuses = Counter(item.status for item in samples)
    consensus_hits: list[bool] = []
    target_hits: list[bool] = []
    language_hits: dict[str, list[bool]] = {lang: [] for lang in languages}
    for item in samples:
        for lang, version in item.question.versions.items():
            if version.answer is None:
                continue
            own = own_answer(item.clustering, lang)
            if lang in language_hits:
                language_hits[lang].append(own is not None and semantic_match(own.text, version.answer, encode,
                                                                              threshold))
            consensus = consensus_answer(item.clustering, lang)
            hit = consensus is not None and semantic_match(consensus.text, version.answer, encode, threshold)
            consensus_hits.append(hit)
            if item.status == "target":
                target_hits.append(hit)
    consistencies = [item.clustering.consistency for item in samples if item.clustering.consistency is not None]
    parsed = {lang: [s.span is not None for item in samples for s in item.samples.get(lang, [])] for lang in languages}
    return {
        "vote": {
            "questions": len(samples),
            "graded": sum(1 for item in samples if any(v.answer is not None for v in item.question.versions.values())),
            "vote_accuracy": _share(consensus_hits),
            "accuracy_by_language": {lang: _share(hits) for lang, hits in language_hits.items()},
            "consistency": sum(consistencies) / len(consistencies) if consistencies else None,
            "parse_rate_by_language": {lang: _share(flags) for lang, flags in parsed.items()},
            "abstained": statuses["abstained"],
        },
        "targets": statuses["target"],
        "skipped": {reason: statuses[reason] for reason in ("abstained", "tied", "below_threshold")},
        "target_accuracy": _share(target_hits),
    }


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None
