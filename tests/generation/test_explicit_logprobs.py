"""Labels outside the top-k, asked for by token id on vLLM and SGLang (`explicit_logprobs`).

Neither server can run here, so a stub on 127.0.0.1 answers the way their source says they do:
- vLLM, vllm-project/vllm at 002032ee2b18e1f7bd924ec47b62504ba3866063
  (vllm/entrypoints/openai/completion/protocol.py: `logprob_token_ids: list[int]`, needs `logprobs`, replaces
  the natural top-k) and 030ea52effcb05071543c8c42b8f0145e94cee43 (completion/serving.py
  `_create_completion_logprobs`: `top_logprobs[0]` holds the sampled token plus the named ids, keyed
  "token_id:<id>" under `return_tokens_as_token_ids`); the listing's `owned_by: "vllm"` is vLLM's ModelCard default.
- SGLang, sgl-project/sglang at 004c82e07d876f6e4a0ad6e15325706b0f478f1a
  (entrypoints/openai/protocol.py: `CompletionRequest` has no `token_ids_logprob`, `ModelCard.owned_by` is
  "sglang"; entrypoints/openai/serving_completions.py: legacy `top_logprobs` dicts keyed by token text) and the
  native /generate (managers/io_struct.py `GenerateReqInput.token_ids_logprob`; tokenizer_manager.py puts
  `output_token_ids_logprobs` in `meta_info` as one list of (logprob, token_id, text-or-None) per output token).
An older server of either kind ignores the unknown field and answers without those logprobs.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from calm_rag.generation.explicit_logprobs import sglang_token_logprobs, spelling_ids, vllm_token_logprobs
from calm_rag.generation.openai_engine import OpenAIGenerator, OpenAIOptions, label_distribution
from calm_rag.generation.rendering import ChatTemplateRenderer
from calm_rag.generation.server_client import ClientOptions
from calm_rag.testing.tiny_lm import build_tiny_tokenizer

FAST = ClientOptions(timeout_s=5, connect_timeout_s=1, retries=1, backoff_s=0.01)
LABELS = ["A", "B", "C", "D"]
# The next token's logprobs after any prompt, as (id, text, logprob) of the tiny tokenizer: "A" 35, "B" 36,
# " B" 529, "C" 37, " C" 719, "D" 38, " D" 604 (" A" is two tokens there, so "A" is its only spelling).
VOCAB = [(35, "A", -0.3), (300, "x", -1.2), (529, " B", -2.0), (36, "B", -2.6), (301, "y", -3.0),
         (37, "C", -6.0), (719, " C", -7.0), (38, "D", -8.0), (604, " D", -9.5)]
TOP_K = 4  # A, x, " B", B: C and D fall outside


def reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def vllm_completion(body: dict[str, Any], honours: bool) -> dict[str, Any]:
    """vLLM's /v1/completions answer for max_tokens=1 at temperature 0."""
    named = body.get("logprob_token_ids") if honours else None
    rows = [row for row in VOCAB if row[0] in named] if named else VOCAB[:body["logprobs"]]
    rows = [VOCAB[0]] + [row for row in rows if row is not VOCAB[0]]  # the sampled token comes first
    key = (lambda row: f"token_id:{row[0]}") if body.get("return_tokens_as_token_ids") else (lambda row: row[1])
    return {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "text": "A", "finish_reason": "length", "stop_reason": None,
                         "logprobs": {"text_offset": [0], "token_logprobs": [VOCAB[0][2]], "tokens": [key(VOCAB[0])],
                                      "top_logprobs": [{key(row): row[2] for row in rows}]}}],
            "usage": {"prompt_tokens": 9, "total_tokens": 10, "completion_tokens": 1}}


def sglang_completion(body: dict[str, Any]) -> dict[str, Any]:
    """SGLang's /v1/completions answer: the natural top-k keyed by text (no explicit ids on this endpoint)."""
    return {"id": "1", "object": "text_completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "text": "A", "finish_reason": "length", "matched_stop": None,
                         "logprobs": {"text_offset": [0], "token_logprobs": [VOCAB[0][2]], "tokens": ["A"],
                                      "top_logprobs": [{row[1]: row[2] for row in VOCAB[:body["logprobs"]]}]}}],
            "usage": {"prompt_tokens": 9, "total_tokens": 10, "completion_tokens": 1}}


def sglang_generate(body: dict[str, Any], honours: bool) -> dict[str, Any]:
    """SGLang's native /generate answer with return_logprob (text in the rows only with return_text_in_logprobs)."""
    meta: dict[str, Any] = {"id": "1", "finish_reason": {"type": "length", "length": 1}, "prompt_tokens": 9,
                            "completion_tokens": 1, "cached_tokens": 0,
                            "output_token_logprobs": [[VOCAB[0][2], VOCAB[0][0], None]]}
    if honours and body.get("token_ids_logprob") is not None:
        meta["output_token_ids_logprobs"] = [[[row[2], row[0], None] for row in VOCAB
                                               if row[0] in body["token_ids_logprob"]]]
    return {"text": "A", "output_ids": [VOCAB[0][0]], "meta_info": meta}


