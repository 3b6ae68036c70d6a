"""`calm-rag eval` given a bad baseline, config, device or a torn cache: one line and exit code 2, or (for the
cache) the torn item recomputed; reports are replaced whole or not at all."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from calm_rag.data.jsonl import read_json
from calm_rag.errors import CalmRagError
from calm_rag.evaluation.cache import ItemCache
from calm_rag.evaluation.report import load_report, write_reports
from tests.cli_errors import one_line_exit_2 as one_line_error

runner = CliRunner()

REPORT = {"label": "adapter", "model": "m", "adapter": None, "data": "data", "data_hash": "abc", "split": "test",
          "languages": ["en", "de"], "mode": "direct", "samples": 1, "permute": False, "n_questions": 2,
          "accuracy_by_language": {"en": 0.5, "de": None}, "parse_rate_by_language": {"en": 1.0, "de": 1.0},
          "mean_accuracy": 0.5, "vote_accuracy": 1.0, "consistency": None, "timings": {"total_s": 1.0},
          "per_question": [{"id": "q1", "accuracy": 0.5, "vote": 1.0}, {"id": "q2", "accuracy": 0.0, "vote": 1.0}],
          "letters": {"by_language": {"en": {"A": 2}}, "overall": {"A": 2}, "vote": {"A": 2}, "gold": {"B": 2}}}


def one_line_exit_2(args: list[Any]) -> str:
    return one_line_error(["eval", *map(str, args)])


def test_a_written_report_loads_as_a_baseline(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps({**REPORT, "baseline": {"x": 1}, "delta": {}}))
    run = load_report(path)
    assert run["label"] == str(path) and "baseline" not in run


@pytest.mark.parametrize(("content", "message"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary", "cannot read baseline report"),
    (b'{"accuracy_by_language": ' + b"[" * 100_000, "cannot read baseline report"),
    (b'{"n": ' + b"9" * 5000 + b"}", "cannot read baseline report"),
    (b"[1, 2]", "is not a calm-rag eval report.json"),
    (json.dumps({**REPORT, "accuracy_by_language": 5}).encode(), "'accuracy_by_language' is not what an eval writes"),
    (json.dumps({**REPORT, "languages": "en,de"}).encode(), "'languages' is not what an eval writes"),
    (json.dumps({**REPORT, "mean_accuracy": "0.5"}).encode(), "'mean_accuracy' is not what an eval writes"),
    (json.dumps({**REPORT, "per_question": [{"id": "q1", "accuracy": "x", "vote": 1}]}).encode(),
     "'per_question' is not what an eval writes"),
    (json.dumps({**REPORT, "letters": {"overall": []}}).encode(), "'letters' is not what an eval writes"),
    (json.dumps({key: value for key, value in REPORT.items() if key != "n_questions"}).encode(), "no 'n_questions'"),
])
def test_bad_baselines_are_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(content)
    with pytest.raises(CalmRagError, match=message) as raised:
        load_report(path)
    assert "\n" not in str(raised.value)


def test_compare_to_a_binary_file_fails_before_the_model_loads(dataset: Path, tmp_path: Path) -> None:
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    line = one_line_exit_2([dataset, "--model", tmp_path / "no-model", "--compare-to", binary, "--cache-dir",
                            tmp_path / "cache"])
    assert f"cannot read baseline report {binary}" in line
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (("--device", "bogus"), "unknown device 'bogus'; use auto, cpu, cuda, cuda:N or mps"),
    (("--device", "cuda:"), "unknown device 'cuda:'"),
    (("--dtype", "int4"), "unknown dtype 'int4'"),
])
def test_bad_device_fails_before_the_model_loads(dataset: Path, tmp_path: Path, extra: tuple[str, ...],
                                                 message: str) -> None:
    line = one_line_exit_2([dataset, "--model", tmp_path / "no-model", *extra, "--cache-dir", tmp_path / "cache"])
    assert message in line


@pytest.mark.parametrize(("toml", "message"), [
    ('[eval]\nlimit = "ten"\n', "limit must be an integer, got 'ten'"),
    ("[eval]\nlanguages = 5\n", "languages must be a list of strings, got 5"),
    ("[eval]\nsamples = true\n", "samples must be an integer, got True"),
    ("[eval]\ntop_k = 0\n", "top_k must be at least 1, got 0"),
    ("[eval]\ntemperature = inf\n", "temperature must be a finite number, got inf"),
    ("[eval]\nseed = 3000000000\n", "seed must be at most 2147483647"),
    ('[eval]\nindex_dir = ["a"]\n', "index_dir must be a path"),
    ('[eval]\nsplit = 2\n', "split must be a string, got 2"),
    ("eval = 1\n", "eval must be a table"),
    ("[eval]\nlimit = " + "1" * 5000 + "\n", "cannot read config"),
])
def test_bad_config_values_name_the_file(dataset: Path, tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "eval.toml"
    config.write_text(toml)
    line = one_line_exit_2([dataset, "--model", tmp_path / "no-model", "--config", config, "--cache-dir",
                            tmp_path / "cache"])
    assert message in line and str(config) in line


# ---- the resume cache --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    id: str
    answer: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "answer": self.answer}

    @classmethod
    def from_json(cls, data: Any) -> Item:
        return cls(str(data["id"]), str(data["answer"]))


def test_a_last_line_cut_inside_a_utf8_character_is_recomputed(tmp_path: Path) -> None:
    cache = ItemCache(tmp_path, {"model": "m"}, Item)
    cache.append([Item("q1", "東京"), Item("q2", "大阪")])
    data = cache.path.read_bytes()
    cut = data.index("大".encode()) + 1  # inside the 3-byte character
    cache.path.write_bytes(data[:cut])  # a kill mid-write
    assert cache.load() == {"q1": Item("q1", "東京")}  # q2 is missing, so it is computed again
    cache.append([Item("q2", "大阪")])
    assert cache.load() == {"q1": Item("q1", "東京"), "q2": Item("q2", "大阪")}
    assert cache.path.read_bytes().decode("utf-8").count("\n") == 2  # the torn line is gone, not kept as junk


def test_cache_lines_of_another_shape_are_skipped(tmp_path: Path) -> None:
    cache = ItemCache(tmp_path, {"model": "m"}, Item)
    cache.append([Item("q1", "a")])
    with cache.path.open("ab") as handle:
        handle.write(b'{"id": "q2"}\n[1]\n\xff\xfe\n{"id": ' + b"[" * 10_000 + b"\n{\"n\": " + b"9" * 5000 + b"}\n")
    assert cache.load() == {"q1": Item("q1", "a")}
    assert read_json(cache.path.with_suffix(".meta.json")) == {"model": "m"}


def test_reports_are_replaced_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("calm_rag.evaluation.report.plot_report", lambda payload, path: None)
    write_reports(tmp_path, REPORT)

    def killed(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("calm_rag.data.jsonl.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_reports(tmp_path, {**REPORT, "mean_accuracy": 0.9})
    assert read_json(tmp_path / "report.json") == REPORT
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.json", "report.md"]
