"""CALM training: sample in several languages, vote, turn agreement into preference pairs, LoRA-DPO.

`train_calm` runs the whole loop on a parallel dataset, `train_on_pairs` trains on pairs made
elsewhere, `merge_adapter` folds a trained adapter into its base. `calm-rag train` / `calm-rag
merge` are thin wrappers over these.
"""

from calm_rag.training.calm_loop import (
           QuestionSamples,
           build_pairs,
           choose_target,
           sample_round,
           vote_margin,
)
from calm_rag.training.config import CalmTrainConfig
from calm_rag.training.merge import merge_adapter
from calm_rag.training.report import letter_warnings
from calm_rag.training.runner import TrainSummary, train_calm, train_on_pairs

__all__ = ["CalmTrainConfig", "QuestionSamples", "TrainSummary", "build_pairs", "choose_target", "letter_warnings",
           "merge_adapter", "sample_round", "train_calm", "train_on_pairs", "vote_margin"]
