"""Defaults in one place: `Settings`, overridable by `calm-rag.toml` and `CALM_RAG_*` env vars; and the
checks every config class shares (declared field types, numeric ranges, device names, TOML reading).

Precedence (lowest to highest): the dataclass defaults, `./calm-rag.toml` (or the file named
by `CALM_RAG_CONFIG`), environment variables, then explicit CLI flags / keyword arguments.

Why the shared checks: TOML gives any type anywhere (`limit = "ten"`, `languages = 5`, `samples = true`,
`temperature = nan`), and a value of the wrong type used to surface as a traceback deep inside a run (or
worse, as a silently different setting, `device = ["a"]` read as the string "['a']"). Every config class
checks its fields against their declared types and ranges on construction, so a file, a flag and a library
call are refused alike, with one line that names the setting (and the file).
"""

from __future__ import annotations

import functools
import math
import os
import re
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints

from calm_rag.errors import CalmRagError
from calm_rag.languages import parse_languages

Range = tuple[float | None, float | None]
"""Inclusive (lowest, highest) of a numeric setting; None leaves that side open."""

INT_LIMIT = 2**31 - 1
"""No integer setting may exceed a C int: llama.cpp, numpy seeds and CUDA kernels take 32-bit values, and a
`--top-k 9223372036854775808` must be one line, not an OverflowError from deep inside."""

DEVICES = "auto, cpu, cuda, cuda:N or mps"
_DEVICE = re.compile(r"auto|cpu|mps|cuda(?::\d{1,3})?")
DTYPES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")


def check_device(device: str) -> str:
    """`device` if it names a device torch can place a model on (auto, cpu, cuda, cuda:N, mps), else a
    CalmRagError; whether that device exists here is checked when the model loads."""
    if not isinstance(device, str) or _DEVICE.fullmatch(device) is None:
        raise CalmRagError(f"unknown device {_shown(device)}; use {DEVICES}")
    return device


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise CalmRagError(f"unknown dtype {_shown(dtype)}; use auto, float32, bfloat16 or float16")
    return dtype


# ---- field checks shared by every config dataclass -----------------------------------------------

def _shown(value: Any) -> str:
    """A value for a one-line message: repr, shortened; an integer too long to print is described."""
    try:
        text = repr(value)
    except ValueError:  # int over Python's digit limit
        return "an integer with thousands of digits"
    return text if len(text) <= 60 else text[:57] + "..."


def _described(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_described(arg) for arg in args if arg is not type(None))  # TOML has no null
    if origin is Literal:
        names = [str(arg) for arg in args]
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    if origin is tuple:
        item = {str: "strings", int: "integers", float: "numbers"}.get(args[0], _described(args[0])) if args else ""
        return f"a list of {item}" if item else "a list"
    return {type(None): "unset", bool: "true or false", int: "an integer", float: "a number", str: "a string",
            Path: "a path"}.get(hint, getattr(hint, "__name__", str(hint)))


