"""Open-question sampling: every question in every language, K free-form answers each, in one batched call.

Each answer's short span is read right away (`calm_rag.voting.spans`), so voting and pairs work on spans.
"""

from __future__ import annotations

from collections.abc import Sequence

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig, Generator, Progress
from calm_rag.prompts import Message, Passage, open_messages
from calm_rag.questions import ParallelQuestion
from calm_rag.responses import OpenResponse
from calm_rag.voting.spans import split_response


def sample_open_responses(generator: Generator, questions: Sequence[ParallelQuestion], languages: Sequence[str],
                   samples: int, generation: GenerationConfig,
                   passages: Sequence[Sequence[Passage]] | None = None,
                   progress: Progress | None = None) -> list[dict[str, list[OpenResponse]]]:
    """For each question: language -> its `samples` responses, all in one batched generate call. A question
    is sampled in the given languages it has a version in."""
    slots: list[tuple[int, str, tuple[Message, ...]]] = []
    results: list[dict[str, list[OpenResponse]]] = []
    for number, question in enumerate(questions):
        present = [lang for lang in languages if lang in question.versions]
        if not present:
            raise CalmRagError(f"question {question.id} has no version in any of {', '.join(languages)}")
        results.append({lang: [] for lang in present})
        context = passages[number] if passages else ()
        for lang in present:
            prompt = tuple(open_messages(question.versions[lang].question, lang, context))
            slots.extend((number, lang, prompt) for _ in range(samples))
    outputs = generator.generate([generator.render(prompt) for _, _, prompt in slots], generation, progress=progress)
    for (number, lang, prompt), text in zip(slots, outputs):
        explanation, span = split_response(text, lang)
        results[number][lang].append(OpenResponse(lang, text, span, explanation, prompt))
    return results
