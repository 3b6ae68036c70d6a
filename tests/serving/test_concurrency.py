"""Batching across concurrent requests, the queue limit, streaming event order, disconnects and shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from calm_rag.serving import ServeConfig, create_app
from tests.serving.conftest import (
    CHOICES,
    KNOWLEDGE,
    GatedGenerator,
    client_for,
    error_of,
    fake_qa,
    free_port,
    live_server,
)

ROOT = Path(__file__).resolve().parents[2]


def _rotated(number: int) -> list[str]:
    """CHOICES rotated by `number`: Paris (the scripted answer) moves, so each request has its own answer label."""
    shift = number % len(CHOICES)
    return CHOICES[shift:] + CHOICES[:shift]


def _ask(number: int) -> dict[str, Any]:
    return {"question": f"Frage {number}: Was ist die Hauptstadt von Frankreich?", "lang": "de",
            "choices": _rotated(number)}


def test_concurrent_requests_share_generate_calls_and_keep_their_own_answers() -> None:
    alone = GatedGenerator(KNOWLEDGE)
    alone.gate.set()
    with client_for(fake_qa(alone)) as client:
        assert client.post("/v1/ask", json=_ask(0)).status_code == 200
    per_question = len(alone.generate_calls)

    generator = GatedGenerator(KNOWLEDGE)
    with client_for(fake_qa(generator), max_batch=8, batch_wait_ms=50) as client, ThreadPoolExecutor(8) as pool:
        first = pool.submit(client.post, "/v1/ask", json=_ask(0))
        assert generator.entered.wait(10)  # the model is busy with question 0; the next 6 queue up together
        rest = [pool.submit(client.post, "/v1/ask", json=_ask(number)) for number in range(1, 7)]
        deadline = time.monotonic() + 10
        while client.app.state.calm.batcher.queued < 6:
            assert time.monotonic() < deadline, "the requests did not queue"
            time.sleep(0.01)
        generator.gate.set()
        responses = [first.result(), *(future.result() for future in rest)]
        sizes = list(client.app.state.calm.batcher.stats.sizes)
    assert [response.status_code for response in responses] == [200] * 7
    for number, response in enumerate(responses):
        answer = response.json()
        assert answer["question"] == _ask(number)["question"]
        assert answer["answer"] == "ABCD"[(1 - number) % 4] and answer["answer_text"] == "Paris"
    assert sizes == [1, 6]
    assert len(generator.generate_calls) == 2 * per_question  # 7 questions, the generate calls of 2


def test_past_the_queue_limit_requests_get_429_with_retry_after() -> None:
    generator = GatedGenerator(KNOWLEDGE)
    with client_for(fake_qa(generator), max_concurrency=2, max_batch=1, batch_wait_ms=0) as client, \
            ThreadPoolExecutor(2) as pool:
        running = pool.submit(client.post, "/v1/ask", json=_ask(0))
        assert generator.entered.wait(10)
        queued = pool.submit(client.post, "/v1/ask", json=_ask(1))
        while client.app.state.calm.batcher.queued < 1:
            time.sleep(0.01)
        refused = client.post("/v1/ask", json=_ask(2))
        refused_chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hallo?"}]})
        generator.gate.set()
        assert running.result().status_code == 200 and queued.result().status_code == 200
        metrics = client.get("/metrics").text
    for response in (refused, refused_chat):
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert error_of(response)["type"] == "rate_limit_error"
    assert "calm_rag_refused_total 2.0" in metrics


def _events(lines: list[str]) -> list[Any]:
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    return [item if item == "[DONE]" else json.loads(item) for item in data]


def test_streaming_sends_one_event_per_stage_then_the_answer_then_done(kb_index_dir: Path) -> None:
    qa = fake_qa(index="kb", index_dir=kb_index_dir, top_k=2)
    body = {"model": "calm", "stream": True, "choices": CHOICES, "lang": "de",
            "messages": [{"role": "system", "content": "ignored"},
                         {"role": "user", "content": "Hauptstadt von Frankreich?"}]}
    with client_for(qa) as client, client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(list(response.iter_lines()))
    stages = [event["calm_stage"]["stage"] for event in events[:-2]]
    assert stages == ["retrieving", "translating", "sampling", "voting"]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(event["choices"][0]["delta"]["reasoning_content"] for event in events[:-2])
    answer, done = events[-2:]
    assert done == "[DONE]"
    assert answer["object"] == "chat.completion.chunk" and answer["choices"][0]["finish_reason"] == "stop"
    assert answer["choices"][0]["delta"]["content"].startswith("B) Paris")
    assert "2 of 2 languages agree" in answer["choices"][0]["delta"]["content"]
    assert answer["calm"]["answer"] == "B" and len(answer["calm"]["sources"]) == 2
    assert answer["citations"] == [source["source"] for source in answer["calm"]["sources"]]


def test_chat_completion_without_stream_carries_the_ask_object_and_citations() -> None:
    with client_for(fake_qa()) as client:
        response = client.post("/v1/chat/completions", json={
            "model": "anything", "temperature": 0.2, "choices": CHOICES,
            "messages": [{"role": "user",
                          "content": [{"type": "text", "text": "Was ist die Hauptstadt von Frankreich?"}]}]})
        no_user = client.post("/v1/chat/completions", json={"messages": [{"role": "system", "content": "x"}]})
        two = client.post("/v1/chat/completions", json={"n": 2, "messages": [{"role": "user", "content": "x"}]})
    body = response.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"] == \
        "B) Paris\n\nWeil Paris.\n\n2 of 2 languages agree (consistency 1.00)"
    assert body["calm"]["lang"] == "de" and body["citations"] == []
    assert no_user.status_code == 422 and error_of(no_user)["param"] == "messages"
    assert two.status_code == 422 and error_of(two)["param"] == "n"


def _send_and_hang_up(base_url: str, path: str, body: dict[str, Any]) -> None:
    """A raw HTTP client that sends its request and disconnects without reading the answer."""
    port = int(base_url.rsplit(":", 1)[1])
    payload = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        time.sleep(0.3)  # the server has read the request and queued it


def test_a_client_that_disconnects_frees_its_slot_before_the_model_sees_it() -> None:
    generator = GatedGenerator(KNOWLEDGE)
    app = create_app(fake_qa(generator), ServeConfig(max_concurrency=2, max_batch=1, batch_wait_ms=0))
    with live_server(app) as url, ThreadPoolExecutor(2) as pool:
        batcher = app.state.calm.batcher
        running = pool.submit(httpx.post, f"{url}/v1/ask", json=_ask(0), timeout=30)
        assert generator.entered.wait(10)
        _send_and_hang_up(url, "/v1/ask", {**_ask(1), "question": "GONE-PLAIN"})
        _send_and_hang_up(url, "/v1/chat/completions", {"stream": True, "choices": CHOICES, "lang": "de",
                                                       "messages": [{"role": "user", "content": "GONE-STREAM"}]})
        deadline = time.monotonic() + 10
        while batcher.queued:
            assert time.monotonic() < deadline, "the disconnected requests stayed queued"
            time.sleep(0.02)
        after = pool.submit(httpx.post, f"{url}/v1/ask", json=_ask(2), timeout=30)  # their slots are free again
        time.sleep(0.2)
        generator.gate.set()
        assert running.result().status_code == 200 and after.result().status_code == 200
        metrics = httpx.get(f"{url}/metrics").text
    assert not any("GONE" in prompt for prompt in generator.prompts)
    assert "calm_rag_dropped_total 2.0" in metrics


SLOW_SERVER = """
import sys, time
import uvicorn
from calm_rag.serving import ServeConfig, create_app
from tests.serving.conftest import KNOWLEDGE, fake_qa
from tests.fakes import FakeGenerator

class Slow(FakeGenerator):
    def generate(self, prompts, config=None, progress=None):
        time.sleep(1.0)
        return super().generate(prompts, progress=progress)

uvicorn.run(create_app(fake_qa(Slow(KNOWLEDGE))), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def test_sigterm_finishes_the_requests_in_flight_then_exits() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-c", SLOW_SERVER, str(port)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.1)
        result: dict[str, Any] = {}
        asking = threading.Thread(target=lambda: result.update(
            response=httpx.post(f"{url}/v1/ask", json=_ask(1), timeout=60)))
        asking.start()
        while "calm_rag_questions_in_flight 1.0" not in httpx.get(f"{url}/metrics").text:
            time.sleep(0.05)
        server.send_signal(signal.SIGTERM)
        asking.join(60)
        # uvicorn re-raises the signal once it has shut down, so the exit status is that of SIGTERM
        assert server.wait(30) in (0, -signal.SIGTERM)
        assert "Traceback" not in (server.stderr.read() if server.stderr else "")
    finally:
        if server.poll() is None:
            server.kill()
    assert result["response"].status_code == 200 and result["response"].json()["answer_text"] == "Paris"
