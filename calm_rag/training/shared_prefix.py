"""DPO that runs the prompt once per pair: TRL's `DPOTrainer` with a shared-prefix forward.

TRL scores a pair as two full sequences, prompt+chosen and prompt+rejected, so the prompt (and any start the two
answers share) goes through the model twice with gradients, and twice more for the reference. In CALM's direct
mode a pair is one ~130-token prompt and two answers that differ in one letter ("Answer: B" vs "Answer: C"), so
almost all of that work is repeated. Here each pair's shared prefix runs once, its key/value cache is reused by both
continuations, and only the few tokens after the point where chosen and rejected part are run per answer.

Everything else stays TRL's: `SharedPrefixDPOTrainer` only hands TRL's own `_compute_loss` and
`compute_ref_log_probs` a model whose fused-head call (`model(..., labels=..., fused_lm_head=True)`) returns the
same per-token quantities computed this way. TRL's losses, reference handling, metrics, logging and checkpoints
are untouched, and tests/training/test_shared_prefix.py checks that loss and LoRA gradients equal the plain
`DPOTrainer`'s on the same batches.

It needs the key/value cache, so it is not used with activation checkpointing (see `dpo.py`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from trl import DPOTrainer
from trl.trainer.utils import FusedCausalLMOutput


@dataclass(frozen=True)
class PairLayout:
    """Where the two rows of one pair (chosen row `pair`, rejected row `pair + pairs`) agree and end."""

    shared: int
    """Tokens both rows start with: they run once, in the prefix pass."""
    lengths: tuple[int, int]
    """Real (unpadded) lengths of the chosen and rejected rows."""


def pair_layouts(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[PairLayout]:
    """The shared prefix of each pair in a TRL preference batch (rows: all chosen, then all rejected; padded right)."""
    pairs = input_ids.size(0) // 2
    lengths = attention_mask.sum(dim=1).tolist()
    layouts = []
    for pair in range(pairs):
        chosen_length, rejected_length = int(lengths[pair]), int(lengths[pair + pairs])
        common = min(chosen_length, rejected_length)
        differs = (input_ids[pair, :common] != input_ids[pair + pairs, :common]).nonzero()
        shared = int(differs[0]) if differs.numel() else common
        layouts.append(PairLayout(shared, (chosen_length, rejected_length)))
    return layouts


def _token_outputs(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """What TRL's fused LM head reports for each scored position, from float32 logits."""
    log_softmax = logits.log_softmax(dim=-1)
    probabilities = log_softmax.exp()
    return {
        "log_probs": log_softmax.gather(-1, labels.unsqueeze(-1)).squeeze(-1),
        "entropy": (-(probabilities * log_softmax).sum(dim=-1)).detach(),
        "log_sum_sq_probs": torch.logsumexp(2 * log_softmax, dim=-1).detach(),
        "mean_logits": logits.mean(dim=-1).detach(),
        "is_top1": logits.argmax(dim=-1) == labels,
    }


