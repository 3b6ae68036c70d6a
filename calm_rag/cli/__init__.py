"""The `calm-rag` command line: a thin Typer layer over the public library - one module per command group
(`ask`, `index`, `models`, `train`, `eval`, `serve`), each parsing flags, calling the library and rendering."""

from __future__ import annotations

from calm_rag.cli import ask, eval, index, models, serve, train  # noqa: F401  (each registers its commands)
from calm_rag.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
