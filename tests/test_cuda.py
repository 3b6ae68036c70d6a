"""The CUDA paths: batched scoring and generation, LoRA-DPO training and eval, shared-prefix DPO on a GPU.

CI has no GPU, so these skip there; run them where one is present (`make test-cuda`). They compare the
GPU against the CPU on the same tiny random model, because a device or dtype slip (a tensor left on the
CPU, padding applied on the wrong side, bf16 where float32 was asked) shows up as different numbers,
not always as an error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.transformers_engine import TransformersGenerator
from tests.training.conftest import FAST_RECIPE, write_dataset
from tests.training.test_shared_prefix import (
    DIRECT_PAIRS,
    OPEN_PAIRS,
    _batch,
    _trainers,
    assert_same_loss_and_gradients,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
runner = CliRunner()

# Prompts of different lengths, so that a batch is left-padded.
QUESTIONS = ["Where do you keep milk?", "Wo bewahrt man Milch auf, wenn es draußen sehr warm ist?",
             "牛奶放在哪里？", "Où range-t-on le lait ?", "Where?"]


def direct_prompts(generator: TransformersGenerator) -> list[str]:
    return [generator.render([{"role": "user", "content": f"{question}\nA. fridge\nB. shelf\nC. car"}],
                             prefill="Answer:") for question in QUESTIONS]


def distributions(generator: TransformersGenerator, prompts: list[str], batch_size: int) -> torch.Tensor:
    rows = generator.label_distributions(prompts, [["A", "B", "C"]] * len(prompts), batch_size=batch_size)
    return torch.tensor([[row[label] for label in "ABC"] for row in rows])


@pytest.fixture(scope="module")
def cpu_reference(tiny_lm_path: Path) -> tuple[list[str], torch.Tensor]:
    """The direct-mode prompts and their label distributions on the CPU in float32, one prompt at a time."""
    cpu = TransformersGenerator.load(str(tiny_lm_path), device="cpu", dtype="float32")
    prompts = direct_prompts(cpu)
    return prompts, distributions(cpu, prompts, batch_size=1)


@pytest.fixture(scope="module")
def gpu(tiny_lm_path: Path) -> TransformersGenerator:
    return TransformersGenerator.load(str(tiny_lm_path), device="cuda", dtype="float32")


def test_scores_on_cuda_match_the_cpu_batched_or_not(gpu: TransformersGenerator, cpu_reference: tuple[list[str], torch.Tensor]
                                                     ) -> None:
    assert gpu.device.type == "cuda"
    prompts, reference = cpu_reference
    torch.testing.assert_close(distributions(gpu, prompts, batch_size=len(prompts)), reference, atol=1e-4, rtol=0)
    torch.testing.assert_close(distributions(gpu, prompts, batch_size=1), reference, atol=1e-4, rtol=0)


def test_batched_greedy_generation_on_cuda_matches_one_at_a_time(gpu: TransformersGenerator) -> None:
    prompts = [gpu.render([{"role": "user", "content": question}]) for question in QUESTIONS]
    greedy = GenerationConfig(temperature=0.0, max_new_tokens=12, batch_size=len(prompts))
    batched = gpu.generate(prompts, greedy)
    alone = [gpu.generate([prompt], GenerationConfig(temperature=0.0, max_new_tokens=12))[0] for prompt in prompts]
    assert batched == alone
    sampled = GenerationConfig(temperature=1.0, max_new_tokens=12, batch_size=len(prompts), seed=3)
    assert gpu.generate(prompts, sampled) == gpu.generate(prompts, sampled)  # seeded sampling repeats on CUDA


def test_auto_device_is_cuda_in_bfloat16(tiny_lm_path: Path, cpu_reference: tuple[list[str], torch.Tensor]) -> None:
    auto = TransformersGenerator.load(str(tiny_lm_path))
    assert auto.device.type == "cuda" and next(auto.model.parameters()).dtype == torch.bfloat16
    prompts, reference = cpu_reference
    assert direct_prompts(auto) == prompts
    torch.testing.assert_close(distributions(auto, prompts, batch_size=8), reference, atol=0.05, rtol=0)


def test_lora_dpo_on_cuda_then_eval_with_the_adapter(tmp_path: Path, tiny_lm_path: Path) -> None:
    recipe = tmp_path / "fast.toml"
    recipe.write_text(FAST_RECIPE, encoding="utf-8")
    dataset = write_dataset(tmp_path / "data")
    out = tmp_path / "runs" / "calm"
    result = runner.invoke(app, ["train", str(dataset), "--split", "train", "--mode", "direct", "--samples", "2",
                                 "--min-margin", "0", "--model", str(tiny_lm_path), "--config", str(recipe),
                                 "--device", "cuda", "--dtype", "bfloat16", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rounds"][0]["training"]["steps"] > 0
    assert json.loads((out / "manifest.json").read_text())["config"]["device"] == "cuda"

    adapter = load_file(out / "adapter_model.safetensors")
    assert any(tensor.abs().sum() > 0 for name, tensor in adapter.items() if "lora_B" in name)
    base = load_file(tiny_lm_path / "model.safetensors")
    loaded = TransformersGenerator.load(str(tiny_lm_path), adapter=out, device="cpu", dtype="float32", merge_adapter=False)
    state = loaded.model.state_dict()
    for name, tensor in base.items():
        module, parameter = name.rsplit(".", 1)
        wrapped = state.get(f"base_model.model.{module}.base_layer.{parameter}")
        assert torch.equal(state[f"base_model.model.{name}"] if wrapped is None else wrapped, tensor), name

    # the adapter evaluates on the GPU, against the base on the same (unmerged, then merged) weights
    report = runner.invoke(app, ["eval", str(dataset), "--split", "train", "--model", str(tiny_lm_path),
                                 "--languages", "en,de,zh", "--adapter", str(out), "--compare-to", "base",
                                 "--device", "cuda",
                                 "--cache-dir", str(tmp_path / "cache"), "--json"])
    assert report.exit_code == 0, report.output
    payload = json.loads(report.stdout)
    assert payload["n_questions"] == 4 and set(payload["accuracy_by_language"]) == {"en", "de", "zh"}
    assert payload["baseline"]["n_questions"] == 4 and payload["baseline"]["adapter"] is None


@pytest.mark.parametrize("pairs", [DIRECT_PAIRS, OPEN_PAIRS], ids=["direct", "cot"])
def test_shared_prefix_dpo_on_cuda_equals_trl(tiny_lm_path: Path, tmp_path: Path, pairs: list[tuple[str, str, str]]
                                              ) -> None:
    """The shared-prefix DPO forward equals TRL's on the GPU kernels too: its prefix pass, copied key/value cache and
    suffix pass with explicit positions take other CUDA attention and matmul paths than TRL's two full sequences."""
    plain, shared = _trainers(tiny_lm_path, tmp_path, pairs, use_cpu=False)
    assert {next(trainer.model.parameters()).device.type for trainer in (plain, shared)} == {"cuda"}
    # float32 at torch's default "highest" matmul precision (no TF32), so the CPU test's tolerances apply as they are
    assert torch.get_float32_matmul_precision() == "highest"
    assert_same_loss_and_gradients(plain, shared, plain._prepare_inputs(_batch(plain)))
