"""The openai engine: happy paths against a real llama.cpp server (xllamacpp on the tiny GGUF), error paths
against a stub HTTP server on 127.0.0.1 that misbehaves on purpose."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.llamacpp_engine import LlamaCppServer
from calm_rag.generation.openai_engine import (
    LabelDistribution,
    OpenAIGenerator,
    OpenAIOptions,
    label_distribution,
    top_logprobs_of,
)
from calm_rag.generation.rendering import ChatTemplateRenderer, load_chat_renderer
from calm_rag.generation.server_client import ClientOptions
from tests.generation.conftest import SERVED_NAME, SLOTS

FAST = ClientOptions(timeout_s=5, connect_timeout_s=1, retries=2, backoff_s=0.01)
MESSAGES = [{"role": "user", "content": "Frage: Wo findet man eine Anemone? A. Beet B. Meer C. Teich"}]


def plain(messages: Any, prefill: str = "") -> str:
    return "\n".join(message["content"] for message in messages) + prefill


@pytest.fixture(scope="module")
def renderer(tiny_pair: tuple[Path, Path]) -> ChatTemplateRenderer:
    return load_chat_renderer(str(tiny_pair[0]))


@pytest.fixture
def client(llamacpp_server: LlamaCppServer, renderer: ChatTemplateRenderer) -> Iterator[OpenAIGenerator]:
    with OpenAIGenerator(llamacpp_server.url + "/v1", SERVED_NAME, renderer=renderer,
                         options=OpenAIOptions(client=FAST)) as generator:
        yield generator


# ---- against the real llama.cpp server ------------------------------------------------------------


def test_probe_finds_llamacpp_slots_and_served_name(client: OpenAIGenerator) -> None:
    assert client.info.models is not None and SERVED_NAME in client.info.models
    assert client.info.slots == SLOTS and client.max_n == SLOTS


def test_sampling_gives_distinct_samples_in_order_with_progress(client: OpenAIGenerator) -> None:
    prompts = [client.render(MESSAGES, prefill=p) for p in ("Antwort:", "Answer:")]
    done: list[int] = []
    outputs = client.generate([prompts[0]] * 3 + [prompts[1]] * 3,
                              GenerationConfig(max_new_tokens=8, temperature=0.9), progress=done.append)
    assert len(outputs) == 6 and all(outputs)
    assert len(set(outputs[:3])) == 3 and len(set(outputs[3:])) == 3  # random weights: samples differ
    assert sum(done) == 6


def test_more_samples_than_slots_are_split_into_requests(client: OpenAIGenerator) -> None:
    prompt = client.render(MESSAGES)
    outputs = client.generate([prompt] * (2 * SLOTS + 2), GenerationConfig(max_new_tokens=6, temperature=1.0))
    assert len(outputs) == 2 * SLOTS + 2
    assert len(set(outputs)) >= 2 * SLOTS  # seeds advance by n: no two requests repeat each other's samples


def test_greedy_matches_transformers_on_the_same_weights(client: OpenAIGenerator, tiny_transformers: Any) -> None:
    prompts = [client.render(MESSAGES), client.render([{"role": "user", "content": "日本語で答えて"}])]
    config = GenerationConfig(max_new_tokens=6, temperature=0)
    ours = client.generate(prompts + prompts, config)
    assert ours[:2] == ours[2:]
    assert ours[:2] == tiny_transformers.generate(prompts, config)


def test_direct_mode_sums_to_one_and_sees_every_label(client: OpenAIGenerator) -> None:
    prompt = client.render(MESSAGES, prefill="Antwort:")
    done: list[int] = []
    found = client.label_distributions([prompt, prompt], [["A", "B", "C"], ["A", "B", "C", "D", "E"]],
                                       progress=done.append)
    for distribution, labels in zip(found, ("ABC", "ABCDE")):
        assert isinstance(distribution, LabelDistribution)
        assert list(distribution) == list(labels)
        assert math.isclose(sum(distribution.values()), 1.0, abs_tol=1e-9)
        assert distribution.missing == () and distribution.floor_mass == 0
    assert sum(done) == 2


def test_direct_mode_works_where_the_next_token_is_half_a_character(
        tmp_path: Path, tiny_pair: tuple[Path, Path], renderer: ChatTemplateRenderer) -> None:
    """llama.cpp reports no logprobs when the token it picks is an incomplete UTF-8 character. The tiny model
    with its output row for the lone byte 0xF4 (a 4-byte lead) turned so that byte wins after this prompt:
    the distribution must still come back, the same as transformers computes it."""
    import torch
    from transformers import AutoModelForCausalLM

    from calm_rag.generation.llamacpp_engine import LlamaCppGenerator, LlamaCppOptions
    from calm_rag.generation.transformers_engine import TransformersGenerator
    from calm_rag.testing.tiny_gguf import convert_qwen2_to_gguf

    prompt = renderer(MESSAGES, prefill="Antwort:")
    model = AutoModelForCausalLM.from_pretrained(tiny_pair[0])
    half = renderer.tokenizer.convert_tokens_to_ids("ô")  # byte-level BPE's symbol for the byte 0xF4
    with torch.no_grad():
        logits = model(**renderer.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)).logits[0, -1]
        best = int(logits.argmax())
        head = model.model.embed_tokens.weight.detach().clone()
        head[half] = (3.0 if logits[best] > 0 else -3.0) * head[best]
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(head)
    model.save_pretrained(tmp_path / "hf")
    renderer.tokenizer.save_pretrained(tmp_path / "hf")
    reference = TransformersGenerator.load(str(tmp_path / "hf"), device="cpu")
    gguf = convert_qwen2_to_gguf(tmp_path / "hf", tmp_path / "half.gguf")
    with LlamaCppGenerator(gguf, renderer=renderer, options=LlamaCppOptions(slots=1, threads=1)) as generator:
        assert generator.generate([prompt], GenerationConfig(max_new_tokens=1, temperature=0)) == ["\ufffd"]
        found = generator.label_distributions([prompt], [["A", "B", "C"]])[0]
    assert found == pytest.approx(reference.label_distributions([prompt], [["A", "B", "C"]])[0], abs=1e-4)


def test_labels_outside_the_top_k_are_asked_for_again_on_llamacpp(
        llamacpp_server: LlamaCppServer, renderer: ChatTemplateRenderer, client: OpenAIGenerator) -> None:
    prompt = client.render(MESSAGES, prefill="Antwort:")
    labels = [["A", "B", "C", "D", "E"]]
    reference = client.label_distributions([prompt], labels)[0]
    url = llamacpp_server.url + "/v1"
    with OpenAIGenerator(url, SERVED_NAME, renderer=renderer,
                         options=OpenAIOptions(client=FAST, top_logprobs=2)) as narrow:
        second_look = narrow.label_distributions([prompt], labels)[0]
    assert second_look.missing == ()
    assert all(math.isclose(second_look[label], reference[label], abs_tol=1e-6) for label in reference)
    with OpenAIGenerator(url, SERVED_NAME, renderer=renderer,
                         options=OpenAIOptions(client=FAST, top_logprobs=2, wide_logprobs=2)) as no_second_look:
        floored = no_second_look.label_distributions([prompt], labels)[0]
    assert len(floored.missing) >= 3 and floored.floor_mass > 0.5
    assert math.isclose(sum(floored.values()), 1.0, abs_tol=1e-9)


def test_without_a_tokenizer_the_ggufs_template_renders_the_same_prompt(
        llamacpp_server: LlamaCppServer, renderer: ChatTemplateRenderer) -> None:
    with OpenAIGenerator(llamacpp_server.url + "/v1", SERVED_NAME, options=OpenAIOptions(client=FAST)) as served:
        assert served.render(MESSAGES, prefill="Antwort:") == renderer(MESSAGES, prefill="Antwort:")


def test_a_model_the_server_does_not_serve_is_refused_up_front(llamacpp_server: LlamaCppServer) -> None:
    with pytest.raises(CalmRagError, match=f"does not serve model 'qwen-9000'.*{SERVED_NAME}"):
        OpenAIGenerator(llamacpp_server.url + "/v1", "qwen-9000", renderer=plain, options=OpenAIOptions(client=FAST))


def test_the_official_openai_client_reaches_the_same_url(llamacpp_server: LlamaCppServer) -> None:
    import openai

    answer = openai.OpenAI(base_url=llamacpp_server.url + "/v1", api_key="unused").completions.create(
        model=SERVED_NAME, prompt="Hallo", max_tokens=2, temperature=0)
    assert answer.choices and answer.model == SERVED_NAME


# ---- logprob shapes (pure) ------------------------------------------------------------------------


def test_both_logprob_shapes_parse_to_the_same_pooled_distribution() -> None:
    legacy = {"logprobs": {"tokens": ["B"], "top_logprobs": [{"B": -0.5, " B": -1.5, "A": -2.0, "x": -3.0}]}}
    llamacpp = {"logprobs": {"content": [{"token": "B", "logprob": -0.5, "top_logprobs": [
        {"id": 1, "token": "B", "logprob": -0.5, "bytes": [66]}, {"id": 2, "token": " B", "logprob": -1.5},
        {"id": 3, "token": "A", "logprob": -2.0}, {"id": 4, "token": "x", "logprob": -3.0}]}]}}
    first, second = (label_distribution(top_logprobs_of(choice), ["A", "B"]) for choice in (legacy, llamacpp))
    assert first == pytest.approx(second)
    b = math.log(math.exp(-0.5) + math.exp(-1.5))
    assert first["B"] == pytest.approx(math.exp(b) / (math.exp(b) + math.exp(-2.0)))


def test_a_missing_label_gets_the_smallest_returned_logprob_and_is_reported() -> None:
    found = label_distribution({"A": -0.2, "B": -1.0, "zz": -4.0}, ["A", "B", "C"])
    assert found.missing == ("C",)
    weights = [math.exp(-0.2), math.exp(-1.0), math.exp(-4.0)]
    assert found["C"] == pytest.approx(weights[2] / sum(weights)) == pytest.approx(found.floor_mass)
    assert found["C"] < found["B"] < found["A"]


def test_a_choice_without_logprobs_is_a_clear_error() -> None:
    with pytest.raises(CalmRagError, match="no top logprobs"):
        top_logprobs_of({"text": "A", "logprobs": None})


# ---- error paths against a stub server ------------------------------------------------------------

Handler = Callable[[BaseHTTPRequestHandler, dict[str, Any]], None]


def reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any],
          headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up first (the timeout test)


def completion(body: dict[str, Any]) -> dict[str, Any]:
    """A well-formed answer in OpenAI's legacy shape (as vLLM sends it)."""
    top = [{"A": -0.1, " B": -2.5, "C": -3.0}] if body.get("logprobs") else None
    return {"choices": [{"index": i, "text": f" sample {i} ", "logprobs": {"top_logprobs": top} if top else None}
                        for i in range(body.get("n", 1))]}


