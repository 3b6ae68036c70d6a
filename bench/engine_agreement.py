"""How often two engines give the same direct-mode answer: two `calm-rag eval` runs of the same questions
(say llama.cpp on the GGUF and transformers on the float weights), compared prompt by prompt from their
item caches (each report.json names its cache): argmax agreement and total variation of the label
distributions, overall and per language, next to each run's headline numbers.

    python bench/engine_agreement.py docs/results/xcsqa-llamacpp-100/report.json runs/xcsqa-transformers-100/report.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def ballots(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, float]]:
    """(question id, language) -> the label distribution of its one sample."""
    found = {}
    for line in Path(report["cache"]).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for lang, items in record["ballots"].items():
            found[(record["id"], lang)] = items[0]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="report.json of one engine's run")
    parser.add_argument("second", type=Path, help="report.json of the other's")
    parser.add_argument("--out", type=Path, default=RESULTS / "engine_agreement.json")
    args = parser.parse_args()
    reports = [json.loads(path.read_text(encoding="utf-8")) for path in (args.first, args.second)]
    first, second = (ballots(report) for report in reports)
    keys = sorted(first.keys() & second.keys())
    same = {key: max(first[key], key=first[key].get) == max(second[key], key=second[key].get) for key in keys}
    variation = {key: sum(abs(first[key][label] - second[key].get(label, 0.0)) for label in first[key]) / 2
                 for key in keys}
    languages = sorted({lang for _, lang in keys})
    summary = {
        "prompts": len(keys), "argmax_agreement": sum(same.values()) / len(keys),
        "mean_total_variation": statistics.fmean(variation.values()), "max_total_variation": max(variation.values()),
        "by_language": {lang: sum(ok for (_, other), ok in same.items() if other == lang)
                        / sum(other == lang for _, other in keys) for lang in languages},
        "runs": [{key: report.get(key) for key in ("model", "mean_accuracy", "vote_accuracy", "consistency",
                                                   "accuracy_by_language", "cache")}
                 | {"cpu_s": report["timings"].get("cpu_s"), "run_s": report["timings"].get("run_s")}
                 for report in reports],
    }
    print(f"{summary['prompts']} prompts: same answer on {summary['argmax_agreement']:.1%}, total variation mean "
          f"{summary['mean_total_variation']:.3f}, max {summary['max_total_variation']:.3f}")
    print("  " + ", ".join(f"{lang} {share:.0%}" for lang, share in summary["by_language"].items()))
    for path, run in zip((args.first, args.second), summary["runs"]):
        print(f"  {path}: mean {run['mean_accuracy']:.3f}, vote {run['vote_accuracy']:.2f}, "
              f"consistency {run['consistency']:.3f}, {run['cpu_s']:.0f} CPU s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
