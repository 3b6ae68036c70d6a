"""CALM training costs: LoRA-DPO with the reference by adapter-disabling vs an explicit reference model,
what sampling one question costs in direct vs cot mode, and (`--speed`) seconds per direct-mode pair.

`--speed` trains the same direct-mode pairs once per DPO path, each in its own process: TRL's plain forward with
the reference recomputed in every step (the path before `shared_prefix`/`precompute_ref`), then the shared-prefix
forward with reference log-probabilities precomputed, in float32 and bfloat16. Seconds per pair count everything
from building the trainer (the reference pass, when precomputed) to the end of training.

`calm-rag train` passes `ref_model=None` with a LoRA config, so TRL computes the reference
log-probabilities by running the same weights with the adapter disabled. The alternative, a
second frozen copy of the model as `ref_model`, doubles the weights in memory. Each variant runs
in its own subprocess (peak RSS is per process), on the same synthetic CALM pairs, for the same
number of optimizer steps; steps/s leaves out the first step (warm-up). Memory columns: peak RSS,
peak over the RSS after imports, the part of it that is model weights (resident after one forward
pass; safetensors maps weights lazily), and the rest, what training itself adds (activations,
LoRA optimizer state, allocator caches), which is the same for both routes.

    python bench/train.py                 # tiny random model + the 0.5B offline model if provisioned
    python bench/train.py --steps 3 --skip-real
    python bench/train.py --model PATH    # another model instead of the 0.5B one
    python bench/train.py --speed --model qwen2.5-coder-1.5b-instruct --pairs 8   # DPO seconds per pair

Writes bench/results/train.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from memory import peak_rss_mib

REAL_MODEL = "qwen2.5-coder-0.5b-instruct"
QUESTION = {
    "en": ("Where in the eastern US would you find an anemone?",
           ["flower bed", "florida keys", "tide pool", "coral sea", "aquarium"], "Answer"),
    "zh": ("在美国东部哪里可以找到海葵？",
           ["花坛", "佛罗里达群岛", "潮池", "珊瑚海", "水族馆"], "答案"),
    "de": ("Wo im Osten der USA findet man eine Anemone?",
           ["Blumenbeet", "Florida Keys", "Gezeitenbecken", "Korallenmeer", "Aquarium"], "Antwort"),
}


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _pairs(count: int) -> list[dict[str, Any]]:
    """CALM direct-mode pairs: the consensus option preferred over another, in three languages."""
    from calm_rag.prompts import mcq_messages
    from calm_rag.questions import Question, make_choices

    pairs = []
    for index in range(count):
        lang = list(QUESTION)[index % len(QUESTION)]
        text, options, label = QUESTION[lang]
        question = Question(f"q{index}", lang, text, make_choices(options))
        wrong = "ABDE"[index % 4]
        wrong_text = options["ABCDE".index(wrong)]
        pairs.append({"prompt": mcq_messages(question, "direct"),
                      "chosen": [{"role": "assistant", "content": f"{label}: C) {options[2]}"}],
                      "rejected": [{"role": "assistant", "content": f"{label}: {wrong}) {wrong_text}"}]})
    return pairs


def worker_train(model_path: str, variant: str, steps: int, batch_size: int, checkpointing: bool, output: Path
                 ) -> dict[str, Any]:
    """One DPO run in this process; returns speed and memory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import DPOTrainer

    from calm_rag.training import CalmTrainConfig
    from calm_rag.training.dpo import dpo_config, lora_config, preference_dataset

    torch.manual_seed(0)
    baseline = _rss_mb()
    config = CalmTrainConfig(batch_size=batch_size, gradient_accumulation_steps=1, max_length=256, device="cpu",
                             dtype="float32", save_steps=10_000, warmup=0, gradient_checkpointing=checkpointing)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32, use_kernels=False)
    reference = (AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32, use_kernels=False)
                 if variant == "explicit-ref" else None)
    loaded = _rss_mb()  # safetensors maps the weights lazily: they count once a forward pass touches them
    probe = tokenizer("warm-up", return_tensors="pt")
    with torch.no_grad():
        for copy in (model, reference):
            if copy is not None:
                copy(**probe)
    touched = _rss_mb()
    args = dpo_config(config, output, torch.device("cpu"), torch.float32)
    args.max_steps = steps
    stamps: list[float] = []

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, *unused: Any, **kwargs: Any) -> None:
            stamps.append(time.perf_counter())

    trainer = DPOTrainer(model=model, ref_model=reference, args=args, train_dataset=preference_dataset(
        _pairs(steps * batch_size)), processing_class=tokenizer, peft_config=lora_config(config, model),
        callbacks=[Clock()])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    measured = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    return {"variant": variant, "steps": len(stamps), "batch_size": batch_size, "gradient_checkpointing": checkpointing,
            "steps_per_s": (len(stamps) - 1) / measured if len(stamps) > 1 else None,
            "rss_after_imports_mb": baseline, "rss_after_load_mb": loaded, "rss_weights_resident_mb": touched,
            "peak_rss_mb": peak_rss_mib(), "peak_over_imports_mb": peak_rss_mib() - baseline,
            "training_overhead_mb": peak_rss_mib() - touched}


