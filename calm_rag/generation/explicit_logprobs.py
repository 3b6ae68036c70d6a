"""Logprobs of named tokens, for the option letters a vLLM or SGLang server left out of its top-k.

Why: direct mode reads the next token's top-k logprobs, and a letter outside them can only get a floor
(`openai_engine.label_distribution`): a bound, not a measurement. vLLM and SGLang can return the logprob of
token ids the client names, so for a prompt with missing letters calm-rag makes one more request naming the
ids of those letters' spellings ("X" and " X", each where it is one token of the tokenizer calm-rag renders
prompts with - the same spellings the transformers engine pools):
- vLLM, from PR #43463 (merged 2026-07-13): `/v1/completions` with `logprob_token_ids` (a list of ids; `logprobs`
  must be set too). `logprobs.top_logprobs[0]` then holds the sampled token plus exactly those ids, in place
  of the natural top-k; `return_tokens_as_token_ids` keys them "token_id:<id>" (vllm/entrypoints/openai/
  completion/protocol.py and serving.py, `_create_completion_logprobs`).
- SGLang: its `/v1/completions` has no such field, so the native `/generate` at the server root is used:
  `token_ids_logprob` with `return_logprob`, answered in `meta_info.output_token_ids_logprobs[0]` as
  [logprob, token_id, text] rows (python/sglang/srt/managers/io_struct.py `GenerateReqInput`,
  tokenizer_manager.py `detokenize_top_logprobs_tokens`). /generate takes no model name, so it runs the base
  model; a model named "base:adapter" (SGLang's adapter syntax) is not asked this way and keeps the floor.
Both come from the same prompt at temperature 0 as the top-k, as full-vocabulary logprobs, so they pool with
the top-k values directly. A server that ignores the field (an older vLLM or SGLang) answers without those
ids; the letter then keeps its floor and stays in `LabelDistribution.missing` - nothing is made up.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from calm_rag.generation.server_client import ServerClient, ServerInfo

_ID_PREFIX = "token_id:"


def spelling_ids(tokenizer: Any, label: str) -> dict[int, str]:
    """{token id: spelling} for the spellings of `label` ("X", " X") that are a single token."""
    found: dict[int, str] = {}
    for spelling in (label, " " + label):
        ids = tokenizer.encode(spelling, add_special_tokens=False)
        if len(ids) == 1 and int(ids[0]) not in found:
            found[int(ids[0])] = spelling
    return found


def vllm_token_logprobs(answer: dict[str, Any]) -> dict[int, float]:
    """{token id: logprob} from a vLLM /v1/completions answer asked with `return_tokens_as_token_ids`:
    the first position's `top_logprobs` dict, keyed "token_id:<id>". Empty when there is none."""
    try:
        top = answer["choices"][0]["logprobs"]["top_logprobs"][0]
    except (KeyError, IndexError, TypeError):
        return {}
    found: dict[int, float] = {}
    for key, value in (top.items() if isinstance(top, dict) else ()):
        number = key.removeprefix(_ID_PREFIX) if isinstance(key, str) and key.startswith(_ID_PREFIX) else ""
        if number.isdigit() and isinstance(value, (int, float)):
            found[int(number)] = float(value)
    return found


def sglang_token_logprobs(answer: dict[str, Any]) -> dict[int, float]:
    """{token id: logprob} from an SGLang /generate answer: `meta_info.output_token_ids_logprobs[0]`, a list of
    [logprob, token_id, text] rows. Empty when there is none."""
    try:
        rows = answer["meta_info"]["output_token_ids_logprobs"][0]
    except (KeyError, IndexError, TypeError):
        return {}
    found: dict[int, float] = {}
    for row in rows if isinstance(rows, list) else ():
        if isinstance(row, list) and len(row) >= 2 and isinstance(row[0], (int, float)) and isinstance(row[1], int):
            found[row[1]] = float(row[0])
    return found


class ExplicitLogprobs:
    """Asks one vLLM or SGLang server for the logprobs of the spellings of given labels after a prompt."""

    def __init__(self, client: ServerClient, model: str, kind: str, tokenizer: Any) -> None:
        self.client = client
        self.model = model
        self.kind = kind
        self.tokenizer = tokenizer
        self._spellings: dict[str, dict[int, str]] = {}
        self._lock = threading.Lock()  # prompts are scored from a thread pool; encode once per label

    @classmethod
    def for_server(cls, client: ServerClient, model: str, info: ServerInfo, tokenizer: Any) -> ExplicitLogprobs | None:
        """The asker for this server, or None where it cannot ask: another kind of server, no client-side
        tokenizer to give the ids, or an SGLang adapter (its /generate would answer for the base model)."""
        if tokenizer is None or info.kind not in ("vllm", "sglang"):
            return None
        if info.kind == "sglang" and ":" in model:
            return None
        return cls(client, model, info.kind, tokenizer)

    def spellings(self, labels: Sequence[str]) -> dict[int, str]:
        """{token id: spelling} over the single-token spellings of `labels`."""
        with self._lock:
            for label in labels:
                if label not in self._spellings:
                    self._spellings[label] = spelling_ids(self.tokenizer, label)
            return {token: spelling for label in labels for token, spelling in self._spellings[label].items()}

    def __call__(self, prompt: str, labels: Sequence[str]) -> dict[str, float]:
        """{spelling: logprob} of the next token after `prompt`, for the spellings of `labels` the server
        returned; empty when it returned none (or no spelling is one token)."""
        spellings = self.spellings(labels)
        if not spellings:
            return {}
        ids = list(spellings)
        if self.kind == "vllm":
            found = vllm_token_logprobs(self.client.post("/completions", {
                "model": self.model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0, "logprobs": 1,
                "logprob_token_ids": ids, "return_tokens_as_token_ids": True}))
        else:
            found = sglang_token_logprobs(self.client.post("/generate", {
                "text": prompt, "sampling_params": {"max_new_tokens": 1, "temperature": 0.0},
                "return_logprob": True, "token_ids_logprob": ids}, root=True))
        return {spellings[token]: value for token, value in found.items() if token in spellings}
