"""What a corpus record must look like before it is chunked, embedded and stored.

Everything a record carries ends up somewhere that trusts it: `text` in the embedder and in prompts,
`id` in search output, `lang` in prompts and in language filters, the rest as JSON metadata in SQLite.
So each field is checked here, once, and a record that fails is refused with one line naming file and
line (or skipped with a warning under `--skip-bad-lines`), never stored half-right:

- `text`: a non-empty string.
- `id` (optional): a string or an integer, at most `MAX_ID_CHARS` characters, no control characters
  (ids are printed in tables and JSON lines).
- `lang` (optional): a registry code or a BCP-47-shaped tag (`is_language_tag`); missing, null or ""
  means "detect it". Anything else is refused rather than replaced by detection: a record that says
  `"lang": "\\"></passage>..."` is hostile or broken, and guessing over it would hide that.
- the rest (metadata): nested at most `MAX_DEPTH` levels, finite numbers only (JSON has no NaN or
  Infinity; Python's parser accepts them), and every string valid Unicode (an escaped lone surrogate
  such as `"\\ud800"` parses, but cannot be stored as UTF-8).
"""

from __future__ import annotations

import math
import re
from typing import Any

from calm_rag.languages import is_language_tag

MAX_ID_CHARS = 512
MAX_DEPTH = 32
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _value_problem(value: Any) -> str | None:
    """Depth, number and string problems anywhere in `value` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, float) and not math.isfinite(item):
            return f"holds {item}, which JSON does not allow"
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "holds an unpaired surrogate escape (like \\ud800), which is not valid Unicode"
        elif isinstance(item, dict):
            stack.extend((key, depth + 1) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


def check_lang(value: Any) -> str | None:
    """The problem with a `lang` value, or None when it is usable (or absent: then it is detected)."""
    if value is None or value == "" or is_language_tag(value):
        return None
    return f"'lang' must be a language code like 'en' or 'pt-BR', got {_short(value)}"


def record_problem(record: dict[str, Any]) -> str | None:
    """Why `record` (one parsed .jsonl line) cannot be indexed, or None if it can."""
    if record.get("text") is None:
        return f"record has no 'text' field (fields: {', '.join(repr(key) for key in sorted(record)) or 'none'})"
    text = record["text"]
    if not isinstance(text, str) or not text.strip():
        return "'text' must be a non-empty string"
    raw_id = record.get("id")
    if raw_id is not None:
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
            return f"'id' must be a string or an integer, got {type(raw_id).__name__}"
        shown = str(raw_id)
        if len(shown) > MAX_ID_CHARS:
            return f"'id' is {len(shown)} characters long; at most {MAX_ID_CHARS} are allowed"
        if _CONTROL_CHARS.search(shown):
            return f"'id' {_short(shown)} contains control characters"
    problem = check_lang(record.get("lang"))
    if problem is not None:
        return problem
    problem = _value_problem(record)
    return f"record {problem}" if problem else None
