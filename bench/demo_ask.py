"""The README demo question (`make demo`'s `ask` step) on the llama.cpp engine, with prefix sharing on and off
(issue 14: the goal is under 60 s and under 3 GB on 2 cores).

In one process, for each run: load the generator (the llama.cpp server on the default GGUF) and open the demo
index, answer "Wann entdeckte Carl Wilhelm Scheele Sauerstoff?" the way `calm-rag ask` does (CalmQA with the
settings' engine, 3 passages, en/zh/de x 1 sample, cot, 160 new tokens, seed 0), close. One warm-up run, then
sharing on and off alternately (`EngineConfig.share_prefixes`), `--repeats` runs each. Per run: wall time of
each stage (load, retrieval with the embedder's load, self-translation, sampling, vote and explanation), the
total, the process's CPU seconds, the system load, and the peak RSS of that run (VmHWM, reset before each run
through /proc/self/clear_refs; `rss_before_gb` is what the process held already). Then the whole
`calm-rag ask` command once as a user runs it, under `/usr/bin/time -v` (wall time, max RSS).

On a shared CPU the absolute times move with the other jobs; the on/off ratio, measured side by side, is the
number to trust. The demo index is built first if it is missing (`calm-rag index examples/demo_corpus/corpus.jsonl
--name demo`, timed the same way).

    python bench/demo_ask.py [--repeats 2] [--no-cli] [--out bench/results/demo_ask.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import mean
from typing import Any

from memory import peak_rss_mib, reset_peak, status_mib

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.engines import EngineConfig
from calm_rag.pipelines.qa import CalmQA, QAConfig, QuestionRequest
from calm_rag.voting.matching import DEFAULT_THRESHOLD

QUESTION = "Wann entdeckte Carl Wilhelm Scheele Sauerstoff?"
LANG = "de"
CHOICES = ["1773", "1774", "1777", "1783"]
LANGUAGES = ("en", "zh", "de")
CORPUS = "examples/demo_corpus/corpus.jsonl"
INDEX = "demo"
CLI = Path(sys.executable).with_name("calm-rag")
ASK_ARGS = ["ask", QUESTION, "--lang", LANG, "--index", INDEX, "--top-k", "3",
            *[a for c in CHOICES for a in ("--choice", c)], "--languages", ",".join(LANGUAGES), "--samples", "1",
            "--max-new-tokens", "160"]
STAGES = ("load", "retrieval", "translation", "sampling", "vote_explain", "close", "total")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_command(argv: list[str]) -> dict[str, Any]:
    """`/usr/bin/time -v` on a command: wall time, max RSS, CPU seconds, exit status and its stdout."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True, check=False,
                          env={**os.environ, "COLUMNS": "120"})
    wall = time.perf_counter() - started
    report = done.stderr

    def number(label: str) -> float:
        found = re.search(rf"{re.escape(label)}: ([\d.]+)", report)
        return float(found.group(1)) if found else float("nan")

    return {"command": " ".join(["calm-rag", *argv[1:]]), "rc": done.returncode, "wall_s": round(wall, 1),
            "max_rss_gb": round(number("Maximum resident set size (kbytes)") / 1024 / 1024, 2),
            "cpu_s": round(number("User time (seconds)") + number("System time (seconds)"), 1),
            "cpu_percent": number("Percent of CPU this job got"), "stdout": done.stdout[-3000:],
            "stderr_tail": report[-1500:] if done.returncode else ""}


def ensure_index() -> dict[str, Any] | None:
    from calm_rag.indexes import Index

    try:
        Index.open(INDEX).close()
        return None
    except CalmRagError:
        print(f"building the {INDEX} index ...", flush=True)
        result = timed_command([str(CLI), "index", CORPUS, "--name", INDEX])
        if result["rc"]:
            raise SystemExit(f"calm-rag index failed:\n{result['stderr_tail']}")
        return result


def qa_config(share: bool) -> QAConfig:
    """What `calm-rag ask` builds from the demo's flags (calm_rag/cli/ask.py), sharing on or off."""
    engine = EngineConfig.from_settings(share_prefixes=share)
    return QAConfig(languages=LANGUAGES, samples=1, mode="cot", permute=True, balanced=False, index=INDEX, top_k=3,
                    engine=engine, cluster_threshold=DEFAULT_THRESHOLD,
                    generation=GenerationConfig(max_new_tokens=160, temperature=0.7, top_p=0.95, seed=0, batch_size=32))


