"""Preference pairs made elsewhere (`calm-rag vote --pairs-out`, or any tool): read and check them.

A pairs file is JSONL with `prompt`, `chosen` and `rejected` per line, either all conversational
(lists of {role, content} messages, what `calm_rag.voting.choice_pairs` writes) or all plain strings, as TRL's
DPOTrainer accepts. Other fields (id, lang, majority, translated, margin) are kept for the metrics and
dropped before training. Every problem names the line and the field, because a bad line found
after an hour of training is an hour lost.

`select_pairs` narrows a file before training: pairs whose question's soft-vote lead (`margin`, written by
direct-mode `calm-rag train`) reaches a threshold, because on X-CSQA the chosen answer is right in 54% of all
pairs but in 81% of those with a lead of at least 0.2 (docs/results.md); and no pair of a question held out
as a dev question, which would otherwise measure the model on what it was trained on.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from calm_rag.data.jsonl import read_jsonl
from calm_rag.errors import CalmRagError

FIELDS = ("prompt", "chosen", "rejected")


ROLES = ("system", "user", "assistant")
"""The chat roles a pair may use: any other ("tool", "ipython", a typo) would be rendered by the chat template
as something the model was never prompted with, or fail inside the trainer an hour in."""


def _messages(value: list[Any], field: str, where: str) -> None:
    """Check a message list: {role, content} objects, roles from `ROLES`, string content; the answers
    (chosen, rejected) are the assistant's turn only."""
    if not value:
        raise CalmRagError(f"{where}: field {field!r} is an empty message list")
    for index, message in enumerate(value, start=1):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise CalmRagError(f"{where}: field {field!r} must be a non-empty string or a list of {{role, content}} "
                               f"messages (message {index} is not)")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            shown = role if not isinstance(role, str) or len(role) <= 20 else role[:17] + "..."
            raise CalmRagError(f"{where}: field {field!r} message {index} has role {shown!r}; roles are "
                               f"{', '.join(ROLES)}")
        if field != "prompt" and role != "assistant":
            raise CalmRagError(f"{where}: field {field!r} message {index} has role {role!r}; an answer is the "
                               "assistant's turn")
        if not isinstance(content, str):
            raise CalmRagError(f"{where}: field {field!r} message {index} has {type(content).__name__} content; "
                               "content must be a string")


METADATA = {"id": (str, int), "lang": (str,), "majority": (str,), "translated": (bool,), "margin": (float, int)}
"""Optional fields the metrics read, and their types (None is allowed: absent)."""


def _check_metadata(record: dict[str, Any], where: str) -> None:
    for name, types in METADATA.items():
        value = record.get(name)
        if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            raise CalmRagError(f"{where}: field {name!r} must be {' or '.join(t.__name__ for t in types)}, got "
                               f"{type(value).__name__}")


def _check_field(record: dict[str, Any], field: str, where: str) -> bool:
    """True for messages, False for a plain string; anything else is an error."""
    if field not in record:
        raise CalmRagError(f"{where}: missing field {field!r} (a pair needs {', '.join(FIELDS)})")
    value = record[field]
    if isinstance(value, list):
        _messages(value, field, where)
        return True
    if isinstance(value, str) and value.strip():
        return False
    raise CalmRagError(f"{where}: field {field!r} must be a non-empty string or a list of {{role, content}} messages")


def load_pairs_file(path: Path | str) -> list[dict[str, Any]]:
    """The records of a pairs file, checked line by line; an empty file is an error (nothing to train)."""
    path = Path(path)
    if not path.is_file():
        raise CalmRagError(f"pairs file {path} {'is not a file' if path.exists() else 'does not exist'}")
    records = []
    conversational: bool | None = None
    for number, record in read_jsonl(path):
        where = f"{path}:{number}"
        kinds = {_check_field(record, field, where) for field in FIELDS}
        _check_metadata(record, where)
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


def select_pairs(records: list[dict[str, Any]], min_margin: float | None = None,
                 dev_ids: Collection[str] = ()) -> list[dict[str, Any]]:
    """The pairs to train on: those whose `margin` is at least `min_margin` (all when None). A pair of a dev
    question is an error, not silently dropped: it means the file was made from other questions than the
    dev split assumes (another dataset, split or --dev count)."""
    held = [record for record in records if str(record.get("id")) in dev_ids]
    if held:
        ids = sorted({str(record["id"]) for record in held})
        raise CalmRagError(f"{len(held)} pairs come from {len(ids)} dev questions ({', '.join(ids[:3])}"
                           f"{', ...' if len(ids) > 3 else ''}); the dev split must be held out of the pairs: "
                           "use the dataset, --split and --dev the pairs were sampled with")
    if min_margin is None:
        return records
    unmarked = sum("margin" not in record for record in records)
    if unmarked:
        raise CalmRagError(f"{unmarked} of {len(records)} pairs have no 'margin' field, so --min-margin cannot "
                           "select them (direct-mode `calm-rag train` writes it; add it or drop --min-margin)")
    kept = [record for record in records if record["margin"] >= min_margin]
    if not kept:
        largest = max(record["margin"] for record in records)
        raise CalmRagError(f"no pair has a margin of at least {min_margin} (the largest is {largest:.3f}); "
                           "lower --min-margin")
    return kept
