"""Property-based: every data reader and config loader, given malformed input, either loads it cleanly (and
what it returns is consistent) or raises `CalmRagError`, never another exception; the commands that read
them (`vote FILE`, `train --pairs FILE`, `eval DIR`, and `--config` of train and eval) exit with code 2 and
one line on stderr, show no traceback, and change nothing on disk.

Hypothesis mutates good records (fields dropped or replaced by any JSON value: huge or deep, NaN, wrong
types; choice lists too long, repeated, unlabelled), writes raw bad lines (invalid JSON or UTF-8, lone
surrogate escapes, 5000-digit numbers, nesting past the parser's limit) and TOML tables of wrong types and
ranges. The number of generated cases per reader is printed at the end of `pytest` (conftest.py).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.config import load_settings
from calm_rag.data import load_open_dataset, load_parallel_dataset
from calm_rag.data.samples import load_samples
from calm_rag.errors import CalmRagError
from calm_rag.evaluation.config import load_eval_config, load_open_eval_config
from calm_rag.questions import MAX_QUESTION_CHARS, OPTION_LABELS
from calm_rag.training.config import CalmTrainConfig
from calm_rag.training.pairs_file import ROLES, load_pairs_file
from tests.data.conftest import FUZZ_CASES, choice_record

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
runner = CliRunner()

# ---- malformed JSON lines ------------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40) | st.floats()
           | st.text(max_size=30) | st.sampled_from(["", " ", "A", "en", "xx", "B", "\n", "x" * 9000]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)
raw_lines = st.sampled_from([
    b"{", b"[]", b"null", b'"text"', b"42", b"NaN", b'{"id": 1,}', b"\xff\xfe\x00bad utf-8",
    b'{"id": "q1", "lang": "en", "question": "\\ud800 half"}', b'{"n": ' + b"9" * 5000 + b"}",
    b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b'{"a": ' + b"[" * 60 + b"]" * 60 + b"}",
])
choice_items = st.one_of(
    st.fixed_dictionaries({"label": st.sampled_from([*OPTION_LABELS, "a", "K", "1", "", "AB"]) | json_values,
                           "text": st.sampled_from(["x", "y", "", " "]) | json_values}),
    st.fixed_dictionaries({"text": st.text(max_size=5)}), json_values)


@st.composite
def mutated(draw: st.DrawFn, good: dict[str, Any], extra_keys: tuple[str, ...] = ()) -> bytes:
    """`good` with one to three fields dropped or replaced (choices with a list of any length), or a raw bad
    line; as UTF-8 JSON, ASCII-escaped or not."""
    if draw(st.integers(0, 5)) == 0:
        return draw(raw_lines)
    record = dict(good)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted({*record, *extra_keys})))
        action = draw(st.sampled_from(["drop", "value", "choices"]))
        if action == "drop":
            record.pop(key, None)
        elif action == "choices":
            record["choices"] = draw(st.lists(choice_items, max_size=30))
        else:
            record[key] = draw(json_values)
    return json.dumps(record, ensure_ascii=draw(st.booleans())).encode("utf-8")


def lines_with(bad: bytes, good: list[dict[str, Any]], position: int) -> bytes:
    rows = [json.dumps(row, ensure_ascii=False).encode("utf-8") for row in good]
    rows.insert(position % (len(rows) + 1), bad)
    return b"\n".join(rows) + b"\n"


@contextmanager
def folder() -> Iterator[Path]:
    """A fresh folder per example (Hypothesis runs many examples in one test function)."""
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def loads_or_refuses(reader: str, load: Callable[[], Any]) -> Any:
    """The property: `load()` returns, or raises CalmRagError with a one-line message; None when refused."""
    FUZZ_CASES[reader] += 1
    try:
        return load()
    except CalmRagError as error:
        assert str(error) and "\n" not in str(error), repr(str(error))
        return None


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() if path.is_file() else b"<dir>"
            for path in sorted(root.rglob("*"))}


def exits_2_in_one_line(args: list[str], root: Path) -> None:
    before = snapshot(root)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert snapshot(root) == before


# ---- dataset readers ---------------------------------------------------------------------------------------

def choice_rows(lang: str) -> list[dict[str, Any]]:
    return [choice_record(f"q{n}", lang, texts=(f"a{n}", f"b{n}", f"c{n}"), answer="ABC"[n], split="test")
            for n in range(3)]


def open_rows(lang: str) -> list[dict[str, Any]]:
    return [{"id": f"o{n}", "lang": lang, "question": f"Capital {n}?", "answer": f"city {n}"} for n in range(3)]


def write_parallel(root: Path, rows: Callable[[str], list[dict[str, Any]]], bad: bytes, lang: str, at: int) -> Path:
    data = root / "data"
    data.mkdir()
    for code in ("en", "de"):
        content = lines_with(bad, rows(code), at) if code == lang else lines_with(
            json.dumps(rows(code)[0]).encode(), rows(code), at)  # keep the line counts parallel
        (data / f"{code}.jsonl").write_bytes(content)
    return data


def consistent(questions: list[Any]) -> None:
    for question in questions:
        labels = {version.labels for version in question.versions.values()}
        assert len(labels) == 1
        for version in question.versions.values():
            assert 0 < len(version.question) <= MAX_QUESTION_CHARS and version.lang in ("en", "de")
            assert not version.choices or (2 <= len(version.choices) <= 10 and version.answer in (None,
                                                                                                  *version.labels))


@FUZZ
@given(bad=mutated(choice_record("q9", "en"), ("split", "id")), lang=st.sampled_from(["en", "de"]),
       at=st.integers(0, 3))
def test_parallel_choice_folder(bad: bytes, lang: str, at: int) -> None:
    with folder() as root:
        data = write_parallel(root, choice_rows, bad, lang, at)
        loaded = loads_or_refuses("parallel multiple-choice folder",
                                  lambda: load_parallel_dataset(data, ["en", "de"], split=None))
        if loaded is not None:
            consistent(loaded)


@FUZZ
@given(bad=mutated({"id": "o9", "lang": "en", "question": "Why?", "answer": "so"}, ("split", "choices")),
       lang=st.sampled_from(["en", "de"]), at=st.integers(0, 3))
def test_parallel_open_folder(bad: bytes, lang: str, at: int) -> None:
    with folder() as root:
        data = write_parallel(root, open_rows, bad, lang, at)
        loaded = loads_or_refuses("parallel open-question folder", lambda: load_open_dataset(data, ["en", "de"]))
        if loaded is not None:
            consistent(loaded)
            assert all(not version.choices for q in loaded for version in q.versions.values())


@FUZZ
@given(bad=mutated({"qid": "en|s9", "lang": "en", "squad_id": "s9", "para_id": "0|0", "question": "When?",
                    "answer": "1773"}, ("split",)), at=st.integers(0, 6))
def test_xquad_queries(bad: bytes, at: int) -> None:
    good = [{"qid": f"{lang}|s{n}", "lang": lang, "squad_id": f"s{n}", "para_id": "0|0", "question": f"Q{n}?",
             "answer": str(n)} for n in range(3) for lang in ("en", "de")]
    with folder() as root:
        (root / "queries.jsonl").write_bytes(lines_with(bad, good, at))
        loaded = loads_or_refuses("XQuAD-R queries.jsonl", lambda: load_open_dataset(root, ["en", "de"]))
        if loaded is not None:
            consistent(loaded)


SAMPLE = choice_record("q9", "de", texts=("Stadt", "Krankenhaus", "Schule"), responses=["Antwort: B"])
GOOD_SAMPLES = [choice_record("q1", "en", responses=["Answer: B", "B"]),
                choice_record("q1", "de", texts=("Stadt", "Krankenhaus", "Schule"), responses=["Antwort: A"])]


@FUZZ
@given(bad=mutated(SAMPLE, ("responses",)), at=st.integers(0, 2), skip=st.booleans())
def test_samples_file(bad: bytes, at: int, skip: bool) -> None:
    with folder() as root:
        path = root / "samples.jsonl"
        path.write_bytes(lines_with(bad, GOOD_SAMPLES, at))
        loaded = loads_or_refuses("samples file (vote)", lambda: load_samples(path, on_error="skip" if skip else "stop"))
        if loaded is not None:
            for item in loaded.questions:
                assert len({version.labels for version in item.question.versions.values()}) == 1
                assert set(item.responses) == set(item.question.versions)


PAIR = {"prompt": [{"role": "user", "content": "Q?"}], "chosen": [{"role": "assistant", "content": "Answer: A"}],
        "rejected": [{"role": "assistant", "content": "Answer: B"}], "lang": "en"}
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from([*ROLES, "tool", "", "User"]) | json_values,
                                           "content": st.text(max_size=10) | json_values}), max_size=3)


@FUZZ
@given(bad=mutated(PAIR, ("id", "majority", "translated")) | st.builds(
    lambda field, value: json.dumps({**PAIR, field: value}).encode(), st.sampled_from(["prompt", "chosen", "rejected"]),
    messages), at=st.integers(0, 2))
def test_pairs_file(bad: bytes, at: int) -> None:
    with folder() as root:
        path = root / "pairs.jsonl"
        path.write_bytes(lines_with(bad, [PAIR, {**PAIR, "chosen": [{"role": "assistant", "content": "C"}]}], at))
        loaded = loads_or_refuses("pairs file (train --pairs)", lambda: load_pairs_file(path))
        if loaded is not None:
            for record in loaded:
                for field in ("prompt", "chosen", "rejected"):
                    value = record[field]
                    assert isinstance(value, str) or all(m["role"] in ROLES and isinstance(m["content"], str)
                                                         for m in value)


# ---- TOML configs -----------------------------------------------------------------------------------------

toml_scalars = (st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats()
                | st.text(max_size=12) | st.sampled_from(["en,de", "cpu", "bogus", "cuda:0", "direct", "all", ""]))
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), inner, max_size=2),
                           max_leaves=6)


def toml_value(value: Any) -> str:
    """A value as TOML (inline); strings as JSON strings, which TOML reads, except for characters it refuses in
    basic strings: then the file is invalid TOML, which the loaders must refuse cleanly too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + "}"


