"""The training curves' PNG: DPO loss, reward margin and reward accuracy per optimizer step, one line per round,
and, when the run held out a dev split, the dev questions' mean accuracy per epoch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PANELS = (("loss", "DPO loss", "loss"), ("rewards_margins", "reward margin (chosen - rejected)", "margin"),
          ("rewards_accuracies", "reward accuracy (chosen > rejected)", "share of pairs"))
"""(curve in `round_metrics`' curves, title, y label) of each per-step panel."""


def plot_training(rounds: Sequence[Mapping[str, Any]], path: Path) -> None:
    """One panel per curve of `PANELS` against the optimizer step, plus the dev mean accuracy against the
    epoch (epoch 0: before training) when any round measured one; a line per round in each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dev = any(metrics.get("dev") for metrics in rounds)
    rows, columns = (2, 2) if dev else (1, len(PANELS))
    figure, grid = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
    axes = list(grid.flat)
    for metrics in rounds:
        series = metrics["training"]["curves"]
        label = f"round {metrics['round']}"
        for axis, (name, _, _) in zip(axes, PANELS):
            _line(axis, [(p[0], p[1]) for p in series.get(name) or []], label)
        if dev:
            _line(axes[-1], [(entry["epoch"], entry["mean_accuracy"]) for entry in metrics.get("dev") or []
                             if entry["mean_accuracy"] is not None], label)
    for axis, (_, title, ylabel) in zip(axes, PANELS):
        axis.set(title=title, xlabel="step", ylabel=ylabel)
    if dev:
        axes[-1].set(title="dev mean accuracy (direct mode)", xlabel="epoch", ylabel="accuracy")
    for axis in axes:
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _line(axis: Any, points: Sequence[tuple[float, float]], label: str) -> None:
    if points:
        axis.plot([x for x, _ in points], [y for _, y in points], marker="." if len(points) < 30 else None,
                  label=label)
