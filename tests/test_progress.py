import io
import re

import pytest
from rich.console import Console

from calm_rag import progress as progress_module
from calm_rag.progress import ProgressDisplay


def test_a_log_gets_a_line_per_tenth_of_each_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 10_000, 30))
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    log = io.StringIO()
    with ProgressDisplay(Console(file=log, width=200)) as display:
        for done in range(0, 41):
            display("round 1: sampling", done, 40)
        advance = display.counter("round 1: DPO", 3)
        advance(2)
        advance(1)
    lines = log.getvalue().splitlines()
    sampling = [line for line in lines if line.startswith("round 1: sampling")]
    assert [re.search(r"\((\d+)%\)", line).group(1) for line in sampling] == [str(n) for n in range(0, 101, 10)]
    assert sampling[0].endswith("0m00s") and sampling[-1].endswith("20m00s")  # 40 reports, 30 s apart
    assert [line.split(" (")[0] for line in lines if "DPO" in line] == ["round 1: DPO: 2/3", "round 1: DPO: 3/3"]


def test_no_log_lines_when_asked_for_none() -> None:
    log = io.StringIO()
    with ProgressDisplay(Console(file=log), log=False) as display:
        display("eval (model)", 1, 2)
    assert log.getvalue() == ""


def test_a_terminal_gets_a_bar_and_no_log_lines() -> None:
    screen = io.StringIO()
    with ProgressDisplay(Console(file=screen, force_terminal=True, width=80)) as display:
        advance = display.counter("eval (model)", 4)
        advance(4)
    assert "eval (model)" in screen.getvalue() and "(100%)" not in screen.getvalue()
