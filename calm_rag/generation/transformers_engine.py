"""The transformers engine: load once, generate many prompts in few batched calls.

Why batched: cross-lingual voting asks the same question in L languages x K samples. One
left-padded `generate` call over all L*K prompts (split only by `batch_size`, the memory budget)
is several times faster than a loop of single calls (see bench/sampling.py).

`label_distributions` serves `direct` mode: instead of sampling K answers it reads the exact
probability of each option label from the next-token logits after the localized answer label.
Each label is pooled over its with- and without-space single-token variants (" C" and "C");
labels that are not single tokens are scored as full sequences instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig, Progress
from calm_rag.generation.loading import base_names, check_adapter_base, load_causal_lm
from calm_rag.prompts import Message, tokenizer_control_tokens


class TransformersGenerator:
    """The `Generator` on in-process transformers: a causal LM and its tokenizer, for batched chat generation
    and label scoring. The reference engine, and the one training and CUDA use."""

    constrains_decoding = False
    """`GenerationConfig.grammar` is not applied: transformers has no GBNF decoding."""

    def __init__(self, model: Any, tokenizer: Any, name: str = "model", plain_prompts: bool = False) -> None:
        """`plain_prompts`: accept a model without a chat template (a base model) and prompt it with plain
        text. Off by default because an instruct model whose template went missing answers badly
        without it, and that should be a clear error rather than silently worse answers."""
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self.special_tokens = tokenizer_control_tokens(tokenizer)
        if not self.has_chat_template and not plain_prompts:
            raise CalmRagError(f"model {name} has no chat template; pass --plain-prompts to prompt it with plain text")
        self._label_tokens: dict[str, list[int]] = {}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @classmethod
    def load(cls, name_or_path: str, *, adapter: str | Path | None = None, device: str = "auto",
             dtype: str = "auto", plain_prompts: bool = False, merge_adapter: bool = True) -> TransformersGenerator:
        """Resolve `name_or_path` (short name, hub id or local folder), load it, attach a LoRA adapter.

        The adapter is folded into the weights unless `merge_adapter` is False: unmerged LoRA layers add
        two small matmuls to every linear layer, which made the 1.5B about 2.5x slower per prompt on a CPU.
        Keep it unmerged only to switch it off later (`disable_adapter()`, eval's base comparison)."""
        from calm_rag.models import ensure_transformers_weights, resolve_model

        resolved = resolve_model(name_or_path, role="generator")
        model, tokenizer = load_causal_lm(ensure_transformers_weights(resolved), device=device, dtype=dtype)
        if adapter is not None:
            from peft import PeftModel

            adapter_path = Path(adapter)
            check_adapter_base(adapter_path, base_names(resolved))
            model = PeftModel.from_pretrained(model, adapter_path)
            if merge_adapter:
                model = model.merge_and_unload()
        return cls(model, tokenizer, name=resolved.hub_id or resolved.name, plain_prompts=plain_prompts)

    def close(self) -> None:
        """Nothing to release: the model is freed with this object (the protocol's servers need a close)."""

    # ---- prompts ------------------------------------------------------------------------------

    def render(self, messages: Sequence[Message], prefill: str = "") -> str:
        """Messages -> the prompt string: the chat template when the model has one, plain text otherwise.
        `prefill` starts the assistant's reply (direct mode's answer label)."""
        if self.has_chat_template:
            text = self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        else:
            text = "\n\n".join(message["content"] for message in messages) + "\n\n"
        return text + prefill

    def _encode(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        # The chat template already wrote the special tokens; adding them again would double a BOS.
        special = not self.has_chat_template
        encoded = self.tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=special)
        return {key: value.to(self.device) for key, value in encoded.items()}

    def _chunks(self, prompts: Sequence[str], batch_size: int) -> list[list[int]]:
        """Indices of `prompts` grouped into batches of similar length (less padding)."""
        order = sorted(range(len(prompts)), key=lambda index: len(prompts[index]))
        return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]

    # ---- generation ---------------------------------------------------------------------------

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], config: GenerationConfig = GenerationConfig(),
                 progress: Progress | None = None) -> list[str]:
        """One completion per prompt, in input order. Repeat a prompt to get several samples of it."""
        outputs: list[str] = [""] * len(prompts)
        for chunk_number, indices in enumerate(self._chunks(prompts, config.batch_size)):
            torch.manual_seed(config.seed + chunk_number)
            inputs = self._encode([prompts[index] for index in indices])
            sampling: dict[str, Any] = (
                {"do_sample": True, "temperature": config.temperature, "top_p": config.top_p}
                if config.temperature > 0 else {"do_sample": False, "temperature": None, "top_p": None,
                                                "top_k": None})
            try:
                generated = self.model.generate(**inputs, max_new_tokens=config.max_new_tokens,
                                                pad_token_id=self.tokenizer.pad_token_id, **sampling)
            except torch.OutOfMemoryError:
                raise CalmRagError("out of memory while generating; lower --batch-size or --max-new-tokens"
                                   ) from None
            new_tokens = generated[:, inputs["input_ids"].shape[1]:]
            for index, text in zip(indices, self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
                outputs[index] = text.strip()
            if progress:
                progress(len(indices))
        return outputs

    # ---- direct mode --------------------------------------------------------------------------

    def _single_token_ids(self, label: str) -> list[int]:
        """Token ids that spell `label` alone, with and without a leading space."""
        if label not in self._label_tokens:
            ids = []
            for variant in (label, " " + label):
                encoded = self.tokenizer.encode(variant, add_special_tokens=False)
                if len(encoded) == 1 and encoded[0] not in ids:
                    ids.append(encoded[0])
            self._label_tokens[label] = ids
        return self._label_tokens[label]

    @torch.inference_mode()
    def label_distributions(self, prompts: Sequence[str], label_sets: Sequence[Sequence[str]],
                            batch_size: int = 32, progress: Progress | None = None) -> list[dict[str, float]]:
        """For each prompt (ending right after the answer label), the probability of each of its labels,
        renormalized over those labels so that it sums to 1."""
        results: list[dict[str, float]] = [{} for _ in prompts]
        for indices in self._chunks(prompts, batch_size):
            inputs = self._encode([prompts[index] for index in indices])
            # Only the last position's logits: the full (batch x length x vocab) tensor is GBs for Qwen.
            logits = self.model(**inputs, logits_to_keep=1).logits[:, -1, :].float()
            log_probs = torch.log_softmax(logits, dim=-1)
            for row, index in enumerate(indices):
                labels = label_sets[index]
                scores: dict[str, float] = {}
                for label in labels:
                    token_ids = self._single_token_ids(label)
                    if token_ids:
                        scores[label] = float(torch.logsumexp(log_probs[row, token_ids], dim=0))
                missing = [label for label in labels if label not in scores]
                if missing:
                    scores.update(self._sequence_scores(prompts[index], missing))
                values = torch.tensor([scores[label] for label in labels])
                results[index] = dict(zip(labels, torch.softmax(values, dim=0).tolist()))
            if progress:
                progress(len(indices))
        return results

    def _sequence_scores(self, prompt: str, labels: Sequence[str]) -> dict[str, float]:
        """Log-probability of each label spelled out after `prompt` (fallback for multi-token labels)."""
        prompt_ids = self.tokenizer.encode(prompt, add_special_tokens=not self.has_chat_template)
        scores = {}
        for label in labels:
            label_ids = self.tokenizer.encode(" " + label, add_special_tokens=False)
            ids = torch.tensor([prompt_ids + label_ids], device=self.device)
            log_probs = torch.log_softmax(self.model(input_ids=ids).logits[0, :-1].float(), dim=-1)
            positions = range(len(prompt_ids) - 1, len(prompt_ids) - 1 + len(label_ids))
            scores[label] = float(sum(log_probs[pos, tok] for pos, tok in zip(positions, label_ids)))
        return scores