class Stub:
    """A stdlib HTTP server on 127.0.0.1 whose /v1/completions does what `on_completion` says; it has no
    /v1/models and no /props (like a minimal OpenAI-compatible server)."""

    def __init__(self, on_completion: Handler) -> None:
        self.bodies: list[dict[str, Any]] = []
        stub = self

        class RequestHandler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                reply(self, 404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.bodies.append(body)
                on_completion(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[Callable[[Handler], Stub]]:
    started: list[Stub] = []

    def start(on_completion: Handler) -> Stub:
        started.append(Stub(on_completion))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def connect(stub_server: Stub, **options: Any) -> OpenAIGenerator:
    return OpenAIGenerator(stub_server.url, "served", renderer=plain,
                           options=OpenAIOptions(client=options.pop("client", FAST), **options))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_nothing_listening_is_a_clear_error() -> None:
    with pytest.raises(CalmRagError, match=r"cannot reach a server at http://127\.0\.0\.1:\d+/v1 .*--base-url"):
        OpenAIGenerator(f"http://127.0.0.1:{free_port()}/v1", "served", renderer=plain,
                        options=OpenAIOptions(client=FAST))


def test_a_server_without_a_template_endpoint_needs_a_tokenizer(stub: Callable[[Handler], Stub]) -> None:
    server = stub(lambda handler, body: reply(handler, 200, completion(body)))
    with pytest.raises(CalmRagError, match="--tokenizer"):
        OpenAIGenerator(server.url, "served", options=OpenAIOptions(client=FAST))


def test_sampling_sends_n_with_advancing_seeds_where_the_server_has_no_cap(stub: Callable[[Handler], Stub]) -> None:
    server = stub(lambda handler, body: reply(handler, 200, completion(body)))
    with connect(server) as generator:
        outputs = generator.generate(["p"] * 3 + ["q"] * 3, GenerationConfig(max_new_tokens=4, seed=7))
    assert outputs == ["sample 0", "sample 1", "sample 2"] * 2
    assert sorted((body["prompt"], body["n"], body["seed"]) for body in server.bodies) == [("p", 3, 7), ("q", 3, 10)]


def test_a_server_that_ignores_n_is_asked_for_the_remaining_samples_singly(stub: Callable[[Handler], Stub]) -> None:
    server = stub(lambda handler, body: reply(handler, 200, completion({**body, "n": 1})))
    with connect(server) as generator:
        outputs = generator.generate(["p"] * 3, GenerationConfig(max_new_tokens=4, seed=7))
    assert len(outputs) == 3
    assert [(body["n"], body["seed"]) for body in server.bodies] == [(3, 7), (1, 8), (1, 9)]


def test_unknown_model_404_is_named(stub: Callable[[Handler], Stub]) -> None:
    server = stub(lambda handler, body: reply(handler, 404, {"error": {
        "message": "The model `served` does not exist.", "type": "NotFoundError", "code": 404}}))
    with connect(server) as generator, pytest.raises(CalmRagError, match="does not serve model 'served'"):
        generator.generate(["p"], GenerationConfig(temperature=0))
    assert len(server.bodies) == 1  # not retried


def test_429_then_200_is_retried(stub: Callable[[Handler], Stub]) -> None:
    def busy_once(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if len(server.bodies) == 1:
            reply(handler, 429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        else:
            reply(handler, 200, completion(body))

    server = stub(busy_once)
    with connect(server) as generator:
        found = generator.label_distributions(["p"], [["A", "B", "C"]])[0]
    assert len(server.bodies) == 2
    assert found["A"] > found["B"] > found["C"] and found.missing == ()


def test_500_forever_fails_after_the_retries(stub: Callable[[Handler], Stub]) -> None:
    server = stub(lambda handler, body: reply(handler, 500, {"error": {"message": "CUDA out of memory"}}))
    with connect(server) as generator, pytest.raises(
            CalmRagError, match=r"kept failing \(HTTP 500: CUDA out of memory\) after 3 attempts \(0 of 1 prompts"):
        generator.generate(["p"], GenerationConfig(temperature=0))
    assert len(server.bodies) == 3


def test_a_slow_server_times_out_with_a_clear_error(stub: Callable[[Handler], Stub]) -> None:
    def slow(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        time.sleep(1.5)
        reply(handler, 200, completion(body))

    server = stub(slow)
    client = ClientOptions(timeout_s=0.3, connect_timeout_s=1, retries=2, backoff_s=0.01)
    with connect(server, client=client) as generator, pytest.raises(
            CalmRagError, match=r"did not answer within 0\.3 s"):
        generator.generate(["p"], GenerationConfig(temperature=0))
    assert len(server.bodies) == 1  # a timeout is not retried


def test_a_server_that_dies_mid_run_says_how_far_it_got(stub: Callable[[Handler], Stub]) -> None:
    def dies_after_two(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if len(server.bodies) <= 2:
            reply(handler, 200, completion(body))
            return
        handler.close_connection = True  # drop this request unanswered, then stop listening
        threading.Thread(target=server.stop).start()

    server = stub(dies_after_two)
    done: list[int] = []
    with connect(server, concurrency=1) as generator, pytest.raises(
            CalmRagError, match=r"stopped answering .*\(2 of 5 prompts had finished\)"):
        generator.generate([f"p{i}" for i in range(5)], GenerationConfig(temperature=0), progress=done.append)
    assert sum(done) == 2


def test_a_refused_api_key_points_at_the_flag(stub: Callable[[Handler], Stub]) -> None:
    server = stub(lambda handler, body: reply(handler, 401, {"error": {"message": "invalid api key"}}))
    with connect(server) as generator, pytest.raises(CalmRagError, match="HTTP 401: invalid api key.*--api-key"):
        generator.generate(["p"], GenerationConfig(temperature=0))


def test_a_grammar_goes_only_to_llamacpp(stub: Callable[[Handler], Stub]) -> None:
    """Other servers name constrained decoding differently (vLLM's guided decoding): a llama.cpp field could be
    refused there, so they decode freely and the caller's continuation reads the answer line."""
    server = stub(lambda handler, body: reply(handler, 200, completion(body)))
    with connect(server) as generator:
        generator.generate(["p"], GenerationConfig(max_new_tokens=4, grammar='root ::= "A"'))
    assert server.bodies and all("grammar" not in body for body in server.bodies)
