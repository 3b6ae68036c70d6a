"""The one reader and the one writer: a path that is not a regular file is one line (a FIFO must not block),
records no UTF-8 file can hold or nested past reason are refused by line, and a failed write leaves the
target as it was and no temporary file behind."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.data.jsonl import MAX_DEPTH, read_json, read_jsonl, write_json, write_jsonl, write_text_atomic
from calm_rag.errors import CalmRagError
from tests.data.conftest import choice_record, write_jsonl as write_lines

runner = CliRunner()


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def test_a_fifo_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "en.jsonl"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_jsonl(fifo)
            outcome.append(None)
        except BaseException as error:  # handed to the test thread
            outcome.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # unblock the reader (open() waits for a writer) before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    assert isinstance(outcome[0], CalmRagError) and "not a regular file" in str(outcome[0])
    with pytest.raises(CalmRagError, match="not a regular file"):
        read_json(tmp_path)


def test_lone_surrogates_and_deep_nesting_are_refused_by_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.jsonl", [
        '{"text": "fine \\ud83d\\ude00"}',  # an escaped surrogate *pair* is one character: fine
        '{"text": "broken \\ud800 half"}',
        '{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}",
        '{"a": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"n": ' + "9" * 5000 + "}",
    ])
    problems: list[str] = []
    assert [number for number, _ in read_jsonl(path, problems.append)] == [1]
    assert problems == [f"{path}:2: a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not text",
                        f"{path}:3: nested deeper than {MAX_DEPTH} levels",
                        f"{path}:4: JSON nested too deeply",
                        (f"{path}:5: unreadable JSON value (Exceeds the limit (4300 digits) for integer string "
                         "conversion: value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit)")]


def test_writing_onto_a_folder_fails_cleanly(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(CalmRagError, match=r"cannot write .*report.json"):
        write_json(target, {"a": 1})
    assert (target / "inside").is_dir() and leftovers(tmp_path) == []


def test_writing_under_a_file_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(CalmRagError, match="cannot write"):
        write_text_atomic(tmp_path / "file" / "out.json", "{}")
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_writing_into_a_read_only_folder_fails_cleanly(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(CalmRagError, match="cannot write"):
            write_text_atomic(folder / "out.json", "{}")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_write_cut_short_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              failure: BaseException) -> None:
    """A kill (KeyboardInterrupt stands in for it) or a full disk between writing and renaming: the old report is
    whole, and the temporary file is gone."""
    target = tmp_path / "report.json"
    write_json(target, {"run": "old"})

    def fail(*args: object) -> None:
        raise failure

    monkeypatch.setattr("calm_rag.data.jsonl.os.replace", fail)
    with pytest.raises(CalmRagError if isinstance(failure, OSError) else KeyboardInterrupt):
        write_json(target, {"run": "new"})
    assert read_json(target) == {"run": "old"} and leftovers(tmp_path) == []


def test_text_utf8_cannot_encode_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CalmRagError, match="characters UTF-8 cannot encode"):
        write_jsonl(tmp_path / "pairs.jsonl", [{"text": "half \ud800"}])
    assert list(tmp_path.iterdir()) == []


def test_vote_pairs_out_onto_a_folder(tmp_path: Path) -> None:
    samples = write_lines(tmp_path / "samples.jsonl", [
        choice_record("q1", "en", responses=["Answer: B", "Answer: A"]),
        choice_record("q1", "de", texts=("Stadt", "Krankenhaus", "Schule"), responses=["Antwort: B", "Antwort: B"])])
    (tmp_path / "pairs").mkdir()
    result = runner.invoke(app, ["vote", str(samples), "--pairs-out", str(tmp_path / "pairs")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "cannot write" in result.stderr and "Traceback" not in result.output
    assert leftovers(tmp_path) == [] and list((tmp_path / "pairs").iterdir()) == []


def test_atomic_writes_get_the_mode_a_plain_write_would(tmp_path: Path) -> None:
    import os
    import stat

    from calm_rag.data.jsonl import write_json

    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    write_json(tmp_path / "atomic.json", {})
    assert stat.S_IMODE(os.stat(tmp_path / "atomic.json").st_mode) == stat.S_IMODE(os.stat(plain).st_mode)