def _matches(value: Any, hint: Any) -> bool:
    """Whether `value` is of type `hint`, as TOML or a caller may spell it: an integer for a float, a string for
    a path, a list (or a comma-separated string) for a tuple. Types not listed here are not checked."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is Literal:
        return isinstance(value, str) and value in args
    if origin is tuple:
        if isinstance(value, str):
            return True  # "en,zh": split by the field's own parser
        return isinstance(value, (list, tuple)) and all(_matches(item, args[0]) for item in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is Path:
        return isinstance(value, (str, Path))
    return True


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def check_values(cls: type, data: Mapping[str, Any], where: str = "") -> None:
    """Each value of `data` (field name -> value) has the type field declares, is finite, and lies in
    the field's range (`cls.ranges`, and every integer within `INT_LIMIT`); else one line naming the
    setting and, when given, `where` it came from. Unknown keys are `check_known_keys`'s job."""
    prefix = f"{where}: " if where else ""
    hints = _hints(cls)
    ranges: Mapping[str, Range] = getattr(cls, "ranges", {})
    for name, value in data.items():
        if name not in hints:
            continue
        if not _matches(value, hints[name]):
            raise CalmRagError(f"{prefix}{name} must be {_described(hints[name])}, got {_shown(value)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise CalmRagError(f"{prefix}{name} must be a finite number, got {_shown(value)}")
        low, high = ranges.get(name, (None, None))
        if isinstance(value, int):
            low = -INT_LIMIT if low is None else low
            high = INT_LIMIT if high is None else high
        if low is not None and value < low:
            raise CalmRagError(f"{prefix}{name} must be at least {low}, got {_shown(value)}")
        if high is not None and value > high:
            raise CalmRagError(f"{prefix}{name} must be at most {high}, got {_shown(value)}")


def check_fields(instance: Any, where: str = "") -> None:
    """`check_values` over every field of dataclass `instance`: call it first in `__post_init__`, so the
    class's own (cross-field) checks compare values of the right type."""
    check_values(type(instance), {f.name: getattr(instance, f.name) for f in fields(instance)}, where)


def check_known_keys(cls: type, data: dict[str, Any], what: str, where: str = "") -> None:
    """Refuse keys that are not fields of dataclass `cls`, listing the known ones (typos fail loudly)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CalmRagError(f"{where + ': ' if where else ''}unknown {what} {unknown}; known: {sorted(known)}")


# ---- TOML -----------------------------------------------------------------------------------------

def read_toml_table(path: Path | str, table: str | None = None) -> dict[str, Any]:
    """The `[table]` of a TOML file, or the whole file when it has no such table; errors name the file.

    A file may start with `extends = "other.toml"` (relative to itself) and list only what it changes:
    an ablation recipe then states its difference instead of copying its parent, and cannot drift
    from it.
    """
    path = Path(path)
    data = _read_with_parents(path, chain=())
    if not table or table not in data:
        return data
    if not isinstance(data[table], dict):
        raise CalmRagError(f"{path}: {table} must be a table ([{table}]), got {_shown(data[table])}")
    return dict(data[table])


def _read_with_parents(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """`path`'s TOML laid over the files it `extends`, table by table; `chain` catches cycles."""
    where = f"{path} (extended by {chain[-1]})" if chain else str(path)
    try:
        if path.exists() and not path.is_file():
            raise CalmRagError(f"cannot read config {where}: not a file")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:  # ValueError: TOMLDecodeError, a 5000-digit int
        raise CalmRagError(f"cannot read config {where}: {_first_line(error)}") from None
    except RecursionError:
        raise CalmRagError(f"cannot read config {where}: nested too deeply") from None
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise CalmRagError(f"{where}: extends must be a file name, got {_shown(parent)}")
    parent_path = path.parent / parent
    try:
        cycle = parent_path.resolve() in {link.resolve() for link in (*chain, path)}
    except (OSError, ValueError, RuntimeError) as error:
        raise CalmRagError(f"{where}: cannot follow extends {_shown(parent)}: {_first_line(error)}") from None
    if cycle:
        raise CalmRagError(f"{where}: extends {parent} in a cycle")
    merged = _read_with_parents(parent_path, (*chain, path))
    for key, value in data.items():
        inherited = merged.get(key)
        merged[key] = {**inherited, **value} if isinstance(inherited, dict) and isinstance(value, dict) else value
    return merged


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


# ---- Settings -------------------------------------------------------------------------------------

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
    engine: str = "auto"
    """Generator engine for ask/eval/serve and train's sampling: auto (llama.cpp when the generator has a GGUF,
    else transformers), transformers, llama.cpp or openai (`--engine`)."""

    ranges: ClassVar[Mapping[str, Range]] = {"samples": (1, None)}

    def __post_init__(self) -> None:
        check_fields(self)
        check_device(self.device)
        for name in ("generator", "embedder", "engine"):
            if not getattr(self, name).strip():
                raise CalmRagError(f"{name} must not be empty")

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


def _coerce(name: str, value: Any, where: str) -> Any:
    """A checked TOML value, or an environment string, as the field's type."""
    try:
        if name in ("index_dir", "model_cache"):
            return Path(str(value)).expanduser()
        if name == "languages":
            return tuple(parse_languages(value))
        if name == "samples" and isinstance(value, str):
            return int(value.strip())
    except (ValueError, CalmRagError) as error:
        raise CalmRagError(f"{where}: {name}: {_first_line(error)}") from None
    return value


def load_settings(config_file: Path | None = None) -> Settings:
    """Defaults <- TOML file <- environment. A config file that does not exist means the defaults; one
    that exists but is not a readable TOML file (a directory, a FIFO, bad TOML) is an error."""
    settings = Settings()
    path = config_file or Path(os.environ.get("CALM_RAG_CONFIG") or "calm-rag.toml")
    if path.exists():
        where = str(path)
        data = read_toml_table(path)
        check_known_keys(Settings, data, "settings", where=where)
        check_values(Settings, data, where)
        settings = _replaced(settings, {key: _coerce(key, value, where) for key, value in data.items()}, where)
    for name, var in _ENV.items():
        if os.environ.get(var):
            settings = _replaced(settings, {name: _coerce(name, os.environ[var], var)}, var)
    return settings


def _replaced(settings: Settings, values: dict[str, Any], where: str) -> Settings:
    try:
        return replace(settings, **values)
    except CalmRagError as error:
        raise CalmRagError(f"{where}: {error}") from None
