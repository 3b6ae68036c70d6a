"""Eval reports: the JSON payload (one run, or a run beside its baseline with deltas), and its renderings
as rich tables for the terminal, report.md, and report.json / report.png under `--out`.

The payload is the single source: the terminal, the markdown and the plot all read the same
dict that `--json` prints, so they cannot disagree. Multiple-choice runs carry answer letters;
open-question runs (mode "open") carry exact match instead; every rendering shows what a run has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from calm_rag.data.jsonl import read_json, write_json, write_text_atomic
from calm_rag.errors import CalmRagError
from calm_rag.evaluation.choice_scoring import top_letter_share
from calm_rag.evaluation.plot import plot_report, run_name

SCALARS = ("mean_accuracy", "mean_exact_match", "vote_accuracy", "vote_exact_match", "consistency",
           "top_letter_share")
PER_LANGUAGE = ("accuracy_by_language", "exact_match_by_language", "parse_rate_by_language",
                "short_span_rate_by_language")
COMPARABLE = ("data_hash", "split", "languages", "n_questions", "dev_questions")
"""What must match for two runs' numbers to be compared."""


def _delta(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else round(value - base, 6)


PAIRED = {"mean_accuracy": "accuracy", "vote_accuracy": "vote"}
"""Headline metric -> its per-question score, for the paired interval of its delta."""


def paired_interval(run: Sequence[Mapping[str, Any]], baseline: Sequence[Mapping[str, Any]], key: str
                    ) -> list[float] | None:
    """95% interval of the mean per-question difference run - baseline (normal approximation, paired by
    question id). Pairing is what makes small evals readable: both runs answer the same questions, so the
    spread of the differences, not of each accuracy, decides whether a delta is noise. None unless both
    runs scored the same questions (at least two)."""
    base = {item["id"]: item[key] for item in baseline}
    if len(run) < 2 or len(base) != len(run) or any(item["id"] not in base for item in run):
        return None
    differences = [item[key] - base[item["id"]] for item in run]
    mean = sum(differences) / len(differences)
    spread = math.sqrt(sum((d - mean) ** 2 for d in differences) / (len(differences) - 1))
    half = 1.96 * spread / math.sqrt(len(differences))
    return [round(mean - half, 4), round(mean + half, 4)]


def deltas(run: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    """run - baseline for every headline metric the runs report (None where either side is undefined), and
    `ci95`: the paired interval of the accuracy and vote deltas where both runs carry `per_question`."""
    result: dict[str, Any] = {name: _delta(run.get(name), baseline.get(name))
                              for name in SCALARS if name in run or name in baseline}
    for name in PER_LANGUAGE:
        if name in run:
            result[name] = {lang: _delta(value, baseline.get(name, {}).get(lang)) for lang, value in run[name].items()}
    if "per_question" in run and "per_question" in baseline:
        result["ci95"] = {name: paired_interval(run["per_question"], baseline["per_question"], key)
                          for name, key in PAIRED.items()}
    return result


def build_payload(run: dict[str, Any], baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's fields at the top level; with a baseline also `baseline` and `delta` (run - baseline)."""
    if baseline is None:
        return run
    mismatched = [key for key in COMPARABLE if run.get(key) != baseline.get(key)]
    if mismatched:
        raise CalmRagError(f"cannot compare with baseline {baseline.get('label')!r}: it differs in "
                           f"{', '.join(mismatched)} (evaluate both on the same data, split, languages, --limit "
                           "and --dev)")
    return {**run, "baseline": baseline, "delta": deltas(run, baseline)}


def load_report(path: Path) -> dict[str, Any]:
    """An earlier report.json as a baseline (its top-level run), checked to be one before any work starts:
    a binary, truncated or hand-edited file is one line now, not a traceback after the whole eval."""
    try:
        payload = read_json(Path(path))
    except CalmRagError as error:
        raise CalmRagError(f"cannot read baseline report {path}: {str(error).removeprefix(f'cannot read {path}: ')}"
                           ) from None
    if not isinstance(payload, dict) or "accuracy_by_language" not in payload:
        raise CalmRagError(f"{path} is not a calm-rag eval report.json")
    run = {key: value for key, value in payload.items() if key not in ("baseline", "delta")}
    problem = _report_problem(run)
    if problem:
        raise CalmRagError(f"{path} is not a calm-rag eval report.json: {problem}")
    run["label"] = str(path)
    return run


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))


def _counts(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(n, int) and not isinstance(n, bool)
                                           and n >= 0 for k, n in value.items())


REPORT_FIELDS: dict[str, tuple[bool, Any]] = {
    "data": (True, lambda v: isinstance(v, str)),
    "data_hash": (True, lambda v: isinstance(v, str)),
    "mode": (True, lambda v: isinstance(v, str)),
    "split": (True, lambda v: v is None or isinstance(v, str)),
    "languages": (True, lambda v: isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v)),
    "n_questions": (True, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "samples": (True, lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "timings": (True, lambda v: isinstance(v, dict)),
    "permute": (False, lambda v: isinstance(v, bool)),
    "model": (False, lambda v: isinstance(v, str)),
    "top_k": (False, lambda v: v is None or isinstance(v, int)),
    **{name: (False, _number) for name in SCALARS},
    **{name: (name == "accuracy_by_language", lambda v: isinstance(v, dict)
              and all(isinstance(k, str) and _number(x) for k, x in v.items())) for name in PER_LANGUAGE},
    "per_question": (False, lambda v: isinstance(v, list) and all(
        isinstance(item, dict) and isinstance(item.get("id"), str)
        and all(key in item and item[key] is not None and _number(item[key]) for key in PAIRED.values())
        for item in v)),
    "letters": (False, lambda v: isinstance(v, dict) and all(_counts(v.get(key)) for key in ("overall", "vote", "gold"))
                and isinstance(v.get("by_language"), dict) and all(_counts(x) for x in v["by_language"].values())),
}
"""What the renderings and the comparison read from a baseline run: field -> (required, check)."""


def _report_problem(run: Mapping[str, Any]) -> str | None:
    for name, (required, check) in REPORT_FIELDS.items():
        if name not in run:
            if required:
                return f"no {name!r}"
            continue
        if not check(run[name]):
            return f"{name!r} is not what an eval writes"
    if run["mode"] != "open" and "permute" not in run:
        return "no 'permute'"
    return None


# ---- shared formatting ------------------------------------------------------------------------

def fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


LANGUAGE_COLUMNS = (("accuracy", "accuracy_by_language", ""), ("exact match", "exact_match_by_language", " exact"),
                    ("parse rate", "parse_rate_by_language", " parse"),
                    ("short", "short_span_rate_by_language", " short"))
"""(column, per-language key, suffix of its baseline and delta columns), shown where the run has the key."""


def metric_rows(payload: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the main table: per language accuracy (and exact match, for open questions) and
    parse rate, then the cross-lingual metrics; with a baseline, its values and the delta beside each."""
    base = payload.get("baseline")
    delta = payload.get("delta", {})
    columns = [(title, key, suffix) for title, key, suffix in LANGUAGE_COLUMNS if key in payload]
    header = ["language"]
    for title, _, suffix in columns:
        header += [title, f"base{suffix}", f"Δ{suffix}"] if base else [title]
    rows = []
    for lang in payload["languages"]:
        row = [lang]
        for _, key, _ in columns:
            row.append(fmt(payload[key].get(lang)))
            if base:
                row += [fmt(base.get(key, {}).get(lang)), fmt(delta.get(key, {}).get(lang), True)]
        rows.append(row)
    names = {"mean_accuracy": "mean accuracy", "mean_exact_match": "mean exact match",
             "vote_accuracy": "cross-lingual vote", "vote_exact_match": "cross-lingual vote (exact)",
             "consistency": "consistency",
             "top_letter_share": f"top letter share ({payload.get('top_letter') or '–'})"}
    for key, name in names.items():
        if key in payload:
            values = [fmt(payload[key])]
            if base:
                interval = delta.get("ci95", {}).get(key)
                values += [fmt(base.get(key)), fmt(delta.get(key), True)
                           + (f" [{interval[0]:+.3f}, {interval[1]:+.3f}]" if interval else "")]
            rows.append([name, *values, *[""] * (len(header) - 1 - len(values))])
    return header, rows


def letter_rows(run: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Answer letter counts per language, overall, for the vote and for gold, with the top letter's share."""
    letters = run["letters"]
    groups = {**letters["by_language"], "overall": letters["overall"], "vote": letters["vote"],
              "gold": letters["gold"]}
    columns = list(dict.fromkeys(key for counts in groups.values() for key in counts))
    rows = []
    for name, counts in groups.items():
        top = top_letter_share(counts)
        rows.append([name, *(str(counts.get(column, 0)) for column in columns),
                     f"{top[0]} {top[1]:.0%}" if top else "–"])
    return ["answers", *columns, "top"], rows


def describe(run: Mapping[str, Any]) -> str:
    """One line saying what was measured."""
    retrieval = f", index {run['index']} top-{run['top_k']}" if run.get("index") else ""
    if run["mode"] == "open":
        method = (f"open questions, samples {run['samples']}, embedder {run.get('embedder')}, "
                  f"threshold {run.get('threshold')}")
    else:
        method = f"mode {run['mode']}, samples {run['samples']}, permute {'on' if run['permute'] else 'off'}"
        if run.get("continue_letters") is not None:
            method += f", continued letters {'on' if run['continue_letters'] else 'off'}"
    held_out = f" held out by --dev {run['dev_questions']}" if run.get("dev_questions") else ""
    return (f"{run_name(run)} on {run['data']} ({run['split'] or 'all'}, {run['n_questions']} questions{held_out}, "
            f"{', '.join(run['languages'])}); {method}{retrieval}")


# ---- renderings -------------------------------------------------------------------------------

def rich_tables(payload: Mapping[str, Any]) -> list[Any]:
    """What the terminal shows: the description line(s), the metrics table, each run's letter table
    (multiple choice)."""
    lines = describe(payload)
    if payload.get("baseline"):
        lines += f"\nbaseline: {describe(payload['baseline'])}"
    header, rows = metric_rows(payload)
    metrics = Table(*header)
    for row in rows:
        metrics.add_row(*row)
    renderables: list[Any] = [Text(lines), metrics]
    for run in [payload, payload.get("baseline")]:
        if run and "letters" in run:
            letters_header, letters = letter_rows(run)
            table = Table(*letters_header, title=f"answer letters: {run_name(run)}", title_justify="left")
            for row in letters:
                table.add_row(*row)
            renderables.append(table)
    return renderables


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _timings(run: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in run["timings"].items())


CHOICE_NOTE = ("Accuracy of a language: its own answer (majority over its samples) vs gold; an unparsed answer "
               "counts as wrong. Cross-lingual vote: the consensus over all languages. Consistency: the share "
               "of language pairs (among languages with an answer) that give the same answer, averaged over "
               "questions.")
OPEN_NOTE = ("Accuracy of a language: its own answer (the most central sample of its majority cluster) vs that "
             "language's gold by semantic match (the same normalized text, equal numbers, or an embedding cosine "
             "at or above the threshold); exact match: the same normalized text only. An unparsed answer counts "
             "as wrong. Cross-lingual vote: the consensus cluster's answer (its member in that language, else its "
             "representative) vs each language's gold; an abstention counts as wrong. Consistency: the share of "
             "language pairs (among languages with an answer) whose answers fall in one cluster, averaged over "
             "questions.")

INTERVAL_NOTE = ("Brackets after a delta: its 95% interval, from the per-question differences between the two runs "
                 "(paired by question, normal approximation). An interval that includes 0 is no evidence of a "
                 "difference.")


def markdown(payload: Mapping[str, Any]) -> str:
    parts = ["# calm-rag eval report", "", describe(payload), ""]
    if payload.get("baseline"):
        parts += [f"Baseline: {describe(payload['baseline'])}", ""]
    parts += [_markdown_table(*metric_rows(payload)), "", OPEN_NOTE if payload["mode"] == "open" else CHOICE_NOTE, ""]
    if payload.get("delta", {}).get("ci95"):
        parts += [INTERVAL_NOTE, ""]
    for run in [payload, payload.get("baseline")]:
        if not run:
            continue
        if "letters" in run:
            parts += [f"## Answer letters: {run_name(run)}", "", _markdown_table(*letter_rows(run)), ""]
        else:
            parts += [f"## {run_name(run)}", ""]
        parts += [f"Timings: {_timings(run)}", ""]
    return "\n".join(parts)


def write_reports(out: Path, payload: Mapping[str, Any]) -> list[Path]:
    """report.json, report.md and report.png under `out`."""
    paths = [out / "report.json", out / "report.md", out / "report.png"]
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json(paths[0], payload)
        write_text_atomic(paths[1], markdown(payload))
        plot_report(payload, paths[2])
    except OSError as error:
        raise CalmRagError(f"cannot write reports to {out}: {error}") from None
    return paths
