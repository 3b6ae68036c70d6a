"""`calm-rag eval`: measure a generator (optionally with a CALM adapter) on a parallel dataset.

Multiple choice: per-language accuracy and parse rate, cross-lingual vote accuracy, the paper's
consistency, the answer-letter distribution, and a comparison against the base model. Open questions
(`open_harness`, e.g. XQuAD-R; the multiple-choice one is `choice_harness`): the same headline numbers by semantic match of free-form answers
against each language's gold, plus exact match."""

from calm_rag.evaluation.choice_harness import EvalRun, evaluate, run_evaluation
from calm_rag.evaluation.choice_scoring import ItemRecord, letter_distribution, score
from calm_rag.evaluation.config import (
    EvalConfig,
    OpenEvalConfig,
    load_eval_config,
    load_open_eval_config,
)
from calm_rag.evaluation.open_harness import (
    OpenEvalRun,
    evaluate_open,
    run_open_evaluation,
)
from calm_rag.evaluation.open_scoring import OpenItemRecord, score_open
from calm_rag.evaluation.report import build_payload, load_report, write_reports
from calm_rag.evaluation.run import evaluate_dataset

__all__ = ["EvalConfig", "EvalRun", "ItemRecord", "OpenEvalConfig", "OpenEvalRun", "OpenItemRecord", "build_payload",
           "evaluate", "evaluate_dataset", "evaluate_open", "letter_distribution", "load_eval_config", "load_open_eval_config",
           "load_report", "run_evaluation", "run_open_evaluation", "score", "score_open", "write_reports"]
