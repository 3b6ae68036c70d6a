"""One CALM round, whatever the kind of question: the protocol the runner drives, and one implementation per kind.

A round samples every question in every language, judges the samples (a letter vote for multiple choice,
a clustering of meanings for open questions), turns agreement into preference pairs, and reports. The
runner caches samples and pairs, trains and resumes the same way for both kinds, so it never asks which
kind it has: `round_kind` picks the implementation once, from the data. It samples the round's questions
in chunks (`sample` takes any run of them), so a stopped run keeps what it sampled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from calm_rag.generation.base import Generator, Progress
from calm_rag.prompts import Translate
from calm_rag.questions import ParallelQuestion
from calm_rag.training.choice_round import (
    QuestionSamples,
    build_pairs,
    no_pairs_reason,
    sample_round,
    samples_from_records,
)
from calm_rag.training.config import CalmTrainConfig
from calm_rag.training.open_round import (
    OpenQuestionSamples,
    build_open_pairs,
    open_no_pairs_reason,
    open_samples_from_records,
    sample_open_round,
)
from calm_rag.training.report import chosen_letter, letter_warnings, open_round_metrics, round_metrics, target_letters
from calm_rag.voting import Encode

Samples = TypeVar("Samples", QuestionSamples, OpenQuestionSamples)


class RoundKind(Protocol, Generic[Samples]):
    """What differs between the kinds of question in a round; everything else is the runner's."""

    label: str
    """The run's mode in reports: cot or direct (option letters), open (meanings)."""

    questions: Sequence[ParallelQuestion]
    """The round's questions, in order (`reload` checks cached samples against them)."""

    def sample(self, generator: Generator, number: int, questions: Sequence[ParallelQuestion], seed_offset: int,
               progress: Progress | None) -> list[Samples]:
        """Sample a run of the round's `questions`; `seed_offset` is the number of the round's prompts before
        them (see `CalmTrainConfig.sampling_config`)."""
        ...

    def reload(self, records: Sequence[dict[str, Any]], where: str) -> list[Samples]: ...

    def pair(self, samples: Sequence[Samples], translate: Translate, number: int) -> list[dict[str, Any]]: ...

    def no_pairs_reason(self, samples: Sequence[Samples]) -> str: ...

    def warnings(self, samples: Sequence[Samples], pairs: Sequence[Mapping[str, Any]]) -> list[str]:
        """Checked before training, while there is still time to stop."""
        ...

    def metrics(self, number: int, samples: Sequence[Samples], pairs: Sequence[Mapping[str, Any]],
                log_history: Sequence[Mapping[str, Any]]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ChoiceRound:
    """Multiple choice: option letters voted across languages; only cot pairs may need a translation."""

    questions: Sequence[ParallelQuestion]
    config: CalmTrainConfig

    @property
    def label(self) -> str:
        return self.config.mode

    def sample(self, generator: Generator, number: int, questions: Sequence[ParallelQuestion], seed_offset: int,
               progress: Progress | None) -> list[QuestionSamples]:
        return sample_round(generator, questions, self.config, number, progress, seed_offset)

    def reload(self, records: Sequence[dict[str, Any]], where: str) -> list[QuestionSamples]:
        return samples_from_records(self.questions, records, self.config, where)

    def pair(self, samples: Sequence[QuestionSamples], translate: Translate, number: int) -> list[dict[str, Any]]:
        return build_pairs(samples, self.config, translate if self.config.mode == "cot" else None, number)

    def no_pairs_reason(self, samples: Sequence[QuestionSamples]) -> str:
        return no_pairs_reason(samples, self.config)

    def warnings(self, samples: Sequence[QuestionSamples], pairs: Sequence[Mapping[str, Any]]) -> list[str]:
        written = [chosen_letter(pair) for pair in pairs]
        return letter_warnings(target_letters(samples, pairs), written, self.config.letter_warn_share)

    def metrics(self, number: int, samples: Sequence[QuestionSamples], pairs: Sequence[Mapping[str, Any]],
                log_history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return round_metrics(number, samples, pairs, self.config.languages, log_history, self.config.letter_warn_share)


@dataclass(frozen=True)
class OpenRound:
    """Open questions: free-form answers clustered by meaning with `encode` instead of letters."""

    questions: Sequence[ParallelQuestion]
    config: CalmTrainConfig
    encode: Encode
    label: str = "open"

    def sample(self, generator: Generator, number: int, questions: Sequence[ParallelQuestion], seed_offset: int,
               progress: Progress | None) -> list[OpenQuestionSamples]:
        return sample_open_round(generator, self.encode, questions, self.config, number, progress, seed_offset)

    def reload(self, records: Sequence[dict[str, Any]], where: str) -> list[OpenQuestionSamples]:
        return open_samples_from_records(self.questions, records, self.encode, self.config, where)

    def pair(self, samples: Sequence[OpenQuestionSamples], translate: Translate, number: int) -> list[dict[str, Any]]:
        return build_open_pairs(samples, translate, number)

    def no_pairs_reason(self, samples: Sequence[OpenQuestionSamples]) -> str:
        return open_no_pairs_reason(samples, self.config)

    def warnings(self, samples: Sequence[OpenQuestionSamples], pairs: Sequence[Mapping[str, Any]]) -> list[str]:
        return []  # no letters to collapse onto

    def metrics(self, number: int, samples: Sequence[OpenQuestionSamples], pairs: Sequence[Mapping[str, Any]],
                log_history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return open_round_metrics(number, samples, pairs, self.config.languages, log_history, self.encode,
                                  self.config.cluster_threshold)
