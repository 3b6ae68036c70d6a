"""Sample -> vote -> threshold -> pairs, with the deterministic fake generator (no model)."""

from pathlib import Path

from calm_rag.data.parallel import load_parallel_dataset
from calm_rag.generation.translation import Translator
from calm_rag.training.choice_round import build_pairs, choose_target, sample_round, samples_from_records, vote_margin
from calm_rag.training.config import CalmTrainConfig
from calm_rag.training.report import chosen_letter, letter_warnings, round_metrics
from calm_rag.voting.vote import cross_lingual_vote
from tests.fakes import FakeGenerator

COT = CalmTrainConfig(languages=("en", "de", "zh"), samples=2, mode="cot")
# en and zh know the answer is the milk's fridge; de insists on the shelf: de is outvoted everywhere.
KNOWLEDGE = {"en": "fridge", "de": "Regal", "zh": "冰箱"}


def test_threshold_skips_ties_and_weak_majorities() -> None:
    tie = cross_lingual_vote({"en": [{"A": 1.0}], "de": [{"B": 1.0}]}, "ABCDE")
    assert tie.winner == "A" and tie.tied  # the tie-break still names a winner ...
    assert choose_target(tie, COT) == (None, "tied")  # ... but it is no training target
    weak = cross_lingual_vote({"en": [{"A": 1.0}, {"A": 1.0}], "de": [{"B": 1.0}, {"C": 1.0}]}, "ABCDE")
    assert weak.support == 0.5 and choose_target(weak, COT) == ("A", "target")
    stricter = CalmTrainConfig(languages=("en", "de"), min_support=0.6)
    assert choose_target(weak, stricter) == (None, "below_threshold")
    assert choose_target(cross_lingual_vote({"en": [{}]}, "AB"), COT) == (None, "abstained")


def test_direct_threshold_is_a_soft_vote_margin() -> None:
    direct = CalmTrainConfig(languages=("en", "de"), mode="direct", min_margin=0.1)
    close = cross_lingual_vote({"en": [{"A": 0.40, "B": 0.35, "C": 0.25}], "de": [{"A": 0.38, "B": 0.36, "C": 0.26}]})
    assert round(vote_margin(close), 3) == 0.035 and choose_target(close, direct) == (None, "below_threshold")
    clear = cross_lingual_vote({"en": [{"A": 0.8, "B": 0.2}], "de": [{"A": 0.6, "B": 0.4}]})
    assert choose_target(clear, direct) == ("A", "target")
    soft_tie = cross_lingual_vote({"en": [{"A": 0.6, "B": 0.4}], "de": [{"A": 0.4, "B": 0.6}]}, "AB")
    assert choose_target(soft_tie, direct) == (None, "tied")


def test_cot_round_pairs_with_translation(dataset: Path) -> None:
    questions = load_parallel_dataset(dataset, COT.languages, "train")
    generator = FakeGenerator(KNOWLEDGE)
    samples = sample_round(generator, questions, COT, round_number=1)  # type: ignore[arg-type]
    assert all(item.status == "target" and item.target == "A" for item in samples)
    pairs = build_pairs(samples, COT, Translator(generator).translate_many, round_number=1)  # type: ignore[arg-type]
    # every German response (2 per question) is rejected; no German response agrees, so the chosen
    # explanation is the English one translated into German
    assert len(pairs) == 2 * len(questions)
    assert all(pair["lang"] == "de" and pair["translated"] and pair["round"] == 1 for pair in pairs)
    first = pairs[0]
    assert first["prompt"][0]["role"] == "user" and first["chosen"][0]["role"] == "assistant"
    assert first["chosen"][0]["content"].startswith("[de] ")  # the fake translator's mark
    assert "Kühlschrank" in first["chosen"][0]["content"].splitlines()[-1]
    assert "Regal" in first["rejected"][0]["content"].splitlines()[-1]
    # the chosen letter is written in the rejected response's (rotated) label space
    assert chosen_letter(first) == first["chosen"][0]["content"].splitlines()[-1].split(": ")[1][0]

    metrics = round_metrics(1, samples, pairs, COT.languages, [], COT.letter_warn_share)
    assert metrics["targets"] == len(questions) and metrics["unanimous"] == 0
    assert metrics["pairs"]["by_language"] == {"de": 8} and metrics["pairs"]["translated_share"] == 1.0
    assert metrics["target_letters"] == {"A": 1.0}  # every consensus is option A (the fridge) ...
    assert len(metrics["written_target_letters"]) > 1  # ... but rotation spreads the letters the model writes
    assert metrics["answer_letters_by_language"]["de"] == {"B": 1.0}
    assert metrics["target_accuracy"] == 0.25  # gold letters cycle A, B, C, D


def test_samples_round_trip(dataset: Path) -> None:
    questions = load_parallel_dataset(dataset, COT.languages, "train")
    samples = sample_round(FakeGenerator(KNOWLEDGE), questions, COT, round_number=1)  # type: ignore[arg-type]
    records = [item.to_record(1) for item in samples]
    assert records[0]["languages"]["de"][0]["letter"] == "B" and records[0]["vote"]["winner"] == "A"
    again = samples_from_records(questions, records, COT, "cache")
    assert [item.responses for item in again] == [item.responses for item in samples]
    assert [item.target for item in again] == [item.target for item in samples]


def test_letter_dominance_warning() -> None:
    skewed = ["C"] * 8 + ["A", "B", "D"]
    warnings = letter_warnings(skewed, ["A", "B", "C", "D", "E"] * 3, limit=0.5)
    assert len(warnings) == 1 and "73% of the consensus answers are 'C'" in warnings[0]
    assert letter_warnings(["A", "B", "C", "D", "E"] * 3, ["A", "B", "C", "D", "E"] * 3, 0.5) == []
    assert letter_warnings(["C"] * 5, ["C"] * 5, 0.5) == []  # too few targets to tell
