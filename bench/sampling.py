"""Batched cross-lingual sampling vs the naive loop, side by side on the same model and prompts.

The batched path is what `calm-rag ask` does: all languages x samples in one left-padded
`generate` call. The naive loop calls `generate` once per language per sample. Both use the
same prompts, the same sampling settings and the same number of new tokens (`min_new_tokens`
= `max_new_tokens`, so neither side wins by stopping early), and tokens/s is measured in one run.

    python bench/sampling.py                       # 0.5B offline model if provisioned, else a random one
    python bench/sampling.py --model PATH --languages en,zh,de,fr,it,ja --samples 3 --tokens 32
    python bench/sampling.py --random-init-from DIR   # DIR: a model's config.json + tokenizer, no weights

`--random-init-from` times a model of the real shape and vocabulary with random weights: speed does
not depend on the weights, and it runs where the weights cannot be copied (a lent GPU machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import torch

from calm_rag.errors import CalmRagError
from calm_rag.generation.loading import pick_device
from calm_rag.generation.transformers_engine import TransformersGenerator
from calm_rag.prompts import mcq_messages
from calm_rag.questions import Question, make_choices

QUESTION = {
    "en": ("Where in the eastern US would you find an anemone?", ["flower bed", "florida keys", "tide pool", "coral sea", "aquarium"]),
    "zh": ("在美国东部哪里可以找到海葵？", ["花坛", "佛罗里达群岛", "潮池", "珊瑚海", "水族馆"]),
    "de": ("Wo im Osten der USA findet man eine Anemone?", ["Blumenbeet", "Florida Keys", "Gezeitenbecken", "Korallenmeer", "Aquarium"]),
    "fr": ("Où trouve-t-on une anémone dans l'est des États-Unis ?", ["parterre", "keys de Floride", "bassin de marée", "mer de corail", "aquarium"]),
    "it": ("Dove si trova un anemone negli Stati Uniti orientali?", ["aiuola", "florida keys", "pozza di marea", "mar dei coralli", "acquario"]),
    "ja": ("アメリカ東部でイソギンチャクが見つかるのはどこ？", ["花壇", "フロリダキーズ", "潮だまり", "珊瑚海", "水族館"]),
}


def random_init(shape_dir: Path) -> tuple[Path, TemporaryDirectory]:
    """A model with `shape_dir`'s config and tokenizer and random weights, saved to a scratch folder."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    scratch = TemporaryDirectory()
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(shape_dir)).save_pretrained(scratch.name)
    AutoTokenizer.from_pretrained(shape_dir).save_pretrained(scratch.name)
    return Path(scratch.name), scratch


def load(model: str | None, device: str, shape_dir: Path | None = None
         ) -> tuple[TransformersGenerator, str, TemporaryDirectory | None]:
    if shape_dir:
        path, scratch = random_init(shape_dir)
        return TransformersGenerator.load(str(path), device=device), f"random weights, shape of {shape_dir.name}", scratch
    if model:
        return TransformersGenerator.load(model, device=device), model, None
    try:
        return TransformersGenerator.load("qwen2.5-coder-0.5b-instruct", device=device), "qwen2.5-coder-0.5b-instruct", None
    except CalmRagError:
        from calm_rag.testing.tiny_lm import build_tiny_causal_lm

        scratch = TemporaryDirectory()
        path = build_tiny_causal_lm(Path(scratch.name), hidden_size=256, layers=4)
        return TransformersGenerator.load(str(path), device=device), "random Qwen2 (hidden 256, 4 layers)", scratch


def timed_generate(generator: TransformersGenerator, prompts: list[str], tokens: int, batch: bool) -> float:
    inputs_list = [prompts] if batch else [[prompt] for prompt in prompts]
    device = generator.device
    started = time.perf_counter()
    for chunk in inputs_list:
        torch.manual_seed(0)
        encoded = generator.tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.inference_mode():
            generator.model.generate(**encoded, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=True,
                                     temperature=0.7, top_p=0.95, pad_token_id=generator.tokenizer.pad_token_id)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model")
    parser.add_argument("--random-init-from", type=Path, help="config.json + tokenizer folder: random weights")
    parser.add_argument("--languages", default="en,zh,de,fr,it,ja")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="bench/results/sampling.json")
    args = parser.parse_args()

    generator, model_name, scratch = load(args.model, args.device, args.random_init_from)
    languages = args.languages.split(",")
    prompts = []
    for lang in languages:
        text, options = QUESTION[lang]
        question = Question("q", lang, text, make_choices(options))
        prompts += [generator.render(mcq_messages(question))] * args.samples
    # warm-up at both batch shapes: the first call at a new shape pays for kernel selection (large on CUDA)
    timed_generate(generator, prompts, 4, batch=True)
    timed_generate(generator, prompts[:1], 4, batch=False)
    batched = timed_generate(generator, prompts, args.tokens, batch=True)
    loop = timed_generate(generator, prompts, args.tokens, batch=False)
    total_tokens = len(prompts) * args.tokens
    result = {
        "model": model_name, "device": str(pick_device(args.device)), "torch_threads": torch.get_num_threads(),
        "platform": platform.processor() or platform.machine(), "languages": languages, "samples": args.samples,
        "sequences": len(prompts), "new_tokens_each": args.tokens,
        "batched_s": round(batched, 3), "loop_s": round(loop, 3),
        "batched_tokens_per_s": round(total_tokens / batched, 1), "loop_tokens_per_s": round(total_tokens / loop, 1),
        "speedup": round(loop / batched, 2),
    }
    print(f"{'path':<10}{'seconds':>10}{'tokens/s':>12}")
    print(f"{'batched':<10}{batched:>10.2f}{result['batched_tokens_per_s']:>12.1f}")
    print(f"{'loop':<10}{loop:>10.2f}{result['loop_tokens_per_s']:>12.1f}")
    print(f"speedup (batched vs loop): {result['speedup']}x  [{model_name}, {result['device']}, "
          f"{len(prompts)} sequences x {args.tokens} tokens]")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if scratch:
        scratch.cleanup()


if __name__ == "__main__":
    main()
