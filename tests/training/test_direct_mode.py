"""Direct mode reads the answer off the next-token logits; check it against the raw logits."""

from pathlib import Path

import pytest
import torch

from calm_rag.generation.transformers_engine import TransformersGenerator
from calm_rag.prompts import answer_prefill, mcq_messages
from calm_rag.questions import Question, make_choices

OPTIONS = {"en": ["fridge", "shelf", "car", "bed", "sky"], "de": ["Kühlschrank", "Regal", "Auto"],
           "zh": ["冰箱", "架子", "汽车", "床"]}
QUESTIONS = [Question("q1", lang, f"{lang}: where do you keep milk?", make_choices(texts))
             for lang, texts in OPTIONS.items()]


@pytest.fixture(scope="module")
def generator(tiny_lm_path: Path) -> TransformersGenerator:
    return TransformersGenerator.load(str(tiny_lm_path), device="cpu")


def test_distributions_sum_to_one_and_match_the_logits(generator: TransformersGenerator) -> None:
    prompts = [generator.render(mcq_messages(q, "direct"), prefill=answer_prefill(q.lang)) for q in QUESTIONS]
    # one batched call: prompts of different lengths are left-padded together
    distributions = generator.label_distributions(prompts, [q.labels for q in QUESTIONS])
    for question, prompt, distribution in zip(QUESTIONS, prompts, distributions):
        assert list(distribution) == list(question.labels)
        assert sum(distribution.values()) == pytest.approx(1.0, abs=1e-6)
        # the same prompt alone, unpadded, straight through the model
        ids = generator.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            logits = generator.model(**ids).logits[0, -1].float()
        # each label's tokens, spelled with and without a leading space, looked up independently
        token_ids = [_single_tokens(generator, label) for label in question.labels]
        assert all(token_ids)
        pooled = torch.stack([torch.logsumexp(logits[ids], 0) for ids in token_ids])
        assert list(distribution.values()) == pytest.approx(torch.softmax(pooled, 0).tolist(), abs=1e-5)
        assert max(distribution, key=distribution.__getitem__) == question.labels[int(pooled.argmax())]


def _single_tokens(generator: TransformersGenerator, label: str) -> list[int]:
    found = [generator.tokenizer.encode(v, add_special_tokens=False) for v in (label, " " + label)]
    return sorted({ids[0] for ids in found if len(ids) == 1})
