"""Load test of `calm-rag serve`: many concurrent clients, batching on versus one question at a time.

32 clients each ask 4 different multiple-choice questions, one after another, against a real server
process on 127.0.0.1. Three servers in one run, same model and settings:
  - batched: questions that arrive together share one pipeline call (up to --clients per batch);
  - one at a time: --max-batch 1, the same server answering question by question;
  - batched, small queue: --max-concurrency 16, so half the clients are refused with 429 + Retry-After
    and retry after the time it says (checks that overload is refused cleanly, not dropped).
Every request must come back answered (its own question in the answer: nothing lost or mixed up) or
refused with 429; p50/p95 latency and answers/s per server are printed and written to JSON.

    python bench/serve.py                          # the tiny random model (built here, seconds), direct mode
    python bench/serve.py --model qwen2.5-coder-1.5b-instruct --engine llama.cpp --mode direct --clients 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = (
    "import sys\n"
    "from calm_rag.cli import app\n"
    "sys.argv[0] = 'calm-rag'\n"
    "app()\n"
)
CHOICES = ["Paris", "Rome", "Berlin", "Madrid"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(args: argparse.Namespace, model: str, port: int, extra: list[str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-c", LAUNCH, "serve", "--port", str(port), "--model", model,
               "--languages", args.languages, "--samples", str(args.samples), "--mode", args.mode,
               "--max-new-tokens", str(args.max_new_tokens), "--log-level", "warning", *extra]
    if args.engine:
        command += ["--engine", args.engine]
    if args.embedder:
        command += ["--embedder", args.embedder]
    with log.open("w") as output:
        server = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 900
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.2)


async def client(http: httpx.AsyncClient, number: int, questions: int, record: dict[str, Any]) -> None:
    for index in range(questions):
        question = f"Q{number}-{index}: capital of country {number * questions + index}?"
        began = time.perf_counter()
        while True:
            response = await http.post("/v1/ask", json={"question": question, "lang": "en", "choices": CHOICES})
            if response.status_code != 429:
                break
            error = response.json().get("error", {})
            retry = response.headers.get("retry-after")
            if error.get("type") != "rate_limit_error" or not retry:
                record["unclean_refusals"] += 1
            record["refused"] += 1
            await asyncio.sleep(min(float(retry or 1), 5.0))
        record["latencies"].append(time.perf_counter() - began)
        if response.status_code != 200:
            record["errors"].append(f"{response.status_code}: {response.text[:200]}")
        elif response.json()["question"] != question:
            record["mixed_up"] += 1
        else:
            record["answered"] += 1


async def load(url: str, clients: int, questions: int) -> dict[str, Any]:
    record: dict[str, Any] = {"latencies": [], "answered": 0, "refused": 0, "unclean_refusals": 0, "mixed_up": 0,
                              "errors": []}
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=3600, limits=limits) as http:
        await http.post("/v1/ask", json={"question": "Warm-up: which city is the capital of France?", "lang": "en",
                                         "choices": CHOICES})
        began = time.perf_counter()
        await asyncio.gather(*(client(http, number, questions, record) for number in range(clients)))
        record["wall_s"] = time.perf_counter() - began
    return record


def summary(label: str, record: dict[str, Any], batch_sizes: list[float], expected: int) -> dict[str, Any]:
    latencies = sorted(record["latencies"])
    cuts = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    return {"server": label, "requests": expected, "answered": record["answered"], "refused_429": record["refused"],
            "unclean_refusals": record["unclean_refusals"], "mixed_up": record["mixed_up"],
            "errors": record["errors"][:5], "lost": expected - record["answered"] - len(record["errors"]),
            "wall_s": round(record["wall_s"], 2), "answers_per_s": round(record["answered"] / record["wall_s"], 2),
            "p50_s": round(statistics.median(latencies), 3), "p95_s": round(cuts[18], 3),
            "mean_batch_size": round(batch_sizes[0] / batch_sizes[1], 2) if batch_sizes[1] else None}


def batch_sizes(url: str) -> list[float]:
    """(sum, count) of the calm_rag_batch_size histogram, warm-up included."""
    found = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        for key in found:
            if line.startswith(f"calm_rag_batch_size_{key} "):
                found[key] = float(line.split()[1])
    return [found["sum"], found["count"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="Generator (default: a tiny random model built here).")
    parser.add_argument("--engine", default=None)
    parser.add_argument("--embedder", default=None, help="Answer embedder to load (default: a tiny one with the "
                                                         "tiny model, else the settings').")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--questions", type=int, default=4, help="Questions per client, asked one after another.")
    parser.add_argument("--languages", default="en,de")
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--mode", default="direct", help="direct (default: one forward pass per prompt, so the "
                                                          "run measures serving, not decoding) or cot.")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--out", default="bench/results/serve.json")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="calm-rag-bench-serve-"))
    model = args.model
    if model is None:
        from calm_rag.testing.tiny_embedder import build_tiny_embedder
        from calm_rag.testing.tiny_lm import build_tiny_causal_lm

        model = str(build_tiny_causal_lm(scratch / "tiny-lm"))
        args.embedder = args.embedder or str(build_tiny_embedder(scratch / "tiny-embedder"))
        args.engine = args.engine or "transformers"
    expected = args.clients * args.questions
    servers = [("batched", ["--max-batch", str(args.clients), "--max-concurrency", str(expected)]),
               ("one at a time", ["--max-batch", "1", "--max-concurrency", str(expected)]),
               ("batched, queue 16", ["--max-batch", str(args.clients), "--max-concurrency", "16"])]
    rows = []
    for label, extra in servers:
        port = free_port()
        server = start_server(args, model, port, extra, scratch / f"server-{port}.log")
        try:
            url = f"http://127.0.0.1:{port}"
            record = asyncio.run(load(url, args.clients, args.questions))
            rows.append(summary(label, record, batch_sizes(url), expected))
        finally:
            server.terminate()
            server.wait(60)
        print(f"{label}: done in {rows[-1]['wall_s']} s", flush=True)

    header = f"{'server':<20}{'answered':>9}{'429s':>6}{'lost':>6}{'mixed':>6}{'p50 s':>9}{'p95 s':>9}" \
             f"{'answers/s':>11}{'batch':>7}"
    print(header)
    for row in rows:
        print(f"{row['server']:<20}{row['answered']:>9}{row['refused_429']:>6}{row['lost']:>6}{row['mixed_up']:>6}"
              f"{row['p50_s']:>9.3f}{row['p95_s']:>9.3f}{row['answers_per_s']:>11.2f}"
              f"{row['mean_batch_size'] or 0:>7.1f}")
    speedup = rows[0]["answers_per_s"] / rows[1]["answers_per_s"]
    print(f"batching: {speedup:.1f}x the answers/s of one question at a time")
    result = {"model": model if args.model else "tiny random Qwen2 (calm_rag.testing.tiny_lm)", "engine": args.engine,
              "clients": args.clients, "questions_per_client": args.questions, "languages": args.languages,
              "samples": args.samples, "mode": args.mode, "max_new_tokens": args.max_new_tokens,
              "cpus": os.cpu_count(), "speedup": round(speedup, 2), "rows": rows}
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