def one_run(share: bool, label: str) -> dict[str, Any]:
    reset_peak()
    rss_before = status_mib("VmRSS") / 1024
    load_before = os.getloadavg()[0]
    cpu_before = cpu_s()
    marks: dict[str, list[float]] = {}

    def progress(stage: str, done: int, total: int) -> None:
        marks.setdefault(stage, []).append(time.perf_counter())

    started = time.perf_counter()
    qa = CalmQA.from_config(qa_config(share))
    index = qa.index  # `ask` opens the index while loading; the embedder loads on the first search
    loaded = time.perf_counter()
    generator = qa.generator
    if type(generator).__name__ != "LlamaCppGenerator":
        raise SystemExit(f"the settings' engine runs {type(generator).__name__}, not llama.cpp (this bench's engine)")
    shares: list[dict[str, Any]] = []
    sharer = getattr(generator, "_prefixes", None)  # diagnostics only: how many slots got the prefix, how long it took
    if sharer is not None:
        from calm_rag.generation.prefix_sharing import shared_prefix

        original = sharer.share

        def share_logged(prompts: Any) -> int:
            begin = time.perf_counter()
            slots = original(prompts)
            shares.append({"prompts": len(prompts), "prefix_chars": len(shared_prefix(prompts)[0]), "slots": slots,
                           "seconds": round(time.perf_counter() - begin, 2)})
            return slots

        sharer.share = share_logged  # type: ignore[method-assign]
    with qa:
        answer = qa.ask_batch([QuestionRequest(QUESTION, LANG, CHOICES)], progress=progress)[0]
        answered = time.perf_counter()
    closed = time.perf_counter()
    index.close()
    peak = peak_rss_mib() / 1024
    translated = marks.get("translating", [loaded, loaded])[-1]
    sampled = marks.get("sampling", [translated])[-1]
    stages = {"load": loaded - started,
              "retrieval": marks["retrieving"][-1] - marks["retrieving"][0] if "retrieving" in marks else 0.0,
              "translation": translated - marks.get("translating", [translated])[0],
              "sampling": sampled - translated, "vote_explain": answered - sampled, "close": closed - answered,
              "total": closed - started}
    return {"label": label, "share_prefixes": share, **{f"{k}_s": round(v, 1) for k, v in stages.items()},
            "cpu_s": round(cpu_s() - cpu_before, 1),
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "rss_before_gb": round(rss_before, 2), "peak_rss_gb": round(peak, 2), "prefix_shares": shares,
            "answer": answer.answer, "votes": answer.votes, "consistency": answer.consistency,
            "model": answer.model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="Measured runs per setting (after one warm-up).")
    parser.add_argument("--no-cli", action="store_true", help="Skip the `calm-rag ask` run under /usr/bin/time.")
    parser.add_argument("--note", default="", help="Stored with the results (what else shared the CPU).")
    parser.add_argument("--out", default="bench/results/demo_ask.json")
    args = parser.parse_args()

    index_build = ensure_index()
    runs = [one_run(True, "warm-up (on)")]
    print(f"warm-up: {runs[0]['total_s']} s", flush=True)
    for repeat in range(args.repeats):
        for share in (True, False):
            runs.append(one_run(share, f"{'on' if share else 'off'} #{repeat + 1}"))
            print(f"{runs[-1]['label']}: {runs[-1]['total_s']} s", flush=True)
    measured = runs[1:]
    summary: dict[str, Any] = {}
    for share in (True, False):
        rows = [run for run in measured if run["share_prefixes"] is share]
        summary["on" if share else "off"] = {f"{stage}_s": round(mean(r[f"{stage}_s"] for r in rows), 1)
                                             for stage in STAGES}
        summary["on" if share else "off"] |= {"cpu_s": round(mean(r["cpu_s"] for r in rows), 1),
                                              "peak_rss_gb": max(r["peak_rss_gb"] for r in rows)}
    summary["ratio_on_off"] = {key: round(summary["on"][key] / summary["off"][key], 2)
                               for key in ("sampling_s", "total_s", "cpu_s") if summary["off"][key]}
    cli = None if args.no_cli else timed_command([str(CLI), *ASK_ARGS])

    header = (f"{'run':<14}" + "".join(f"{stage:>13}" for stage in STAGES)
              + f"{'cpu s':>8}{'load':>11}{'peak GB':>9}  votes")
    print(header)
    for run in runs:
        votes = " ".join(f"{lang}:{''.join(v or '-' for v in letters)}" for lang, letters in run["votes"].items())
        print(f"{run['label']:<14}" + "".join(f"{run[f'{stage}_s']:>13}" for stage in STAGES) + f"{run['cpu_s']:>8}"
              f"{run['load_average_1m'][0]:>5}-{run['load_average_1m'][1]:<5}{run['peak_rss_gb']:>9}  "
              f"{votes} -> {run['answer']}")
    for key in ("on", "off"):
        print(f"{'mean ' + key:<14}" + "".join(f"{summary[key][f'{stage}_s']:>13}" for stage in STAGES)
              + f"{summary[key]['cpu_s']:>8}{'':>11}{summary[key]['peak_rss_gb']:>9}")
    print("on/off: " + ", ".join(f"{key} {value}" for key, value in summary["ratio_on_off"].items()))
    if cli:
        print(f"`calm-rag ask` under /usr/bin/time -v: {cli['wall_s']} s wall, {cli['cpu_s']} CPU s, "
              f"max RSS {cli['max_rss_gb']} GB, rc {cli['rc']}")
    result = {"question": QUESTION, "choices": CHOICES, "languages": list(LANGUAGES), "samples": 1, "top_k": 3,
              "max_new_tokens": 160, "cpus": len(os.sched_getaffinity(0)), "note": args.note,
              "index_build": index_build, "runs": runs, "summary": summary, "cli": cli}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
