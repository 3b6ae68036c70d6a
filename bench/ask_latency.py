"""Latency of one `ask` with the default models, as a user sees it (issue: README's speed table).

Measures, in one process: model loading (once, outside the per-question path), then for each
setting the first answer (cold caches: translation included) and a second, different question
(warm process), plus peak resident memory. Settings: 6 languages x 1 sample and 3 languages x 3
samples, both chain-of-thought (the default mode) and, for comparison, direct mode.

    python bench/ask_latency.py [--model qwen2.5-coder-1.5b-instruct] [--max-new-tokens 160]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from calm_rag.generation.base import GenerationConfig
from calm_rag.pipelines.qa import CalmQA, QAConfig

QUESTIONS = [
    ("Wo im Osten der USA findet man eine Anemone?", ["Blumenbeet", "Florida Keys", "Gezeitenbecken", "Korallenmeer", "Aquarium"]),
    ("Die Zahnarztpraxis hatte viele Patienten mit Verletzungen im Mund, woher kamen diese Patienten?",
     ["Stadt", "Michigan", "Krankenhaus", "Schulen", "Bürogebäude"]),
]
SETTINGS = [("6 languages x 1 sample", ("en", "zh", "de", "fr", "it", "ja"), 1),
            ("3 languages x 3 samples", ("en", "zh", "de"), 3)]


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--modes", default="cot,direct")
    parser.add_argument("--out", default="bench/results/ask_latency.json")
    args = parser.parse_args()

    started = time.perf_counter()
    qa = CalmQA.from_config(QAConfig(model=args.model, generation=GenerationConfig(max_new_tokens=args.max_new_tokens)))
    load_s = time.perf_counter() - started
    rows = []
    for mode in args.modes.split(","):
        for label, languages, samples in SETTINGS:
            qa.config = QAConfig(model=args.model, mode=mode, languages=languages, samples=samples,  # type: ignore[arg-type]
                                 generation=GenerationConfig(max_new_tokens=args.max_new_tokens))
            qa.translator.cache.clear()
            timings = []
            for question, choices in QUESTIONS:
                begin = time.perf_counter()
                answer = qa.ask(question, "de", choices)
                timings.append((time.perf_counter() - begin, answer.answer, answer.consistency))
            rows.append({"mode": mode, "setting": label, "first_answer_s": round(timings[0][0], 1),
                         "second_answer_s": round(timings[1][0], 1), "answers": [t[1] for t in timings],
                         "consistency": [t[2] for t in timings]})
            print(f"{mode:<7}{label:<26}first {timings[0][0]:7.1f} s   second {timings[1][0]:7.1f} s   "
                  f"answers {[t[1] for t in timings]}", flush=True)
    result = {"model": qa.generator.name, "load_s": round(load_s, 1), "peak_rss_gb": round(peak_rss_gb(), 2),
              "max_new_tokens": args.max_new_tokens, "rows": rows}
    print(f"model load {load_s:.1f} s, peak memory {result['peak_rss_gb']} GB")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
