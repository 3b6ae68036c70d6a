"""Re-cluster the spans that bench/open_agreement.py stored, with the current clustering: no generation.

Every stored question's spans go through `cluster_answers` three times: with the transliteration check off and
no glosses (cosine alone), with the current rule but without the stored English glosses (`no_glosses`), and with
the current rule and the glosses the run stored (`current`; runs stored before glosses have none). On a run
made before the current rules, cosine alone should reproduce the stored clusters (a check that the spans and the
embedder are the ones measured); on a run with glosses, `no_glosses` vs `current` is the glosses' effect on the
very same spans. Per run it reports the share of questions whose top cluster spans
at least 3 languages and whose consensus matches the gold: as stored, cosine alone, current.

A question keeps its stored verdict on the gold while its consensus cluster holds the same samples. When the
consensus changes, it is rescored without the model: the consensus cluster's German member, or (as the
pipeline would translate it, and this script cannot) its untranslated representative; those questions are
listed under `changed` with `untranslated: true`.

    python bench/open_rescore.py                                   # bench/results/open_agreement.json
    python bench/open_rescore.py results.json --out rescored.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from calm_rag.indexes.encoder import load_encoder
from calm_rag.voting import CachedEncoder, ClusterConfig, Clustering, cluster_answers, consensus_answer, semantic_match
from calm_rag.voting.clustering import span_glosses

RESULTS = Path(__file__).parent / "results"


def _ranks(clustering: Clustering, spans: dict[str, list[str | None]]) -> dict[str, list[int | None]]:
    joined = {(member.lang, member.sample): rank for rank, cluster in enumerate(clustering.clusters)
              for member in cluster.members}
    return {lang: [joined.get((lang, number)) for number in range(len(items))] for lang, items in spans.items()}


def _top(ranks: dict[str, list[int | None]]) -> set[tuple[str, int]]:
    return {(lang, number) for lang, items in ranks.items() for number, rank in enumerate(items) if rank == 0}


def _wide(clustering: Clustering) -> bool:
    return bool(clustering.clusters) and len(clustering.clusters[0].languages) >= 3


def rescore_run(run: dict[str, Any], encode: CachedEncoder, config: ClusterConfig, lang: str = "de") -> dict[str, Any]:
    totals = {"stored": [0, 0], "cosine_only": [0, 0], "no_glosses": [0, 0], "current": [0, 0]}
    reproduced, changed = 0, []
    for question in run["per_question"]:
        spans, stored_ranks = question["spans"], question["span_clusters"]
        totals["stored"][0] += question["wide"]
        totals["stored"][1] += question["right"]
        glosses = span_glosses(spans, question.get("span_glosses", {}), config.max_chars)
        for name, setting, given in (("cosine_only", replace(config, sound_margin=0.0), {}),
                                     ("no_glosses", config, {}), ("current", config, glosses)):
            clustering = cluster_answers(spans, encode, setting, given)
            ranks = _ranks(clustering, spans)
            same_consensus = not clustering.abstained and _top(ranks) == _top(stored_ranks)
            if same_consensus or (clustering.abstained and question["answer"] is None):
                right, untranslated = question["right"], False
            else:
                member = consensus_answer(clustering, lang)
                right = bool(member) and semantic_match(member.text, question["gold"], encode, config.threshold,
                                                        lang=lang, max_chars=config.max_chars,
                                                        sound_margin=setting.sound_margin)
                untranslated = member is not None and member.lang != lang
            totals[name][0] += _wide(clustering)
            totals[name][1] += right
            if name == "cosine_only":
                reproduced += ranks == stored_ranks
            elif name == "current" and ranks != stored_ranks:
                changed.append({"id": question["id"], "gold": question["gold"], "spans": spans,
                                "span_clusters": {"stored": stored_ranks, "current": ranks},
                                "wide": {"stored": question["wide"], "current": _wide(clustering)},
                                "right": {"stored": question["right"], "current": right},
                                "untranslated": untranslated})
    count = len(run["per_question"])
    return {"continue_spans": run["continue_spans"], "questions": count,
            "cosine_only_reproduces_stored_clusters": reproduced,
            **{name: {"top_cluster_3_languages": round(wide / count, 4), "consensus_correct": round(right / count, 4)}
               for name, (wide, right) in totals.items()},
            "changed": changed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", type=Path, default=RESULTS / "open_agreement.json")
    parser.add_argument("--out", type=Path, default=RESULTS / "open_rescore.json")
    parser.add_argument("--embedder", default=None, help="default: the settings' embedder, as the bench used")
    args = parser.parse_args()
    stored = json.loads(args.results.read_text(encoding="utf-8"))
    config = ClusterConfig()
    encode = CachedEncoder(load_encoder(args.embedder))
    texts = {text.strip() for run in stored["runs"] for question in run["per_question"]
             for field in ("spans", "span_glosses") for items in question.get(field, {}).values()
             for text in items if text}
    encode(sorted(texts | {question["gold"] for run in stored["runs"] for question in run["per_question"]}))
    runs = [rescore_run(run, encode, config) for run in stored["runs"]]
    names = ("stored", "cosine_only", "no_glosses", "current")
    print(f"{'continuation':<13} {'reproduced':>10}  {'top cluster >=3 langs':>38}  {'consensus right':>38}")
    print(f"{'':<13} {'':>10}  {'stored  cosine  no-gloss  current':>38}  {'stored  cosine  no-gloss  current':>38}")
    for run in runs:
        wide = " ".join(f"{run[name]['top_cluster_3_languages']:>7.2f}" for name in names)
        right = " ".join(f"{run[name]['consensus_correct']:>7.2f}" for name in names)
        print(f"{'on' if run['continue_spans'] else 'off':<13} {run['cosine_only_reproduces_stored_clusters']:>7}/"
              f"{run['questions']:<2}  {wide:>38}  {right:>38}   changed: "
              f"{', '.join(change['id'] for change in run['changed']) or 'none'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"source": args.results.name, "model": stored.get("model"),
                                    "languages": stored.get("languages"), "threshold": config.threshold,
                                    "sound_margin": config.sound_margin, "runs": runs},
                                   ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
