"""The Typer app every command group registers on, the error contract, and the shared renderers.

Every command turns `CalmRagError` into a one-line message and exit code 2 (see `cli_command`), so bad
input never shows a traceback. This module imports nothing heavy: `calm-rag --help` starts without torch.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer import _click as click  # typer's own click: the exceptions its parser raises
from typer.core import TyperGroup

from calm_rag.errors import CalmRagError


class OneLineErrors(TyperGroup):
    """Flag errors (a value out of range, an unknown option, a missing argument) print one 'Error: ...' line
    and exit 2, like every error a command raises, instead of a usage box."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            outcome = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as error:
            if not standalone_mode:
                raise
            error.show()
            sys.exit(error.exit_code)
        except click.exceptions.ClickException as error:
            if not standalone_mode:
                raise
            err_console.print(f"[bold red]Error:[/] {escape(one_line(error.format_message()))}", highlight=False,
                              soft_wrap=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            err_console.print("Aborted.")
            sys.exit(1)
        if standalone_mode:
            sys.exit(outcome if isinstance(outcome, int) else 0)
        return outcome


app = typer.Typer(
    cls=OneLineErrors,
    name="calm-rag",
    help="Multilingual QA with cross-lingual self-consistency voting and CALM self-alignment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

Command = TypeVar("Command", bound=Callable[..., Any])


def cli_command(group: typer.Typer = app, name: str | None = None, **options: Any) -> Callable[[Command], Command]:
    """Register a command on `group`; a `CalmRagError` inside becomes 'Error: ...' and exit code 2."""

    def register(function: Command) -> Command:
        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except CalmRagError as error:
                fail(str(error))
            except KeyboardInterrupt:
                err_console.print("Interrupted.")
                raise typer.Exit(130) from None

        group.command(name, **options)(guarded)
        return function

    return register


def fail(message: str) -> None:
    """The one way a command reports bad input: one line on stderr, exit code 2 (a message that quotes the
    user's input may hold line breaks: they are folded, so the contract holds whatever the input)."""
    err_console.print(f"[bold red]Error:[/] {escape(one_line(message))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def one_line(message: str) -> str:
    """`message` with its line breaks folded into spaces."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def print_json(payload: Any) -> None:
    """Machine-readable output: one JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")


def print_json_line(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def human_bytes(size: int | None) -> str:
    """1.2 GB, 340.0 KB, 12 B; '-' when unknown."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def render_sources(sources: list[dict[str, Any]]) -> None:
    from rich.table import Table

    if not sources:
        return
    table = Table(title="Sources")
    for column in ("#", "score", "lang", "source", "text"):
        table.add_column(column, overflow="fold")
    for number, source in enumerate(sources, start=1):
        text = source["text"] if len(source["text"]) < 160 else source["text"][:157] + "..."
        table.add_row(str(number), f"{source['score']:.3f}", source.get("lang") or "?", str(source["source"]), text)
    console.print(table)


# ---- engine options, shared by ask, eval and serve ---------------------------------------------------

ENGINE = typer.Option(None, "--engine", help="auto (llama.cpp when the model has a GGUF, else transformers), "
                                             "transformers, llama.cpp or openai (default: settings, CALM_RAG_ENGINE).")
BASE_URL = typer.Option(None, "--base-url", help="openai engine: the server's /v1 URL (vLLM, SGLang, llama-server, "
                                                 "Ollama).")
API_KEY = typer.Option(None, "--api-key", envvar="CALM_RAG_OPENAI_API_KEY", help="openai engine: the server's key.")
TOKENIZER = typer.Option(None, "--tokenizer", help="openai/llama.cpp: where the tokenizer and chat template come from "
                                                   "when --model is a served name calm-rag does not know.")


# Open-question span settings shared by ask, eval and train; None means "not given" (the config's default holds).
CONTINUE_SPANS = typer.Option(None, "--continue-spans/--no-continue-spans",
                              help="Open questions: ask for the short span after the answer label where a response "
                                   "has none (default: on).")
CONSTRAIN_SPANS = typer.Option(None, "--constrain-spans/--no-constrain-spans",
                               help="Open questions, llama.cpp: sample under a grammar that ends every response with "
                                    "the answer line (default: off).")
GLOSS_SPANS = typer.Option(None, "--gloss-spans/--no-gloss-spans",
                           help="Open questions: translate every answer span into English too and let answers agree "
                                "through it (default: on).")
