"""Multilingual retrieval quality on XQuAD-R: same-language and cross-language recall@1/5/10 and MRR@10.

The 13,014 candidate sentences (11 languages, parallel) go through `build_index` like any
.jsonl corpus; queries are the first --queries-per-lang questions of each language, the same
SQuAD questions in every language (so every cell of the matrix asks the same thing).

- same-language: query in X, candidates = sentences in X, relevant = the answer sentence in X.
- cross-language: query in X, candidates = sentences in Y only, relevant = the answer sentence in Y,
  for every X != Y; reported as the mean over pairs, per query language and per target language.
- pooled: query in X against the whole multilingual index (what `Index.search` does for the QA
  pipeline); a hit is the answer sentence in any language.

Throughput: corpus docs/s (embedding + index build) and queries/s. --compare-dtype runs the same
evaluation with a second embedder precision (e.g. int8, bfloat16) and reports the docs/s ratio
and recall deltas. Results go to bench/results/retrieval.json.

    python bench/retrieval.py --queries-per-lang 100                  # default embedder (settings)
    python bench/retrieval.py --embedder PATH --compare-dtype int8 --languages en,de,zh,ar --paragraphs 40
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from calm_rag.indexes.build import build_index
from calm_rag.indexes.embedder import Embedder, EmbedderConfig
from calm_rag.indexes.index import Index

RESULTS = Path(__file__).parent / "results"
DATA = Path(os.environ.get("CALM_RAG_SHARED", "/work/shared")) / "data" / "xquad_r"
KS = (1, 5, 10)


def load_data(data: Path, languages: list[str] | None, per_lang: int, seed: int, paragraphs: int | None = None):
    corpus = [json.loads(line) for line in (data / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line) for line in (data / "queries.jsonl").open(encoding="utf-8")]
    if paragraphs:
        para_ids = sorted({doc["para_id"] for doc in corpus})
        kept = set(np.random.default_rng(seed + 1).permutation(para_ids)[:paragraphs].tolist())
        corpus = [doc for doc in corpus if doc["para_id"] in kept]
        queries = [q for q in queries if q["para_id"] in kept]
    langs = sorted({doc["lang"] for doc in corpus})
    if languages:
        unknown = set(languages) - set(langs)
        if unknown:
            raise SystemExit(f"unknown languages {sorted(unknown)}; XQuAD-R has {', '.join(langs)}")
        langs = [lang for lang in langs if lang in languages]
    corpus = [doc for doc in corpus if doc["lang"] in langs]
    squad_ids = sorted({q["squad_id"] for q in queries})
    chosen = set(np.random.default_rng(seed).permutation(squad_ids)[:per_lang].tolist())
    queries = [q for q in queries if q["lang"] in langs and q["squad_id"] in chosen]
    qrels: dict[str, dict[str, str]] = defaultdict(dict)
    wanted = {q["qid"] for q in queries}
    with (data / "qrels.tsv").open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid, doc_id, target = line.rstrip("\n").split("\t")
            if qid in wanted and target in langs:
                qrels[qid][target] = doc_id
    return langs, corpus, queries, qrels


def ranks(scores: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """1-based rank of the relevant column per row within the top k, 0 when not there."""
    top = np.argsort(-scores, axis=1)[:, :k]
    hit = top == relevant[:, None]
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)


def metrics(rank: np.ndarray) -> dict[str, float]:
    out = {f"recall@{k}": float(np.mean((rank > 0) & (rank <= k))) for k in KS}
    out["mrr@10"] = float(np.mean(np.where(rank > 0, 1.0 / np.maximum(rank, 1), 0.0)))
    return out


def evaluate(embedder: Embedder, langs, corpus, queries, qrels, work: Path, label: str) -> dict:
    path = work / f"corpus-{label}.jsonl"
    path.write_text("".join(json.dumps({"id": d["doc_id"], "text": d["text"], "lang": d["lang"],
                                        "para_id": d["para_id"]}, ensure_ascii=False) + "\n" for d in corpus),
                    encoding="utf-8")
    started = time.perf_counter()
    build_index([path], f"xquad-{label}", embedder=embedder, index_dir=work / "indexes", index_type="flat",
                progress=True)
    build_s = time.perf_counter() - started
    index = Index.open(f"xquad-{label}", work / "indexes", embedder=embedder)
    ids, vectors = index.store.all_vectors()
    rows = index.docstore.get(ids.tolist())
    doc_ids = [rows[int(i)]["doc_id"] for i in ids]
    by_lang: dict[str, list[int]] = defaultdict(list)
    for position, vector_id in enumerate(ids):
        by_lang[rows[int(vector_id)]["lang"]].append(position)
    started = time.perf_counter()
    query_vectors = embedder.embed_queries([q["question"] for q in queries])
    query_s = time.perf_counter() - started
    queries_by_lang: dict[str, list[int]] = defaultdict(list)
    for position, query in enumerate(queries):
        queries_by_lang[query["lang"]].append(position)

    matrix: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for source in langs:
        q_rows = queries_by_lang[source]
        for target in langs:
            candidates = by_lang[target]
            column = {doc_ids[c]: n for n, c in enumerate(candidates)}
            keep = [r for r in q_rows if qrels[queries[r]["qid"]].get(target) in column]
            relevant = np.array([column[qrels[queries[r]["qid"]][target]] for r in keep])
            scores = query_vectors[keep] @ vectors[candidates].T
            matrix[source][target] = metrics(ranks(scores, relevant, 10))

    pooled_hits = index.search_vectors(query_vectors, 10)
    pooled_rank = np.array([next((n + 1 for n, hit in enumerate(hits) if hit.doc_id in qrels[q["qid"]].values()), 0)
                            for q, hits in zip(queries, pooled_hits, strict=True)])
    names = [f"recall@{k}" for k in KS] + ["mrr@10"]

    def mean(cells: list[dict[str, float]]) -> dict[str, float]:
        return {name: float(np.mean([cell[name] for cell in cells])) for name in names} if cells else {}

    same = {lang: matrix[lang][lang] for lang in langs}
    cross_pairs = [matrix[s][t] for s in langs for t in langs if s != t]
    return {
        "label": label, "embedder": embedder.describe(), "docs": len(corpus), "queries": len(queries),
        "build_s": build_s, "docs_per_s": len(corpus) / build_s, "queries_per_s": len(queries) / query_s,
        "same_language": {"per_language": same, "mean": mean(list(same.values()))},
        "cross_language": {"mean": mean(cross_pairs),
                           "by_query_language": {s: mean([matrix[s][t] for t in langs if t != s]) for s in langs},
                           "by_target_language": {t: mean([matrix[s][t] for s in langs if s != t]) for t in langs},
                           "matrix_recall@10": {s: {t: matrix[s][t]["recall@10"] for t in langs} for s in langs}},
        "pooled": {"per_language": {lang: metrics(pooled_rank[queries_by_lang[lang]]) for lang in langs},
                   "mean": metrics(pooled_rank)},
    }


def show(result: dict, langs: list[str]) -> None:
    print(f"\n== {result['label']}: {result['docs']:,} sentences, {result['queries']:,} queries, "
          f"{result['docs_per_s']:,.1f} docs/s (build), {result['queries_per_s']:,.1f} queries/s")
    print(f"{'lang':<6}{'same R@1':>9}{'R@5':>7}{'R@10':>7}{'MRR':>7} | {'cross R@1':>9}{'R@5':>7}{'R@10':>7}"
          f"{'MRR':>7} | {'pooled R@10':>11}")
    for lang in [*langs, "mean"]:
        same = result["same_language"]["mean"] if lang == "mean" else result["same_language"]["per_language"][lang]
        cross = result["cross_language"]["mean"] if lang == "mean" else \
            result["cross_language"]["by_query_language"][lang]
        pooled = result["pooled"]["mean"] if lang == "mean" else result["pooled"]["per_language"][lang]
        print(f"{lang:<6}{same['recall@1']:>9.3f}{same['recall@5']:>7.3f}{same['recall@10']:>7.3f}"
              f"{same['mrr@10']:>7.3f} | {cross.get('recall@1', float('nan')):>9.3f}{cross.get('recall@5', float('nan')):>7.3f}"
              f"{cross.get('recall@10', float('nan')):>7.3f}{cross.get('mrr@10', float('nan')):>7.3f} | "
              f"{pooled['recall@10']:>11.3f}")
    matrix = result["cross_language"]["matrix_recall@10"]
    print("recall@10, query language (rows) x sentence language (columns):")
    print("      " + "".join(f"{t:>6}" for t in langs))
    for source in langs:
        print(f"{source:<6}" + "".join(f"{matrix[source][t]:>6.2f}" for t in langs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", default=None, help="Short name, hub id or folder (default: settings).")
    parser.add_argument("--queries-per-lang", type=int, default=100)
    parser.add_argument("--languages", default=None, help="Comma-separated subset, e.g. en,de,zh (default: all 11).")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "int8"))
    parser.add_argument("--compare-dtype", default=None, choices=("float32", "bfloat16", "int8"),
                        help="Also run with this precision and report docs/s ratio and recall deltas.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=None)
    parser.add_argument("--paragraphs", type=int, default=None,
                        help="Use only N random paragraphs (of 240) as corpus and query source: a smaller, "
                             "easier pool for slow embedders (default: all).")
    parser.add_argument("--threads", type=int, default=None, help="torch and FAISS threads (default: library's).")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "retrieval.json")
    args = parser.parse_args()
    if args.threads:
        import faiss
        import torch

        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    langs, corpus, queries, qrels = load_data(args.data, args.languages.split(",") if args.languages else None,
                                              args.queries_per_lang, args.seed, args.paragraphs)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in [args.dtype, *([args.compare_dtype] if args.compare_dtype else [])]:
            embedder = Embedder.load(args.embedder, EmbedderConfig(dtype=dtype, batch_size=args.batch_size,
                                                                   max_seq_length=args.max_seq_length))
            runs.append(evaluate(embedder, langs, corpus, queries, qrels, Path(tmp), dtype))
            show(runs[-1], langs)
            del embedder
    result: dict = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                "load_average": os.getloadavg(), "threads": args.threads},
                    "languages": langs, "queries_per_lang": args.queries_per_lang, "paragraphs": args.paragraphs,
                    "runs": runs}
    if len(runs) == 2:
        base, other = runs
        result["comparison"] = {
            "docs_per_s_ratio": other["docs_per_s"] / base["docs_per_s"],
            "same_recall@10_delta": other["same_language"]["mean"]["recall@10"] - base["same_language"]["mean"]["recall@10"],
            "cross_recall@10_delta": other["cross_language"]["mean"]["recall@10"] - base["cross_language"]["mean"]["recall@10"],
            "cross_mrr@10_delta": other["cross_language"]["mean"]["mrr@10"] - base["cross_language"]["mean"]["mrr@10"]}
        c = result["comparison"]
        print(f"\n{other['label']} vs {base['label']}: {c['docs_per_s_ratio']:.2f}x docs/s, same-language R@10 "
              f"{c['same_recall@10_delta']:+.3f}, cross-language R@10 {c['cross_recall@10_delta']:+.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
