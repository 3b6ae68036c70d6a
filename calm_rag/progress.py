"""Progress of long work: the callback type the pipelines report through, and its display on stderr.

On a terminal the display is a live bar per stage. Anywhere else (a log file, `nohup`, a scheduler) a
bar cannot redraw and would print nothing until the end, so the same reports become one plain line per
tenth of each stage: a training run that samples for an hour and trains for two says how far it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

StageProgress = Callable[[str, int, int], None]
"""Called as (stage, done, total) while work advances; stages are named for people ("round 1: sampling")."""


def stage_counter(progress: StageProgress | None, stage: str, total: int) -> Callable[[int], None] | None:
    """Adapt a `StageProgress` to the engines' 'n more done' callback (None without one)."""
    if progress is None:
        return None
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        progress(stage, done, total)

    return advance


LOG_LINES = 10
"""Log lines per stage (besides its first): one each time another tenth is done."""


class ProgressDisplay:
    """A `StageProgress` shown on `console`: live bars on a terminal, else (when `log`) a line per tenth."""

    def __init__(self, console: Console, *, log: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.live = console.is_terminal
        self.log = log and not self.live
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=True, disable=not self.live)
        self.tasks: dict[str, Any] = {}
        self.logged: dict[str, tuple[float, int]] = {}
        """stage -> (when its first report came, the tenths done at its last log line)."""

    def __enter__(self) -> ProgressDisplay:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.live:
            if stage not in self.tasks:
                self.tasks[stage] = self.bar.add_task(stage, total=total)
            self.bar.update(self.tasks[stage], completed=done, total=total)
        elif self.log:
            self._log_line(stage, done, total)

    def stage(self, message: str) -> None:
        """A step without a count (`calm_rag.models.pull.PullProgress`): one line, on a terminal or in a log."""
        if self.live or self.log:
            self.console.print(message, highlight=False, soft_wrap=True)

    def task(self, description: str, total: int | None) -> _Task:
        """A counted step (`PullProgress`): a bar on a terminal, a line per tenth in a log."""
        return _Task(self.counter(description, total or 0))

    def done(self) -> None:
        """`PullProgress`' end: nothing left to close (the `with` block ends the bars)."""

    def counter(self, stage: str, total: int) -> Callable[[int], None]:
        """A callback taking the number of items just finished, for work that reports increments."""
        done = 0

        def advance(finished: int) -> None:
            nonlocal done
            done += finished
            self(stage, done, total)

        return advance

    def _log_line(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        tenths = done * LOG_LINES // total if total else LOG_LINES
        if stage in self.logged:
            started, last = self.logged[stage]
            if tenths <= last:
                return
        else:
            started = now
        self.logged[stage] = (started, tenths)
        minutes, seconds = divmod(int(now - started), 60)
        share = done / total if total else 1.0
        self.console.print(f"{stage}: {done}/{total} ({share:.0%}) {minutes}m{seconds:02d}s",
                           highlight=False, soft_wrap=True)


class _Task:
    """What `ProgressDisplay.task` hands out: `advance(amount)` adds to its stage."""

    def __init__(self, advance: Callable[[int], None]) -> None:
        self.advance = advance
