"""The dev split: the questions held out of a training selection, chosen the same way wherever it is asked for.

Choosing lr, beta, epochs or the LoRA rank on the test split would tune to the test. `calm-rag train --dev N`
holds out N of its selected questions (never sampled, so in no pair) and measures them while DPO trains;
`calm-rag eval --dev N` evaluates exactly those N, so a checkpoint can be read on the dev split with any engine.
Both call `split_dev` on the same selection (dataset, split, languages, limit), so they agree.

Which questions are held out is seeded by a constant (`DEV_SEED`), not by a run's seed: runs that differ in
their seed, lr or beta are compared on the same dev questions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from calm_rag.errors import CalmRagError
from calm_rag.questions import ParallelQuestion

DEV_SEED = 17
"""Seeds the choice of the held-out questions (independent of the run's `seed`, see the module docstring)."""


def split_dev(questions: Sequence[ParallelQuestion], count: int
              ) -> tuple[list[ParallelQuestion], list[ParallelQuestion]]:
    """(training questions, dev questions), each in the selection's order; `count` questions held out."""
    if count == 0:
        return list(questions), []
    if count >= len(questions):
        raise CalmRagError(f"--dev {count} would hold out all {len(questions)} selected questions and leave none to "
                           "train on; choose a smaller --dev")
    held = set(random.Random(DEV_SEED).sample(range(len(questions)), count))
    return ([question for index, question in enumerate(questions) if index not in held],
            [question for index, question in enumerate(questions) if index in held])
