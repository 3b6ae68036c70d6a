"""The training PNG: loss, reward margin and reward accuracy per step; the dev accuracy per epoch when measured."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from calm_rag.training.plot import plot_training

CURVES = {"loss": [[1, 0.69], [2, 0.6]], "rewards_margins": [[1, 0.0], [2, 0.2]],
          "rewards_accuracies": [[1, 0.5], [2, 1.0]]}
DEV = [{"epoch": 0.0, "step": 0, "mean_accuracy": 0.4}, {"epoch": 1.0, "step": 2, "mean_accuracy": 0.45},
       {"epoch": 2.0, "step": 4, "mean_accuracy": None}]


def test_three_panels_without_a_dev_split_and_four_with_one(tmp_path: Path) -> None:
    plot_training([{"round": 1, "training": {"curves": CURVES}}], tmp_path / "three.png")
    plot_training([{"round": 1, "training": {"curves": CURVES}, "dev": DEV},
                   {"round": 2, "training": {"curves": {}}, "dev": []}], tmp_path / "four.png")
    assert Image.open(tmp_path / "three.png").size == (1500, 400)  # one row of three 5 x 4 inch panels
    assert Image.open(tmp_path / "four.png").size == (1000, 800)  # two rows of two
