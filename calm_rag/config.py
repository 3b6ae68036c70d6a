"""Defaults in one place: `Settings`, overridable by `calm-rag.toml` and `CALM_RAG_*` env vars.

Precedence (lowest to highest): the dataclass defaults, `./calm-rag.toml` (or the file named
by `CALM_RAG_CONFIG`), environment variables, then explicit CLI flags / keyword arguments.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from calm_rag.errors import CalmRagError


@dataclass(frozen=True)
class Settings:
    generator: str = "qwen2.5-coder-1.5b-instruct"
    """Default generator: a short name from `calm-rag models list`, a hub id or a local path."""
    embedder: str = "embeddinggemma-300m"
    index_dir: Path = Path("indexes")
    """Home of built indexes: ./indexes/<name>/."""
    model_cache: Path = Path.home() / ".cache" / "calm-rag" / "models"
    """Where offline bundles are provisioned (`calm-rag models pull`)."""
    languages: tuple[str, ...] = ("en", "zh", "de", "fr", "it", "ja")
    samples: int = 3
    device: str = "auto"
    engine: str = "transformers"
    """Generator engine for ask/eval/train sampling: transformers, llama.cpp or openai (`--engine`)."""

    @property
    def eval_cache(self) -> Path:
        """Cache of finished eval items, beside the model cache (`calm-rag eval --cache-dir` overrides)."""
        return self.model_cache.parent / "eval"


_ENV = {
    "generator": "CALM_RAG_GENERATOR",
    "embedder": "CALM_RAG_EMBEDDER",
    "index_dir": "CALM_RAG_INDEX_DIR",
    "model_cache": "CALM_RAG_MODEL_CACHE",
    "languages": "CALM_RAG_LANGUAGES",
    "samples": "CALM_RAG_SAMPLES",
    "device": "CALM_RAG_DEVICE",
    "engine": "CALM_RAG_ENGINE",
}


def _coerce(name: str, value: Any) -> Any:
    if name in ("index_dir", "model_cache"):
        return Path(str(value)).expanduser()
    if name == "languages":
        return tuple(value.split(",")) if isinstance(value, str) else tuple(value)
    if name == "samples":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise CalmRagError(f"samples must be an integer, got {value!r}") from None
    return str(value)


def read_toml_table(path: Path | str, table: str | None = None) -> dict[str, Any]:
    """The `[table]` of a TOML file, or the whole file when it has no such table; errors name the file.

    A file may start with `extends = "other.toml"` (relative to itself) and list only what it changes:
    an ablation recipe then states its difference instead of copying its parent, and cannot drift
    from it.
    """
    data = _read_with_parents(Path(path), chain=())
    return dict(data.get(table, data)) if table else data


def _read_with_parents(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """`path`'s TOML laid over the files it `extends`, table by table; `chain` catches cycles."""
    where = f"{path} (extended by {chain[-1]})" if chain else str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise CalmRagError(f"cannot read config {where}: {error}") from None
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise CalmRagError(f"{where}: extends must be a file name, got {parent!r}")
    parent_path = path.parent / parent
    if parent_path.resolve() in {link.resolve() for link in (*chain, path)}:
        raise CalmRagError(f"{where}: extends {parent} in a cycle")
    merged = _read_with_parents(parent_path, (*chain, path))
    for key, value in data.items():
        inherited = merged.get(key)
        merged[key] = {**inherited, **value} if isinstance(inherited, dict) and isinstance(value, dict) else value
    return merged


def check_known_keys(cls: type, data: dict[str, Any], what: str, where: str = "") -> None:
    """Refuse keys that are not fields of dataclass `cls`, listing the known ones (typos fail loudly)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CalmRagError(f"{where + ': ' if where else ''}unknown {what} {unknown}; known: {sorted(known)}")


def load_settings(config_file: Path | None = None) -> Settings:
    """Defaults <- TOML file <- environment."""
    settings = Settings()
    path = config_file or Path(os.environ.get("CALM_RAG_CONFIG", "calm-rag.toml"))
    if path.is_file():
        data = read_toml_table(path)
        check_known_keys(Settings, data, "settings", where=str(path))
        settings = replace(settings, **{key: _coerce(key, value) for key, value in data.items()})
    overrides = {name: _coerce(name, os.environ[var]) for name, var in _ENV.items() if os.environ.get(var)}
    return replace(settings, **overrides)
