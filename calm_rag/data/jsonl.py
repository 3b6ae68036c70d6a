"""The one JSONL/JSON reader and the one atomic writer every command uses.

Reading: a line that is not a JSON object - invalid JSON, nesting deeper than `MAX_DEPTH`, an integer too
long to convert, a lone surrogate escape that no UTF-8 file can hold - is an error naming file and line (or,
with `on_bad_line`, reported and skipped), never a traceback; so is a path that is not a regular file (a
FIFO would block the reader forever).

Writing: every file calm-rag writes goes through `write_text_atomic` (a temporary file in the same folder,
then one rename), so a reader or a resumed run never sees a half-written file, and a failed write leaves
neither a truncated target nor the temporary file behind.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from calm_rag.errors import CalmRagError


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_CREATE_MODE = 0o666 & ~_umask()
"""The mode `open(path, "w")` would give a new file: 0644 under the usual umask."""


def read_jsonl(path: Path, on_bad_line: Callable[[str], None] | None = None) -> list[tuple[int, dict]]:
    """(line number, record) for each non-empty line. A line that is not a JSON object is an error naming
    it, or, with `on_bad_line`, reported to that callback and skipped."""

    def bad(message: str) -> None:
        if on_bad_line is None:
            raise CalmRagError(message)
        on_bad_line(message)

    check_readable(path)
    records = []
    try:
        with path.open(encoding="utf-8-sig") as handle:  # tolerate a byte-order mark
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    bad(f"{path}:{number}: not valid JSON ({error.msg})")
                    continue
                except RecursionError:
                    bad(f"{path}:{number}: JSON nested too deeply")
                    continue
                except ValueError as error:  # e.g. an integer over Python's digit limit
                    bad(f"{path}:{number}: unreadable JSON value ({str(error).splitlines()[0]})")
                    continue
                if not isinstance(record, dict):
                    bad(f"{path}:{number}: expected a JSON object")
                    continue
                problem = _record_problem(record, line)
                if problem:
                    bad(f"{path}:{number}: {problem}")
                    continue
                records.append((number, record))
    except (OSError, UnicodeDecodeError) as error:
        raise CalmRagError(f"cannot read {path}: {error}") from None
    return records


MAX_DEPTH = 50
"""Deepest nesting accepted in a record (calm-rag's own records nest 5 deep). Deeper records that the parser
still reads would overflow the recursion of whatever walks them next (json.dumps, a copy), far from here."""
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""JSON may escape a surrogate code point that no UTF-8 text can hold; found, the record is walked for it."""


def _record_problem(record: Any, line: str) -> str | None:
    """Too deep, or a string with a lone surrogate; the walk (a stack, not recursion) runs only when the
    line could hold either."""
    surrogates = _SURROGATE_ESCAPE.search(line) is not None
    if not surrogates and line.count("[") + line.count("{") <= MAX_DEPTH:
        return None
    stack = [(record, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if surrogates and any("\ud800" <= char <= "\udfff" for char in item):
                return "a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not text"
            continue
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((value, depth + 1) for value in item.values())
        elif isinstance(item, list):
            stack.extend((value, depth + 1) for value in item)
    return None


def check_readable(path: Path) -> None:
    """A regular file, or a one-line error: a FIFO or a device would block the reader forever, a folder
    would fail with an OS error deep inside."""
    if not path.exists():
        raise CalmRagError(f"{path} does not exist")
    if not path.is_file():
        raise CalmRagError(f"cannot read {path}: not a regular file")


def read_records(path: Path) -> list[dict[str, Any]]:
    return [record for _, record in read_jsonl(path)]


def read_json(path: Path) -> Any:
    """A JSON document; unreadable or invalid JSON is a one-line error naming the file."""
    check_readable(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CalmRagError(f"cannot read {path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
                           ) from None


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and one rename; on failure nothing is left behind."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise CalmRagError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        os.fchmod(handle, _CREATE_MODE)  # mkstemp makes files private (0600); give them the user's usual mode
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise CalmRagError(f"cannot write {path}: {error.strerror or error}") from None
        if isinstance(error, UnicodeEncodeError):  # a lone surrogate from a library user's string
            raise CalmRagError(f"cannot write {path}: the text holds characters UTF-8 cannot encode "
                               f"({error.reason})") from None
        raise


def write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
