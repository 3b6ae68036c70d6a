"""`calm-rag ask` (answer one question by cross-lingual self-consistency) and `calm-rag vote` (the same vote
over answers sampled elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    percent,
    print_json,
    render_sources,
)
from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.engines import EngineConfig
from calm_rag.languages import parse_languages
from calm_rag.pipelines.qa import CalmQA, QAConfig, QuestionRequest
from calm_rag.progress import ProgressDisplay
from calm_rag.voting.matching import DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from calm_rag.pipelines.answer import Answer
    from calm_rag.pipelines.open_qa import OpenAnswer


def _render_answer(answer: Answer) -> None:
    from rich.panel import Panel
    from rich.table import Table

    if answer.abstained:
        console.print(Panel(answer.message, title="No answer", border_style="yellow"))
    else:
        body = f"[bold]{answer.answer}) {answer.answer_text}[/]"
        if answer.explanation:
            body += f"\n\n{answer.explanation}"
        console.print(Panel(body, title=f"Answer ({answer.lang})", border_style="green"))
    table = Table(title="Cross-lingual vote")
    table.add_column("language")
    table.add_column("answers")
    table.add_column("majority")
    for lang, letters in answer.votes.items():
        majority = answer.language_majorities.get(lang)
        mark = "" if majority is None or majority == answer.answer else " ≠"
        sources = answer.letter_sources.get(lang) or [None] * len(letters)
        shown = [(letter or "-") + ("*" if source == "continuation" else "")
                 for letter, source in zip(letters, sources)]
        table.add_row(lang, " ".join(shown), f"{majority or '-'}{mark}")
    console.print(table)
    if any(source == "continuation" for sources in answer.letter_sources.values() for source in sources):
        console.print("[dim]* read after the answer label: the sample's text stated no answer[/]")
    shares = ", ".join(f"{label} {share:.0%}" for label, share in answer.distribution.items()) or "none parsed"
    consistency = "n/a" if answer.consistency is None else f"{answer.consistency:.2f}"
    console.print(f"Vote: {shares} | consistency {consistency} | {answer.model} ({answer.mode}) | "
                  f"{answer.elapsed_s:.1f} s")
    if answer.message and not answer.abstained:
        console.print(f"[dim]{answer.message}[/]")
    render_sources(answer.sources)


def _render_open_answer(answer: OpenAnswer) -> None:
    from rich.panel import Panel
    from rich.table import Table

    if answer.abstained:
        console.print(Panel(answer.message, title="No answer", border_style="yellow"))
    else:
        console.print(Panel(f"[bold]{answer.answer}[/]", title=f"Answer ({answer.lang})", border_style="green"))
    table = Table(title="Answer clusters across languages")
    for column in ("#", "representative", "members", "samples", "languages"):
        table.add_column(column, overflow="fold")
    for number, cluster in enumerate(answer.clusters, start=1):
        members = "; ".join(f"{m['lang']}: {m['text']}" for m in cluster["members"])
        table.add_row(str(number), cluster["representative"], members, f"{cluster['support']['samples']:.0%}",
                      f"{cluster['support']['languages']:.0%}")
    console.print(table)
    consistency = "n/a" if answer.consistency is None else f"{answer.consistency:.2f}"
    console.print(f"consistency {consistency} | {answer.model} | {answer.elapsed_s:.1f} s")
    if answer.message and not answer.abstained:
        console.print(f"[dim]{answer.message}[/]")
    render_sources(answer.sources)


@cli_command()
def ask(
    question: str = typer.Argument(..., help="The question, in the language given by --lang."),
    lang: str = typer.Option("en", "--lang", "-l", help="Language of the question and of the answer."),
    choice: list[str] = typer.Option([], "--choice", "-c", help="An answer option; repeat for each option."),
    languages: str | None = typer.Option(None, help="Languages to sample in, e.g. en,zh,de (default: settings)."),
    samples: int | None = typer.Option(None, min=1, help="Samples per language (default: settings, 3)."),
    model: str | None = typer.Option(None, help="Generator: short name, hub id or local path."),
    adapter: str | None = typer.Option(None, help="A CALM LoRA adapter folder (from `calm-rag train`)."),
    index: str | None = typer.Option(None, help="Retrieve passages from this index (the RAG path)."),
    index_dir: str | None = typer.Option(None, help="Where indexes live (default ./indexes)."),
    top_k: int = typer.Option(5, help="Passages to retrieve."),
    mode: str = typer.Option("cot", help="cot: explain then answer (sampled); direct: exact letter distribution."),
    permute: bool = typer.Option(True, help="Rotate option order across samples (cancels letter bias)."),
    balanced: bool = typer.Option(False, help="Each language gets one vote, shared by its samples."),
    continue_letters: bool = typer.Option(True, help="Multiple choice, cot: where a sample states no answer, read "
                                                     "the letter after the answer label appended to its text."),
    temperature: float = typer.Option(0.7, help="Sampling temperature (0 = greedy)."),
    top_p: float = typer.Option(0.95, help="Nucleus sampling threshold."),
    max_new_tokens: int = typer.Option(256, help="Longest answer to generate."),
    seed: int = typer.Option(0, help="Random seed (same seed, same samples)."),
    batch_size: int = typer.Option(32, help="Most sequences per generate call (memory budget)."),
    device: str | None = typer.Option(None, help="transformers engine: auto, cpu or cuda (default: settings)."),
    engine: str | None = ENGINE,
    base_url: str | None = BASE_URL,
    api_key: str | None = API_KEY,
    tokenizer: str | None = TOKENIZER,
    plain_prompts: bool = typer.Option(False, help="Allow a model without a chat template (plain-text prompts)."),
    embedder: str | None = typer.Option(None, help="Open questions: embedder that clusters answers by meaning."),
    threshold: float | None = typer.Option(None, help="Open questions: cosine similarity at which two answers "
                                                      "agree (default 0.80, tuned for EmbeddingGemma)."),
    continue_spans: bool | None = CONTINUE_SPANS,
    constrain_spans: bool | None = CONSTRAIN_SPANS,
    gloss_spans: bool | None = GLOSS_SPANS,
    as_json: bool = typer.Option(False, "--json", help="Print the answer as one JSON object."),
) -> None:
    """Answer a question by cross-lingual self-consistency: ask it in several languages, sample answers
    in each, vote, and answer in --lang with the consensus, its vote table and sources.

    With --choice options the vote is over option letters; without, the question is open and the
    answers are clustered by meaning across languages (the largest cluster wins)."""
    request = QuestionRequest(question, lang, list(choice))
    request.validate()  # bad input fails here, before any model loads
    qa_config = QAConfig(
        model=model, adapter=adapter, languages=tuple(parse_languages(languages)) if languages else None,
        samples=samples, mode=mode, permute=permute, balanced=balanced,  # type: ignore[arg-type]
        continue_letters=continue_letters, index=index,
        index_dir=Path(index_dir) if index_dir else None, top_k=top_k, embedder=embedder,
        engine=EngineConfig.from_settings(engine, device=device, plain_prompts=plain_prompts, base_url=base_url, api_key=api_key,
                             tokenizer=tokenizer),
        cluster_threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
        **{name: value for name, value in (("continue_spans", continue_spans), ("constrain_spans", constrain_spans),
                                           ("gloss_spans", gloss_spans)) if value is not None},
        generation=GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                                    batch_size=batch_size))
    with err_console.status("Loading models..."):
        qa = CalmQA.from_config(qa_config)
        qa.index  # open the index before generating, so a missing index fails fast
        if not choice:
            qa.encode  # load the answer embedder up front too
    with qa, ProgressDisplay(err_console, log=not as_json) as bar:
        answer = qa.ask_batch([request], progress=bar)[0] if choice else qa.ask_open_batch([request], progress=bar)[0]
    if as_json:
        print_json(answer.to_dict())
    elif choice:
        _render_answer(answer)  # type: ignore[arg-type]
    else:
        _render_open_answer(answer)  # type: ignore[arg-type]


@cli_command()
def vote(
    samples_file: str = typer.Argument(..., help="JSONL: one record per (question, language) with 'responses'."),
    languages: str | None = typer.Option(None, help="Only these languages (default: all in the file)."),
    pairs_out: str | None = typer.Option(None, help="Write CALM preference pairs (DPO rows) to this JSONL file."),
    model: str | None = typer.Option(None, help="Generator used to translate chosen answers for languages "
                                                "where no response agrees with the majority."),
    balanced: bool = typer.Option(False, help="Each language gets one vote, shared by its samples."),
    on_error: str = typer.Option("stop", help="Malformed or duplicate lines: stop (default) or skip."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Vote over answers sampled elsewhere: cross-lingual majority, accuracy, consistency, DPO pairs."""
    from calm_rag.data import write_jsonl
    from calm_rag.data.samples import load_samples
    from calm_rag.pipelines.external import vote_samples

    if on_error not in ("stop", "skip"):
        raise CalmRagError("--on-error must be stop or skip")
    wanted = parse_languages(languages) if languages else None
    loaded = load_samples(Path(samples_file), wanted, on_error)  # type: ignore[arg-type]
    translate = None
    if model and pairs_out:
        from calm_rag.generation import Translator, load_generator

        translate = Translator(load_generator(model, EngineConfig.from_settings(None))).translate_many
    report, pairs = vote_samples(loaded, balanced=balanced, translate=translate, with_pairs=bool(pairs_out))
    if pairs_out:
        write_jsonl(Path(pairs_out), [pair.to_record() for pair in pairs])
        report["pairs_file"] = pairs_out
    if as_json:
        print_json(report)
        return
    _render_vote_report(report)


def _render_vote_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{report['questions']} questions")
    for column in ("language", "accuracy", "parse rate", "pairs", "translated"):
        table.add_column(column, overflow="fold")
    for lang, accuracy in report["accuracy_by_language"].items():
        table.add_row(lang, percent(accuracy), percent(report["parse_rate_by_language"][lang]),
                      str(report.get("pairs_by_language", {}).get(lang, "-")),
                      percent(report["translated_by_language"][lang]) if "translated_by_language" in report else "-")
    console.print(table)
    consistency = report["consistency"]
    console.print(f"Vote accuracy {percent(report['vote_accuracy'])} | consistency "
                  f"{'-' if consistency is None else f'{consistency:.3f}'} | abstained {report['abstained']}")
    if report.get("pairs_pending_translation"):
        console.print(f"[yellow]{report['pairs_pending_translation']} pairs need a translated chosen answer; "
                      "pass --model to translate them.[/]")
    for message in report["skipped_lines"]:
        err_console.print(f"[yellow]skipped[/] {message}", highlight=False)
