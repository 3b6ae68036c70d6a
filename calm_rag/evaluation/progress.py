"""The terminal progress bar of `calm-rag eval`: one task per run (adapter, base), counted in prompts."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from calm_rag.evaluation.harness import ProgressFactory


def terminal_progress(console: Console) -> tuple[AbstractContextManager[Any], ProgressFactory | None]:
    """A bar on `console` and the factory that gives each run its task; nothing when `console` is not a
    terminal, so logs, pipes and `--json` stay clean."""
    if not console.is_terminal:
        return nullcontext(), None
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True)

    def factory(label: str, total: int) -> Callable[[int], None]:
        task = bar.add_task(f"eval ({label})", total=total)
        return lambda done: bar.advance(task, done)

    return bar, factory
