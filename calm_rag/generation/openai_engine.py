"""The `openai` engine: any OpenAI-compatible server (vLLM, SGLang, llama.cpp's server, Ollama) behind the
`Generator` protocol - the scale-out path, and the client the in-process llama.cpp engine uses too.

Prompts are rendered on calm-rag's side (see rendering.py) and sent to `/v1/completions`.
- Sampling: K samples of a prompt go as one request with `n=K` (split at the server's cap: llama.cpp
  allows `n` up to its slot count). Seeds advance by the samples already asked for, because llama.cpp
  seeds the i-th of n samples with seed + i: no two samples share a seed, and a rerun asks the same.
  Greedy (temperature 0) sends each distinct prompt once.
- Requests go concurrently through a thread pool: at most `concurrency` in flight (default: the call's
  `batch_size`), so a big eval neither floods the server nor waits on one request at a time.
- On llama.cpp, prompts that start alike (one RAG question's passages in every language) have that start
  evaluated once and copied into the other slots first (`prefix_sharing`), where the server allows it.
- Direct mode: `max_tokens=1`, `temperature=0` and the top-k logprobs of the next token; each label
  pools "X" and " X" (logsumexp) and the labels are renormalised, as in the transformers engine. A
  label outside the top-k is asked for again where the server allows it: llama.cpp with a wider k (it
  maps `logprobs` to its `n_probs` without a cap), vLLM and SGLang by naming the label's token ids
  (`explicit_logprobs`, ids from the client-side tokenizer). If it is still absent it gets a documented
  floor (see `label_distribution`) and the result says so (`LabelDistribution.missing`, `.floor_mass`).
  vLLM caps k at its `--max-logprobs` (default 20; raise it there and here with `top_logprobs`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig, Progress
from calm_rag.generation.explicit_logprobs import ExplicitLogprobs
from calm_rag.generation.prefix_sharing import PrefixSharer, prefix_groups
from calm_rag.generation.rendering import Renderer, ServerTemplateRenderer
from calm_rag.generation.server_client import ClientOptions, ServerClient, ServerInfo
from calm_rag.prompts import Message, tokenizer_control_tokens

T = TypeVar("T")
_DEFAULT_CONFIG = GenerationConfig()


@dataclass(frozen=True)
class OpenAIOptions:
    client: ClientOptions = field(default_factory=ClientOptions)
    concurrency: int | None = None
    """Requests in flight; None: the `batch_size` of each call."""
    max_n: int | None = None
    """Samples per request; None: llama.cpp's slot count there, no cap on other servers."""
    top_logprobs: int = 20
    """Next-token logprobs asked for in direct mode (vLLM's default cap is 20, OpenAI's legacy API 5)."""
    wide_logprobs: int = 1000
    """Second look, llama.cpp only, when a label is not among the first `top_logprobs`."""
    check_model: bool = True
    """Refuse a model name the server's /models listing does not contain, before any work is sent."""
    share_prefixes: bool = True
    """On llama.cpp, evaluate the common start of a call's prompts once and restore it into the other slots
    (`prefix_sharing`); False: every prompt evaluates its own start (greedy outputs are the same either way)."""

    def __post_init__(self) -> None:
        for name in ("concurrency", "max_n"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise CalmRagError(f"{name} must be at least 1")
        if self.top_logprobs < 1 or self.wide_logprobs < 1:
            raise CalmRagError("top_logprobs and wide_logprobs must be at least 1")


class LabelDistribution(dict[str, float]):
    """Probabilities of the option labels (summing to 1), plus what the server did not show:
    `missing` labels were outside the returned top logprobs and got the floor; `floor_mass` is the share
    of this distribution that rests on floors (0 when every label was seen)."""

    def __init__(self, probabilities: dict[str, float], missing: Sequence[str] = ()) -> None:
        super().__init__(probabilities)
        self.missing: tuple[str, ...] = tuple(missing)
        self.floor_mass: float = sum(probabilities[label] for label in self.missing)


def top_logprobs_of(choice: dict[str, Any]) -> dict[str, float]:
    """The next token's top logprobs as {token text: logprob}, from either shape real servers return:
    OpenAI's legacy `logprobs.top_logprobs[0]` dict (vLLM, SGLang) or llama.cpp's
    `logprobs.content[0].top_logprobs` list of {token, logprob, bytes}."""
    logprobs = choice.get("logprobs")
    found: dict[str, float] = {}
    if isinstance(logprobs, dict):
        content = logprobs.get("content")
        legacy = logprobs.get("top_logprobs")
        if isinstance(content, list) and content and isinstance(content[0], dict):
            for entry in content[0].get("top_logprobs") or []:
                token, value = entry.get("token"), entry.get("logprob")
                if isinstance(token, str) and isinstance(value, (int, float)):
                    found[token] = max(float(value), found.get(token, -math.inf))
        elif isinstance(legacy, list) and legacy and isinstance(legacy[0], dict):
            found = {str(token): float(value) for token, value in legacy[0].items() if value is not None}
    if not found:
        raise CalmRagError("the server returned no top logprobs; direct mode needs `logprobs` on /v1/completions")
    return found


def label_distribution(top: dict[str, float], labels: Sequence[str],
                       exact: Mapping[str, float] | None = None) -> LabelDistribution:
    """Pool "X" and " X" per label (logsumexp) and renormalise over `labels`. `exact`: logprobs of spellings
    outside the top-k that the server gave when asked for them by token id (`explicit_logprobs`).

    Floor rule for a label none of whose spellings is in `top` or `exact`: it gets the smallest logprob of
    the top-k, the most any token outside it can have. That is an upper bound, so a missing label is never
    ranked above a seen one, and its share of the result is reported as `floor_mass`."""
    floor = min(top.values())
    known = {**top, **(exact or {})}
    scores: dict[str, float] = {}
    missing: list[str] = []
    for label in labels:
        seen = [known[variant] for variant in dict.fromkeys((label, " " + label)) if variant in known]
        if seen:
            high = max(seen)
            scores[label] = high + math.log(sum(math.exp(value - high) for value in seen))
        else:
            scores[label] = floor
            missing.append(label)
    high = max(scores.values())
    weights = {label: math.exp(score - high) for label, score in scores.items()}
    total = sum(weights.values())
    return LabelDistribution({label: weight / total for label, weight in weights.items()}, missing)


class OpenAIGenerator:
    """The `Generator` on an OpenAI-compatible server at `base_url` (ending in /v1), serving `model`."""

    def __init__(self, base_url: str, model: str, *, renderer: Renderer | None = None, api_key: str | None = None,
                 options: OpenAIOptions = OpenAIOptions(), name: str | None = None,
                 special_tokens: frozenset[str] | None = None) -> None:
        """`renderer`: the chat template to render prompts with; None uses the server's own (llama.cpp's
        /apply-template), which other servers lack. `special_tokens`: the tokenizer's added/special tokens
        (default: those of the renderer's tokenizer, none without one). Checks the server before returning: unreachable or
        not serving `model` is a CalmRagError here, before any prompt is sent."""
        self.model = model
        self.name = name or model
        tokenizer = getattr(renderer, "tokenizer", None)
        self.special_tokens = special_tokens if special_tokens is not None else (
            tokenizer_control_tokens(tokenizer) if tokenizer is not None else frozenset())
        self.options = options
        self.client = ServerClient(base_url, api_key=api_key, model=model, options=options.client)
        try:
            self.info: ServerInfo = self.client.probe()
            if options.check_model and self.info.models is not None and model not in self.info.models:
                raise CalmRagError(f"the server at {self.client.base_url} does not serve model {model!r}; it serves "
                                   f"{', '.join(self.info.models) or 'nothing'}: pass one of those as --model")
            if renderer is None and not self.info.llamacpp:
                raise CalmRagError(f"cannot render prompts for {model!r}: the server has no chat-template endpoint; "
                                   "pass --tokenizer (a folder, short name or hub id with the model's tokenizer)")
        except BaseException:
            self.client.close()
            raise
        self._renderer: Renderer = renderer or ServerTemplateRenderer(self.client)
        self.max_n: int | None = options.max_n if options.max_n is not None else self.info.slots
        self._prefixes = PrefixSharer(self.client, model, self.info.slots) \
            if self.info.slots and options.share_prefixes else None
        self._explicit = ExplicitLogprobs.for_server(self.client, model, self.info, tokenizer)
        """Asks vLLM or SGLang for labels outside the top-k by token id; None on other servers."""

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def constrains_decoding(self) -> bool:
        """llama.cpp's server takes a GBNF `grammar`; other servers name constrained decoding differently."""
        return self.info.llamacpp

    def render(self, messages: Sequence[Message], prefill: str = "") -> str:
        return self._renderer(messages, prefill)

    # ---- generation ---------------------------------------------------------------------------

    def _requests(self, prompts: Sequence[str], config: GenerationConfig) -> list[tuple[list[int], dict[str, Any]]]:
        """(positions it answers, request body) for every request: identical prompts share requests."""
        groups: dict[str, list[int]] = {}
        for index, prompt in enumerate(prompts):
            groups.setdefault(prompt, []).append(index)
        requests: list[tuple[list[int], dict[str, Any]]] = []
        samples = 0  # seeds advance by n: llama.cpp seeds the i-th of n samples with seed + i
        for prompt, positions in groups.items():
            body: dict[str, Any] = {"model": self.model, "prompt": prompt, "max_tokens": config.max_new_tokens}
            if config.grammar and self.constrains_decoding:
                body["grammar"] = config.grammar
            if config.temperature == 0:  # greedy: one answer serves every copy of the prompt
                requests.append((positions, {**body, "temperature": 0.0, "n": 1}))
                continue
            step = self.max_n or len(positions)
            for start in range(0, len(positions), step):
                chunk = positions[start:start + step]
                requests.append((chunk, {**body, "temperature": config.temperature, "top_p": config.top_p,
                                         "n": len(chunk), "seed": config.seed + samples}))
                samples += len(chunk)
        return requests

    def _choices(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The choices of one /completions request, in index order."""
        choices = self.client.post("/completions", body).get("choices")
        if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
            raise CalmRagError(f"the server at {self.client.base_url} returned no choices")
        return sorted(choices, key=lambda choice: choice.get("index", 0))

    def _texts(self, body: dict[str, Any]) -> list[str]:
        return [str(choice.get("text") or "").strip() for choice in self._choices(body)]

    def generate(self, prompts: Sequence[str], config: GenerationConfig = _DEFAULT_CONFIG,
                 progress: Progress | None = None) -> list[str]:
        """One completion per prompt, in input order; repeat a prompt to get several samples of it."""
        requests = self._requests(prompts, config)
        outputs = [""] * len(prompts)

        def complete(request: tuple[list[int], dict[str, Any]]) -> int:
            positions, body = request
            texts = self._texts(body)
            while len(texts) < body["n"]:  # a server that ignores `n` (Ollama) answers once: ask for the rest singly
                texts += self._texts({**body, "n": 1, "seed": body["seed"] + len(texts)})
            for slot, position in enumerate(positions):
                outputs[position] = texts[0] if body["temperature"] == 0 else texts[slot]
            return len(positions)

        finished = 0
        for group in self._shared_groups(prompts):  # a request's positions are copies of one prompt: one group
            members = set(group)
            finished = self._run([request for request in requests if request[0][0] in members], complete,
                                 config.batch_size, len(prompts), progress, finished)
        return outputs

    # ---- direct mode --------------------------------------------------------------------------

    def _top_logprobs(self, prompt: str, k: int, label: str) -> dict[str, float]:
        body: dict[str, Any] = {"model": self.model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0,
                                "logprobs": k}
        if self.info.llamacpp:
            # llama.cpp returns no logprobs when the chosen token is an incomplete UTF-8 character (a byte of a
            # CJK character, say). Biasing the choice towards a label makes it pick a whole one; the logprobs it
            # reports are computed from the raw logits, before any bias, so the distribution is untouched.
            body["logit_bias"] = [[label, 100.0]]
        return top_logprobs_of(self._choices(body)[0])

    def label_distributions(self, prompts: Sequence[str], label_sets: Sequence[Sequence[str]],
                            batch_size: int = 32, progress: Progress | None = None) -> list[dict[str, float]]:
        """For each prompt (ending right after the answer label), the probability of each of its labels,
        renormalised over those labels; each is a `LabelDistribution` that records labels the server did
        not show."""
        if len(prompts) != len(label_sets):
            raise CalmRagError("label_distributions needs one label set per prompt")
        results: list[dict[str, float]] = [{} for _ in prompts]
        wider = self.info.llamacpp and self.options.wide_logprobs > self.options.top_logprobs

        def score(index: int) -> int:
            labels = label_sets[index]
            top = self._top_logprobs(prompts[index], self.options.top_logprobs, labels[0])
            found = label_distribution(top, labels)
            if found.missing and wider:
                found = label_distribution(self._top_logprobs(prompts[index], self.options.wide_logprobs, labels[0]),
                                           labels)
            elif found.missing and self._explicit is not None:
                found = label_distribution(top, labels, self._explicit(prompts[index], found.missing))
            results[index] = found
            return 1

        finished = 0
        for group in self._shared_groups(prompts):
            finished = self._run(group, score, batch_size, len(prompts), progress, finished)
        return results

    # ---- concurrency --------------------------------------------------------------------------

    def _shared_groups(self, prompts: Sequence[str]) -> Iterator[list[int]]:
        """The prompts' indices, group by group (`prefix_groups`), each group's shared start put into the slots
        just before it is yielded; all indices at once where prefixes are not shared."""
        if not self._prefixes:
            yield list(range(len(prompts)))
            return
        for group in prefix_groups(prompts):
            self._prefixes.share([prompts[index] for index in group])
            yield group

    def _run(self, items: Sequence[T], work: Callable[[T], int], batch_size: int, total: int,
             progress: Progress | None, finished: int = 0) -> int:
        """`work` (returning how many prompts it finished) on every item, at most `concurrency` in flight;
        returns how many prompts finished, counting the `finished` before. The first failure cancels what has
        not started and is raised, saying how far the run got."""
        if not items:
            return finished
        workers = max(1, min(self.options.concurrency or batch_size, len(items)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="calm-rag-request")
        try:
            pending: set[Future[int]] = {pool.submit(work, item) for item in items}
            while pending:
                landed, pending = wait(pending, return_when=FIRST_EXCEPTION)
                errors = [error for future in landed if (error := future.exception()) is not None]
                for future in landed:
                    if future.exception() is None:
                        finished += future.result()
                        if progress:
                            progress(future.result())
                if errors and isinstance(errors[0], CalmRagError):
                    raise CalmRagError(f"{errors[0]} ({finished} of {total} prompts had finished)") from None
                if errors:
                    raise errors[0]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return finished
