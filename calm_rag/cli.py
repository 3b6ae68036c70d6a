"""The `calm-rag` command line: a thin Typer layer that parses flags, calls the library, renders results.

Every command turns `CalmRagError` into a one-line message and exit code 2 (see `main`),
so bad input never shows a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from calm_rag.errors import CalmRagError

app = typer.Typer(
    name="calm-rag",
    help="Multilingual QA with cross-lingual self-consistency voting and CALM self-alignment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def print_json(payload: Any) -> None:
    """Machine-readable output: one JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")


Command = TypeVar("Command", bound=Callable[..., Any])


def cli_command(group: typer.Typer = app, name: str | None = None, **options: Any) -> Callable[[Command], Command]:
    """Register a command on `group`; a `CalmRagError` inside becomes 'Error: ...' and exit code 2."""

    def register(function: Command) -> Command:
        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except CalmRagError as error:
                err_console.print(f"[bold red]Error:[/] {error}", highlight=False, soft_wrap=True)
                raise typer.Exit(2) from None
            except KeyboardInterrupt:
                err_console.print("Interrupted.")
                raise typer.Exit(130) from None

        group.command(name, **options)(guarded)
        return function

    return register


def main() -> None:
    """Console-script entry point."""
    app()


# ---- commands ---------------------------------------------------------------------------------

# ---- index / search commands ------------------------------------------------------------------

# ---- models commands --------------------------------------------------------------------------
