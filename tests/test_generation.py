from pathlib import Path

import pytest
import torch

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.loading import load_causal_lm
from calm_rag.generation.transformers_engine import TransformersGenerator
from calm_rag.prompts import answer_prefill, mcq_messages
from calm_rag.questions import Question, make_choices
from calm_rag.testing.tiny_lm import build_tiny_causal_lm

QUESTION = Question("q", "de", "Woher?", make_choices(["Stadt", "Krankenhaus", "Schulen"]))


def test_render_uses_chat_template_and_prefill(tiny_generator: TransformersGenerator) -> None:
    prompt = tiny_generator.render(mcq_messages(QUESTION, "direct"), prefill=answer_prefill("de"))
    assert prompt.startswith("<|im_start|>user\n")
    assert prompt.endswith("<|im_start|>assistant\nAntwort:")


def test_model_without_chat_template_needs_plain_prompts(tmp_path: Path) -> None:
    path = build_tiny_causal_lm(tmp_path / "base", chat_template=False)
    with pytest.raises(CalmRagError, match="no chat template; pass --plain-prompts"):
        TransformersGenerator.load(str(path), device="cpu")
    generator = TransformersGenerator.load(str(path), device="cpu", plain_prompts=True)
    assert generator.render([{"role": "user", "content": "Frage"}], prefill="Antwort:") == "Frage\n\nAntwort:"
    assert len(generator.generate([generator.render([{"role": "user", "content": "Frage"}])],
                                  GenerationConfig(max_new_tokens=3))) == 1


def test_batched_generation_keeps_prompt_order_and_is_reproducible(tiny_generator: TransformersGenerator) -> None:
    prompts = [tiny_generator.render([{"role": "user", "content": f"Frage {'x' * n}"}]) for n in (1, 30, 5, 12)]
    prompts = [p for p in prompts for _ in range(3)]  # 4 prompts x 3 samples
    config = GenerationConfig(max_new_tokens=8, seed=7, batch_size=5)
    first = tiny_generator.generate(prompts, config)
    assert len(first) == 12
    assert first == tiny_generator.generate(prompts, config)
    # greedy: a prompt gives the same output wherever it sits in the batch
    greedy = tiny_generator.generate(prompts, GenerationConfig(max_new_tokens=8, temperature=0.0, batch_size=12))
    alone = [tiny_generator.generate([prompt], GenerationConfig(max_new_tokens=8, temperature=0.0))[0]
             for prompt in prompts[::3]]
    assert greedy[::3] == alone


def test_label_distribution_sums_to_one_and_follows_logits(tiny_generator: TransformersGenerator) -> None:
    prompt = tiny_generator.render(mcq_messages(QUESTION, "direct"), prefill=answer_prefill("de"))
    [distribution] = tiny_generator.label_distributions([prompt], [QUESTION.labels])
    assert set(distribution) == {"A", "B", "C"}
    assert abs(sum(distribution.values()) - 1.0) < 1e-6
    ids = tiny_generator.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        logits = tiny_generator.model(**ids).logits[0, -1]
    pooled = {label: torch.logsumexp(logits[tiny_generator._single_token_ids(label)], 0).item() for label in "ABC"}
    assert max(distribution, key=distribution.get) == max(pooled, key=pooled.get)


def test_multi_token_labels_fall_back_to_sequence_scoring(tiny_generator: TransformersGenerator) -> None:
    prompt = tiny_generator.render([{"role": "user", "content": "x"}], prefill="Answer:")
    [distribution] = tiny_generator.label_distributions([prompt], [["A", "Zyx"]])
    assert abs(sum(distribution.values()) - 1.0) < 1e-6 and set(distribution) == {"A", "Zyx"}


def test_adapter_is_merged_unless_it_must_stay_switchable(tiny_lm_path: Path, tmp_path: Path) -> None:
    """Merged LoRA answers like the unmerged adapter (folded weights are faster to run); unmerged keeps
    disable_adapter() available for eval's base comparison."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_path)
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(tmp_path / "adapter")

    merged = TransformersGenerator.load(str(tiny_lm_path), adapter=tmp_path / "adapter", device="cpu", dtype="float32")
    switchable = TransformersGenerator.load(str(tiny_lm_path), adapter=tmp_path / "adapter", device="cpu", dtype="float32",
                                merge_adapter=False)
    assert not isinstance(merged.model, PeftModel) and isinstance(switchable.model, PeftModel)
    prompts = [merged.render([{"role": "user", "content": "Which option? A or B"}])]
    assert merged.label_distributions(prompts, [("A", "B")])[0] == pytest.approx(
        switchable.label_distributions(prompts, [("A", "B")])[0], abs=1e-4)


def test_models_load_without_hub_kernels(tiny_lm_path: Path) -> None:
    """transformers would switch them on (and fetch layer code from the Hub on CUDA, failing offline)."""
    model, _ = load_causal_lm(tiny_lm_path, device="cpu")
    assert model.use_kernels is False
