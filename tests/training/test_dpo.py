"""The DPO arguments and LoRA config calm-rag builds, across the transformers versions pyproject allows."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from calm_rag.errors import CalmRagError
from calm_rag.training.config import CalmTrainConfig
from calm_rag.training.dpo import checkpointing_argument, dpo_config, lora_config


@dataclass
class ArgumentsBefore523:
    gradient_checkpointing: bool = False


@dataclass
class ArgumentsFrom523:
    activation_checkpointing: bool = False
    gradient_checkpointing: bool | None = None  # the deprecated alias


def test_checkpointing_uses_the_name_the_installed_transformers_knows() -> None:
    assert checkpointing_argument(ArgumentsBefore523) == "gradient_checkpointing"
    assert checkpointing_argument(ArgumentsFrom523) == "activation_checkpointing"


def test_dpo_config_switches_checkpointing_on(tmp_path: Path) -> None:
    from trl import DPOConfig

    args = dpo_config(CalmTrainConfig(gradient_checkpointing=True), tmp_path, torch.device("cpu"), torch.float32)
    assert getattr(args, checkpointing_argument(DPOConfig)) is True
    assert args.use_cpu and not args.bf16


def test_lora_layers_puts_the_adapter_on_the_top_blocks_only(tmp_path: Path) -> None:
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from calm_rag.testing.tiny_lm import build_tiny_causal_lm

    model = AutoModelForCausalLM.from_pretrained(build_tiny_causal_lm(tmp_path / "lm", layers=4))
    adapted = get_peft_model(model, lora_config(CalmTrainConfig(lora_layers=2), model))
    blocks = {int(re.search(r"layers\.(\d+)\.", name).group(1))
              for name, _ in adapted.named_parameters() if "lora_" in name}
    assert blocks == {2, 3}
    # Nothing below the lowest adapted block needs a gradient, so the backward pass stops there.
    inputs = torch.tensor([[1, 2, 3, 4]])
    adapted(input_ids=inputs, labels=inputs).loss.backward()
    with_gradient = {name for name, parameter in adapted.named_parameters() if parameter.grad is not None}
    assert with_gradient and all(re.search(r"layers\.[23]\.", name) for name in with_gradient)


def test_lora_layers_beyond_the_model_is_a_clear_error(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from calm_rag.testing.tiny_lm import build_tiny_causal_lm

    model = AutoModelForCausalLM.from_pretrained(build_tiny_causal_lm(tmp_path / "lm", layers=2))
    with pytest.raises(CalmRagError, match="only 2 blocks"):
        lora_config(CalmTrainConfig(lora_layers=3), model)
    with pytest.raises(CalmRagError, match="lora_layers"):
        CalmTrainConfig(lora_layers=-1)


def test_every_checkpoint_records_the_base_by_its_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint's adapter names the base like the finished adapter does, so `eval --adapter CHECKPOINT
    --model NAME` accepts it (it used to name the folder the weights were loaded from). Saving them does not ask
    the hub about that id (PEFT's embedding check), and HF_HUB_OFFLINE is as it was afterwards."""
    import peft.utils.other

    asked: list[str] = []
    monkeypatch.setattr(peft.utils.other, "file_exists", lambda repo, *args, **kwargs: asked.append(repo))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from calm_rag.testing.tiny_lm import build_tiny_causal_lm
    from calm_rag.training.dpo import train_dpo

    folder = build_tiny_causal_lm(tmp_path / "lm")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    records = [{"prompt": [{"role": "user", "content": f"Question {n}?"}],
                "chosen": [{"role": "assistant", "content": "Answer: A"}],
                "rejected": [{"role": "assistant", "content": "Answer: B"}]} for n in range(4)]
    config = CalmTrainConfig(device="cpu", dtype="float32", batch_size=2, gradient_accumulation_steps=1, save_steps=1,
                             lora_r=4, lora_alpha=8, max_length=64, warmup=0)
    train_dpo(AutoModelForCausalLM.from_pretrained(folder), tokenizer, records, config, tmp_path / "checkpoints",
              base_id="org/tiny-model")
    checkpoints = sorted((tmp_path / "checkpoints").glob("checkpoint-*"))
    assert len(checkpoints) == 2
    for checkpoint in checkpoints:
        recorded = json.loads((checkpoint / "adapter_config.json").read_text())["base_model_name_or_path"]
        assert recorded == "org/tiny-model"
    assert asked == [] and "HF_HUB_OFFLINE" not in os.environ
