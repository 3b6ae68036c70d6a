"""The three engines side by side on the same weights, prompts and machine, in one run.

- transformers: in-process (float32 on CPU unless --dtype);
- llama.cpp: the GGUF in llama.cpp's server inside the process (xllamacpp);
- openai: the openai engine's HTTP client against a llama.cpp server in another process (what
  `--engine openai --base-url ...` does against a local `llama-server`).

Workloads: (a) cot: the README demo question (3 languages x 1 sample, top-3 demo passages, 160 new
tokens; sampled), (b) direct: 60 X-CSQA test prompts (10 questions x 6 languages, one next-token
distribution each). Each engine runs in its own process, so peak RSS is that engine's alone (the openai
row adds the server process's peak separately). Tokens/s counts the generated text re-tokenized with
the model's tokenizer. Direct-mode answers are compared with transformers' (argmax agreement, total
variation).

    python bench/engines.py                                   # tiny random Qwen2 (hidden 256, 4 layers), < 1 min
    python bench/engines.py --model qwen2.5-coder-0.5b-instruct   # the offline bundle (`calm-rag models pull`)
    python bench/engines.py --model qwen2.5-coder-1.5b-instruct --tokens 160 --direct 60
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from memory import peak_rss_mib

ROOT = Path(__file__).resolve().parents[1]
DEMO = {
    "en": "When did Carl Wilhelm Scheele discover oxygen?",
    "zh": "卡尔·威廉·舍勒是什么时候发现氧气的？",
    "de": "Wann entdeckte Carl Wilhelm Scheele Sauerstoff?",
}
DEMO_CHOICES = ["1773", "1774", "1777", "1783"]
XCSQA_LANGUAGES = ("en", "zh", "de", "fr", "it", "ja")


def data_dir() -> Path:
    for candidate in (Path("/work/shared/data"), ROOT.parent / "shared" / "data"):
        if (candidate / "xcsqa").is_dir():
            return candidate
    raise SystemExit("X-CSQA not found (shared/data/xcsqa); the direct-mode workload needs it")


def workloads(render: Any, languages: list[str], samples: int,
              direct: int) -> tuple[list[str], list[str], list[list[str]]]:
    """(cot prompts, direct prompts, their label sets), rendered with `render(messages, prefill)`."""
    from calm_rag.prompts import Passage, answer_prefill, mcq_messages
    from calm_rag.questions import Choice, Question, make_choices

    lines = (ROOT / "examples/demo_corpus/corpus.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    passages = [Passage(text=row["text"], source=row["id"], lang=row["lang"]) for row in map(json.loads, lines)]
    cot = []
    for lang in languages:
        question = Question("demo", lang, DEMO[lang], make_choices(DEMO_CHOICES))
        cot += [render(mcq_messages(question, mode="cot", passages=passages))] * samples
    per_language = max(1, direct // len(XCSQA_LANGUAGES))
    prompts, labels = [], []
    for lang in XCSQA_LANGUAGES:
        rows = [json.loads(line) for line in (data_dir() / "xcsqa" / f"{lang}.jsonl").open(encoding="utf-8")]
        for row in [row for row in rows if row["split"] == "test"][:per_language]:
            choices = tuple(Choice(c["label"], c["text"]) for c in row["choices"])  # as given (some repeat a text)
            question = Question(row["id"], lang, row["question"], choices)
            prompts.append(render(mcq_messages(question, mode="direct"), answer_prefill(lang)))
            labels.append(list(question.labels))
    return cot, prompts, labels


# ---- one engine, in its own process -------------------------------------------------------------


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from calm_rag.generation.base import GenerationConfig
    from calm_rag.generation.engines import EngineConfig, load_generator

    engine = spec["engine"]
    if engine == "transformers":
        model, config = spec["hf"], EngineConfig(engine="transformers", dtype=spec["dtype"], device="cpu")
    elif engine == "llama.cpp":
        model, config = spec["gguf"], EngineConfig(engine="llama.cpp", tokenizer=spec["hf"], slots=spec["slots"])
    else:
        model, config = spec["served"], EngineConfig(engine="openai", base_url=spec["base_url"], tokenizer=spec["hf"])
    started = time.perf_counter()
    generator = load_generator(model, config)
    load_s = time.perf_counter() - started
    cot, direct, labels = workloads(generator.render, spec["languages"], spec["samples"], spec["direct"])
    sampling = GenerationConfig(max_new_tokens=spec["tokens"], temperature=0.7, top_p=0.95, seed=0)
    generator.generate(cot[:1], GenerationConfig(max_new_tokens=2, temperature=0))  # warm-up, not timed
    started = time.perf_counter()
    answers = generator.generate(cot, sampling)
    cot_s = time.perf_counter() - started
    started = time.perf_counter()
    distributions = generator.label_distributions(direct, labels)
    direct_s = time.perf_counter() - started
    tokenizer = AutoTokenizer.from_pretrained(spec["hf"])
    tokens = sum(len(tokenizer.encode(text, add_special_tokens=False)) for text in answers)
    if hasattr(generator, "close"):
        generator.close()
    return {"engine": engine, "load_s": round(load_s, 2), "cot_s": round(cot_s, 2), "cot_tokens": tokens,
            "cot_tokens_per_s": round(tokens / cot_s, 1), "direct_s": round(direct_s, 2),
            "direct_prompts": len(direct),
            "peak_rss_mb": round(peak_rss_mib()),
            "distributions": [dict(d) for d in distributions]}


def serve(gguf: str, slots: int) -> None:
    """A llama.cpp server in this process until stdin closes; prints its URL first."""
    from calm_rag.generation.llamacpp_engine import LlamaCppOptions, LlamaCppServer

    with LlamaCppServer(Path(gguf), alias="bench", options=LlamaCppOptions(slots=slots)) as server:
        print(server.url, flush=True)
        sys.stdin.read()


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                          check=False, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise SystemExit(f"{spec['engine']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the comparison ------------------------------------------------------------------------------


def prepare(model: str | None, scratch: Path) -> tuple[str, str, str]:
    """(label, HF folder, GGUF file) of the model to compare on."""
    if model is None:
        from calm_rag.testing.tiny_gguf import build_tiny_gguf

        hf, gguf = build_tiny_gguf(scratch, hidden_size=256, layers=4)
        return "random Qwen2 (hidden 256, 4 layers, F32)", str(hf), str(gguf)
    from calm_rag.generation.engines import find_gguf
    from calm_rag.models.transformers_weights import ensure_transformers_weights

    resolved = find_gguf(model)
    hf = ensure_transformers_weights(resolved, lambda stage, done, total: print(f"\r{stage} {done}/{total}", end=""))
    return model, str(hf), str(resolved.gguf)


def agreement(reference: list[dict[str, float]], other: list[dict[str, float]]) -> tuple[float, float]:
    """(share of prompts with the same argmax, largest total variation) against `reference`."""
    same = sum(max(a, key=a.__getitem__) == max(b, key=b.__getitem__) for a, b in zip(reference, other))
    tv = max(0.5 * sum(abs(a[label] - b[label]) for label in a) for a, b in zip(reference, other))
    return same / len(reference), tv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="short name, hub id or folder with a GGUF; default: a tiny random model")
    parser.add_argument("--languages", default="en,zh,de")
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--tokens", type=int, help="new tokens per cot answer (default 160, tiny model 48)")
    parser.add_argument("--direct", type=int, default=60, help="direct-mode prompts (6 languages x N/6 questions)")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--dtype", default="float32", help="transformers dtype (float32, bfloat16)")
    parser.add_argument("--engines", default="transformers,llama.cpp,openai")
    parser.add_argument("--out", default="bench/results/engines.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return

    with TemporaryDirectory() as scratch:
        label, hf, gguf = prepare(args.model, Path(scratch))
        spec = {"hf": hf, "gguf": gguf, "served": "bench", "languages": args.languages.split(","),
                "samples": args.samples, "tokens": args.tokens or (48 if args.model is None else 160),
                "direct": args.direct, "slots": args.slots, "dtype": args.dtype}
        rows = []
        for engine in args.engines.split(","):
            print(f"running {engine} ...", flush=True)
            if engine != "openai":
                rows.append(run_worker({**spec, "engine": engine}))
                continue
            server = subprocess.Popen([sys.executable, __file__, "--serve", gguf, str(args.slots)], cwd=ROOT,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      env={**os.environ, "PYTHONPATH": str(ROOT)})
            try:
                assert server.stdout is not None and server.stdin is not None
                url = server.stdout.readline().strip()
                rows.append({**run_worker({**spec, "engine": engine, "base_url": url + "/v1"}),
                             "server_peak_rss_mb": round(peak_rss_mib(server.pid))})
                server.stdin.close()
                server.wait(timeout=30)
            finally:
                if server.poll() is None:
                    server.kill()

    reference = next((row["distributions"] for row in rows if row["engine"] == "transformers"), None)
    print(f"\n{label}; {os.cpu_count()} CPUs; cot: {len(spec['languages'])} languages x {spec['samples']} samples x "
          f"{spec['tokens']} tokens; direct: {rows[0]['direct_prompts']} X-CSQA prompts")
    print(f"{'engine':<13}{'load s':>8}{'cot s':>8}{'tok/s':>8}{'direct s':>10}{'RSS MB':>9}{'argmax=':>9}"
          f"{'max TV':>9}")
    for row in rows:
        same, tv = agreement(reference, row["distributions"]) if reference else (float("nan"), float("nan"))
        row.update(argmax_agreement=round(same, 3), max_total_variation=round(tv, 5))
        rss = f"{row['peak_rss_mb']}" + (f"+{row['server_peak_rss_mb']}" if "server_peak_rss_mb" in row else "")
        print(f"{row['engine']:<13}{row['load_s']:>8.2f}{row['cot_s']:>8.2f}{row['cot_tokens_per_s']:>8.1f}"
              f"{row['direct_s']:>10.2f}{rss:>9}{same:>9.2f}{tv:>9.4f}")
    result = {"model": label, "platform": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              **{key: spec[key] for key in ("languages", "samples", "tokens", "slots", "dtype")},
              "engines": [{key: value for key, value in row.items() if key != "distributions"} for row in rows]}
    out = (ROOT / args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
