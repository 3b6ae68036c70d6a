"""Crash tests: a command killed with SIGKILL at several moments, then the next run must find the last good
state (resume or rebuild) and nothing stored may be half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

COMMAND = "from calm_rag.cli import main; main()"


def environment(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CALM_RAG_INDEX_DIR": str(tmp_path / "indexes"),
            "CALM_RAG_MODEL_CACHE": str(tmp_path / "model-cache"), "CALM_RAG_CONFIG": str(tmp_path / "none.toml"),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_cli(argv: list[str], tmp_path: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", COMMAND, *argv], cwd=tmp_path, env=environment(tmp_path),
                          capture_output=True, text=True, timeout=timeout)


def kill_after(argv: list[str], tmp_path: Path, seconds: float) -> int | None:
    """Start the command, SIGKILL it after `seconds` (if still running); its exit code when it finished first."""
    process = subprocess.Popen([sys.executable, "-c", COMMAND, *argv], cwd=tmp_path, env=environment(tmp_path),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return process.returncode
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return None


def kill_when(argv: list[str], tmp_path: Path, ready: Callable[[], bool], timeout: float = 300) -> int | None:
    """Start the command and SIGKILL it as soon as `ready()` holds; its exit code when it finished first."""
    process = subprocess.Popen([sys.executable, "-c", COMMAND, *argv], cwd=tmp_path, env=environment(tmp_path),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            return process.returncode
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(f"{argv[0]} did not reach the moment to kill it in {timeout} s")
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return None
