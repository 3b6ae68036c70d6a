"""The one-line error contract, checked the same way by every test that feeds a command bad input."""

from __future__ import annotations

from typer.testing import CliRunner

from calm_rag.cli import app

runner = CliRunner()


def one_line_exit_2(args: list[str]) -> str:
    """Run `calm-rag ARGS`; it must exit 2 with exactly one line on stderr and no traceback. Returns the line."""
    result = runner.invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
