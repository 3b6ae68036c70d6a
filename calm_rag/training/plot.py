"""The training curves' PNG: DPO loss and reward margin per optimizer step, one line per round."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def plot_training(rounds: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Loss and reward margin per optimizer step, one line per round (from `round_metrics`' curves)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, margin_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for metrics in rounds:
        series = metrics["training"]["curves"]
        label = f"round {metrics['round']}"
        for axis, name in ((loss_axis, "loss"), (margin_axis, "rewards_margins")):
            points = series.get(name) or []
            if points:
                axis.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 30 else None,
                          label=label)
    loss_axis.set(title="DPO loss", xlabel="step", ylabel="loss")
    margin_axis.set(title="reward margin (chosen - rejected)", xlabel="step", ylabel="margin")
    for axis in (loss_axis, margin_axis):
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
