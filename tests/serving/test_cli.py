"""`calm-rag serve`'s command: options, bad input refused before the port is bound, the loopback warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from calm_rag.cli import app

runner = CliRunner()


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """uvicorn.run replaced by a recorder: these tests check the command's wiring (test_openai_client runs it)."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append({"app": app, **options}))
    return calls


def test_help_lists_the_issue_options() -> None:
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--host", "--port", "--index", "--engine", "--base-url", "--languages", "--samples", "--mode",
                   "--api-key", "--max-concurrency", "--max-batch", "--batch-wait-ms"):
        assert option in result.output, option


@pytest.mark.parametrize(("args", "message"), [
    (["--languages", "en,xx"], "unknown language code 'xx'"),
    (["--mode", "guess"], "unknown mode 'guess'"),
    (["--base-url", "http://127.0.0.1:1/v1"], "--base-url needs --engine openai"),
    (["--engine", "vllm"], "unknown engine 'vllm'"),
    (["--port", "70000"], "port must be in 1..65535"),
    (["--log-level", "loud"], "unknown --log-level"),
])
def test_bad_options_fail_before_anything_loads(args: list[str], message: str, uvicorn_calls: list) -> None:
    result = runner.invoke(app, ["serve", "--model", "/no/such/model", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert uvicorn_calls == []


def test_a_missing_index_fails_at_startup(tiny_lm_path: Path, tmp_path: Path, uvicorn_calls: list) -> None:
    result = runner.invoke(app, ["serve", "--model", str(tiny_lm_path), "--engine", "transformers", "--device",
                                    "cpu", "--index", "nope", "--index-dir", str(tmp_path)])
    assert result.exit_code == 2 and "nope" in result.output and uvicorn_calls == []


def test_serving_beyond_loopback_without_a_key_warns(tiny_lm_path: Path, tiny_embedder_path: Path,
                                                     uvicorn_calls: list[dict[str, Any]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALM_RAG_API_KEY", raising=False)
    base = ["serve", "--model", str(tiny_lm_path), "--engine", "transformers", "--device", "cpu",
            "--embedder", str(tiny_embedder_path)]
    exposed = runner.invoke(app, [*base, "--host", "0.0.0.0", "--port", "8123"])
    keyed = runner.invoke(app, [*base, "--host", "0.0.0.0"], env={"CALM_RAG_API_KEY": "k"})
    local = runner.invoke(app, base)
    assert exposed.exit_code == keyed.exit_code == local.exit_code == 0, exposed.output
    assert "without an API key" in exposed.output
    assert "without an API key" not in keyed.output and "without an API key" not in local.output
    assert [(call["host"], call["port"]) for call in uvicorn_calls] == [("0.0.0.0", 8123), ("0.0.0.0", 8000),
                                                                         ("127.0.0.1", 8000)]
