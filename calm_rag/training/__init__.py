"""CALM training: sample in several languages, vote, turn agreement into preference pairs, LoRA-DPO.

`train_calm` runs the whole loop on a parallel dataset (multiple-choice rounds in `choice_round`, open
questions in `open_round`), `train_on_pairs` trains on pairs made elsewhere, `merge_adapter` folds a trained
adapter into its base. `calm-rag train` / `calm-rag merge` are thin wrappers over these. Imports are lazy:
naming `CalmTrainConfig` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "CalmTrainConfig": "config",
    "merge_adapter": "merge",
    "TrainSummary": "runner", "train_calm": "runner", "train_on_pairs": "runner",
}

if TYPE_CHECKING:
    from calm_rag.training.config import CalmTrainConfig
    from calm_rag.training.merge import merge_adapter
    from calm_rag.training.runner import TrainSummary, train_calm, train_on_pairs

__all__ = ["CalmTrainConfig", "TrainSummary", "merge_adapter", "train_calm", "train_on_pairs"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"calm_rag.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'calm_rag.training' has no attribute {name!r}")
