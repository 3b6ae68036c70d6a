"""A base-vs-adapter delta read over several option orders at once: X-CSQA's test split is only 100 questions,
so one reading's paired interval is about +-0.03 wide; reading every question under more than one option order
(permutation off, and on with language i shifted by i) and averaging each question's accuracy over the readings
takes the position noise out of the per-question differences without new questions.

Give the readings in the same order for both sides (each a report.json with `per_question`, all over the same
questions); the interval is `calm_rag.evaluation.report.paired_interval`, the one `eval --compare-to` prints.

    python bench/pooled_delta.py \
        --base docs/results/xcsqa-llamacpp-100/report.json docs/results/xcsqa-llamacpp-100-permute/report.json \
        --run docs/results/xcsqa-calm-clean/test-epoch2/report.json \
              docs/results/xcsqa-calm-clean/test-epoch2-permute/report.json --out pooled-clean
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from calm_rag.evaluation.report import PAIRED, paired_interval

RESULTS = Path(__file__).parent / "results"


def pooled(readings: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each question's accuracy and vote averaged over the readings (every reading must hold every question)."""
    by_id = [{item["id"]: item for item in report["per_question"]} for report in readings]
    ids = [item["id"] for item in readings[0]["per_question"]]
    if any(set(found) != set(ids) for found in by_id):
        raise SystemExit("the readings do not cover the same questions")
    return [{"id": question, **{key: statistics.fmean(found[question][key] for found in by_id)
                                for key in PAIRED.values()}} for question in ids]


def summary(run: Sequence[dict[str, Any]], base: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means of both sides, the paired delta and its 95% interval, for accuracy and vote."""
    result = {}
    for name, key in PAIRED.items():
        run_mean, base_mean = (statistics.fmean(item[key] for item in side) for side in (run, base))
        result[name] = {"base": round(base_mean, 4), "run": round(run_mean, 4),
                        "delta": round(run_mean - base_mean, 4), "ci95": paired_interval(run, base, key)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, nargs="+", required=True, help="the base model's report.json files")
    parser.add_argument("--run", type=Path, nargs="+", required=True,
                        help="the adapter's report.json files, in the same order of option orders")
    parser.add_argument("--out", default="pooled_delta", help="name of the JSON written under bench/results/")
    args = parser.parse_args()
    if len(args.base) != len(args.run):
        raise SystemExit(f"{len(args.base)} base readings but {len(args.run)} adapter readings")
    bases, runs = ([json.loads(path.read_text(encoding="utf-8")) for path in paths] for paths in (args.base, args.run))
    for base, run, path in zip(bases, runs, args.run):
        if (base.get("permute"), base.get("n_questions")) != (run.get("permute"), run.get("n_questions")):
            raise SystemExit(f"{path} is not read like its base (permute, number of questions)")
    result = {
        "base": [str(path) for path in args.base], "run": [str(path) for path in args.run],
        "readings": [{"permute": base.get("permute"), **summary(run["per_question"], base["per_question"])}
                     for base, run in zip(bases, runs)],
        "pooled": summary(pooled(runs), pooled(bases)),
    }
    print(f"{'reading':<12} {'base':>7} {'run':>8} {'delta':>8}  95% interval (paired by question)")
    rows = [(f"permute {'on' if item['permute'] else 'off'}", item) for item in result["readings"]]
    for label, item in [*rows, (f"pooled ({len(runs)})", result["pooled"])]:
        for name in PAIRED:
            numbers = item[name]
            print(f"{label:<12} {numbers['base']:7.3f} {numbers['run']:8.3f} {numbers['delta']:+8.3f}  "
                  f"{numbers['ci95']}  {name}")
    out = RESULTS / f"{args.out}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
