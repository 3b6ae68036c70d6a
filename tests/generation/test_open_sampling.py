"""Open-question sampling gives every sample a short span: the model's own answer line when it wrote a short
one, else the continuation of its turn after the localized answer label."""

from __future__ import annotations

from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.open_sampling import SPAN_TOKENS, gloss_responses, sample_open_responses
from calm_rag.generation.translation import Translator
from calm_rag.questions import ParallelQuestion, Question
from calm_rag.responses import OpenResponse
from calm_rag.voting.spans import is_short_span
from tests.fakes import ScriptedGenerator

QUESTION = ParallelQuestion("spider", {"de": Question("spider", "de", "Wie viele Beine hat eine Spinne?"),
                                       "en": Question("spider", "en", "How many legs does a spider have?")}, "de")
RAMBLING = "Es gibt 8 Füße auf einem Spinnwurm. Dies ist ein allgemeines Merkmal aller Spinnentiere, die man kennt."


class CountingConfigs(ScriptedGenerator):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.configs: list[GenerationConfig] = []

    def generate(self, prompts, config=GenerationConfig(), progress=None):  # type: ignore[no-untyped-def]
        self.configs.append(config)
        return super().generate(prompts, config, progress)


def test_missing_or_long_answer_lines_are_continued_after_the_label() -> None:
    generator = CountingConfigs({"de": [RAMBLING, f"Antwort: {RAMBLING}"], "en": ["Answer: eight"]},
                                continuations={"de": " 8\nWeil Spinnen acht Beine haben."})
    drawn = sample_open_responses(generator, [QUESTION], ["de", "en"], 2, GenerationConfig(temperature=0.7))[0]
    assert [(r.span, r.span_source) for r in drawn["de"]] == [("8", "continuation"), ("8", "continuation")]
    assert [(r.span, r.span_source) for r in drawn["en"]] == [("eight", "answer_line")] * 2
    sampling, spans = generator.calls
    assert len(sampling) == 4 and len(spans) == 2  # only the two German samples were continued
    assert spans[0].endswith(RAMBLING + "\nAntwort:")  # no answer line: the whole text, then the label
    assert spans[1].endswith("<assistant>Antwort:")  # a long answer line: its (empty) explanation, then the label
    assert generator.configs[1].temperature == 0.0 and generator.configs[1].max_new_tokens == SPAN_TOKENS
    assert drawn["de"][0].text == RAMBLING  # the model's own words are kept beside the span


def test_a_continuation_that_states_nothing_keeps_the_fallback_cut_short_and_off_means_off() -> None:
    generator = ScriptedGenerator({"de": [RAMBLING, "Die Antwort ist acht"], "en": ["Answer: eight"]})
    drawn = sample_open_responses(generator, [QUESTION], ["de", "en"], 2, GenerationConfig())[0]
    assert [(r.span, r.span_source) for r in drawn["de"]] == [("Es gibt 8 Füße auf einem Spinnwurm", "shortened"),
                                                             ("acht", "phrase")]
    generator = ScriptedGenerator({"de": [RAMBLING], "en": ["Answer: eight"]}, continuations={"de": " 8"})
    drawn = sample_open_responses(generator, [QUESTION], ["de", "en"], 1, GenerationConfig(), continue_spans=False)[0]
    assert drawn["de"][0].span_source == "last_line" and len(generator.calls) == 1
    assert drawn["de"][0].span == RAMBLING.rstrip(".")  # off: the model's own line, however long


def test_a_continuation_that_restates_the_question_is_cut_to_a_short_span() -> None:
    """What the 1.5B wrote after "Réponse :" on the factual set: a sentence, then a list cut by the token cap."""
    generator = ScriptedGenerator(
        {"fr": ["Les continents sur la Terre sont : Asie, Europe, Amérique, Océanie."], "en": ["Answer: seven"]},
        continuations={"fr": " Il y a sept continents sur la Terre : Asie, Europe, Amérique, Océanie, Afr"})
    question = ParallelQuestion("continents", {"fr": Question("continents", "fr", "Combien de continents ?"),
                                               "en": Question("continents", "en", "How many continents?")}, "fr")
    drawn = sample_open_responses(generator, [question], ["fr", "en"], 2, GenerationConfig(temperature=0.7))[0]
    assert [(r.span, r.span_source) for r in drawn["fr"]] == [("Il y a sept continents sur la Terre", "shortened")] * 2
    assert all(is_short_span(r.span) for items in drawn.values() for r in items)


def test_spans_not_in_english_get_an_english_gloss_in_one_call() -> None:
    generator = ScriptedGenerator({})
    responses = {"en": ["The Nile", "Nile"], "zh": ["尼罗河", "尼罗河"], "de": ["Der Nil", None, "1869"]}
    drawn = [{lang: [OpenResponse(lang, span or "", span, "", ()) for span in spans]
              for lang, spans in responses.items()}]
    [glossed] = gloss_responses(Translator(generator), drawn)  # type: ignore[arg-type]
    assert {lang: [s.gloss for s in items] for lang, items in glossed.items()} == {
        "en": [None, None], "zh": ["[en] 尼罗河", "[en] 尼罗河"], "de": ["[en] Der Nil", None, None]}
    assert [len(call) for call in generator.calls] == [2]  # distinct spans once; English, numbers, None skipped
    assert [s.span for s in glossed["de"]] == ["Der Nil", None, "1869"]  # the spans themselves are kept


def test_the_answer_line_grammar_ends_with_the_languages_own_label() -> None:
    from calm_rag.generation.open_sampling import NOT_A_BREAK, answer_line_grammar

    grammar = answer_line_grammar("zh")
    assert grammar.startswith('root ::= line{0,6} "答案：" " "? span') and f"span ::= {NOT_A_BREAK}{{1,60}}" in grammar
    assert '"Antwort:"' in answer_line_grammar("de") and "答案" not in answer_line_grammar("de")


def test_constrained_spans_split_the_batch_by_language_only_where_the_engine_applies_grammars() -> None:
    """Each language needs its own grammar, so sampling under grammars costs one call per language; an engine
    that ignores grammars keeps the one batched call (and gets no grammar to ignore)."""
    scripts = {"de": ["Antwort: acht"], "en": ["Answer: eight"]}
    free = CountingConfigs(scripts)
    sample_open_responses(free, [QUESTION], ["de", "en"], 2, GenerationConfig(), constrain_spans=True)
    assert len(free.calls) == 1 and len(free.calls[0]) == 4 and free.configs[0].grammar is None

    class Constraining(CountingConfigs):
        constrains_decoding = True

    constrained = Constraining(scripts)
    drawn = sample_open_responses(constrained, [QUESTION], ["de", "en"], 2, GenerationConfig(), constrain_spans=True)[0]
    assert [len(call) for call in constrained.calls] == [2, 2]
    assert ['"Antwort:"' in c.grammar for c in constrained.configs] == [True, False]  # type: ignore[operator]
    assert [r.span for r in drawn["de"] + drawn["en"]] == ["acht", "acht", "eight", "eight"]