def toml_table(keys: list[str]) -> st.SearchStrategy[str]:
    entries = st.dictionaries(st.sampled_from(keys) | st.from_regex(r"[a-z_]{1,10}", fullmatch=True), toml_values,
                              min_size=1, max_size=4)
    raw = st.sampled_from(["samples = " + "9" * 5000, "x = " + "[" * 5000, "samples = 1\nsamples = 2", "= 3"])
    return st.builds(lambda values: "\n".join(f"{key} = {toml_value(value)}" for key, value in values.items()),
                     entries) | raw


TRAIN_KEYS = ["languages", "samples", "mode", "device", "dtype", "seed", "temperature", "top_p", "batch_size",
              "max_length", "learning_rate", "lora_target_modules", "min_support", "rounds", "warmup", "model"]
EVAL_KEYS = ["split", "languages", "mode", "samples", "permute", "limit", "batch_size", "max_new_tokens",
             "temperature", "seed", "index", "index_dir", "top_k", "threshold", "embedder"]
SETTINGS_KEYS = ["generator", "embedder", "index_dir", "model_cache", "languages", "samples", "device", "engine"]


@FUZZ
@given(text=toml_table(TRAIN_KEYS), table=st.booleans())
def test_train_config(text: str, table: bool) -> None:
    with folder() as root:
        (root / "c.toml").write_text(("[train]\n" if table else "") + text, encoding="utf-8")
        loads_or_refuses("TOML: train --config", lambda: CalmTrainConfig.from_toml(root / "c.toml"))