class SharedPrefixModel:
    """Stands in for the model in TRL's loss code: its fused-head call runs each pair's shared prefix once.

    Any other call (generation, a plain forward) goes to the wrapped model unchanged.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.backbone = getattr(causal_lm, causal_lm.base_model_prefix)
        self.head = causal_lm.get_output_embeddings()
        # transformers 5.x renamed the forward's `past_key_values` to `cache` (the old name warns, then goes away).
        self.cache_argument = "cache" if "cache" in inspect.signature(self.backbone.forward).parameters \
            else "past_key_values"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def __call__(self, *args: Any, fused_lm_head: bool = False, labels: torch.Tensor | None = None,
                 **kwargs: Any) -> Any:
        plain = (not fused_lm_head or labels is None or args
                 or set(kwargs) - {"input_ids", "attention_mask", "use_cache"}
                 or any(layout.shared == 0 for layout in pair_layouts(kwargs["input_ids"], kwargs["attention_mask"])))
        if plain:
            return self.model(*args, fused_lm_head=fused_lm_head, labels=labels, **kwargs)
        return self.scores(kwargs["input_ids"], kwargs["attention_mask"], labels)

    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
               ) -> FusedCausalLMOutput:
        """Per-token outputs shaped like the fused head's: [rows, length - 1], zero where the next label is -100."""
        pairs = input_ids.size(0) // 2
        layouts = pair_layouts(input_ids, attention_mask)
        # Position t predicts token t + 1; the prefix pass covers t < shared (the parting token's prediction comes
        # from the last shared position), the suffix pass the positions from `shared` on, per row.
        cache, prefix_hidden, prefix_mask = self._prefix_pass(input_ids, layouts)
        targets = labels[:, 1:]
        rows, columns, pieces = [], [], []
        for pair, layout in enumerate(layouts):
            for row in (pair, pair + pairs):
                positions = (targets[row, :layout.shared] != -100).nonzero().squeeze(-1)
                if positions.numel():
                    rows.append(torch.full_like(positions, row))
                    columns.append(positions)
                    pieces.append((prefix_hidden[pair, positions], targets[row, positions]))
        suffix_hidden, suffix_starts = self._suffix_pass(input_ids, layouts, cache, prefix_mask)
        if suffix_hidden is not None:
            for row, start in enumerate(suffix_starts):
                length = int(attention_mask[row].sum())
                positions = (targets[row, start:length - 1] != -100).nonzero().squeeze(-1)
                if positions.numel():
                    rows.append(torch.full_like(positions, row))
                    columns.append(positions + start)
                    pieces.append((suffix_hidden[row, positions], targets[row, positions + start]))
        shape = targets.shape
        mask = targets != -100
        if not pieces:
            zero = prefix_hidden.sum() * 0
            empty = zero.expand(shape).clone()
            return FusedCausalLMOutput(loss=zero, log_probs=empty, entropy=empty.detach(), log_sum_sq_probs=empty.detach(),
                                       mean_logits=empty.detach(), is_top1=torch.zeros(shape, dtype=torch.bool),
                                       label_mask=mask)
        hidden = torch.cat([piece[0] for piece in pieces])
        wanted = torch.cat([piece[1] for piece in pieces])
        index = (torch.cat(rows), torch.cat(columns))
        bias = self.head.bias.float() if self.head.bias is not None else None
        logits = torch.nn.functional.linear(hidden.float(), self.head.weight.float(), bias)
        scattered = {name: torch.zeros(shape, dtype=value.dtype, device=value.device).index_put(index, value)
                     for name, value in _token_outputs(logits, wanted).items()}
        loss = -scattered["log_probs"].sum() / mask.sum().clamp(min=1)
        return FusedCausalLMOutput(loss=loss, label_mask=mask, **scattered)

    def _prefix_pass(self, input_ids: torch.Tensor, layouts: list[PairLayout]
                     ) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """One row per pair: its shared tokens (padded right), with the key/value cache kept."""
        width = max(layout.shared for layout in layouts)
        tokens = torch.zeros((len(layouts), width), dtype=input_ids.dtype, device=input_ids.device)
        mask = torch.zeros_like(tokens)
        for pair, layout in enumerate(layouts):
            tokens[pair, :layout.shared] = input_ids[pair, :layout.shared]
            mask[pair, :layout.shared] = 1
        outputs = self.backbone(input_ids=tokens, attention_mask=mask, use_cache=True)
        return outputs[self.cache_argument], outputs.last_hidden_state, mask

    def _suffix_pass(self, input_ids: torch.Tensor, layouts: list[PairLayout], cache: Any,
                     prefix_mask: torch.Tensor) -> tuple[torch.Tensor | None, list[int]]:
        """Every row's tokens after its pair's shared prefix (but its last), on a copy of the pair's cache."""
        pairs = len(layouts)
        starts = [layout.shared for layout in layouts] * 2
        lengths = [layout.lengths[0] for layout in layouts] + [layout.lengths[1] for layout in layouts]
        width = max(length - 1 - start for start, length in zip(starts, lengths))
        if width <= 0:
            return None, starts
        rows = input_ids.size(0)
        tokens = torch.zeros((rows, width), dtype=input_ids.dtype, device=input_ids.device)
        mask = torch.zeros_like(tokens)
        positions = torch.zeros_like(tokens)
        for row, (start, length) in enumerate(zip(starts, lengths)):
            count = max(length - 1 - start, 0)
            tokens[row, :count] = input_ids[row, start:start + count]
            mask[row, :count] = 1
            positions[row] = torch.arange(start, start + width)
        cache.batch_select_indices(torch.arange(pairs, device=input_ids.device).repeat(2))
        outputs = self.backbone(input_ids=tokens, attention_mask=torch.cat([prefix_mask.repeat(2, 1), mask], dim=1),
                                position_ids=positions, use_cache=True, **{self.cache_argument: cache})
        return outputs.last_hidden_state, starts


class SharedPrefixDPOTrainer(DPOTrainer):  # type: ignore[misc]
    """TRL's DPOTrainer whose policy and reference scores come from `SharedPrefixModel` (same numbers, less work)."""

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        return super()._compute_loss(SharedPrefixModel(model), inputs, return_outputs)

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> Any:
        return super().compute_ref_log_probs(SharedPrefixModel(model), inputs)
