"""The LoRA-DPO step: TRL 1.16's `DPOTrainer` on conversational preference rows.

- Rows stay conversational (prompt/chosen/rejected message lists): TRL applies the model's chat
  template itself, so training sees exactly the prompt format that sampling used.
- `ref_model=None` with LoRA: TRL computes the reference log-probabilities with the adapter
  disabled (round 1, a fresh adapter: the base model), or, when the model already carries an
  adapter (round n+1, `--adapter`), with a frozen copy of it ("ref"). No second model copy is
  loaded either way (see bench/train.py for the memory this saves).
- TRL 1.16 API notes: the tokenizer goes in `processing_class`; one `max_length` bounds
  prompt+completion (the old max_prompt_length / max_target_length are gone); `loss_type` is a
  list; `bf16` defaults to True and must be set explicitly on CPU; transformers 5.23 renamed
  `gradient_checkpointing` to `activation_checkpointing` (older 5.x only knows the old name).
- Speed (`shared_prefix`, `precompute_ref`, both on by default): each pair's shared start runs once for both
  answers (`shared_prefix.py`, equal to TRL's forward in loss and gradients), and the reference
  log-probabilities are computed once before training, batched and without gradients.
- Dropout: TRL zeroes every dropout layer (policy and reference must see the same network). We
  zero the base model's dropout ourselves and tell TRL not to, so `lora_dropout` keeps its effect.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from calm_rag.errors import CalmRagError
from calm_rag.progress import StageProgress
from calm_rag.training.config import CalmTrainConfig
from calm_rag.training.pairs_file import FIELDS


@dataclass
class DPOResult:
    log_history: list[dict[str, Any]]
    resumed_from: str | None = None
    """The checkpoint training continued from, when resumed."""


def preference_dataset(records: Sequence[Mapping[str, Any]]) -> Any:
    """A `datasets.Dataset` of prompt/chosen/rejected only (extra columns would reach the collator)."""
    from datasets import Dataset

    return Dataset.from_list([{name: record[name] for name in FIELDS} for record in records])


def lora_config(config: CalmTrainConfig, model: Any) -> Any:
    """The adapter's `LoraConfig`; with `lora_layers`, only the model's top blocks carry LoRA."""
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=adapted_modules(config, model), bias="none", task_type="CAUSAL_LM")


def adapted_modules(config: CalmTrainConfig, model: Any) -> str | list[str]:
    """`target_modules` for LoRA. With `lora_layers`, the full names of the targeted linear layers in the top
    blocks (PEFT's `layers_to_transform` refuses the "all-linear" shorthand, so the names are listed instead)."""
    if not config.lora_layers:
        return config.target_modules
    blocks = model.config.get_text_config().num_hidden_layers
    if config.lora_layers > blocks:
        raise CalmRagError(f"lora_layers is {config.lora_layers} but the model has only {blocks} blocks")
    wanted = None if config.target_modules == "all-linear" else set(config.target_modules)
    names = []
    for name, module in model.named_modules():
        block = re.search(r"\.layers\.(\d+)\.", name)
        if (isinstance(module, torch.nn.Linear) and block and int(block.group(1)) >= blocks - config.lora_layers
                and (wanted is None or name.rsplit(".", 1)[-1] in wanted)):
            names.append(name)
    if not names:
        raise CalmRagError(f"no linear layers named {sorted(wanted or [])} in the model's top {config.lora_layers} "
                           "blocks")
    return names


def checkpointing_argument(config_class: type) -> str:
    """The training-arguments field that switches activation checkpointing on: transformers 5.23 renamed
    `gradient_checkpointing` (kept as a deprecated alias) to `activation_checkpointing`."""
    names = {field.name for field in fields(config_class)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def dpo_config(config: CalmTrainConfig, output_dir: Path, device: torch.device, dtype: torch.dtype) -> Any:
    from trl import DPOConfig

    checkpointing = {checkpointing_argument(DPOConfig): config.gradient_checkpointing}
    return DPOConfig(
        output_dir=str(output_dir), beta=config.beta, loss_type=[config.loss_type],
        learning_rate=config.learning_rate, num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=config.max_length, warmup_steps=config.warmup, seed=config.seed,
        disable_dropout=False, precompute_ref_log_probs=config.precompute_ref, **checkpointing,
        bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16, use_cpu=device.type == "cpu",
        logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps, save_total_limit=2,
        report_to="none", disable_tqdm=True, dataloader_num_workers=0,
    )


CHECKPOINT = re.compile(r"checkpoint-(\d+)")
WEIGHTS = ("adapter_model.safetensors", "model.safetensors")
STATE_FILES = ("optimizer.pt", "scheduler.pt")
"""What a checkpoint needs besides `trainer_state.json` (the Trainer writes that last) and its weights."""


def last_complete_checkpoint(checkpoints: Path) -> Path | None:
    """The newest `checkpoint-N` whose files are all there and readable; incomplete ones (a kill during the
    Trainer's checkpoint write, or during its deletion of an old one) are removed, so training continues from
    the last good state instead of failing to load a half-written one."""
    if not checkpoints.is_dir():
        return None
    found = sorted(((int(match.group(1)), path) for path in checkpoints.iterdir()
                    if path.is_dir() and (match := CHECKPOINT.fullmatch(path.name))), reverse=True)
    chosen = None
    for _, path in found:
        if chosen is None and checkpoint_complete(path):
            chosen = path
        elif chosen is None or not checkpoint_complete(path):
            aside = path.with_name(f".{path.name}.incomplete")
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(path, aside)
            shutil.rmtree(aside, ignore_errors=True)
    return chosen


def checkpoint_complete(folder: Path) -> bool:
    """Trainer state that parses, weights whose safetensors header and data are all there, and the optimizer
    and scheduler archives intact (a truncated zip has no central directory)."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
        return False
    weights = next((folder / name for name in WEIGHTS if (folder / name).is_file()), None)
    if weights is None or not _safetensors_complete(weights):
        return False
    return all((folder / name).is_file() and zipfile.is_zipfile(folder / name) for name in STATE_FILES)


def _safetensors_complete(path: Path) -> bool:
    """The header parses and the file is as long as the header's largest tensor offset says."""
    try:
        with path.open("rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if not 2 <= length <= 100_000_000:
                return False
            header = json.loads(handle.read(length))
        ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
        return path.stat().st_size >= 8 + length + max(ends, default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return False


def _zero_base_dropout(model: torch.nn.Module) -> None:
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Dropout) and "lora_dropout" not in name:
            module.p = 0.0


def _progress_callback(progress: StageProgress, stage: str) -> Any:
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            progress(stage, state.global_step, state.max_steps)

    return _Progress()


def _out_of_memory(config: CalmTrainConfig) -> CalmRagError:
    return CalmRagError(f"out of memory during DPO training (batch_size={config.batch_size}, max_length="
                        f"{config.max_length}); lower batch_size (raise gradient_accumulation_steps to keep the "
                        "effective batch), lower max_length, or enable gradient_checkpointing")


@contextmanager
def hub_offline() -> Iterator[None]:
    """HF_HUB_OFFLINE=1 while the trainer runs. Each checkpoint's save asks PEFT whether the embeddings were
    resized, and PEFT answers by looking the base's config.json up on the hub, since the adapter names its base by
    hub id (`base_id`): a request per checkpoint online, a DNS failure and a warning offline. calm-rag never
    resizes the embeddings and never reaches the hub, so the lookup is skipped; the variable is restored after."""
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before


def trainer_class(config: CalmTrainConfig) -> type:
    """TRL's `DPOTrainer`, with the shared-prefix forward unless activation checkpointing rules it out."""
    from trl import DPOTrainer

    if config.shared_prefix and not config.gradient_checkpointing:
        from calm_rag.training.shared_prefix import SharedPrefixDPOTrainer

        return SharedPrefixDPOTrainer
    return DPOTrainer


def train_dpo(model: Any, tokenizer: Any, records: Sequence[Mapping[str, Any]], config: CalmTrainConfig,
              checkpoints: Path, *, progress: StageProgress | None = None, stage: str = "DPO",
              callbacks: Sequence[Any] = (), base_id: str) -> tuple[Any, DPOResult]:
    """Train the LoRA adapter on `records`; continues from the newest complete checkpoint in `checkpoints`.

    `base_id`: the base the adapter records (the hub id where known; `LoadedModel.base_id`), in every checkpoint
    and in the finished adapter, so both load with `--model <name>`, not only with the local folder the weights
    came from.

    Returns the PEFT model (only the trained 'default' adapter attached) and the trainer's log history.
    """
    import datasets
    from peft import PeftModel
    from transformers import PrinterCallback
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    _zero_base_dropout(model)
    checkpoints.mkdir(parents=True, exist_ok=True)
    last = last_complete_checkpoint(checkpoints)
    resume_from = str(last) if last is not None else None
    # Progress is ours (rich, on stderr): no per-step dicts on stdout (it must stay clean for --json),
    # and no tqdm bars for the few-millisecond dataset maps.
    datasets.disable_progress_bars()
    trainer = trainer_class(config)(
        model=model, ref_model=None, args=dpo_config(config, checkpoints, device, dtype),
        train_dataset=preference_dataset(records), processing_class=tokenizer,
        peft_config=None if isinstance(model, PeftModel) else lora_config(config, model),
        callbacks=[*([_progress_callback(progress, stage)] if progress else []), *callbacks],
    )
    trainer.remove_callback(PrinterCallback)
    for adapter in trainer.model.peft_config.values():
        adapter.base_model_name_or_path = base_id
    try:
        with hub_offline():
            trainer.train(resume_from_checkpoint=resume_from)
    except torch.OutOfMemoryError:
        raise _out_of_memory(config) from None
    except RuntimeError as error:
        if "allocate memory" in str(error) or "out of memory" in str(error).lower():
            raise _out_of_memory(config) from None
        raise
    trained = trainer.accelerator.unwrap_model(trainer.model)
    if "ref" in trained.peft_config:
        trained.delete_adapter("ref")
    trained.set_adapter("default")
    return trained, DPOResult(list(trainer.state.log_history), resume_from)
