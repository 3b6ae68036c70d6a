"""Loading a causal LM for transformers, in one place: answering, training and eval all come through here.

Also the adapter check every engine applies: a LoRA adapter records the base it was trained on, and one
trained on another model is refused rather than silently applied.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calm_rag.errors import CalmRagError

if TYPE_CHECKING:
    import torch


def pick_device(device: str = "auto") -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CalmRagError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise CalmRagError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16") from None


def load_causal_lm(path: Path, *, device: str = "auto", dtype: str = "auto") -> tuple[Any, Any]:
    """(model on `device`, tokenizer) from a local folder; shared by answering and training.

    Hub kernels stay off. Recent transformers turn them on whenever the `kernels` package is installed (it is a
    dependency of transformers now), and on CUDA `model.train()` then fetches layer code from the Hub: offline
    that raises, online it runs code that no local file pins.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = pick_device(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=pick_dtype(dtype, target), use_kernels=False)
    except (OSError, ValueError) as error:
        raise CalmRagError(f"cannot load model from {path}: {error}".splitlines()[0]) from None
    return model.to(target), tokenizer


def base_names(resolved: Any) -> list[str]:
    """The names an adapter's recorded base may carry to count as `resolved` (a `ResolvedModel`)."""
    return [str(resolved.path), resolved.name, resolved.hub_id or ""]


def check_adapter_base(adapter: Path, accepted_bases: Sequence[str]) -> None:
    """Refuse an adapter trained on another base model (its adapter_config names the base)."""
    config_file = adapter / "adapter_config.json"
    if not config_file.is_file():
        raise CalmRagError(f"{adapter} is not a LoRA adapter folder (no adapter_config.json)")
    base = json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path") or ""
    known = {str(name).rstrip("/") for name in accepted_bases if name}
    if base and base.rstrip("/") not in known:
        raise CalmRagError(f"adapter {adapter} was trained on {base!r}, not on the model given "
                           f"({', '.join(sorted(known))}); pass the matching --model")
