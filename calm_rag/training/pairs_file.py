"""Preference pairs made elsewhere (`calm-rag vote --pairs-out`, or any tool): read and check them.

A pairs file is JSONL with `prompt`, `chosen` and `rejected` per line, either all conversational
(lists of {role, content} messages, what `calm_rag.voting.choice_pairs` writes) or all plain strings, as TRL's
DPOTrainer accepts. Other fields (id, lang, majority, translated) are kept for the metrics and
dropped before training. Every problem names the line and the field, because a bad line found
after an hour of training is an hour lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from calm_rag.data.jsonl import read_jsonl
from calm_rag.errors import CalmRagError

FIELDS = ("prompt", "chosen", "rejected")


def _is_messages(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                    for m in value))


def _check_field(record: dict[str, Any], field: str, where: str) -> bool:
    """True for messages, False for a plain string; anything else is an error."""
    if field not in record:
        raise CalmRagError(f"{where}: missing field {field!r} (a pair needs {', '.join(FIELDS)})")
    value = record[field]
    if _is_messages(value):
        return True
    if isinstance(value, str) and value.strip():
        return False
    raise CalmRagError(f"{where}: field {field!r} must be a non-empty string or a list of {{role, content}} messages")


def load_pairs_file(path: Path | str) -> list[dict[str, Any]]:
    """The records of a pairs file, checked line by line; an empty file is an error (nothing to train)."""
    path = Path(path)
    if not path.is_file():
        raise CalmRagError(f"pairs file {path} does not exist")
    records = []
    conversational: bool | None = None
    for number, record in read_jsonl(path):
        where = f"{path}:{number}"
        kinds = {_check_field(record, field, where) for field in FIELDS}
        if len(kinds) > 1:
            raise CalmRagError(f"{where}: mixes message lists and plain strings; use one format for all fields")
        kind = kinds.pop()
        if conversational is not None and kind != conversational:
            raise CalmRagError(f"{where}: this line is {'conversational' if kind else 'plain text'} but earlier lines "
                               "are not; use one format for the whole file")
        conversational = kind
        if record["chosen"] == record["rejected"]:
            raise CalmRagError(f"{where}: 'chosen' and 'rejected' are identical; such a pair teaches nothing")
        records.append(record)
    if not records:
        raise CalmRagError(f"{path} holds no pairs: nothing to train")
    return records