@FUZZ
@given(text=toml_table(EVAL_KEYS), table=st.booleans(), open_questions=st.booleans())
def test_eval_config(text: str, table: bool, open_questions: bool) -> None:
    with folder() as root:
        (root / "c.toml").write_text(("[eval]\n" if table else "") + text, encoding="utf-8")
        loader = load_open_eval_config if open_questions else load_eval_config
        loads_or_refuses("TOML: eval --config", lambda: loader(root / "c.toml", {}))


@FUZZ
@given(text=toml_table(SETTINGS_KEYS))
def test_settings_file(text: str) -> None:
    with folder() as root:
        (root / "calm-rag.toml").write_text(text, encoding="utf-8")
        loads_or_refuses("TOML: calm-rag.toml", lambda: load_settings(root / "calm-rag.toml"))


# ---- the commands ---------------------------------------------------------------------------------------------

@FUZZ
@given(bad=mutated(SAMPLE, ("responses",)), at=st.integers(0, 2))
def test_vote_command(bad: bytes, at: int) -> None:
    with folder() as root:
        path = root / "samples.jsonl"
        path.write_bytes(lines_with(bad, GOOD_SAMPLES, at))
        FUZZ_CASES["command: calm-rag vote FILE"] += 1
        try:
            load_samples(path)
        except CalmRagError:
            exits_2_in_one_line(["vote", str(path), "--pairs-out", str(root / "pairs.jsonl")], root)
        else:
            assert runner.invoke(app, ["vote", str(path), "--json"]).exit_code == 0


@FUZZ
@given(bad=mutated(PAIR, ("id", "majority")), at=st.integers(0, 1), config=st.none() | toml_table(TRAIN_KEYS))
def test_train_command_fails_before_any_model_loads(bad: bytes, at: int, config: str | None) -> None:
    """A malformed pairs file (or config): one line; a clean one reaches the (missing) model: one line too, and
    no run folder is created either way."""
    with folder() as root:
        path = root / "pairs.jsonl"
        path.write_bytes(lines_with(bad, [PAIR], at))
        extra = []
        if config is not None:
            (root / "c.toml").write_text(config, encoding="utf-8")
            extra = ["--config", str(root / "c.toml")]
        FUZZ_CASES["command: calm-rag train --pairs FILE"] += 1
        exits_2_in_one_line(["train", "--pairs", str(path), "--model", str(root / "no-model"), "--out",
                             str(root / "run"), *extra], root)


@FUZZ
@given(bad=mutated(choice_record("q9", "en"), ("split",)) | mutated(
    {"id": "o9", "lang": "en", "question": "Why?", "answer": "so"}), lang=st.sampled_from(["en", "de"]),
    at=st.integers(0, 3), config=st.none() | toml_table(EVAL_KEYS))
def test_eval_command_fails_before_any_model_loads(monkeypatch: pytest.MonkeyPatch, bad: bytes, lang: str, at: int,
                                                   config: str | None) -> None:
    monkeypatch.setenv("CALM_RAG_EMBEDDER", "/no-such-embedder")
    with folder() as root:
        data = write_parallel(root, choice_rows, bad, lang, at)
        extra = []
        if config is not None:
            (root / "c.toml").write_text(config, encoding="utf-8")
            extra = ["--config", str(root / "c.toml")]
        FUZZ_CASES["command: calm-rag eval DIR"] += 1
        exits_2_in_one_line(["eval", str(data), "--languages", "en,de", "--split", "all", "--model",
                             str(root / "no-model"), "--cache-dir", str(root / "cache"), *extra], root)
