"""What `metrics.json` says about a training run, and the letter-bias check.

Letter bias is the failure CALM is most exposed to: the model votes with its own preferences,
so a model that likes "C" produces consensus "C", is trained towards "C", and likes it more.
A real run collapsed to always answering "C". The metrics therefore put side by side
- the letters the training targets teach, both as the consensus option (original labels) and as
  the letter the chosen answer actually writes (the label shown in the rotated prompt), and
- the letters the model answered with, per language, in both label spaces;
and `letter_warnings` flags a target set dominated by one letter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from calm_rag.languages import LANGUAGES
from calm_rag.questions import OPTION_LABELS, Choice
from calm_rag.training.choice_round import QuestionSamples
from calm_rag.training.open_round import OpenQuestionSamples, open_sampling_metrics
from calm_rag.voting import Encode
from calm_rag.voting.extraction import extract_letter
from calm_rag.voting.metrics import QuestionOutcome, summarize

MIN_TARGETS_FOR_WARNING = 10
"""Below this many targets one letter can dominate by chance; no warning is raised."""

_ANY_LABEL = tuple(Choice(label, "") for label in OPTION_LABELS)


def letter_shares(letters: Iterable[str | None]) -> dict[str, float]:
    """Letter -> share of the non-empty letters, in label order."""
    counts = Counter(letter for letter in letters if letter)
    total = sum(counts.values())
    return {letter: counts[letter] / total for letter in sorted(counts)} if total else {}


def chosen_letter(pair: Mapping[str, Any]) -> str | None:
    """The letter a pair's chosen answer states, as written (that is what DPO teaches the model to write)."""
    chosen = pair["chosen"]
    text = chosen[-1]["content"] if isinstance(chosen, list) else str(chosen)
    lang = pair.get("lang") if pair.get("lang") in LANGUAGES else "en"
    return extract_letter(text, lang, _ANY_LABEL)


def letter_warnings(targets: Sequence[str | None], written: Sequence[str | None], limit: float) -> list[str]:
    """One warning per target view (consensus option, written letter) where one letter exceeds `limit`."""
    warnings = []
    for view, letters in (("consensus answers", targets), ("letters the chosen answers write", written)):
        given = [letter for letter in letters if letter]
        if len(given) < MIN_TARGETS_FOR_WARNING:
            continue
        letter, count = Counter(given).most_common(1)[0]
        if count / len(given) > limit:
            warnings.append(f"{count / len(given):.0%} of the {view} are '{letter}' (limit {limit:.0%}): the adapter "
                            f"may learn to always answer {letter}. Keep option rotation on, raise the target "
                            "threshold, and compare with the model's own answer letters in metrics.json.")
    return warnings


def pair_stats(pairs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_language = Counter(str(pair.get("lang", "?")) for pair in pairs)
    translated = sum(bool(pair.get("translated")) for pair in pairs)
    return {"total": len(pairs), "by_language": dict(sorted(by_language.items())), "translated": translated,
            "translated_share": translated / len(pairs) if pairs else None}


def curves(log_history: Sequence[Mapping[str, Any]]) -> dict[str, list[list[float]]]:
    """[step, value] series of the trainer's logged loss and reward statistics."""
    names = {"loss": "loss", "rewards_margins": "rewards/margins", "rewards_accuracies": "rewards/accuracies",
             "rewards_chosen": "rewards/chosen", "rewards_rejected": "rewards/rejected"}
    return {name: [[entry["step"], float(entry[key])] for entry in log_history if key in entry and "step" in entry]
            for name, key in names.items()}


def sampling_metrics(samples: Sequence[QuestionSamples], languages: Sequence[str]) -> dict[str, Any]:
    """Vote quality (vs gold where gold exists), skipped questions, and the model's answer letters."""
    outcomes = [QuestionOutcome(item.question.id, item.question.answer, item.vote,
                                {lang: len(items) for lang, items in item.responses.items()}) for item in samples]
    statuses = Counter(item.status for item in samples)
    answered = {lang: [r for item in samples for r in item.responses.get(lang, [])] for lang in languages}
    return {
        "vote": summarize(outcomes, languages),
        "targets": statuses["target"],
        "skipped": {reason: statuses[reason] for reason in ("abstained", "tied", "below_threshold")},
        "target_accuracy": _target_accuracy(samples),
        "answer_letters_by_language": {lang: letter_shares(r.letter for r in items)
                                       for lang, items in answered.items()},
        "written_answer_letters_by_language": {
            lang: letter_shares(r.shown_label(r.letter) if r.letter else None for r in items)
            for lang, items in answered.items()},
    }


def _target_accuracy(samples: Sequence[QuestionSamples]) -> float | None:
    """Share of the graded targets that are the gold answer: how clean the training signal is."""
    graded = [item for item in samples if item.target is not None and item.question.answer is not None]
    return sum(item.target == item.question.answer for item in graded) / len(graded) if graded else None


def target_letters(samples: Sequence[QuestionSamples] | None, pairs: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """The consensus option of each target question; from the pairs' `majority` field without samples."""
    if samples is not None:
        return [item.target for item in samples if item.target is not None]
    seen: dict[str, str | None] = {}
    for pair in pairs:
        seen.setdefault(str(pair.get("id", len(seen))), pair.get("majority"))
    return list(seen.values())


def round_metrics(round_number: int, samples: Sequence[QuestionSamples] | None, pairs: Sequence[Mapping[str, Any]],
                  languages: Sequence[str], log_history: Sequence[Mapping[str, Any]], limit: float
                  ) -> dict[str, Any]:
    """Everything `metrics.json` reports about one round (samples is None when training on a pairs file)."""
    targets = target_letters(samples, pairs)
    written = [chosen_letter(pair) for pair in pairs]
    metrics: dict[str, Any] = {"round": round_number}
    if samples is not None:
        metrics.update(sampling_metrics(samples, languages))
        paired = {pair["id"] for pair in pairs}
        metrics["unanimous"] = sum(item.target is not None and item.question.id not in paired for item in samples)
    metrics["pairs"] = pair_stats(pairs)
    metrics["target_letters"] = letter_shares(targets)
    metrics["written_target_letters"] = letter_shares(written)
    metrics["warnings"] = letter_warnings(targets, written, limit)
    metrics["training"] = training_metrics(log_history)
    return metrics


def training_metrics(log_history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Optimizer steps, the final training loss and the logged curves of one round's DPO."""
    final = next((entry for entry in reversed(log_history) if "train_loss" in entry), {})
    return {"steps": final.get("step", 0), "train_loss": final.get("train_loss"), "curves": curves(log_history)}


def open_round_metrics(round_number: int, samples: Sequence[OpenQuestionSamples], pairs: Sequence[Mapping[str, Any]],
                       languages: Sequence[str], log_history: Sequence[Mapping[str, Any]], encode: Encode,
                       threshold: float) -> dict[str, Any]:
    """`metrics.json` for one round on open questions: no letters, the consensus quality instead."""
    metrics: dict[str, Any] = {"round": round_number, **open_sampling_metrics(samples, languages, encode, threshold)}
    paired = {pair["id"] for pair in pairs}
    metrics["unanimous"] = sum(item.status == "target" and item.question.id not in paired for item in samples)
    metrics["pairs"] = pair_stats(pairs)
    metrics["warnings"] = []
    metrics["training"] = training_metrics(log_history)
    return metrics
