"""`calm-rag eval`: measure a generator (optionally with a CALM adapter) on a parallel dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from calm_rag.cli.app import (
    API_KEY,
    BASE_URL,
    CONSTRAIN_SPANS,
    CONTINUE_SPANS,
    ENGINE,
    GLOSS_SPANS,
    TOKENIZER,
    cli_command,
    console,
    err_console,
    print_json,
)
from calm_rag.generation.engines import EngineConfig
from calm_rag.progress import ProgressDisplay


@cli_command(name="eval")
def eval_command(
    data: str = typer.Argument(..., help="Dataset folder: parallel multiple-choice or open-question files (one "
                                         "<lang>.jsonl per language), or XQuAD-R's queries.jsonl layout."),
    split: str | None = typer.Option(None, help="Split to evaluate, or 'all' (default: test for multiple choice, "
                                                "all for open questions)."),
    languages: str | None = typer.Option(None, "--languages", "-l",
                                         help="Languages, e.g. en,zh,de (default: en,zh,de,fr,it,ja)."),
    mode: str | None = typer.Option(None, help="Multiple choice: direct (default): the exact probability of each "
                                                "option letter after the answer label (one forward pass, nothing to "
                                                "parse); cot: explain, then answer (generated, parsed)."),
    samples: int | None = typer.Option(None, "--samples", "-k", min=1,
                                       help="Answers per language (default: 1); >1 in direct mode needs --permute."),
    permute: bool | None = typer.Option(None, "--permute/--no-permute",
                                        help="Multiple choice: rotate option order between samples (default: "
                                             "no-permute: the model as-is, as the paper measures it)."),
    balanced: bool | None = typer.Option(None, "--balanced/--unbalanced",
                                         help="Multiple choice: one vote per language in the cross-lingual vote "
                                              "(default: unbalanced)."),
    model: str | None = typer.Option(None, help="Generator: short name, hub id or folder (default: settings)."),
    adapter: str | None = typer.Option(None, help="A CALM LoRA adapter folder to evaluate."),
    compare_to: str | None = typer.Option(None, help="'base': also run the model without --adapter (loaded once) and "
                                                     "show deltas; or an earlier report.json to compare with."),
    index: str | None = typer.Option(None, help="Retrieval index: each language's prompt gets the passages "
                                                "retrieved with that language's version of the question."),
    index_dir: str | None = typer.Option(None, help="Where indexes live (default: ./indexes)."),
    top_k: int | None = typer.Option(None, min=1, help="Passages per prompt with --index (default: 5)."),
    limit: int | None = typer.Option(None, help="Only the first N questions of the split."),
    dev: int | None = typer.Option(None, "--dev", min=0,
                                   help="Multiple choice: only the N questions `calm-rag train --dev N` holds out of "
                                        "the same split, languages and --limit (its dev split)."),
    batch_size: int | None = typer.Option(None, min=1, help="Prompts per forward/generate call (default: 16)."),
    max_new_tokens: int | None = typer.Option(None, min=1, help="Generated answers (cot mode, open questions): "
                                                                "longest answer (default: 384 cot, 192 open)."),
    temperature: float | None = typer.Option(None, help="Generated answers (default: greedy for 1 sample, "
                                                        "else 0.7)."),
    embedder: str | None = typer.Option(None, help="Open questions: embedder that clusters answers and matches them "
                                                   "to gold by meaning (default: settings)."),
    threshold: float | None = typer.Option(None, help="Open questions: cosine similarity at which two answers (or an "
                                                      "answer and the gold) mean the same (default: 0.80, tuned for "
                                                      "EmbeddingGemma)."),
    continue_spans: bool | None = CONTINUE_SPANS,
    constrain_spans: bool | None = CONSTRAIN_SPANS,
    gloss_spans: bool | None = GLOSS_SPANS,
    continue_letters: bool | None = typer.Option(None, "--continue-letters/--no-continue-letters",
                                                 help="Multiple choice, cot mode: read the letter after the answer "
                                                      "label where a sample states none (default: on)."),
    config: str | None = typer.Option(None, help="TOML file whose 'eval' table holds these settings; flags win."),
    out: str | None = typer.Option(None, help="Write report.json, report.md and report.png here."),
    cache_dir: str | None = typer.Option(None, help="Cache of finished items, keyed by model, adapter, settings and "
                                                    "data, for resume and reuse (default: ~/.cache/calm-rag/eval)."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore and replace cached items of this exact run."),
    engine: str | None = ENGINE,
    base_url: str | None = BASE_URL,
    api_key: str | None = API_KEY,
    tokenizer: str | None = TOKENIZER,
    device: str | None = typer.Option(None, help="transformers engine: auto, cpu or cuda (default: settings)."),
    dtype: str = typer.Option("auto", help="transformers engine: auto (float32 on CPU, bfloat16 on GPU), float32, "
                                           "bfloat16 or float16."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Evaluate a generator (or generator + CALM adapter) on a parallel dataset.

    Multiple choice: per-language accuracy and parse rate, cross-lingual vote accuracy, consistency,
    answer letters. Open questions (records without choices, or XQuAD-R's queries.jsonl): K answers
    sampled per language, clustered by meaning across languages; each language's own answer and the
    cross-lingual consensus are scored against that language's gold by semantic match (--embedder,
    --threshold) and exact match, with consistency and parse rates."""
    from calm_rag.evaluation import evaluate_dataset, write_reports
    from calm_rag.evaluation.report import rich_tables

    overrides = {"split": split, "languages": languages, "samples": samples, "index": index, "index_dir": index_dir,
                 "top_k": top_k, "limit": limit, "dev_questions": dev, "batch_size": batch_size, "max_new_tokens": max_new_tokens,
                 "temperature": temperature, "mode": mode, "permute": permute, "balanced": balanced,
                 "embedder": embedder, "threshold": threshold,
                 "continue_spans": continue_spans, "gloss_spans": gloss_spans, "constrain_spans": constrain_spans,
                 "continue_letters": continue_letters}
    progress = ProgressDisplay(err_console, log=not as_json)
    with progress:
        payload = evaluate_dataset(
            Path(data), overrides=overrides, config_file=Path(config) if config else None, model=model,
            adapter=Path(adapter) if adapter else None, compare_to=compare_to,
            cache_dir=Path(cache_dir) if cache_dir else None, fresh=fresh,
            engine=EngineConfig.from_settings(engine, device=device, dtype=dtype, base_url=base_url, api_key=api_key,
                                 tokenizer=tokenizer),
            progress=lambda label, total: progress.counter(f"eval ({label})", total))
    written = write_reports(Path(out), payload) if out else []
    if as_json:
        print_json(payload)
        return
    for table in rich_tables(payload):
        console.print(table)
    if written:
        console.print("Reports: " + ", ".join(str(path) for path in written))
