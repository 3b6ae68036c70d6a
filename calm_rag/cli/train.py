"""`calm-rag train` (CALM: sample, vote, pair, LoRA-DPO) and `calm-rag merge` (fold an adapter into its base)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from calm_rag.cli.app import GLOSS_SPANS, cli_command, console, err_console, percent, print_json
from calm_rag.errors import CalmRagError
from calm_rag.progress import ProgressDisplay
from calm_rag.training.config import CalmTrainConfig


def _render_training(summary: Any) -> None:
    from rich.table import Table

    table = Table(title=f"CALM training ({summary.metrics['mode']})")
    dev = any(metrics.get("dev") for metrics in summary.metrics["rounds"])
    for column in ("round", "questions", "targets", "skipped", "vote acc.", "pairs", "translated", "steps", "loss",
                   *(["dev mean"] if dev else [])):
        table.add_column(column)
    for metrics in summary.metrics["rounds"]:
        vote = metrics.get("vote", {})
        training = metrics["training"]
        loss = training["train_loss"]
        table.add_row(str(metrics["round"]), str(vote.get("questions", "-")), str(metrics.get("targets", "-")),
                      str(sum(metrics["skipped"].values())) if "skipped" in metrics else "-",
                      percent(vote.get("vote_accuracy")), str(metrics["pairs"]["total"]),
                      percent(metrics["pairs"]["translated_share"]), str(training["steps"]),
                      "-" if loss is None else f"{loss:.4f}", *([_dev_change(metrics.get("dev"))] if dev else []))
    console.print(table)
    console.print(f"Adapter and reports in [bold]{summary.out}[/] (use it with `calm-rag ask ... --adapter "
                  f"{summary.out}`)")


def _dev_change(measured: list[dict[str, Any]] | None) -> str:
    """The dev split's mean accuracy before training -> after the last epoch."""
    if not measured:
        return "-"
    return f"{percent(measured[0]['mean_accuracy'])} -> {percent(measured[-1]['mean_accuracy'])}"


