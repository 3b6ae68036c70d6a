"""The one JSONL/JSON reader and the one atomic writer every command uses.

Reading: a line that is not a JSON object - invalid JSON, nesting deep enough to exhaust the parser's
recursion, an integer too long to convert - is an error naming file and line (or, with `on_bad_line`,
reported and skipped), never a traceback.

Writing: every file calm-rag writes goes through `write_text_atomic` (a temporary file in the same folder,
then one rename), so a reader or a resumed run never sees a half-written file, and a failed write leaves
neither a truncated target nor the temporary file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from calm_rag.errors import CalmRagError


def read_jsonl(path: Path, on_bad_line: Callable[[str], None] | None = None) -> list[tuple[int, dict]]:
    """(line number, record) for each non-empty line. A line that is not a JSON object is an error naming
    it, or, with `on_bad_line`, reported to that callback and skipped."""

    def bad(message: str) -> None:
        if on_bad_line is None:
            raise CalmRagError(message)
        on_bad_line(message)

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
                records.append((number, record))
    except (OSError, UnicodeDecodeError) as error:
        raise CalmRagError(f"cannot read {path}: {error}") from None
    return records


def read_records(path: Path) -> list[dict[str, Any]]:
    return [record for _, record in read_jsonl(path)]


def read_json(path: Path) -> Any:
    """A JSON document; unreadable or invalid JSON is a one-line error naming the file."""
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
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise CalmRagError(f"cannot write {path}: {error.strerror or error}") from None
        raise


def write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
