"""`calm-rag eval`: measure a generator (optionally with a CALM adapter) on a parallel multiple-choice
dataset: per-language accuracy and parse rate, cross-lingual vote accuracy, the paper's
consistency, the answer-letter distribution, and a comparison against the base model."""

from calm_rag.evaluation.config import EvalConfig, load_eval_config
from calm_rag.evaluation.harness import EvalRun, evaluate, run_evaluation
from calm_rag.evaluation.report import build_payload, load_report, write_reports
from calm_rag.evaluation.scoring import ItemRecord, letter_distribution, score

__all__ = ["EvalConfig", "EvalRun", "ItemRecord", "build_payload", "evaluate", "letter_distribution",
           "load_eval_config", "load_report", "run_evaluation", "score", "write_reports"]
