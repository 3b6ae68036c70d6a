"""`evaluate_dataset`: one entry for both kinds of dataset, as `calm-rag eval` and library users call it.

The kind (multiple choice or open questions) is read off the data, the settings that only make sense for
the other kind are refused rather than silently ignored, and the runs are compared (with the base model or
an earlier report) into the payload the reports are written from.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from calm_rag.config import Settings, load_settings
from calm_rag.data.open import is_open_dataset
from calm_rag.errors import CalmRagError
from calm_rag.evaluation.choice_harness import run_evaluation
from calm_rag.evaluation.config import load_eval_config, load_open_eval_config
from calm_rag.evaluation.harness import ProgressFactory
from calm_rag.evaluation.open_harness import run_open_evaluation
from calm_rag.evaluation.report import build_payload, load_report
from calm_rag.generation.engines import EngineConfig

CHOICE_ONLY = {"mode": "--mode", "permute": "--permute/--no-permute", "balanced": "--balanced/--unbalanced",
               "continue_letters": "--continue-letters/--no-continue-letters", "dev_questions": "--dev"}
OPEN_ONLY = {"embedder": "--embedder", "threshold": "--threshold", "continue_spans": "--continue-spans/--no-continue-spans",
             "gloss_spans": "--gloss-spans/--no-gloss-spans",
             "constrain_spans": "--constrain-spans/--no-constrain-spans"}


def check_kind_settings(data: Path, open_questions: bool, settings: Mapping[str, Any]) -> None:
    """Settings of the other kind of dataset (name -> value, None when not given) are an error."""
    misplaced = CHOICE_ONLY if open_questions else OPEN_ONLY
    given = [flag for key, flag in misplaced.items() if settings.get(key) is not None]
    if given and open_questions:
        raise CalmRagError(f"{data} holds open questions (no choices), and these options are for multiple-choice "
                           f"datasets only: {', '.join(given)} (open answers are generated and clustered by meaning)")
    if given:
        raise CalmRagError(f"{data} holds multiple-choice questions, and these options are for open-question "
                           f"datasets only: {', '.join(given)}")


def evaluate_dataset(data: Path, *, overrides: Mapping[str, Any] | None = None, config_file: Path | None = None,
                     model: str | None = None, adapter: Path | None = None, compare_to: str | None = None,
                     cache_dir: Path | None = None, fresh: bool = False, engine: EngineConfig | None = None,
                     settings: Settings | None = None, progress: ProgressFactory | None = None
                     ) -> dict[str, Any]:
    """Evaluate `model` (with `adapter`) on `data` and return the report payload. `overrides` are explicit
    settings (None values mean "not given"); `compare_to` is "base" or the path of an earlier report.json; `engine` defaults to the settings'."""
    settings = settings or load_settings()
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    open_questions = is_open_dataset(data)
    check_kind_settings(data, open_questions, given)
    engine = engine or EngineConfig(engine=settings.engine, device=settings.device)
    baseline = load_report(Path(compare_to)) if compare_to not in (None, "base") else None
    options: dict[str, Any] = {
        "model": model or settings.generator, "adapter": adapter, "compare_base": compare_to == "base",
        "cache_dir": cache_dir or settings.eval_cache, "fresh": fresh, "engine": engine,
        "settings": settings, "progress": progress}
    if open_questions:
        runs = [run.to_dict() for run in run_open_evaluation(data, load_open_eval_config(config_file, given), **options)]
    else:
        runs = [run.to_dict() for run in run_evaluation(data, load_eval_config(config_file, given), **options)]
    return build_payload(runs[0], runs[1] if len(runs) > 1 else baseline)
