"""One CALM round before training: sample -> vote -> target threshold -> preference pairs.

Sampling is one batched `sample_choice_responses` call over all questions x languages x K (option
rotation on by default, see `pipelines/sampling.py`). Each question's cross-lingual vote becomes a
training target only above the threshold documented in `training/config.py`; questions below it
are skipped and counted by reason. Pairs follow `calm_rag.voting.choice_pairs` (agreeing responses chosen,
disagreeing ones rejected); in cot mode a language with no agreeing response gets a chosen
answer translated from another language by the model itself.

Samples are kept as JSON records (`samples.jsonl`) that hold everything needed to rebuild the
`ChoiceResponse` objects, so `--resume` reloads them instead of sampling again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import Generator
from calm_rag.generation.sampling import sample_choice_responses
from calm_rag.prompts import Translate
from calm_rag.questions import ParallelQuestion, Question
from calm_rag.responses import ChoiceResponse
from calm_rag.training.config import CalmTrainConfig
from calm_rag.voting.choice_pairs import plan_choice_pairs, realize_choice_pairs
from calm_rag.voting.vote import VoteResult, vote_choice_responses

Status = Literal["target", "abstained", "tied", "below_threshold"]
Progress = Callable[[int], None]


def vote_margin(vote: VoteResult) -> float:
    """The winner's share minus the runner-up's (the whole share when only one label got votes)."""
    shares = sorted(vote.distribution.values(), reverse=True)
    return shares[0] - (shares[1] if len(shares) > 1 else 0.0) if shares else 0.0


def choose_target(vote: VoteResult, config: CalmTrainConfig) -> tuple[str | None, Status]:
    """The consensus letter if it is clear enough to train towards (see config.py), and why not otherwise."""
    if vote.winner is None:
        return None, "abstained"
    if vote.tied:
        return None, "tied"
    clear = (vote_margin(vote) >= config.min_margin if config.mode == "direct"
             else vote.support >= config.min_support)
    return (vote.winner, "target") if clear else (None, "below_threshold")


@dataclass(frozen=True)
class QuestionSamples:
    """One question's responses in every language, its vote, and whether it became a target."""

    question: ParallelQuestion
    responses: dict[str, list[ChoiceResponse]]
    vote: VoteResult
    target: str | None
    status: Status

    def to_record(self, round_number: int) -> dict[str, Any]:
        vote = self.vote
        return {
            "round": round_number, "id": self.question.id, "gold": self.question.answer, "status": self.status,
            "target": self.target,
            "vote": {"winner": vote.winner, "tied": vote.tied, "support": vote.support, "margin": vote_margin(vote),
                     "distribution": vote.distribution, "language_majorities": vote.language_majorities,
                     "language_agreement": vote.language_agreement, "consistency": vote.consistency,
                     "parsed": vote.parsed},
            "languages": {lang: [_response_record(r) for r in items] for lang, items in self.responses.items()},
        }


def _response_record(response: ChoiceResponse) -> dict[str, Any]:
    return {"text": response.text, "letter": response.letter,
            "shown_letter": response.shown_label(response.letter) if response.letter else None,
            "distribution": response.distribution, "label_map": response.label_map,
            "shown": response.shown.to_record(), "prompt": list(response.prompt),
            "letter_source": response.letter_source}


def _response_from_record(lang: str, record: dict[str, Any], where: str) -> ChoiceResponse:
    return ChoiceResponse(lang=lang, text=record["text"], letter=record["letter"],
                    shown=Question.from_record(record["shown"], where=where), label_map=dict(record["label_map"]),
                    distribution=record["distribution"], prompt=tuple(record["prompt"]),
                    letter_source=record.get("letter_source"))  # absent in samples cached before it was kept


def judge(questions: Sequence[ParallelQuestion], responses: Sequence[dict[str, list[ChoiceResponse]]],
          config: CalmTrainConfig) -> list[QuestionSamples]:
    """Vote each question and decide whether its consensus becomes a training target."""
    judged = []
    for question, by_lang in zip(questions, responses, strict=True):
        vote = vote_choice_responses(question, by_lang, balanced=config.balanced)
        target, status = choose_target(vote, config)
        judged.append(QuestionSamples(question, by_lang, vote, target, status))
    return judged


def sample_round(generator: Generator, questions: Sequence[ParallelQuestion], config: CalmTrainConfig,
                 round_number: int, progress: Progress | None = None, seed_offset: int = 0) -> list[QuestionSamples]:
    """Sample every question in every language (one batched pass), then vote and pick targets. `seed_offset`:
    the round's prompts before these questions (see `CalmTrainConfig.sampling_config`)."""
    responses = sample_choice_responses(generator, questions, config.sampling_config(round_number, seed_offset),
                                        progress=progress)
    return judge(questions, responses, config)


def samples_from_records(questions: Sequence[ParallelQuestion], records: Sequence[dict[str, Any]],
                         config: CalmTrainConfig, where: str) -> list[QuestionSamples]:
    """Rebuild a round's samples from its cached records (votes and targets are recomputed)."""
    if [record["id"] for record in records] != [question.id for question in questions]:
        raise CalmRagError(f"{where} does not match the selected questions; start over with --overwrite")
    responses = [{lang: [_response_from_record(lang, item, where) for item in items]
                  for lang, items in record["languages"].items()} for record in records]
    return judge(questions, responses, config)


def build_pairs(samples: Sequence[QuestionSamples], config: CalmTrainConfig, translate: Translate | None,
                round_number: int) -> list[dict[str, Any]]:
    """Preference-pair records (conversational prompt/chosen/rejected plus id, lang, majority, translated)
    for every question that became a target, each with its question's soft-vote lead (`margin`) so a later
    `train --pairs --min-margin` can keep the clearer ones without sampling again."""
    targets = [item for item in samples if item.target is not None]
    margins = {item.question.id: vote_margin(item.vote) for item in targets}
    plans = [plan for item in targets
             for plan in plan_choice_pairs(item.question.id, item.responses, item.target, config.mode)]
    pairs, pending = realize_choice_pairs(plans, config.mode, translate)
    if pending:
        raise CalmRagError(f"{len(pending)} pairs need a translated chosen answer but no translate function was given")
    return [{**pair.to_record(), "round": round_number, "margin": margins[pair.id]} for pair in pairs]


def no_pairs_reason(samples: Sequence[QuestionSamples], config: CalmTrainConfig) -> str:
    """Why a round produced nothing to train on, in numbers the user can act on."""
    counts = {status: sum(item.status == status for item in samples)
              for status in ("target", "abstained", "tied", "below_threshold")}
    threshold = (f"--min-margin {config.min_margin}" if config.mode == "direct"
                 else f"--min-support {config.min_support}")
    return (f"of {len(samples)} questions, {counts['target']} had a clear consensus but every language agreed with "
            f"it (unanimous: nothing to prefer), {counts['below_threshold']} were below the threshold "
            f"({threshold}), {counts['tied']} were tied and {counts['abstained']} had no parseable answer")
