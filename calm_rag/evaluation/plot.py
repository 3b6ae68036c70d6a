"""report.png: grouped bars of accuracy per language, then mean accuracy, cross-lingual vote accuracy
and consistency, one bar per run (baseline first). Drawn with matplotlib's object API on an
Agg canvas, so no pyplot global state and no display is touched."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

PALETTE = ("#9aa5b1", "#2b6cb0")


def run_name(run: Mapping[str, Any]) -> str:
    if run.get("label") not in ("model", "adapter", "base"):
        return str(run.get("label"))
    return f"{run['model']} + {run['adapter']}" if run.get("adapter") else str(run["model"])


def _values(run: Mapping[str, Any], languages: list[str]) -> list[float]:
    by_language = [run["accuracy_by_language"].get(lang) for lang in languages]
    scalars = [run.get("mean_accuracy"), run.get("vote_accuracy"), run.get("consistency")]
    return [value if value is not None else 0.0 for value in [*by_language, *scalars]]


def plot_report(payload: Mapping[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    languages = list(payload["languages"])
    categories = [*languages, "mean", "vote", "consistency"]
    runs = [run for run in (payload.get("baseline"), payload) if run]
    width = 0.8 / len(runs)
    figure = Figure(figsize=(max(6.0, 0.9 * len(categories)), 4.0), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for number, run in enumerate(runs):
        offsets = [position + (number - (len(runs) - 1) / 2) * width for position in range(len(categories))]
        bars = axes.bar(offsets, _values(run, languages), width, label=run_name(run),
                        color=PALETTE[-len(runs):][number])
        axes.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    axes.axvline(len(languages) - 0.5, color="#cccccc", linewidth=1)
    axes.set_xticks(range(len(categories)), categories)
    axes.set_ylim(0, 1.2)
    axes.set_ylabel("accuracy / consistency")
    axes.set_title(f"{payload['data']} ({payload['split'] or 'all'}, {payload['n_questions']} questions, "
                   f"{payload['mode']})", fontsize=9)
    axes.legend(fontsize=8, loc="upper left", ncol=len(runs), frameon=False)
    figure.tight_layout()
    figure.savefig(path, format="png")
