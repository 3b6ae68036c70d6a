"""Fixtures for the eval tests: the session's tiny random model and a LoRA adapter on it, and a small
three-language parallel dataset written per test, so nothing is downloaded or read from shared/."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from calm_rag.indexes.records import Hit

LANGUAGES = ("en", "de", "fr")
QUESTIONS = [
    ("q-train", "train", "B",
     {"en": "Where do fish live?", "de": "Wo leben Fische?", "fr": "Où vivent les poissons ?"},
     [("desert", "Wüste", "désert"), ("water", "Wasser", "eau"), ("sky", "Himmel", "ciel")]),
    ("q1", "test", "A", {"en": "What do you drink?", "de": "Was trinkt man?", "fr": "Que boit-on ?"},
     [("water", "Wasser", "eau"), ("stone", "Stein", "pierre"), ("sand", "Sand", "sable")]),
    ("q2", "test", "C", {"en": "What is cold?", "de": "Was ist kalt?", "fr": "Qu'est-ce qui est froid ?"},
     [("fire", "Feuer", "feu"), ("sun", "Sonne", "soleil"), ("ice", "Eis", "glace")]),
    ("q3", "test", "B", {"en": "Where do you sleep?", "de": "Wo schläft man?", "fr": "Où dort-on ?"},
     [("kitchen", "Küche", "cuisine"), ("bed", "Bett", "lit"), ("road", "Straße", "route")]),
]


def write_dataset(folder: Path, languages: tuple[str, ...] = LANGUAGES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, lang in enumerate(languages):
        with (folder / f"{lang}.jsonl").open("w", encoding="utf-8") as handle:
            for qid, split, answer, texts, options in QUESTIONS:
                choices = [{"label": "ABC"[n], "text": option[index]} for n, option in enumerate(options)]
                handle.write(json.dumps({"id": qid, "split": split, "lang": lang, "question": texts[lang],
                                         "choices": choices, "answer": answer}, ensure_ascii=False) + "\n")
    return folder


OpenRows = dict[str, list[tuple[str, str, str]]]
"""Open questions per language: (id, question, gold answer)."""


def write_open_dataset(folder: Path, rows_by_language: OpenRows) -> Path:
    """Parallel `<lang>.jsonl` open questions (no `choices`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for lang, rows in rows_by_language.items():
        (folder / f"{lang}.jsonl").write_text("".join(json.dumps(
            {"id": qid, "lang": lang, "question": question, "answer": answer}, ensure_ascii=False) + "\n"
            for qid, question, answer in rows), "utf-8")
    return folder


def record_prompts(monkeypatch: pytest.MonkeyPatch, method: str) -> list[str]:
    """Patch `Generator.<method>` to keep every prompt it is given, to count and inspect generation work."""
    from calm_rag.generation.transformers_engine import TransformersGenerator as Generator

    seen: list[str] = []
    original = getattr(Generator, method)

    def recording(self: Generator, prompts: list[str], *args: Any, **kwargs: Any) -> Any:
        seen.extend(prompts)
        return original(self, prompts, *args, **kwargs)

    monkeypatch.setattr(Generator, method, recording)
    return seen


@pytest.fixture
def make_dataset() -> Callable[..., Path]:
    """`write_dataset`, for tests that damage the files they evaluate."""
    return write_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_model(tiny_lm_path: Path) -> Path:
    """The session's tiny random causal LM (tests/conftest.py)."""
    return tiny_lm_path


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter with non-zero weights (init_lora_weights=False), so it changes the answers."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    folder = tmp_path_factory.mktemp("adapters") / "calm"
    get_peft_model(model, config).save_pretrained(folder)
    return folder


class QueryRecordingIndex:
    """Stands in for an `Index`: records the queries and returns one passage naming each query, so a test
    can see which language's question retrieved the passages a prompt got."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def search(self, queries: list[str], top_k: int) -> list[list[Hit]]:
        self.queries.extend(queries)
        return [[Hit(f"h{n}", f"PASSAGE FOR {query}", 1.0, None, "src.txt")] for n, query in enumerate(queries)]
