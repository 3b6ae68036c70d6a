"""Open-question sampling: every question in every language, K free-form answers each, and a short answer
span for every one of them.

The model is asked to end with a localized answer line ("Antwort: ..."), but small models often do not, or
write a whole sentence there; a sentence neither matches the gold nor clusters with other languages'
answers. So after the free-form pass, every sample without a short answer line gets its turn continued:
the prompt, the model's own explanation, then the answer label ("Antwort:"), decoded greedily for a few
tokens up to the end of the line - one more batched call, on any engine, that only ever adds a span.
Even there a small model sometimes restates the question as a sentence ("Il y a sept continents sur la
Terre : Asie, Europe, ..."); such a span is cut to its statement by rules (`shorten_span`, source
`shortened`), so with the continuation on every sample that said anything has a short span.

Where the engine constrains decoding (llama.cpp), `constrain_spans` asks for the format in the sampling pass
itself instead: a grammar (`answer_line_grammar`) lets the model write at most `EXPLANATION_LINES` lines and then
requires the answer label and a span of at most 60 characters, so the continuation is left with the samples
that ran out of tokens first. Other engines ignore the grammar and the continuation does all of it.

Then each span not in English gets its English gloss (`gloss_responses`, one more batched call of short
translations), which the clustering compares as well: "珠穆朗玛峰" and "Mount Everest" are one answer that
neither the embedder's cosine nor a shared sound shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig, Generator, Progress
from calm_rag.generation.translation import PIVOT_LANGUAGE, Translator
from calm_rag.prompts import Message, Passage, answer_prefill, open_messages
from calm_rag.questions import ParallelQuestion
from calm_rag.responses import OpenResponse
from calm_rag.voting.spans import SpanReading, first_span_line, needs_continuation, shorten_span, split_response

SPAN_TOKENS = 24
"""New tokens for a continued span: enough for a name, a number with its unit or a date."""
EXPLANATION_LINES = 6
"""Lines of explanation the grammar allows before the answer line."""
LINE_CHARS = 300
"""Characters per explanation line the grammar allows. A sample whose token budget ends first still has no
answer line: the continuation then asks for it, as on engines without grammars."""


NOT_A_BREAK = r"[^\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]"
"""GBNF: any character that does not end a line for `str.splitlines`, which the span reading uses."""


def _gbnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def answer_line_grammar(lang: str) -> str:
    """GBNF: up to `EXPLANATION_LINES` explanation lines, then `lang`'s answer label and a span of 1-60 characters
    on its own line; decoding ends there."""
    return (f"root ::= line{{0,{EXPLANATION_LINES}}} {_gbnf_literal(answer_prefill(lang))} \" \"? span\n"
            f"line ::= {NOT_A_BREAK}{{0,{LINE_CHARS}}} \"\\n\"\n"
            f"span ::= {NOT_A_BREAK}{{1,60}}\n")


def continuation_prefill(text: str, reading: SpanReading, lang: str) -> str:
    """What follows the assistant turn's start when the span is asked for: the model's own words (only its
    explanation when it wrote a long answer line, everything when it wrote none), then the answer label."""
    body = reading.explanation if reading.source == "answer_line" else text.strip()
    return (body + "\n" if body else "") + answer_prefill(lang)


def sample_open_responses(generator: Generator, questions: Sequence[ParallelQuestion], languages: Sequence[str],
                          samples: int, generation: GenerationConfig,
                          passages: Sequence[Sequence[Passage]] | None = None,
                          progress: Progress | None = None, continue_spans: bool = True,
                          constrain_spans: bool = False) -> list[dict[str, list[OpenResponse]]]:
    """For each question: language -> its `samples` responses, in one batched generate call (plus one short
    greedy call for the spans to continue, unless `continue_spans` is off). A question is sampled in the
    given languages it has a version in. `constrain_spans`: decode under `answer_line_grammar` where the engine
    can (`Generator.constrains_decoding`; elsewhere the one batched call stays)."""
    slots: list[tuple[int, str, tuple[Message, ...]]] = []
    results: list[dict[str, list[OpenResponse]]] = []
    for number, question in enumerate(questions):
        present = [lang for lang in languages if lang in question.versions]
        if not present:
            raise CalmRagError(f"question {question.id} has no version in any of {', '.join(languages)}")
        results.append({lang: [] for lang in present})
        context = passages[number] if passages else ()
        for lang in present:
            prompt = tuple(open_messages(question.versions[lang].question, lang, context, generator.special_tokens))
            slots.extend((number, lang, prompt) for _ in range(samples))
    rendered = [generator.render(prompt) for _, _, prompt in slots]
    if constrain_spans and generator.constrains_decoding:  # one call per language: each grammar allows its label
        outputs = [""] * len(slots)
        for lang in dict.fromkeys(lang for _, lang, _ in slots):
            indices = [index for index, (_, code, _) in enumerate(slots) if code == lang]
            constrained = replace(generation, grammar=answer_line_grammar(lang))
            for index, text in zip(indices, generator.generate([rendered[i] for i in indices], constrained,
                                                               progress=progress)):
                outputs[index] = text
    else:
        outputs = generator.generate(rendered, generation, progress=progress)
    readings = [split_response(text, lang) for (_, lang, _), text in zip(slots, outputs)]
    spans = [(reading.span, reading.source) for reading in readings]
    pending = [index for index, reading in enumerate(readings) if needs_continuation(reading)] if continue_spans else []
    if pending:
        prompts = [generator.render(slots[i][2], prefill=continuation_prefill(outputs[i], readings[i], slots[i][1]))
                   for i in pending]
        greedy = replace(generation, temperature=0.0, max_new_tokens=SPAN_TOKENS, grammar=None)
        for index, continued in zip(pending, generator.generate(prompts, greedy)):
            span, source = first_span_line(continued), "continuation"
            if not span:  # the continuation stated nothing: the model's own span, however long
                span, source = spans[index]
            short = shorten_span(span, slots[index][1])
            spans[index] = (short, source if short == span else "shortened")
    for (number, lang, prompt), text, reading, (span, source) in zip(slots, outputs, readings, spans):
        results[number][lang].append(OpenResponse(lang, text, span, reading.explanation, prompt, source))
    return results


def gloss_responses(translator: Translator, drawn: Sequence[dict[str, list[OpenResponse]]]
                    ) -> list[dict[str, list[OpenResponse]]]:
    """The responses with `gloss` set: every distinct span not in English translated into English, all in one
    batched call (through `translator`'s cache). A translation that changed nothing (a number, a date) is no
    gloss."""
    requests = list(dict.fromkeys((s.span.strip(), lang, PIVOT_LANGUAGE) for by_lang in drawn
                                  for lang, items in by_lang.items() if lang != PIVOT_LANGUAGE
                                  for s in items if s.span and s.span.strip()))
    glosses = {request: gloss for request, gloss in zip(requests, translator.translate_many(requests))}

    def glossed(response: OpenResponse) -> OpenResponse:
        text = response.span.strip() if response.span else ""
        gloss = glosses.get((text, response.lang, PIVOT_LANGUAGE))
        return replace(response, gloss=gloss if gloss and gloss != text else None)

    return [{lang: [glossed(s) for s in items] for lang, items in by_lang.items()} for by_lang in drawn]
