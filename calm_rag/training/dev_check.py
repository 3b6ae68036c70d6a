"""The dev split: questions held out of training, and their accuracy measured while DPO trains.

Choosing lr, beta, epochs or the LoRA rank on the test split would tune to the test. `dev_questions` holds
out that many of the selected training questions instead: they are never sampled, so they are in no pair.
The model being trained answers them in direct mode before training (epoch 0: the baseline) and after every
DPO epoch, in every training language, and the dev check reports what `calm-rag eval` reports, measured the
way it measures by default (one unrotated direct answer per language, the letter distribution read off the
next-token logits): each language's accuracy against gold, their mean, the soft cross-lingual vote's
accuracy and the consistency. So the dev curve is an early reading of the final eval.

Which questions are held out is `calm_rag.data.dev_split`'s choice, the one `calm-rag eval --dev` makes too.

Each measurement is appended to `round-N/dev.jsonl` (written atomically) as it comes: a resumed DPO keeps
the measurements up to its checkpoint's step and measures again only the epochs after it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from calm_rag.data.jsonl import read_records, write_jsonl
from calm_rag.generation.base import GenerationConfig, Generator
from calm_rag.generation.sampling import SamplingConfig, sample_choice_responses
from calm_rag.generation.transformers_engine import TransformersGenerator
from calm_rag.progress import StageProgress, stage_counter
from calm_rag.questions import ParallelQuestion
from calm_rag.training.config import CalmTrainConfig
from calm_rag.voting.metrics import QuestionOutcome, summarize
from calm_rag.voting.vote import vote_choice_responses

REPORTED = ("accuracy_by_language", "mean_accuracy", "vote_accuracy", "consistency")
"""What each dev measurement keeps of `calm_rag.voting.metrics.summarize`."""


def measure_dev(generator: Generator, questions: Sequence[ParallelQuestion], config: CalmTrainConfig,
                progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Direct-mode accuracy per language, its mean, the vote's accuracy and the consistency on `questions`."""
    sampling = SamplingConfig(languages=config.languages, samples=1, mode="direct", permute=False,
                              generation=GenerationConfig(batch_size=config.sample_batch_size))
    responses = sample_choice_responses(generator, questions, sampling, progress=progress)
    outcomes = [QuestionOutcome(question.id, question.answer, vote_choice_responses(question, by_lang),
                                {lang: len(items) for lang, items in by_lang.items()})
                for question, by_lang in zip(questions, responses, strict=True)]
    summary = summarize(outcomes, config.languages)
    return {name: summary[name] for name in REPORTED}


class DevLog:
    """A round's dev measurements, kept in `path` (JSONL): {epoch, step, accuracy_by_language, mean_accuracy,
    vote_accuracy, consistency} each, in the order measured."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[dict[str, Any]] = read_records(path) if path.is_file() else []

    def keep_until(self, step: int) -> None:
        """Forget measurements after `step` (DPO continues from a checkpoint there and will measure again)."""
        kept = [entry for entry in self.entries if entry["step"] <= step]
        if kept != self.entries:
            self.entries = kept
            write_jsonl(self.path, kept)

    def has(self, step: int) -> bool:
        return any(entry["step"] == step for entry in self.entries)

    def add(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)
        write_jsonl(self.path, self.entries)


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def dev_callback(questions: Sequence[ParallelQuestion], config: CalmTrainConfig, tokenizer: Any, log: DevLog, *,
                 stage: str, progress: StageProgress | None = None, notify: Callable[[str], None] | None = None
                 ) -> Any:
    """A `TrainerCallback` that measures the dev questions with the model being trained: before the first
    step, at the end of every epoch, and at the end of training if that step was not measured yet. A DPO
    resumed from a checkpoint at an epoch's end measures that epoch first if the stopped run had not (the
    resumed trainer starts with the next epoch). The model is put in eval mode for the measurement (no
    dropout; `label_distributions` runs without gradients) and back in the mode it was in."""
    from transformers import TrainerCallback

    def measure(model: Any, epoch: float, step: int) -> None:
        was_training = model.training
        try:
            generator = TransformersGenerator(model, tokenizer, name="dev check")  # puts the model in eval mode
            total = sum(lang in question.versions for question in questions for lang in config.languages)
            results = measure_dev(generator, questions, config,
                                  stage_counter(progress, f"{stage}: dev check at step {step}", total))
        finally:
            model.train(was_training)
        log.add({"epoch": round(epoch, 4), "step": step, **results})
        if notify:
            notify(f"{stage}: dev after epoch {epoch:g} (step {step}): mean accuracy "
                   f"{_shown(results['mean_accuracy'])}, vote {_shown(results['vote_accuracy'])}, consistency "
                   f"{_shown(results['consistency'])}")

    class _DevCheck(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            log.keep_until(state.global_step)
            epoch = state.epoch or 0.0
            if abs(epoch - round(epoch)) < 1e-6 and not log.has(state.global_step):
                measure(model, epoch, state.global_step)

        def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if not log.has(state.global_step):
                measure(model, state.epoch, state.global_step)

        def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if not log.has(state.global_step):
                measure(model, state.epoch or 0.0, state.global_step)

    return _DevCheck()
