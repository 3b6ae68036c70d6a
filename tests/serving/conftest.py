"""Fixtures for the server tests: apps over the scripted `FakeGenerator` (deterministic answers, counted
generate calls) or the tiny random model, a real uvicorn server on a free 127.0.0.1 port, a small index."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from calm_rag.generation.base import GenerationConfig
from calm_rag.pipelines import CalmQA, QAConfig
from calm_rag.serving import ServeConfig, create_app
from calm_rag.voting.clustering import Encode
from tests.fakes import FakeGenerator

KNOWLEDGE = {"en": "Paris", "de": "Paris", "zh": "Paris", "fr": "Paris"}
CHOICES = ["Berlin", "Paris", "Rom", "Madrid"]
CORPUS = [
    {"id": "es-oxygen", "lang": "es", "text": "El oxígeno lo descubrió Carl Wilhelm Scheele en 1773."},
    {"id": "fr-paris", "lang": "fr", "text": "Paris est la capitale de la France."},
    {"id": "zh-paris", "lang": "zh", "text": "巴黎是法国的首都。北京是中国的首都。"},
    {"id": "en-fox", "lang": "en", "text": "The quick brown fox jumps over the lazy dog."},
]


class GatedGenerator(FakeGenerator):
    """A `FakeGenerator` whose generate calls wait for `gate` (set it to let them through), so a test can hold
    the model busy while requests pile up; `entered` is set when the first call is waiting."""

    def __init__(self, knowledge: dict[str, str], **kwargs: Any) -> None:
        super().__init__(knowledge, **kwargs)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.prompts: list[str] = []

    def generate(self, prompts: Sequence[str], config: GenerationConfig = GenerationConfig(),
                 progress: Callable[[int], None] | None = None) -> list[str]:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        self.prompts.extend(prompts)
        return super().generate(prompts, config, progress)


def fake_qa(generator: FakeGenerator | None = None, encode: Encode | None = None, **config: Any) -> CalmQA:
    """The pipeline over the scripted generator (en and de, 2 samples unless `config` says otherwise)."""
    options = {"languages": ("en", "de"), "samples": 2, **config}
    return CalmQA(generator or FakeGenerator(KNOWLEDGE), QAConfig(**options), encode=encode)  # type: ignore[arg-type]


@contextmanager
def client_for(qa: CalmQA, **settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(qa, ServeConfig(**settings))) as client:
        yield client


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 in a thread of this process; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def kb_index_dir(tmp_path: Path, tiny_embedder_path: Path) -> Path:
    """An index named 'kb' (4 chunks in 4 languages, the tiny embedder) under tmp_path/indexes."""
    from calm_rag.indexes import build_index

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in CORPUS), encoding="utf-8")
    build_index([corpus], "kb", embedder=str(tiny_embedder_path), index_dir=tmp_path / "indexes", progress=False)
    return tmp_path / "indexes"


def error_of(response: Any) -> dict[str, Any]:
    """The OpenAI-shaped error of a response, checked for its keys."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "param"} <= set(body["error"]), body
    return body["error"]  # type: ignore[no-any-return]
