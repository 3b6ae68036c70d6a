"""Language of a chunk when its record does not say: py3langid, loaded once, on first use.

py3langid is a small numpy-only identifier (97 languages, no network, ~1 ms a text), which
is what lets every chunk carry a `lang` that cross-lingual voting and filters can rely on.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from typing import Any

_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
_ALIASES = {"wuu": "zh", "yue": "zh", "cmn": "zh", "nb": "no", "nn": "no"}
"""py3langid labels some Chinese as Wu; the rest of calm-rag knows Chinese as 'zh'."""


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import _get_identifier

    return _get_identifier()


def detect_language(text: str, among: Collection[str] | None = None) -> str | None:
    """ISO 639-1 code of `text` ('zh', 'ar', ...), or None when it has no letters to judge by.

    `among`: only these codes may come back (the most likely of them; None if none is ranked). A short
    question is easily mistaken for a close neighbour ("Wann entdeckte Scheele Sauerstoff?" ranks
    Luxembourgish first), so a caller that only handles some languages should say which."""
    if not _LETTERS.search(text):
        return None
    if among is None:
        code, _score = _identifier().classify(text)
        return _ALIASES.get(str(code), str(code))
    ranked = (_ALIASES.get(str(code), str(code)) for code, _score in _identifier().rank(text))
    return next((code for code in ranked if code in among), None)
