"""Prompts that start alike, evaluated once on llama.cpp: the shared start is computed in one slot, saved,
and restored into the slots the other prompts will take.

Why: a RAG question's prompts in L languages all start with the same passages (hundreds of tokens), and on a
CPU prompt evaluation is most of an answer's time (issue 14: three ~900-token prompts at ~60 tokens/s).
llama.cpp's prompt cache reuses a prefix only inside the slot that holds it, and concurrent prompts go to
different slots, so each evaluated the passages again. Here the common prefix goes first, alone, to slot 0;
`/slots/0?action=save` writes its KV cells to the server's slot folder and `action=restore` copies them into
the next slots (milliseconds). The prompts then pick the slots with the longest common prefix and evaluate
only their own tails. Outputs are unchanged: the cells hold what evaluating the prefix would have put there.
A call with several questions (an `eval` with retrieval) runs question by question (`prefix_groups`), each
question's passages shared before its prompts go.

Needs a llama.cpp server with a slot folder (`--slot-save-path DIR`; the in-process engine always has one)
and idle slots that keep their cells (`--no-cache-idle-slots`; otherwise llama.cpp moves idle slots to its
host-memory cache at the next task and only one prompt finds the prefix). A server without a slot folder
refuses the first save, and sharing stays off for that generator.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from itertools import count

from calm_rag.errors import CalmRagError
from calm_rag.generation.server_client import ServerClient

MIN_PREFIX_CHARS = 1000
"""Shorter common starts (the chat template's header, a one-line instruction) are not worth a round trip;
three demo passages are about 2,500 characters."""
_instances = count()


def shared_prefix(prompts: Sequence[str]) -> tuple[str, int]:
    """(the start every distinct prompt shares, cut after its last line break, how many distinct prompts);
    an empty start when it is shorter than `MIN_PREFIX_CHARS` or there is only one distinct prompt. Cutting
    at a line break keeps the prefix's tokens those of the full prompts (a token never spans a cut made
    there, except a run of line breaks, which costs a token or two)."""
    distinct = list(dict.fromkeys(prompts))
    if len(distinct) < 2:
        return "", len(distinct)
    common = os.path.commonprefix(distinct)
    common = common[:common.rfind("\n") + 1]
    return (common if len(common) >= MIN_PREFIX_CHARS else ""), len(distinct)


def prefix_groups(prompts: Sequence[str]) -> list[list[int]]:
    """The prompts' indices in groups to run one after another, each after its own shared start is put into the
    slots: prompts that begin with the same `MIN_PREFIX_CHARS` characters (one RAG question's passages, in every
    language) form a group, in order of first appearance. Prompts that share their start with no other distinct
    prompt run together in one group (nothing to share among them, so nothing to wait for). One group - all
    indices, as before - when fewer than two groups could share anything: a call without RAG runs unchanged."""
    keyed: dict[str, list[int]] = {}
    for index, prompt in enumerate(prompts):
        keyed.setdefault(prompt[:MIN_PREFIX_CHARS] if len(prompt) > MIN_PREFIX_CHARS else "", []).append(index)
    sharing = [group for key, group in keyed.items() if key and len({prompts[i] for i in group}) >= 2]
    if len(sharing) < 2:
        return [list(range(len(prompts)))]
    grouped = {index for group in sharing for index in group}
    alone = [index for index in range(len(prompts)) if index not in grouped]
    return sharing + ([alone] if alone else [])


class PrefixSharer:
    """Shares prompt prefixes across the slots of one llama.cpp server (see the module docstring)."""

    def __init__(self, client: ServerClient, model: str, slots: int) -> None:
        self.client = client
        self.model = model
        self.slots = slots
        self.enabled = True
        """False once the server refused a save (no slot folder): plain requests from then on."""
        self.filename = f"calm-rag-prefix-{os.getpid()}-{next(_instances)}.bin"
        """One file per generator, overwritten by each call: a long eval must not fill the server's disk."""
        self._lock = threading.Lock()

    def share(self, prompts: Sequence[str]) -> int:
        """Put the prompts' common prefix into as many slots as they will take; returns how many slots hold
        it (0: nothing shared). Only ever a speed-up: a refused restore leaves that slot to evaluate the
        prefix itself."""
        prefix, distinct = shared_prefix(prompts)
        targets = min(self.slots, distinct)
        if not prefix or not self.enabled or targets < 2:
            return 0
        with self._lock:  # one prefix at a time: two callers must not restore into each other's slots
            try:
                self.client.post("/completions", {"model": self.model, "prompt": prefix, "max_tokens": 0,
                                                  "temperature": 0.0, "id_slot": 0, "cache_prompt": True})
                self.client.post("/slots/0?action=save", {"filename": self.filename}, root=True)
            except CalmRagError:
                self.enabled = False  # no slot folder (HTTP 501)
                return 0
            shared = 1
            for slot in range(1, targets):
                try:
                    self.client.post(f"/slots/{slot}?action=restore", {"filename": self.filename}, root=True)
                    shared += 1
                except CalmRagError:
                    pass  # busy, or no room in the KV cache: that prompt evaluates the prefix itself
            return shared
