"""Loading the model to train: one copy of the base weights, trainable, plus an optional LoRA adapter.

Training loads the model itself instead of through `TransformersGenerator.load`, because the same object is
used three ways in a run: sampled from (wrapped in a `Generator`), trained (DPOTrainer adds the
LoRA adapter to it and computes the reference by disabling the adapter), and sampled from again
in the next round. One copy of the weights serves all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calm_rag.generation.loading import base_names, check_adapter_base, load_causal_lm


@dataclass
class LoadedModel:
    model: Any
    """A `PreTrainedModel`, or a `PeftModel` once an adapter is attached."""
    tokenizer: Any
    resolved: Any
    """The `ResolvedModel`: name, hub id, local path, revision."""

    @property
    def base_id(self) -> str:
        """What adapters record as their base: the hub id where known (stable across machines), else the path."""
        return self.resolved.hub_id or str(self.resolved.path)


def resolve(name: str) -> Any:
    """`name` (short name, hub id or folder) -> its `ResolvedModel`; cheap, so runs check it before any work."""
    from calm_rag.models.resolve import resolve_model

    return resolve_model(name, role="generator")


def describe(resolved: Any) -> dict[str, Any]:
    return {"name": resolved.name, "hub_id": resolved.hub_id, "path": str(resolved.path),
            "source": resolved.source, "revision": resolved.revision}


def load_model(resolved: Any, *, device: str = "auto", dtype: str = "auto") -> LoadedModel:
    """Load a resolved model on `device` for training."""
    from calm_rag.models import ensure_transformers_weights

    model, tokenizer = load_causal_lm(ensure_transformers_weights(resolved), device=device, dtype=dtype)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model, tokenizer, resolved)


def attach_adapter(loaded: LoadedModel, adapter: Path | str) -> None:
    """Load a trainable LoRA adapter onto the base model, after checking it was trained on this base."""
    from peft import PeftModel

    folder = Path(adapter)
    check_adapter_base(folder, base_names(loaded.resolved))
    loaded.model = PeftModel.from_pretrained(loaded.model, folder, is_trainable=True)


def save_adapter(loaded: LoadedModel, folder: Path) -> None:
    """Save the trained 'default' adapter (its recorded base, `base_id`, was set when training began: see
    `train_dpo`). The embeddings are never resized, so PEFT need not ask the hub about the base (see `hub_offline`
    in dpo.py)."""
    loaded.model.save_pretrained(folder, selected_adapters=["default"], save_embedding_layers=False)
