"""GGUF -> plain float32 safetensors, for transformers (see transformers_weights.py for when it runs).

Why: a model loaded with `from_pretrained(..., gguf_file=...)` takes 40-60 s (every tensor is
dequantized on load) and keeps a GGUF quantizer that peft/trl refuse to train or save. Loading it
once in float32, dropping the quantizer and `quantization_config`, and saving it with
`save_pretrained` gives an ordinary checkpoint that loads in seconds and accepts LoRA adapters.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calm_rag.errors import CalmRagError


@dataclass(frozen=True)
class ConversionReport:
    """What the conversion did, recorded in the bundle's manifest."""

    parameters: int
    dtype: str
    gguf_name: str | None
    """`general.name` from the GGUF metadata (who quantized what)."""
    chat_template: bool
    seconds: float
    steps: list[str] = field(default_factory=list)


def strip_quantization(model: Any) -> list[str]:
    """Remove every trace of the GGUF quantizer so `save_pretrained` and peft treat it as a plain model."""
    steps: list[str] = []
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
        steps.append(f"removed the {type(quantizer).__name__}")
    for attribute in ("hf_quantizer", "quantization_method"):
        if attribute in model.__dict__:
            delattr(model, attribute)
    if getattr(model.config, "quantization_config", None) is not None or hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
        steps.append("dropped config.quantization_config")
    model.is_quantized = False
    return steps


def _check_plain(model: Any) -> None:
    """Refuse to save anything that is still packed: every weight must be a dense float32 tensor."""
    import torch

    packed = sorted({type(module).__name__ for module in model.modules() if "gguf" in type(module).__name__.lower()})
    if packed:
        raise CalmRagError(f"GGUF conversion left packed layers ({', '.join(packed)}); cannot save a plain model")
    dtypes = {parameter.dtype for parameter in model.parameters()}
    if dtypes != {torch.float32}:
        raise CalmRagError(f"GGUF conversion produced weights in {sorted(map(str, dtypes))}, expected float32 only")


def export_plain(model: Any, tokenizer: Any, out_dir: Path) -> list[str]:
    """Save a (de)quantized causal LM and its tokenizer as an ordinary safetensors checkpoint.

    Also makes sure generation stops at the chat end token: GGUF files carry `<|im_end|>` as
    eos, and the saved generation config must keep it or chat answers never stop.
    """
    steps = strip_quantization(model)
    _check_plain(model)
    if not getattr(tokenizer, "chat_template", None):
        raise CalmRagError("the tokenizer has no chat template; refusing to provision an instruct model without one")
    eos = tokenizer.eos_token_id
    generation = model.generation_config
    if eos is not None:
        current = generation.eos_token_id
        listed = current if isinstance(current, list) else ([] if current is None else [current])
        if eos not in listed:
            generation.eos_token_id = [*listed, eos] if listed else eos
            steps.append(f"added eos token id {eos} to the generation config")
    if generation.pad_token_id is None and tokenizer.pad_token_id is not None:
        generation.pad_token_id = tokenizer.pad_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    steps.append("saved model and tokenizer with save_pretrained (safetensors)")
    _check_saved(out_dir)
    steps.append("checked the saved folder: no quantization_config, chat template present")
    return steps


def _check_saved(out_dir: Path) -> None:
    """Re-read what was written: the config must be plain and the chat template must have survived."""
    import json

    from transformers import AutoTokenizer

    config = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
    if "quantization_config" in config:
        raise CalmRagError(f"{out_dir}/config.json still has a quantization_config")
    if not any(out_dir.glob("*.safetensors")):
        raise CalmRagError(f"no safetensors weights were written to {out_dir}")
    reloaded = AutoTokenizer.from_pretrained(out_dir)
    if not reloaded.chat_template:
        raise CalmRagError(f"the chat template did not survive saving the tokenizer to {out_dir}")


def gguf_metadata_name(gguf_path: Path) -> str | None:
    """`general.name` of a GGUF file (which checkpoint was quantized), for the manifest; None if unreadable."""
    from calm_rag.models.gguf_files import read_summary

    try:
        return read_summary(gguf_path).name
    except CalmRagError:  # informational only
        return None


CONVERSION_STEPS = 3
"""What `convert_gguf` reports to `step`: tokenizer read, weights dequantized, folder saved."""


def convert_gguf(gguf_path: Path, out_dir: Path, step: Callable[[int], None] | None = None) -> ConversionReport:
    """Dequantize `gguf_path` into float32 and save it under `out_dir` as plain safetensors.

    `step(done)` is called after each of the `CONVERSION_STEPS` steps (for a progress bar)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the caller shows its own status; tqdm would garble it
    try:
        return _convert(gguf_path, out_dir, step or (lambda done: None))
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _convert(gguf_path: Path, out_dir: Path, step: Callable[[int], None]) -> ConversionReport:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    started = time.monotonic()
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        step(1)
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True),
            use_kernels=False,  # as in generation.loading: no layer code fetched from the Hub
        )
    except Exception as error:  # noqa: BLE001 - any loader failure means this file cannot be provisioned
        raise CalmRagError(f"transformers could not load {gguf_path.name}: {type(error).__name__}: {error}") from None
    steps = [f"loaded {name} with from_pretrained(gguf_file=..., dtype=float32, GgufConfig(dequantize=True))"]
    parameters = sum(parameter.numel() for parameter in model.parameters())
    step(2)
    steps += export_plain(model, tokenizer, out_dir)
    step(3)
    del model, tokenizer
    gc.collect()
    return ConversionReport(parameters=parameters, dtype="float32", gguf_name=gguf_metadata_name(gguf_path),
                            chat_template=True, seconds=round(time.monotonic() - started, 1), steps=steps)
