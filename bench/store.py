"""Vector-store benchmark: HNSW recall@10 and speed vs exact search, and whether the store slows builds.

Part 1, search: synthetic unit vectors (dim 768) at each --sizes N. "lowrank" data (default) are
a 64-dim Gaussian latent mapped to 768 dims plus small noise, which, like real sentence
embeddings, has a low intrinsic dimension; "uniform" (isotropic Gaussian) is the adversarial
worst case for graph indexes. Queries are fresh draws of the same distribution. For each efSearch
it reports recall@10 against exact search (`IndexFlatIP`), queries/s of both (one batch of
--queries, and one query at a time as the QA pipeline asks), and the speed-up.
Targets: recall >= 0.95 at >= 10x the exact queries/s.

Part 2, build: `build_index` (read, chunk, detect language, embed, FAISS add, SQLite, manifest,
atomic swap) on a --build-docs corpus vs the embedder's raw `encode` on the same texts (timed
before and after the build, averaged). Because a shared machine's load drifts between runs, it
also times the embedding inside that same build: the store is not the bottleneck when embedding
is >= 90% of the build time (everything else <= 10%). Texts are XQuAD-R
sentences (without their `lang`, so language detection runs) when /work/shared/data is there.
The embedder is --embedder, else a random BERT of MiniLM size (384 wide, 6 layers), which costs
about what a small real embedder costs on CPU.

    python bench/store.py                          # 100k vectors, 10k-doc build
    python bench/store.py --sizes 100000,1000000 --data uniform
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from calm_rag.indexes.store import StoreConfig, VectorStore

RESULTS = Path(__file__).parent / "results"
XQUAD = Path(os.environ.get("CALM_RAG_SHARED", "/work/shared")) / "data" / "xquad_r" / "corpus.jsonl"


def synthetic(n: int, dim: int, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    basis = np.random.default_rng(12345).standard_normal((64, dim)).astype(np.float32)
    for start in range(0, n, 100_000):
        rows = min(100_000, n - start)
        if kind == "uniform":
            block = rng.standard_normal((rows, dim), dtype=np.float32)
        else:
            block = rng.standard_normal((rows, 64), dtype=np.float32) @ basis
            # isotropic noise with ~12% of the signal's per-dimension variance (which is 64)
            block += 0.35 * 8.0 * rng.standard_normal((rows, dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + rows] = block
    return out


def timed_search(store: VectorStore, queries: np.ndarray, k: int, single: int) -> tuple[np.ndarray, float, float]:
    started = time.perf_counter()
    _, ids = store.search(queries, k)
    batch_qps = len(queries) / (time.perf_counter() - started)
    started = time.perf_counter()
    for row in range(single):
        store.search(queries[row:row + 1], k)
    single_qps = single / (time.perf_counter() - started)
    return ids, batch_qps, single_qps


def search_bench(n: int, args: argparse.Namespace) -> dict:
    print(f"\n== {n:,} vectors, dim {args.dim}, {args.data} data, {args.queries} queries, k={args.k}")
    base = synthetic(n, args.dim, args.data, seed=1)
    queries = synthetic(args.queries, args.dim, args.data, seed=2)
    ids = np.arange(n, dtype=np.int64)
    exact = VectorStore.build(args.dim, ids, base, StoreConfig(index_type="flat"))
    truth, exact_qps, exact_single = timed_search(exact, queries, args.k, args.single)
    del exact
    config = StoreConfig(index_type="hnsw", hnsw_m=args.hnsw_m, hnsw_ef_construction=args.ef_construction)
    started = time.perf_counter()
    hnsw = VectorStore.build(args.dim, ids, base, config)
    build_s = time.perf_counter() - started
    print(f"exact: {exact_qps:,.0f} q/s batched, {exact_single:,.0f} q/s one at a time; "
          f"HNSW (M={args.hnsw_m}, efConstruction={args.ef_construction}) built in {build_s:.1f} s")
    print(f"{'efSearch':>8} {'recall@10':>9} {'HNSW q/s':>10} {'x exact':>8} {'1-q q/s':>9} {'x exact':>8}")
    rows = []
    for ef in args.ef_search:
        hnsw.config = StoreConfig(**{**config.to_dict(), "hnsw_ef_search": ef})
        found, qps, single = timed_search(hnsw, queries, args.k, args.single)
        recall = float(np.mean([len(set(f) & set(t)) / args.k for f, t in zip(found, truth, strict=True)]))
        rows.append({"ef_search": ef, "recall_at_10": recall, "hnsw_qps": qps, "speedup": qps / exact_qps,
                     "hnsw_single_qps": single, "single_speedup": single / exact_single})
        print(f"{ef:>8} {recall:>9.4f} {qps:>10,.0f} {qps / exact_qps:>7.1f}x {single:>9,.0f} {single / exact_single:>7.1f}x")
    ok = [row for row in rows if row["recall_at_10"] >= 0.95]
    best = max(ok, key=lambda row: row["speedup"]) if ok else None
    verdict = (f"target met at efSearch={best['ef_search']}: recall {best['recall_at_10']:.3f}, "
               f"{best['speedup']:.1f}x exact" if best and best["speedup"] >= 10 else "target NOT met")
    print(verdict)
    return {"n": n, "dim": args.dim, "data": args.data, "queries": args.queries, "exact_qps": exact_qps,
            "exact_single_qps": exact_single, "hnsw_build_s": build_s, "hnsw_m": args.hnsw_m,
            "ef_construction": args.ef_construction, "sweep": rows, "best": best, "verdict": verdict}


def corpus_texts(count: int) -> list[str]:
    texts: list[str] = []
    if XQUAD.is_file():
        with XQUAD.open(encoding="utf-8") as handle:
            for line in handle:
                texts.append(json.loads(line)["text"].strip())
                if len(texts) == count:
                    break
    while len(texts) < count:
        texts.append(f"Synthetic passage number {len(texts)} about topic {len(texts) % 97}.")
    return texts


def build_bench(args: argparse.Namespace, work: Path) -> dict:
    from calm_rag.indexes.build import build_index
    from calm_rag.indexes.embedder import Embedder, EmbedderConfig
    from calm_rag.testing.tiny_embedder import build_tiny_embedder

    texts = corpus_texts(args.build_docs)
    if args.embedder:
        name = args.embedder
    else:  # vocabulary trained on the corpus, so texts tokenize to realistic lengths
        name = str(build_tiny_embedder(work / "minilm-sized", hidden=384, layers=6, vocab_size=30000,
                                       extra_text=tuple(texts)))
    embedder = Embedder.load(name, EmbedderConfig(batch_size=args.batch_size, progress=False))
    corpus = work / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}, ensure_ascii=False) + "\n"
                              for i, t in enumerate(texts)), encoding="utf-8")
    print(f"\n== build throughput: {len(texts):,} chunks, embedder {embedder.model_id}, batch {args.batch_size}")
    embedder.model.encode(texts[:64], batch_size=args.batch_size)  # warm-up

    def raw_encode() -> float:
        started = time.perf_counter()
        embedder.model.encode(texts, batch_size=args.batch_size, show_progress_bar=False)
        return time.perf_counter() - started

    inside: list[float] = []
    embed_documents = embedder.embed_documents

    def timed_embed(batch: list[str], *, progress: bool | None = None) -> np.ndarray:
        started = time.perf_counter()
        try:
            return embed_documents(batch, progress=progress)
        finally:
            inside.append(time.perf_counter() - started)

    embedder.embed_documents = timed_embed  # type: ignore[method-assign]
    encode_before = raw_encode()
    started = time.perf_counter()
    report = build_index([corpus], "bench", embedder=embedder, index_dir=work / "indexes", progress=False)
    build_s = time.perf_counter() - started
    encode_after = raw_encode()
    assert report.chunks >= len(texts), report.to_dict()  # a few long sentences are split in two
    encode_s = (encode_before + encode_after) / 2  # before and after: the machine's load drifts
    encode_rate, build_rate = len(texts) / encode_s, report.chunks / build_s
    ratio = build_rate / encode_rate
    embed_share = sum(inside) / build_s
    print(f"raw encode: {encode_rate:,.1f} texts/s ({encode_before:.1f} s before, {encode_after:.1f} s after the "
          f"build); build_index: {build_rate:,.1f} chunks/s ({build_s:.1f} s); build/encode = {ratio:.1%}")
    print(f"inside build_index, embedding took {sum(inside):.1f} s = {embed_share:.1%} of the build; everything "
          f"else (read, chunk, language id, FAISS, SQLite, manifest, swap) {build_s - sum(inside):.1f} s "
          f"({'ok' if embed_share >= 0.9 else 'store is a bottleneck'})")
    return {"docs": len(texts), "chunks": report.chunks, "embedder": embedder.model_id,
            "encode_docs_per_s": encode_rate, "build_docs_per_s": build_rate, "ratio": ratio,
            "encode_s_before": encode_before, "encode_s_after": encode_after, "build_s": build_s,
            "embed_s_inside_build": sum(inside), "embed_share_of_build": embed_share,
            "target_met": embed_share >= 0.9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000",
                        help="Comma-separated vector counts, e.g. 100000,1000000 ('' skips the search benchmark).")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--data", choices=("lowrank", "uniform"), default="lowrank")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--single", type=int, default=200, help="Queries timed one at a time.")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef-search", default="16,32,64,128,256")
    parser.add_argument("--build-docs", type=int, default=10_000, help="0 skips the build benchmark.")
    parser.add_argument("--embedder", default=None, help="Embedder for the build benchmark (default: MiniLM-sized random).")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch and FAISS threads (default: library's).")
    parser.add_argument("--out", type=Path, default=RESULTS / "store.json")
    args = parser.parse_args()
    args.ef_search = [int(ef) for ef in args.ef_search.split(",")]
    import faiss

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)

    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "faiss": faiss.__version__,
                          "omp_threads": faiss.omp_get_max_threads(),
                          "load_average": os.getloadavg()},
              "search": [search_bench(int(size), args) for size in args.sizes.split(",") if size.strip()]}
    if args.build_docs:
        with tempfile.TemporaryDirectory() as work:
            result["build"] = build_bench(args, Path(work))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
