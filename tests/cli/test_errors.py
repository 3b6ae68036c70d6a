"""Bad flags are one line on stderr and exit code 2, like every other bad input; --help still works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from calm_rag.cli import main; main()", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("argv", "message"), [
    (("ask", "Frage?", "--samples", "0"), "Invalid value for '--samples'"),
    (("ask",), "Missing argument 'question'"),
    (("nosuch",), "No such command 'nosuch'"),
    (("models", "list", "--bogus"), "No such option: --bogus"),
    (("search", "q", "--top-k", "many"), "Invalid value for '--top-k'"),
])
def test_flag_errors_are_one_line(argv: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = run_cli(*argv, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_help_is_still_help(tmp_path: Path) -> None:
    result = run_cli("ask", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "--choice" in result.stdout


def test_messages_quoting_input_stay_one_line_and_are_not_markup(tmp_path: Path) -> None:
    """An error message quotes what the user gave: line breaks in it are folded, rich markup is printed as is."""
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"id": "q1", "lang": "e[/b]n\\nx", "question": "?", "responses": ["A"], '
                       '"choices": [{"label": "A", "text": "a"}, {"label": "B", "text": "b"}]}\n', encoding="utf-8")
    result = run_cli("vote", str(samples), cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("Error: ") and "samples.jsonl:1" in lines[0] and "e[/b]n" in lines[0]
