"""Multiple-choice cot samples that state no letter get one read after the answer label appended to their own
text; samples that state one are left alone and cost nothing."""

from __future__ import annotations

from typing import Any

from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.choice_continuation import continuation_prefill, top_label
from calm_rag.generation.sampling import SamplingConfig, sample_choice_responses
from calm_rag.questions import ParallelQuestion, Question, make_choices
from calm_rag.responses import ChoiceResponse
from calm_rag.voting.extraction import extract_letter
from tests.fakes import ScriptedChoiceGenerator

VERSIONS = {
    "en": Question("q1", "en", "Where?", make_choices(["town", "michigan", "hospital", "schools", "office"])),
    "de": Question("q1", "de", "Wo?", make_choices(["Stadt", "Michigan", "Krankenhaus", "Schulen", "Büro"])),
}
QUESTION = ParallelQuestion("q1", VERSIONS, "en", "C")
RAMBLING = "Kranke Menschen werden dort behandelt, weil Ärzte dort arbeiten und die Betten"


def sample(generator: ScriptedChoiceGenerator, **config: object) -> dict[str, list]:
    settings = {"languages": ("en", "de"), "samples": 2, "permute": False} | config
    return sample_choice_responses(generator, [QUESTION], SamplingConfig(**settings))[0]  # type: ignore[arg-type]


def test_a_sample_without_an_answer_line_gets_its_letter_after_the_label() -> None:
    generator = ScriptedChoiceGenerator({"en": ["Because sick people go there.\nAnswer: C"],
                                         "de": [RAMBLING, "Weil man dort Briefe schreibt.\nAntwort: E"]},
                                        continuations={"de": "Krankenhaus"})
    drawn = sample(generator)
    assert [(r.letter, r.letter_source) for r in drawn["de"]] == [("C", "continuation"), ("E", "text")]
    assert [(r.letter, r.letter_source) for r in drawn["en"]] == [("C", "text")] * 2
    assert len(generator.generated) == 1 and len(generator.scored) == 1
    [continued] = generator.scored
    assert len(continued) == 1  # only the German sample without an answer line
    assert continued[0].endswith("<assistant>" + RAMBLING + "\nAntwort:")  # its own words, then the label
    assert drawn["de"][0].text == RAMBLING  # the explanation is kept as the model wrote it


def test_samples_that_state_their_letter_cost_no_extra_call() -> None:
    generator = ScriptedChoiceGenerator({"en": ["Answer: C"], "de": ["Antwort: (C) Krankenhaus"]},
                                        continuations={"de": "Büro"})
    drawn = sample(generator)
    assert generator.scored == []
    assert {r.letter_source for items in drawn.values() for r in items} == {"text"}


def test_off_means_off() -> None:
    generator = ScriptedChoiceGenerator({"en": ["Answer: C"], "de": [RAMBLING]}, continuations={"de": "Krankenhaus"})
    drawn = sample(generator, continue_letters=False)
    assert generator.scored == []
    assert [(r.letter, r.letter_source) for r in drawn["de"]] == [(None, None)] * 2


def test_continued_letters_are_mapped_back_through_each_rotation() -> None:
    generator = ScriptedChoiceGenerator({"en": ["Answer is unclear"], "de": [RAMBLING]},
                                        continuations={"en": "hospital", "de": "Krankenhaus"})
    drawn = sample(generator, samples=3, permute=True)
    responses = drawn["en"] + drawn["de"]
    assert len({r.shown_label("C") for r in responses}) == 5  # "hospital" at every position over the rotations
    assert [(r.letter, r.letter_source) for r in responses] == [("C", "continuation")] * 6
    for prompt, response in zip(generator.scored[0], responses):  # each was read in the rotation it was shown
        assert f"{response.shown_label('C')}. {response.shown.choice_text(response.shown_label('C'))}" in prompt


def test_no_preference_after_the_label_is_no_letter() -> None:
    generator = ScriptedChoiceGenerator({"en": ["Answer: C"], "de": [RAMBLING]})  # knows nothing: all tied
    drawn = sample(generator)
    assert len(generator.scored) == 1
    assert [(r.letter, r.letter_source) for r in drawn["de"]] == [(None, None)] * 2
    assert top_label({"A": 0.4, "B": 0.4, "C": 0.2}) is None and top_label({"A": 0.3, "B": 0.7}) == "B"


def test_the_prefill_is_the_model_text_then_the_localized_label() -> None:
    assert continuation_prefill("  Weil es so ist.\n", "de") == "Weil es so ist.\nAntwort:"
    assert continuation_prefill("", "zh") == "答案："


WATER = ParallelQuestion("water", {
    "en": Question("water", "en", "Where do you drink water?", make_choices(["desert", "kitchen", "moon", "forest"])),
    "de": Question("water", "de", "Wo trinkt man Wasser?", make_choices(["Wüste", "Küche", "Mond", "Wald"])),
}, "en", "B")


def check_on_engine(generator: Any, reproducible: bool = True) -> list[ChoiceResponse]:
    """Sample WATER on a real engine (a tiny random model writes a few random tokens, never an answer line) and
    check each continued letter against the engine's own distribution after that sample's text and label,
    mapped back through the sample's rotation.

    Then sample again with the continuation off: no letter comes from a continuation, and each letter is the one
    the text states. Only a reproducible engine is also held to writing the same texts for the same seed:
    llama.cpp's logits shift in the last bits with how its slots are batched and its prompt cache, and the tiny
    random model's near-flat distribution turns that into other tokens (CI saw it)."""
    generation = GenerationConfig(max_new_tokens=6, temperature=1.0, seed=3)
    config = SamplingConfig(languages=("en", "de"), samples=2, permute=True, generation=generation)
    responses = [r for items in sample_choice_responses(generator, [WATER], config)[0].values() for r in items]
    continued = [r for r in responses if r.letter_source == "continuation"]
    assert continued and all(r.letter is not None for r in responses)
    for response in continued:
        assert extract_letter(response.text, response.lang, response.shown.choices) is None
        prompt = generator.render(response.prompt, prefill=continuation_prefill(response.text, response.lang))
        [distribution] = generator.label_distributions([prompt], [response.shown.labels])
        if reproducible:
            assert response.letter == response.label_map[max(distribution, key=distribution.get)]
        else:  # the same argmax up to the last bits the engine moves between calls
            assert distribution[response.shown_label(response.letter)] >= max(distribution.values()) - 1e-3
    off = sample_choice_responses(generator, [WATER], SamplingConfig(
        languages=("en", "de"), samples=2, permute=True, generation=generation, continue_letters=False))[0]
    alone = [r for items in off.values() for r in items]
    for response in alone:
        stated = extract_letter(response.text, response.lang, response.shown.choices)
        assert response.letter == (None if stated is None else response.label_map[stated])
        assert response.letter_source == (None if stated is None else "text")
    if reproducible:
        assert [r.text for r in alone] == [r.text for r in responses]  # same seed, same samples
        assert [r.letter for r in alone] == [None if r.letter_source == "continuation" else r.letter
                                             for r in responses]
    return responses


def test_continuation_on_the_tiny_transformers_model(tiny_transformers: Any) -> None:
    responses = check_on_engine(tiny_transformers)
    assert any(r.text.strip() for r in responses)  # real text went before the label, not only the label
