import json
from pathlib import Path

import pytest

from calm_rag.errors import CalmRagError
from calm_rag.training.pairs_file import load_pairs_file, select_pairs

PROMPT = [{"role": "user", "content": "Question?"}]


def pair(chosen: str = "Answer: A", rejected: str = "Answer: B") -> dict:
    return {"prompt": PROMPT, "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "lang": "en"}


def write(tmp_path: Path, rows: list) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_valid_files(tmp_path: Path) -> None:
    assert len(load_pairs_file(write(tmp_path, [pair(), pair("Answer: C")]))) == 2
    plain = {"prompt": "Q?", "chosen": "A", "rejected": "B"}
    assert load_pairs_file(write(tmp_path, [plain]))[0]["chosen"] == "A"


@pytest.mark.parametrize("rows, message", [
    ([pair(), {k: v for k, v in pair().items() if k != "rejected"}], r"pairs.jsonl:2: missing field 'rejected'"),
    ([{**pair(), "chosen": [{"role": "assistant"}]}], r"pairs.jsonl:1: field 'chosen' must be"),
    ([{**pair(), "prompt": "Question?"}], "mixes message lists and plain strings"),
    ([pair(), {"prompt": "Q", "chosen": "A", "rejected": "B"}], "pairs.jsonl:2: this line is plain text"),
    ([pair("same", "same")], "identical"),
    ([], "holds no pairs: nothing to train"),
    ([{**pair(), "margin": "high"}], "field 'margin' must be float or int, got str"),
])
def test_bad_files(tmp_path: Path, rows: list, message: str) -> None:
    with pytest.raises(CalmRagError, match=message):
        load_pairs_file(write(tmp_path, rows))


def test_select_pairs_by_margin_and_refuse_dev_questions() -> None:
    rows = [{**pair(), "id": "q1", "margin": 0.05}, {**pair(), "id": "q2", "margin": 0.2},
            {**pair(), "id": "q3", "margin": 0.4}]
    assert select_pairs(rows) == rows
    assert [row["id"] for row in select_pairs(rows, 0.2)] == ["q2", "q3"]  # the threshold itself is kept
    with pytest.raises(CalmRagError, match=r"no pair has a margin of at least 0.5 \(the largest is 0.400\)"):
        select_pairs(rows, 0.5)
    with pytest.raises(CalmRagError, match="1 of 4 pairs have no 'margin' field"):
        select_pairs([*rows, pair()], 0.1)
    with pytest.raises(CalmRagError, match=r"2 pairs come from 2 dev questions \(q1, q3\)"):
        select_pairs(rows, None, {"q1", "q3"})