@cli_command()
def train(
    dataset: str | None = typer.Argument(None, help="Parallel dataset folder: one <lang>.jsonl per language, "
                                                    "multiple-choice or open questions (records without choices)."),
    pairs: str | None = typer.Option(None, "--pairs", help="Train on this preference-pairs JSONL instead of "
                                                           "sampling (e.g. a run's pairs.jsonl); a DATASET then "
                                                           "only supplies the --dev questions."),
    out: str | None = typer.Option(None, "--out", "-o", help="Output folder (default runs/<dataset>-calm)."),
    config_file: str | None = typer.Option(None, "--config", help="TOML recipe, e.g. pipelines/xcsqa-calm.toml; "
                                                                  "flags override it."),
    split: str | None = typer.Option(None, help="Dataset split to train on, e.g. train."),
    limit: int | None = typer.Option(None, help="Only the first N questions."),
    dev: int | None = typer.Option(None, "--dev", min=0, help="Hold out N of the selected questions as a dev split "
                                                             "(never trained on); their direct-mode accuracy is "
                                                             "measured before training and after each DPO epoch."),
    dev_check: bool | None = typer.Option(None, "--dev-check/--no-dev-check",
                                          help="Measure the --dev questions during DPO (default). Off, they are only "
                                               "held out: the check runs in transformers and on a small CPU costs "
                                               "more than the DPO; `calm-rag eval DATASET --split train --dev N "
                                               "--adapter CHECKPOINT` measures them on any engine."),
    samples_from: str | None = typer.Option(None, "--samples-from", help="Multiple-choice runs: round 1 reads the "
                                                                         "training questions' samples from an "
                                                                         "earlier train run's samples.jsonl "
                                                                         "instead of sampling, then votes and "
                                                                         "plans pairs with this run's settings."),
    sample_chunk: int | None = typer.Option(None, "--sample-chunk", min=1, help="Questions per sampling chunk "
                                                                               "(each is saved when done, so "
                                                                               "--resume keeps it; default 64)."),
    languages: str | None = typer.Option(None, help="Languages to sample in, e.g. en,zh,de,fr,it,ja."),
    samples: int | None = typer.Option(None, min=1, help="Samples per language (rotations in direct mode)."),
    mode: str | None = typer.Option(None, help="cot (explanation + answer) or direct (exact letter distribution)."),
    model: str | None = typer.Option(None, help="Generator to align: short name, hub id or local path."),
    adapter: str | None = typer.Option(None, help="Start from this LoRA adapter instead of a fresh one."),
    rounds: int | None = typer.Option(None, min=1, help="CALM rounds; round n+1 samples with round n's adapter."),
    permute: bool | None = typer.Option(None, "--permute/--no-permute", help="Rotate option order across samples."),
    min_support: float | None = typer.Option(None, help="cot: winner's vote share needed to train on a question."),
    min_margin: float | None = typer.Option(None, help="direct: soft-vote lead needed to train on a question; "
                                                       "with --pairs, keeps the pairs whose recorded margin "
                                                       "reaches it."),
    embedder: str | None = typer.Option(None, help="Open questions: embedder that clusters answers by meaning "
                                                   "(default: settings)."),
    threshold: float | None = typer.Option(None, help="Open questions: cosine similarity at which two answers are "
                                                      "the same answer (default: 0.80)."),
    gloss_spans: bool | None = GLOSS_SPANS,
    epochs: float | None = typer.Option(None, help="DPO epochs."),
    learning_rate: float | None = typer.Option(None, help="DPO learning rate."),
    batch_size: int | None = typer.Option(None, min=1, help="Pairs per device batch."),
    max_length: int | None = typer.Option(None, min=16, help="Longest prompt+answer in tokens."),
    beta: float | None = typer.Option(None, help="DPO beta (higher: stay closer to the base model)."),
    seed: int | None = typer.Option(None, help="Random seed for sampling and training."),
    device: str | None = typer.Option(None, help="auto, cpu or cuda."),
    dtype: str | None = typer.Option(None, help="auto, float32, bfloat16 or float16."),
    engine: str | None = typer.Option(None, "--engine", help="Sampling engine: transformers (default), llama.cpp "
                                                             "(several times faster on a CPU) or openai (--base-url; "
                                                             "key in CALM_RAG_OPENAI_API_KEY). DPO runs in transformers."),
    base_url: str | None = typer.Option(None, "--base-url", help="openai engine: the server's /v1 URL."),
    resume: bool = typer.Option(False, help="Continue an interrupted run from its last checkpoint."),
    overwrite: bool = typer.Option(False, help="Replace an existing --out (or discard an interrupted run)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary and metrics as JSON."),
) -> None:
    """CALM self-alignment: sample answers in several languages, vote, prefer the cross-lingual consensus
    over disagreeing answers, and train a LoRA adapter with DPO.

    Multiple-choice datasets vote on option letters; open-question datasets (records without `choices`)
    vote by clustering the answers' meanings across languages with the embedder (cot mode only)."""
    from calm_rag.training import train_calm, train_on_pairs

    if dataset is None and pairs is None:
        raise CalmRagError("give a dataset folder to sample from, or --pairs FILE")
    config = CalmTrainConfig.from_toml(Path(config_file)) if config_file else CalmTrainConfig()
    config = config.with_overrides(
        languages=languages, samples=samples, mode=mode, model=model, rounds=rounds, permute=permute,
        min_support=min_support, min_margin=min_margin, embedder=embedder, cluster_threshold=threshold,
        gloss_spans=gloss_spans,
        epochs=epochs, learning_rate=learning_rate,
        batch_size=batch_size, max_length=max_length, beta=beta, seed=seed, device=device, dtype=dtype,
        engine=engine, base_url=base_url, dev_questions=dev, sample_chunk=sample_chunk, dev_check=dev_check,
        samples_from=samples_from)
    name = Path(pairs).stem if pairs else Path(dataset or "dataset").name
    target = Path(out) if out else Path("runs") / f"{name}-calm"

    def notify(message: str) -> None:
        err_console.print(f"[yellow]{message}[/]", highlight=False, soft_wrap=True)

    with ProgressDisplay(err_console, log=not as_json) as bar:
        if pairs is not None:
            summary = train_on_pairs(Path(pairs), target, config, dataset=dataset, split=split, limit=limit,
                                     min_margin=min_margin, adapter=adapter, resume=resume, overwrite=overwrite,
                                     progress=bar, notify=notify)
        else:
            assert dataset is not None
            summary = train_calm(Path(dataset), target, config, split=split, limit=limit, adapter=adapter,
                                 resume=resume, overwrite=overwrite, progress=bar, notify=notify)
    if as_json:
        print_json(summary.to_dict())
    else:
        _render_training(summary)


@cli_command()
def merge(
    run: str = typer.Argument(..., help="A `calm-rag train` output folder (holds the adapter)."),
    out: str = typer.Option(..., "--out", "-o", help="Folder for the merged model and its tokenizer."),
    model: str | None = typer.Option(None, help="Base model (default: the one the run was trained on)."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16 or float16."),
    overwrite: bool = typer.Option(False, help="Replace an existing --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fold a trained CALM adapter into its base model and save a standalone model."""
    from calm_rag.training import merge_adapter

    with err_console.status("Merging..."):
        result = merge_adapter(run, out, model, dtype=dtype, overwrite=overwrite)
    if as_json:
        print_json(result)
    else:
        console.print(f"Merged model written to [bold]{result['out']}[/]")
