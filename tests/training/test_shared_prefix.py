"""The shared-prefix DPO forward is a specialisation, not a new loss: on the same batches its loss, gradients,
reference log-probabilities and logged metrics equal TRL's plain `DPOTrainer`'s."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from calm_rag.testing.tiny_lm import build_tiny_causal_lm
from calm_rag.training.shared_prefix import SharedPrefixDPOTrainer, pair_layouts

DIRECT_PAIRS = [
    ("Where do you keep milk?\nA. fridge\nB. shelf\nC. car", "Answer: A", "Answer: C"),
    ("Wo bewahrt man Milch auf?\nA. Regal\nB. Kühlschrank", "Antwort: B", "Antwort: A"),
    ("牛奶放在哪里？\nA. 冰箱\nB. 天空\nC. 汽车\nD. 床\nE. 架子", "答案：A", "答案：E"),
    ("Q?", "Answer: D", "Answer: B"),
]
"""Direct-mode shape: prompts of different lengths, answers that part at the letter."""

OPEN_PAIRS = [
    ("Explain, then answer: where do you keep milk?", "Milk spoils when warm, so: fridge. Answer: A",
     "Answer: C"),
    ("Kurz: Hauptstadt?", "Paris", "Die Hauptstadt ist vermutlich Berlin, also B."),
]
"""Cot shape: answers that part at once and differ in length (the suffix pass has padding)."""


def _records(pairs: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    return [{"prompt": [{"role": "user", "content": prompt}], "chosen": [{"role": "assistant", "content": chosen}],
             "rejected": [{"role": "assistant", "content": rejected}]} for prompt, chosen, rejected in pairs]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "lm", layers=2)


def _trainers(tiny: Path, tmp_path: Path, pairs: list[tuple[str, str, str]], *, use_cpu: bool = True,
              **config: Any) -> tuple[Any, Any]:
    """A plain and a shared-prefix trainer on identical LoRA models whose adapters are not the identity, and whose
    policy is not their reference either.

    `use_cpu=False` lets the trainers take the GPU (tests/test_cuda.py), in float32 all the same.
    """
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32, use_kernels=False),
                           LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear"))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)  # a trained-looking adapter
    args = DPOConfig(output_dir=str(tmp_path / "out"), beta=0.1, per_device_train_batch_size=len(pairs),
                     use_cpu=use_cpu, bf16=False, report_to="none", max_length=256, disable_tqdm=True, **config)
    dataset = Dataset.from_list(_records(pairs))
    twin = copy.deepcopy(model)
    plain = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    shared = SharedPrefixDPOTrainer(model=twin, args=args, train_dataset=dataset, processing_class=tokenizer)
    for trainer in (plain, shared):
        _step_away_from_reference(trainer.model)
    return plain, shared


def _step_away_from_reference(model: Any) -> None:
    """Move the trained adapter ("default") off the frozen copy ("ref") that TRL makes of a given adapter.

    TRL takes that copy as the reference, so without this step every reward is 0, the loss is log 2 whatever the
    log-probabilities, and the reward accuracy compares the signs of rounding noise. The draw is on the CPU, so the
    CPU and the CUDA tests use the same weights.
    """
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name and ".default." in name:
                parameter.add_(torch.randn(parameter.shape, generator=generator).to(parameter.device), alpha=0.5)


def _loss_and_gradients(trainer: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model = trainer.model
    model.train()
    model.zero_grad()
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}


def _batch(trainer: Any) -> dict[str, Any]:
    dataset = trainer.train_dataset
    return trainer.data_collator([dataset[i] for i in range(len(dataset))])


def assert_same_loss_and_gradients(plain: Any, shared: Any, batch: dict[str, Any]) -> None:
    """Loss to 1e-6 and each LoRA gradient to 1e-4 of its largest entry: the two forwards add the same float32
    terms in another order (one full pass against a prefix pass and a suffix pass), so only rounding may differ."""
    plain_loss, plain_gradients = _loss_and_gradients(plain, batch)
    shared_loss, shared_gradients = _loss_and_gradients(shared, batch)
    assert abs(plain_loss.item() - math.log(2)) > 1e-3  # policy and reference differ: the loss depends on the log-probs
    assert torch.allclose(plain_loss, shared_loss, atol=1e-6), (plain_loss, shared_loss)
    assert plain_gradients.keys() == shared_gradients.keys()
    moved = [name for name, grad in plain_gradients.items() if grad.abs().max() > 0]
    assert len(moved) > len(plain_gradients) / 2  # the comparison is not between zeros
    for name, grad in plain_gradients.items():
        scale = grad.abs().max().item()
        error = (grad - shared_gradients[name]).abs().max().item()
        assert error <= 1e-4 * scale + 1e-8, (name, error, scale)


@pytest.mark.parametrize("pairs", [DIRECT_PAIRS, OPEN_PAIRS], ids=["direct", "cot"])
def test_loss_gradients_and_metrics_equal_trl(tiny: Path, tmp_path: Path, pairs: list[tuple[str, str, str]]) -> None:
    plain, shared = _trainers(tiny, tmp_path, pairs)
    assert_same_loss_and_gradients(plain, shared, _batch(plain))
    for key in ("rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected", "entropy",
                "mean_token_accuracy", "logits/chosen", "logits/rejected"):
        assert plain._metrics["train"][key] == pytest.approx(shared._metrics["train"][key], rel=1e-4, abs=1e-6), key


def test_reference_log_probs_equal_trl(tiny: Path, tmp_path: Path) -> None:
    plain, shared = _trainers(tiny, tmp_path, DIRECT_PAIRS)
    batch = _batch(plain)
    expected = plain.compute_ref_log_probs(plain.model, batch)
    got = shared.compute_ref_log_probs(shared.model, batch)
    for want, have in zip(expected, got, strict=True):
        assert torch.allclose(want, have, atol=1e-5)
    assert shared.model.active_adapter == "default"  # the reference pass switched its adapter back


def test_precomputed_reference_matches_the_plain_trainer(tiny: Path, tmp_path: Path) -> None:
    plain, shared = _trainers(tiny, tmp_path, DIRECT_PAIRS, precompute_ref_log_probs=True)
    for name in ("ref_chosen_logps", "ref_rejected_logps"):
        assert shared.train_dataset[name] == pytest.approx(plain.train_dataset[name], abs=1e-5)
    batch = _batch(plain)
    assert torch.allclose(_loss_and_gradients(plain, batch)[0], _loss_and_gradients(shared, batch)[0], atol=1e-6)


def test_pairs_share_their_prompt_and_answer_label() -> None:
    input_ids = torch.tensor([[1, 2, 3, 7, 8, 0], [1, 2, 9, 0, 0, 0], [1, 2, 3, 4, 8, 5], [1, 5, 9, 9, 0, 0]])
    attention = (input_ids != 0).long()
    layouts = pair_layouts(input_ids, attention)
    assert [(layout.shared, layout.lengths) for layout in layouts] == [(3, (5, 6)), (1, (3, 4))]
