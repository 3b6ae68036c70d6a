"""Open-question agreement across languages: the German factual set (examples/factual_de), two settings side
by side in one run: the span continuation off and on (`--compare spans`, the default); the continuation on and
the self-translation of the question straight from German vs through English (`--compare pivot`); or both on
and the spans compared as written vs also through their English glosses (`--compare gloss`); or all of those on
and the sampling free vs under the answer-line grammar (`--compare constrain`, llama.cpp).

For each question `CalmQA.ask_open_batch` asks it in --languages with --samples answers each; reported per
setting: the share of questions whose top cluster spans at least 3 languages, the share whose consensus
semantically matches the gold (exact key or numbers; the embedder for the rest), the share whose answer given
is a short span, the short-span rate overall and per language (spans of at most 60 characters and 8 words,
`calm_rag.voting.spans.is_short_span`), where the spans came from (the model's answer line, the continuation,
cut short by `shorten_span`), the extra generated tokens per sample the continuation cost (upper bound: its
token cap), and the wall time. Each question's translations, spans and clusters are in `per_question`.

    python bench/open_agreement.py --engine llama.cpp                # default models, en,de,zh,fr x 2
    python bench/open_agreement.py --engine llama.cpp --compare pivot --out open_agreement_pivot.json
    python bench/open_agreement.py --model qwen2.5-coder-0.5b-instruct --limit 10
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.open_sampling import SPAN_TOKENS
from calm_rag.generation.translation import Translator
from calm_rag.pipelines.qa import CalmQA, QAConfig, QuestionRequest
from calm_rag.voting import semantic_match
from calm_rag.voting.spans import is_short_span

RESULTS = Path(__file__).parent / "results"
QUESTIONS = Path(__file__).resolve().parents[1] / "examples" / "factual_de" / "questions.jsonl"


SETTINGS = {"spans": [(False, "en", False, False), (True, "en", False, False)],
            "pivot": [(True, None, False, False), (True, "en", False, False)],
            "gloss": [(True, "en", False, False), (True, "en", True, False)],
            "constrain": [(True, "en", True, False), (True, "en", True, True)]}
"""--compare -> the two settings measured, each (span continuation, translation pivot, glosses, grammar)."""


def measure(qa: CalmQA, rows: list[dict[str, Any]], continue_spans: bool, pivot: str | None, gloss: bool,
            constrain: bool, batch: int) -> dict[str, Any]:
    qa.config = replace(qa.config, continue_spans=continue_spans, gloss_spans=gloss, constrain_spans=constrain)
    qa.translator = Translator(qa.generator, pivot=pivot)  # and nothing cached from the other setting
    started = time.perf_counter()
    answers = []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        answers += qa.ask_open_batch([QuestionRequest(row["question"], row["lang"], ()) for row in chunk])
    seconds = time.perf_counter() - started
    languages = list(answers[0].spans)
    by_lang = {lang: [span for answer in answers for span in answer.spans[lang]] for lang in languages}
    spans = [span for items in by_lang.values() for span in items]
    sources = Counter(source for answer in answers for items in answer.span_sources.values() for source in items)
    wide = [len({member["lang"] for member in answer.clusters[0]["members"]}) >= 3 if answer.clusters else False
            for answer in answers]
    right = [semantic_match(answer.answer, row["answer"], qa.encode, qa.config.cluster_threshold, lang="de")
             for answer, row in zip(answers, rows)]
    # the answer given is a short span: one of the German samples' own spans, or a short translated one
    given_short = [is_short_span(answer.answer) for answer in answers]
    continued = sources["continuation"] + sources["shortened"]
    return {
        "continue_spans": continue_spans, "translation_pivot": pivot, "gloss_spans": gloss,
        "constrain_spans": constrain, "questions": len(rows),
        "top_cluster_3_languages": sum(wide) / len(rows), "consensus_correct": sum(right) / len(rows),
        "answer_is_short_span": sum(given_short) / len(rows),
        "answer_translated": sum(answer.answer_translated for answer in answers) / len(rows),
        "abstained": sum(answer.abstained for answer in answers),
        "short_span_rate": sum(is_short_span(span) for span in spans) / len(spans),
        "short_span_rate_by_language": {lang: sum(map(is_short_span, items)) / len(items)
                                        for lang, items in by_lang.items()},
        "parse_rate": sum(span is not None for span in spans) / len(spans),
        "span_sources": dict(sources),
        "continued_share": continued / len(spans), "extra_tokens_per_sample_max": SPAN_TOKENS * continued / len(spans),
        "seconds": round(seconds, 1),
        "per_question": [{"id": row["id"], "gold": row["answer"], "answer": answer.answer, "wide": flag, "right": ok,
                          "translations": answer.translations, "spans": answer.spans,
                          "span_sources": answer.span_sources, "span_glosses": answer.span_glosses,
                          "span_clusters": answer.span_clusters}
                         for row, answer, flag, ok in zip(rows, answers, wide, right)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--languages", default="en,de,zh,fr")
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch", type=int, default=5, help="questions per batched call")
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument("--compare", choices=sorted(SETTINGS), default="spans",
                        help="spans: continuation off vs on; pivot: translation straight vs through English; "
                             "gloss: spans compared as written vs also in English; constrain: sampling free vs "
                             "under the answer-line grammar")
    parser.add_argument("--out", default="open_agreement.json", help="file name under bench/results/")
    args = parser.parse_args()
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = rows[:args.limit] if args.limit else rows
    from calm_rag.generation.engines import EngineConfig

    config = QAConfig(model=args.model, languages=tuple(args.languages.split(",")), samples=args.samples,
                      engine=EngineConfig(engine=args.engine),
                      generation=GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=0.7))
    with CalmQA.from_config(config) as qa:
        runs = [measure(qa, rows, *setting, args.batch) for setting in SETTINGS[args.compare]]
    print(f"{'continuation':<13} {'pivot':>6} {'gloss':>6} {'grammar':>8} {'top cluster >=3 langs':>22} "
          f"{'consensus right':>16} {'answer short':>13} {'short spans':>12} {'continued':>10} {'seconds':>8}  "
          "short spans by language")
    for run in runs:
        by_lang = " ".join(f"{lang} {rate:.2f}" for lang, rate in run["short_span_rate_by_language"].items())
        print(f"{'on' if run['continue_spans'] else 'off':<13} {run['translation_pivot'] or '-':>6} "
              f"{'on' if run['gloss_spans'] else 'off':>6} {'on' if run['constrain_spans'] else 'off':>8} "
              f"{run['top_cluster_3_languages']:>22.2f} "
              f"{run['consensus_correct']:>16.2f} {run['answer_is_short_span']:>13.2f} {run['short_span_rate']:>12.2f} "
              f"{run['continued_share']:>10.2f} {run['seconds']:>8.1f}  {by_lang}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / args.out
    out.write_text(json.dumps({"model": qa.generator.name, "engine": args.engine, "languages": args.languages,
                               "samples": args.samples, "max_new_tokens": args.max_new_tokens, "runs": runs},
                              ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written {out}")


if __name__ == "__main__":
    main()