TOP_BLOCKS = 8
SPEED_VARIANTS = {
    "trl-forward, reference per step, float32": (False, False, "float32", 0),
    "shared prefix, precomputed reference, float32": (True, True, "float32", 0),
    "shared prefix, precomputed reference, bfloat16": (True, True, "bfloat16", 0),
    f"... bfloat16, LoRA on the top {TOP_BLOCKS} blocks only": (True, True, "bfloat16", TOP_BLOCKS),
    f"... bfloat16, top {TOP_BLOCKS} blocks, reference per step": (True, False, "bfloat16", TOP_BLOCKS),
}
"""Variant -> (shared_prefix, precompute_ref, dtype, lora_layers). The first is what `calm-rag train` did before
the switches; the last two put LoRA on the top blocks only, so the backward pass stops there (and the very last
computes the reference in each step, as a run that trains on part of its pairs should: precomputing pays a
forward for every pair)."""


def worker_speed(model_path: str, variant: str, pairs: int, batch_size: int, output: Path) -> dict[str, Any]:
    """Seconds per pair of one DPO path, from building the trainer to the end of its single epoch."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback

    from calm_rag.training import CalmTrainConfig
    from calm_rag.training.dpo import dpo_config, lora_config, preference_dataset, trainer_class

    shared, precompute, dtype_name, lora_layers = SPEED_VARIANTS[variant]
    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, use_kernels=False)
    config = CalmTrainConfig(batch_size=batch_size, gradient_accumulation_steps=1, max_length=512, device="cpu",
                             dtype=dtype_name, save_steps=10_000, warmup=0, shared_prefix=shared,
                             precompute_ref=precompute,
                             lora_layers=min(lora_layers, model.config.num_hidden_layers))  # the tiny model: 2
    began = time.perf_counter()
    trainer = trainer_class(config)(model=model, ref_model=None, args=dpo_config(config, output, torch.device("cpu"),
                                                                                 dtype),
                                    train_dataset=preference_dataset(_pairs(pairs)), processing_class=tokenizer,
                                    peft_config=lora_config(config, model))
    built = time.perf_counter()
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    seconds = time.perf_counter() - began
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"variant": variant, "pairs": pairs, "batch_size": batch_size, "s_per_pair": seconds / pairs,
            "setup_s": built - began, "total_s": seconds, "first_loss": losses[0] if losses else None,
            "peak_rss_mb": peak_rss_mib()}


def worker_sampling(model_path: str, questions: int, samples: int, cot_tokens: int) -> dict[str, Any]:
    """Seconds per question to sample all languages x samples, direct vs cot (cot at `cot_tokens` new tokens)."""
    from calm_rag.generation.base import GenerationConfig
    from calm_rag.generation.sampling import SamplingConfig, sample_choice_responses
    from calm_rag.generation.transformers_engine import TransformersGenerator
    from calm_rag.questions import ParallelQuestion, Question, make_choices

    generator = TransformersGenerator.load(model_path, device="cpu", dtype="float32")
    parallel = [ParallelQuestion(f"q{i}", {lang: Question(f"q{i}", lang, f"{text} ({i})", make_choices(options))
                                           for lang, (text, options, _) in QUESTION.items()}, "en")
                for i in range(questions)]
    result: dict[str, Any] = {"questions": questions, "languages": list(QUESTION), "samples": samples,
                              "cot_max_new_tokens": cot_tokens}
    for mode in ("direct", "cot"):
        config = SamplingConfig(languages=tuple(QUESTION), samples=samples, mode=mode,  # type: ignore[arg-type]
                                generation=GenerationConfig(max_new_tokens=cot_tokens, batch_size=32))
        sample_choice_responses(generator, parallel[:1], config)  # warm-up
        began = time.perf_counter()
        sample_choice_responses(generator, parallel, config)
        result[f"{mode}_s_per_question"] = (time.perf_counter() - began) / questions
    result["cot_over_direct"] = result["cot_s_per_question"] / result["direct_s_per_question"]
    return result


def _spawn(*args: str) -> dict[str, Any]:
    with TemporaryDirectory() as scratch:
        out = Path(scratch) / "result.json"
        subprocess.run([sys.executable, __file__, "--worker", *args, "--result", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per variant (the first is warm-up)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--model", help=f"model to measure besides the tiny one (default {REAL_MODEL} if present)")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--questions", type=int, default=2, help="questions for the sampling-cost measurement")
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--cot-tokens", type=int, default=48)
    parser.add_argument("--gradient-checkpointing", action="store_true", help="as the cot recipes do")
    parser.add_argument("--no-sampling", action="store_true", help="skip the direct vs cot sampling measurement")
    parser.add_argument("--speed", action="store_true", help="seconds per direct-mode DPO pair, per DPO path")
    parser.add_argument("--pairs", type=int, default=8, help="pairs per --speed variant")
    parser.add_argument("--variants", default=None,
                        help="--speed: which DPO paths, as 1-based numbers (e.g. 3,4); speed-ups are against the first")
    parser.add_argument("--out", default=None, help="default bench/results/train.json (train-speed.json with --speed)")
    parser.add_argument("--worker", choices=["train", "sampling", "speed"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        with TemporaryDirectory() as scratch:
            if args.worker == "speed":
                result = worker_speed(args.path, args.variant, args.pairs, args.batch_size, Path(scratch))
            elif args.worker == "train":
                result = worker_train(args.path, args.variant, args.steps, args.batch_size,
                                      args.gradient_checkpointing, Path(scratch))
            else:
                result = worker_sampling(args.path, args.questions, args.samples, args.cot_tokens)
        Path(args.result).write_text(json.dumps(result))
        return

    from calm_rag.errors import CalmRagError
    from calm_rag.models import resolve_model
    from calm_rag.models.transformers_weights import ensure_transformers_weights
    from calm_rag.testing.tiny_lm import build_tiny_causal_lm

    scratch = TemporaryDirectory()
    models = {"tiny random Qwen2 (hidden 32, 2 layers)": str(build_tiny_causal_lm(Path(scratch.name)))}
    if not args.skip_real:
        try:
            resolved = resolve_model(args.model or REAL_MODEL, role="generator")
            models[args.model or REAL_MODEL] = str(ensure_transformers_weights(resolved))  # a GGUF bundle's copy
        except CalmRagError as error:
            print(f"skipping {args.model or REAL_MODEL}: {error}")
    common = ["--steps", str(args.steps), "--batch-size", str(args.batch_size), "--questions", str(args.questions),
              "--samples", str(args.samples), "--cot-tokens", str(args.cot_tokens),
              *(["--gradient-checkpointing"] if args.gradient_checkpointing else [])]
    report: dict[str, Any] = {"machine": platform.platform(), "python": platform.python_version(), "device": "cpu",
                              "models": {}}
    if args.speed:
        variants = list(SPEED_VARIANTS)
        if args.variants:
            variants = [variants[int(number) - 1] for number in args.variants.split(",")]
        _speed(models, variants, args.pairs, args.batch_size, args.out or "bench/results/train-speed.json", report)
        return
    for name, path in models.items():
        runs = {variant: _spawn("train", "--path", path, "--variant", variant, *common)
                for variant in ("adapter-ref", "explicit-ref")}
        adapter, explicit = runs["adapter-ref"], runs["explicit-ref"]
        report["models"][name] = {
            "training": runs,
            "memory_ratio_peak": adapter["peak_rss_mb"] / explicit["peak_rss_mb"],
            "memory_ratio_over_imports": adapter["peak_over_imports_mb"] / explicit["peak_over_imports_mb"],
            "memory_ratio_weights": _weights(adapter) / _weights(explicit),
        }
        if not args.no_sampling:
            report["models"][name]["sampling"] = _spawn("sampling", "--path", path, *common)
    print(_table(report))
    _write(report, args.out or "bench/results/train.json")


def _speed(models: dict[str, str], variants: list[str], pairs: int, batch_size: int, out: str,
           report: dict[str, Any]) -> None:
    """The DPO paths on every model, one process each; speed-ups against the first path run."""
    lines = [f"{'model':42} {'DPO path':48} {'s/pair':>7} {'speed-up':>9} {'peak RSS MB':>12}"]
    for name, path in models.items():
        runs = [_spawn("speed", "--path", path, "--variant", variant, "--pairs", str(pairs), "--batch-size",
                       str(batch_size)) for variant in variants]
        for run in runs:
            run["speedup"] = runs[0]["s_per_pair"] / run["s_per_pair"]
            lines.append(f"{name[:42]:42} {run['variant']:48} {run['s_per_pair']:>7.2f} {run['speedup']:>8.2f}x "
                         f"{run['peak_rss_mb']:>12.0f}")
        report["models"][name] = {"speed": runs}
    print("\n".join(lines))
    _write(report, out)


def _write(report: dict[str, Any], out: str) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


def _weights(run: dict[str, Any]) -> float:
    return float(run["rss_weights_resident_mb"] - run["rss_after_imports_mb"])


def _table(report: dict[str, Any]) -> str:
    lines = [f"{'model':42} {'reference':13} {'steps/s':>8} {'peak RSS MB':>12} {'over imports':>13} "
             f"{'weights':>8} {'training':>9}"]
    for name, result in report["models"].items():
        for variant, run in result["training"].items():
            speed = "-" if run["steps_per_s"] is None else f"{run['steps_per_s']:.3f}"
            weights = _weights(run)
            lines.append(f"{name[:42]:42} {variant:13} {speed:>8} {run['peak_rss_mb']:>12.0f} "
                         f"{run['peak_over_imports_mb']:>13.0f} {weights:>8.0f} {run['training_overhead_mb']:>9.0f}")
        lines.append(f"{'':42} memory ratio adapter/explicit: peak {result['memory_ratio_peak']:.2f}x, "
                     f"over imports {result['memory_ratio_over_imports']:.2f}x, "
                     f"weights {result['memory_ratio_weights']:.2f}x")
        sampling = result.get("sampling")
        if sampling:
            lines.append(f"{'':42} sampling s/question ({len(sampling['languages'])} langs x {sampling['samples']}):"
                         f" direct {sampling['direct_s_per_question']:.2f}, cot@{sampling['cot_max_new_tokens']} "
                         f"tokens {sampling['cot_s_per_question']:.2f} ({sampling['cot_over_direct']:.1f}x)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
