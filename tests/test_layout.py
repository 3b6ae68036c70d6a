"""The package layout's rules, read off the code's own imports: what the root holds, which way data flows,
no cycles, small modules, and a command line that starts without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "calm_rag"
ROOT_MODULES = {"__init__", "errors", "config", "languages", "questions", "responses", "prompts", "progress"}
FORBIDDEN = {
    "voting": ("generation", "pipelines", "training", "evaluation", "cli", "serving", "indexes", "models"),
    "data": ("generation", "pipelines", "training", "evaluation", "cli", "serving"),
    "generation": ("pipelines", "training", "evaluation", "cli", "serving"),
    "indexes": ("pipelines", "training", "evaluation", "cli", "serving"),
    "models": ("pipelines", "training", "evaluation", "cli", "serving", "voting", "data"),
    "training": ("cli", "serving", "evaluation"),
    "evaluation": ("cli", "serving", "training"),
    "pipelines": ("cli", "serving", "training", "evaluation"),
}
"""package -> subpackages it must not import: data flows cli -> pipelines / training / evaluation ->
generation / voting / indexes / data -> the shared vocabulary at the root."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every calm_rag module `path` imports, at any depth (function-local imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("calm_rag"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("calm_rag"))
    return found


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def test_root_holds_only_the_shared_vocabulary() -> None:
    assert {path.stem for path in PACKAGE.glob("*.py")} <= ROOT_MODULES


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_data_flows_one_way(package: str) -> None:
    wrong = [(name, target) for name, path in MODULES.items() if name.startswith(f"calm_rag.{package}")
             for target in imports_of(path)
             if any(target == f"calm_rag.{other}" or target.startswith(f"calm_rag.{other}.")
                    for other in FORBIDDEN[package])]
    assert wrong == []


def test_training_and_evaluation_reach_pipelines_only_for_calm_qa() -> None:
    wrong = [(name, target) for name, path in MODULES.items()
             if name.startswith(("calm_rag.training", "calm_rag.evaluation"))
             for target in imports_of(path) if target.startswith("calm_rag.pipelines") and target != "calm_rag.pipelines.qa"]
    assert wrong == []


def test_no_import_cycles_between_modules() -> None:
    """Module-level imports only (function-local ones run later and cannot deadlock an import)."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("calm_rag"):
                # `from calm_rag.models import hub` imports the submodule, not the package's own names
                submodules = {f"{node.module}.{alias.name}" for alias in node.names} & MODULES.keys()
                targets.update(submodules or {node.module})
        graph[name] = {target for target in targets if target in MODULES and target != name}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in graph[node]:
            if state.get(target) == 1:
                pytest.fail("import cycle: " + " -> ".join([*trail, node, target]))
            if target not in state:
                visit(target, [*trail, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_modules_stay_small() -> None:
    long = {name: count for name, path in MODULES.items()
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


@pytest.mark.parametrize("argv", [["--help"], ["index", "--list"], ["ask", "--help"]])
def test_command_line_starts_without_heavy_libraries(argv: list[str], tmp_path: Path) -> None:
    script = ("import sys\nfrom calm_rag.cli import app\n"
              f"try:\n    app({argv!r})\nexcept SystemExit as done:\n    code = done.code\n"
              "heavy = [m for m in ('torch', 'transformers', 'langchain_core', 'sentence_transformers', 'faiss')"
              " if m in sys.modules]\nprint('HEAVY', heavy, code)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={"CALM_RAG_INDEX_DIR": str(tmp_path / "indexes"), "PATH": "/usr/bin:/bin"},
                            timeout=120)
    assert "HEAVY [] 0" in result.stdout, result.stdout + result.stderr
