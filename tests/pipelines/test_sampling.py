from calm_rag.generation.sampling import SamplingConfig, sample_choice_responses
from calm_rag.questions import ParallelQuestion, Question, make_choices
from calm_rag.voting.vote import vote_choice_responses
from tests.fakes import FakeGenerator

VERSIONS = {
    "en": Question("q1", "en", "Where?", make_choices(["town", "michigan", "hospital", "schools", "office"])),
    "de": Question("q1", "de", "Wo?", make_choices(["Stadt", "michigan", "Krankenhaus", "Schulen", "Büro"])),
    "zh": Question("q1", "zh", "哪里？", make_choices(["镇", "密歇根州", "医院", "学生", "办公大楼"])),
}
QUESTION = ParallelQuestion("q1", VERSIONS, "en", "C")
KNOWS = {"en": "hospital", "de": "Krankenhaus", "zh": "Schulen"}  # zh "knows" nothing that matches -> unparsed


def test_k_samples_per_language_in_order_and_rotation_maps_back() -> None:
    generator = FakeGenerator(KNOWS)
    config = SamplingConfig(languages=("en", "de", "zh"), samples=3, permute=True)
    [responses] = sample_choice_responses(generator, [QUESTION], config)  # type: ignore[arg-type]
    assert list(responses) == ["en", "de", "zh"]
    assert all(len(items) == 3 for items in responses.values())
    assert generator.generate_calls == [9]  # all languages x samples in one call
    # every rotation shows "hospital" under another letter, yet each answer maps back to C
    shown_letters = {r.shown_label("C") for r in responses["en"] + responses["de"]}
    assert len(shown_letters) > 1
    assert [r.letter for r in responses["en"] + responses["de"]] == ["C"] * 6
    assert [r.letter for r in responses["zh"]] == [None] * 3
    vote = vote_choice_responses(QUESTION, responses)
    assert vote.winner == "C" and vote.consistency == 1.0


def test_without_permutation_every_sample_sees_the_original_order() -> None:
    config = SamplingConfig(languages=("en",), samples=2, permute=False)
    [responses] = sample_choice_responses(FakeGenerator(KNOWS), [QUESTION], config)  # type: ignore[arg-type]
    assert all(r.shown == VERSIONS["en"] for r in responses["en"])


def test_direct_mode_gives_soft_ballots_in_original_labels() -> None:
    config = SamplingConfig(languages=("en", "de"), samples=2, mode="direct")
    [responses] = sample_choice_responses(FakeGenerator(KNOWS), [QUESTION], config)  # type: ignore[arg-type]
    for response in responses["en"]:
        assert abs(sum(response.distribution.values()) - 1) < 1e-9
        assert max(response.distribution, key=response.distribution.get) == "C" == response.letter
    assert vote_choice_responses(QUESTION, responses).winner == "C"
