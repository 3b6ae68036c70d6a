"""The official `openai` client against a real `calm-rag serve` process on 127.0.0.1 with the tiny models."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.serving.conftest import CHOICES, free_port

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-key-0123"
LAUNCH = (
    "import sys\n"
    "from calm_rag.cli import app\n"
    "sys.argv[0] = 'calm-rag'\n"
    "app()\n"
)


@pytest.fixture(scope="module")
def served(tiny_lm_path: Path, tiny_embedder_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`calm-rag serve` on the tiny model (2 languages, 1 sample, 8 new tokens) with an API key; its /v1 URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [sys.executable, "-c", LAUNCH, "serve", "--port", str(port), "--model", str(tiny_lm_path),
               "--engine", "transformers", "--device", "cpu", "--languages", "en,de", "--samples", "1",
               "--max-new-tokens", "8", "--embedder", str(tiny_embedder_path), "--api-key", KEY,
               "--log-level", "warning"]
    env = {**os.environ, "CALM_RAG_INDEX_DIR": str(log.parent / "indexes"), "HF_HUB_OFFLINE": "1"}
    with log.open("w") as output:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", headers={"Authorization": f"Bearer {KEY}"})
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, f"calm-rag serve exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"calm-rag serve did not get ready: {log.read_text()}"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(30)


def test_chat_completion_with_the_calm_extra_field(served: str, tiny_lm_path: Path) -> None:
    client = openai.OpenAI(base_url=served, api_key=KEY)
    question = "Was ist die Hauptstadt von Frankreich?"
    completion = client.chat.completions.create(
        model="calm-rag", messages=[{"role": "user", "content": question}],
        extra_body={"choices": CHOICES, "lang": "de"})
    message = completion.choices[0].message
    assert message.role == "assistant"
    assert "languages agree" in message.content or message.content.startswith("No answer")
    calm = completion.model_extra["calm"]
    assert calm["question"] == question and calm["languages"] == ["en", "de"] and calm["samples"] == 1
    assert [choice["text"] for choice in calm["choices"]] == CHOICES
    assert completion.model_extra["citations"] == []
    assert [model.id for model in client.models.list()] == [calm["model"]]


def test_streamed_chat_completion_shows_the_stages_then_the_answer(served: str) -> None:
    client = openai.OpenAI(base_url=served, api_key=KEY)
    stream = client.chat.completions.create(
        model="calm-rag", stream=True, messages=[{"role": "user", "content": "Where is the Eiffel Tower?"}],
        extra_body={"choices": ["Paris", "Rome", "Berlin"], "lang": "en"})
    chunks = list(stream)
    stages = [chunk.model_extra["calm_stage"]["stage"] for chunk in chunks if "calm_stage" in chunk.model_extra]
    assert stages == ["translating", "sampling", "voting"]  # no index: nothing to retrieve
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.choices[0].delta.content
    assert last.model_extra["calm"]["lang"] == "en"


def test_an_open_question_is_answered_by_clustering(served: str) -> None:
    client = openai.OpenAI(base_url=served, api_key=KEY)
    completion = client.chat.completions.create(
        model="calm-rag", messages=[{"role": "user", "content": "Wie hoch ist der Eiffelturm?"}])
    calm = completion.model_extra["calm"]
    assert calm["lang"] == "de" and "clusters" in calm and "choices" not in calm


def test_a_wrong_key_raises_authentication_error(served: str) -> None:
    client = openai.OpenAI(base_url=served, api_key="wrong-key")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="calm-rag", messages=[{"role": "user", "content": "Hallo?"}])
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_the_native_route_and_health_on_the_same_server(served: str) -> None:
    base = served.removesuffix("/v1")
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}  # no key needed for liveness
    answer = httpx.post(f"{served}/ask", headers={"Authorization": f"Bearer {KEY}"}, timeout=60,
                        json={"question": "Wo liegt Paris?", "lang": "de", "choices": ["Frankreich", "Italien"]}).json()
    assert answer["lang"] == "de" and answer["languages"] == ["en", "de"] and set(answer["votes"]) == {"en", "de"}
