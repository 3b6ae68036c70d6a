"""Fixtures for the training tests: a tiny 3-language parallel dataset and a fast training recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

OPTIONS = {
    "en": ("Where do you keep milk?", ["fridge", "shelf", "car", "bed", "sky"]),
    "de": ("Wo bewahrt man Milch auf?", ["Kühlschrank", "Regal", "Auto", "Bett", "Himmel"]),
    "zh": ("牛奶放在哪里？", ["冰箱", "架子", "汽车", "床", "天空"]),
}

FAST_RECIPE = """
[train]
languages = ["en", "de", "zh"]
device = "cpu"
lora_r = 4
lora_alpha = 8
lora_dropout = 0.0
batch_size = 4
gradient_accumulation_steps = 1
max_length = 256
warmup = 0
learning_rate = 1e-3
save_steps = 100
"""


def write_dataset(folder: Path, questions: int = 4, languages: tuple[str, ...] = ("en", "de", "zh")) -> Path:
    """`questions` parallel 5-option questions per language, gold letters cycling A, B, C, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    for lang in languages:
        question, texts = OPTIONS[lang]
        lines = [json.dumps({"id": f"q{i}", "split": "train", "lang": lang, "question": f"{question} ({i})",
                             "choices": [{"label": label, "text": text} for label, text in zip("ABCDE", texts)],
                             "answer": "ABCDE"[i % 5]}, ensure_ascii=False) for i in range(questions)]
        (folder / f"{lang}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data")


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "fast.toml"
    path.write_text(FAST_RECIPE, encoding="utf-8")
    return path


OPEN_QUESTIONS = {
    "en": ("What is the capital of France?", "Paris"),
    "de": ("Was ist die Hauptstadt von Frankreich?", "Paris"),
    "zh": ("法国的首都是哪里？", "巴黎"),
}


def write_open_dataset(folder: Path, questions: int = 3) -> Path:
    """`questions` parallel open questions (no choices) per language, with gold answers."""
    folder.mkdir(parents=True, exist_ok=True)
    for lang, (question, answer) in OPEN_QUESTIONS.items():
        lines = [json.dumps({"id": f"o{i}", "split": "train", "lang": lang, "question": f"{question} ({i})",
                             "answer": answer}, ensure_ascii=False) for i in range(questions)]
        (folder / f"{lang}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
