"""The DPO arguments calm-rag builds, across the transformers versions pyproject allows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from calm_rag.training.config import CalmTrainConfig
from calm_rag.training.dpo import checkpointing_argument, dpo_config


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