class Server:
    """A vLLM- or SGLang-shaped stub: /v1/models with its `owned_by`, no /props, its completion endpoints."""

    def __init__(self, owned_by: str, honours: bool, served: str = "served") -> None:
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    reply(self, 200, {"object": "list", "data": [
                        {"id": served, "object": "model", "created": 0, "owned_by": owned_by, "root": served}]})
                else:
                    reply(self, 404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.bodies.append((self.path, body))
                if self.path == "/v1/completions" and owned_by == "sglang":
                    reply(self, 200, sglang_completion(body))
                elif self.path == "/v1/completions":
                    reply(self, 200, vllm_completion(body, honours))
                elif self.path == "/generate" and owned_by == "sglang":
                    reply(self, 200, sglang_generate(body, honours))
                else:
                    reply(self, 404, {"detail": "Not Found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def renderer() -> ChatTemplateRenderer:
    return ChatTemplateRenderer(build_tiny_tokenizer())


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def score(servers: list[Server], renderer: ChatTemplateRenderer, owned_by: str, honours: bool,
          labels: list[str] = LABELS, model: str = "served") -> tuple[dict[str, float], Server, str]:
    servers.append(Server(owned_by, honours, served=model))
    prompt = renderer([{"role": "user", "content": "Question? A. a B. b C. c D. d"}], prefill="Answer:")
    with OpenAIGenerator(servers[-1].url, model, renderer=renderer,
                         options=OpenAIOptions(client=FAST, top_logprobs=TOP_K)) as generator:
        return generator.label_distributions([prompt], [labels])[0], servers[-1], prompt


def truth() -> dict[str, float]:
    """The distribution the whole vocabulary gives: what a large enough top-k would have shown."""
    return label_distribution({text: value for _, text, value in VOCAB}, LABELS)


EXPLICIT_IDS = [37, 719, 38, 604]  # "C", " C", "D", " D"


def test_vllm_fills_missing_labels_with_the_logprobs_of_their_token_ids(servers: list[Server],
                                                                         renderer: ChatTemplateRenderer) -> None:
    found, server, prompt = score(servers, renderer, "vllm", honours=True)
    assert [path for path, _ in server.bodies] == ["/v1/completions", "/v1/completions"]
    explicit = server.bodies[1][1]
    assert explicit["logprob_token_ids"] == EXPLICIT_IDS and explicit["prompt"] == prompt
    assert explicit["logprobs"] >= 0 and explicit["return_tokens_as_token_ids"] is True
    assert explicit["max_tokens"] == 1 and explicit["temperature"] == 0
    assert found.missing == () and found.floor_mass == 0
    assert found == pytest.approx(truth(), abs=1e-12)
    c = math.log(math.exp(-6.0) + math.exp(-7.0))  # both spellings of C pooled, not the floor (-2.6)
    assert found["C"] / found["A"] == pytest.approx(math.exp(c - (-0.3)))


def test_sglang_asks_its_native_generate_for_the_token_ids(servers: list[Server],
                                                          renderer: ChatTemplateRenderer) -> None:
    found, server, prompt = score(servers, renderer, "sglang", honours=True)
    assert [path for path, _ in server.bodies] == ["/v1/completions", "/generate"]
    explicit = server.bodies[1][1]
    assert explicit["token_ids_logprob"] == EXPLICIT_IDS and explicit["text"] == prompt
    assert explicit["return_logprob"] is True
    assert explicit["sampling_params"] == {"max_new_tokens": 1, "temperature": 0.0}
    assert found.missing == () and found.floor_mass == 0
    assert found == pytest.approx(truth(), abs=1e-12)


@pytest.mark.parametrize("owned_by", ["vllm", "sglang"])
def test_an_older_server_that_ignores_the_field_keeps_the_floor(servers: list[Server], renderer: ChatTemplateRenderer,
                                                                owned_by: str) -> None:
    found, server, _ = score(servers, renderer, owned_by, honours=False)
    assert len(server.bodies) == 2  # it was asked, and answered without the named ids
    assert found.missing == ("C", "D") and found.floor_mass > 0
    floored = label_distribution({text: value for _, text, value in VOCAB[:TOP_K]}, LABELS)
    assert found == pytest.approx(floored, abs=1e-12)
    assert found["C"] == found["D"] < found["B"]  # both at the top-k's smallest logprob, -2.6


def test_no_second_request_when_every_label_is_in_the_top_k(servers: list[Server],
                                                            renderer: ChatTemplateRenderer) -> None:
    found, server, _ = score(servers, renderer, "vllm", honours=True, labels=["A", "B"])
    assert len(server.bodies) == 1 and found.missing == ()


@pytest.mark.parametrize(("owned_by", "model"), [("openai", "served"), ("sglang", "served:calm")])
def test_servers_that_cannot_be_asked_are_not(servers: list[Server], renderer: ChatTemplateRenderer,
                                              owned_by: str, model: str) -> None:
    """Any other server (owned_by not vllm/sglang) and an SGLang adapter (its /generate has no model name and
    would answer for the base model) keep today's floor without another request."""
    found, server, _ = score(servers, renderer, owned_by, honours=True, model=model)
    assert [path for path, _ in server.bodies] == ["/v1/completions"]
    assert found.missing == ("C", "D")


def test_spellings_are_the_single_token_ones(renderer: ChatTemplateRenderer) -> None:
    assert spelling_ids(renderer.tokenizer, "A") == {35: "A"}  # " A" is two tokens in the tiny tokenizer
    assert spelling_ids(renderer.tokenizer, "C") == {37: "C", 719: " C"}


def test_parsers_take_only_token_id_entries() -> None:
    assert vllm_token_logprobs({"choices": [{"logprobs": {"top_logprobs": [
        {"token_id:37": -6.0, "C": -1.0, "token_id:x": -2.0}]}}]}) == {37: -6.0}
    assert vllm_token_logprobs({"choices": [{"logprobs": None}]}) == {}
    assert sglang_token_logprobs({"meta_info": {"output_token_ids_logprobs": [[[-6.0, 37, "C"], [-7.0, 719, None]]]}}) \
        == {37: -6.0, 719: -7.0}
    assert sglang_token_logprobs({"meta_info": {"output_token_ids_logprobs": [None]}}) == {}
    assert sglang_token_logprobs({"meta_info": {}}) == {}
