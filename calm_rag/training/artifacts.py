"""The output folder of `train` and `merge`: built beside `--out`, renamed into place at the end.

A run is built in `.<name>.partial/` next to `--out` and renamed to `--out` only when every
artifact is written, so `--out` is either absent or complete (a killed run never leaves a
half-written adapter that `ask --adapter` would load). The partial folder also holds `work/`:
the per-round caches and Trainer checkpoints that `--resume` continues from, and `run.json`,
the run's config and inputs, which a resumed run must match.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from calm_rag.data.jsonl import read_json, write_json
from calm_rag.errors import CalmRagError

LIBRARIES = ("calm-rag", "torch", "transformers", "trl", "peft", "accelerate", "datasets")


@dataclass(frozen=True)
class RunFolder:
    out: Path
    partial: Path
    resumed: bool
    """True when an interrupted run's partial folder is being continued."""

    @property
    def work(self) -> Path:
        return self.partial / "work"

    @classmethod
    def open(cls, out: Path | str, *, resume: bool = False, overwrite: bool = False, resumable: bool = True
             ) -> RunFolder:
        """Claim `out`: refuse an existing one unless `overwrite`; continue a partial one only with `resume`.
        A non-resumable job (merge) just discards a partial folder left by a crash."""
        if resume and overwrite:
            raise CalmRagError("--resume and --overwrite exclude each other")
        out = Path(out)
        partial = out.parent / f".{out.name}.partial"
        if out.exists() and not overwrite:
            if resume:
                raise CalmRagError(f"{out} is a finished run, there is nothing to resume; pass --overwrite to redo it")
            raise CalmRagError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
        if partial.exists() and not resume:
            if resumable and not overwrite:
                raise CalmRagError(f"an interrupted run is at {partial}; pass --resume to continue it or --overwrite "
                                   "to start over")
            shutil.rmtree(partial)
        resumed = partial.is_dir()
        (partial / "work").mkdir(parents=True, exist_ok=True)
        return cls(out, partial, resumed)

    def check_run_spec(self, spec: Mapping[str, Any], *, adjustable: Iterable[str] = (),
                       defaults: Mapping[str, Any] | None = None) -> list[str]:
        """Record what this run is; a resumed run must be the same run (same config, data, model).

        Two exceptions keep an interrupted run's samples usable: a setting the recorded run predates
        (absent there) passes when it has its default value (`defaults`, by dotted path), and the settings
        named in `adjustable` (dotted paths; e.g. the DPO batch size after running out of memory) may change
        as long as no round has finished. Returns the adjusted settings, as "path: old -> new"."""
        path = self.work / "run.json"
        wanted = json.loads(json.dumps(spec, default=str))
        if not path.is_file():
            write_json(path, wanted)
            return []
        recorded = read_json(path)
        known = defaults or {}
        changed = [(key, old, new) for key, old, new in _differences(recorded, wanted)
                   if not (old is _ABSENT and key in known and new == known[key])]
        allowed = set(adjustable)
        finished = any(self.work.glob("round-*/round.json"))
        blocking = [item for item in changed if item[0] not in allowed or finished]
        if blocking:
            listed = ", ".join(f"{key}: {_shown(old)} -> {_shown(new)}" for key, old, new in blocking)
            raise CalmRagError(f"cannot resume {self.partial}: it was started with different settings ({listed}); "
                               "pass --overwrite to start over")
        write_json(path, wanted)
        return [f"{key}: {_shown(old)} -> {_shown(new)}" for key, old, new in changed]

    def discard(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)

    def finalize(self) -> Path:
        """Drop the work folder and move the finished run to `out` (replacing an old one with --overwrite)."""
        shutil.rmtree(self.work, ignore_errors=True)
        old = None
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.out, old)
        os.replace(self.partial, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out


_ABSENT = object()
"""A setting missing from one side of a comparison."""


def _shown(value: Any) -> str:
    return "(absent)" if value is _ABSENT else repr(value)


def _differences(recorded: Mapping[str, Any], wanted: Mapping[str, Any], prefix: str = ""
                 ) -> list[tuple[str, Any, Any]]:
    """(dotted path, recorded value, wanted value) for every setting that differs, `_ABSENT` where missing."""
    found = []
    for key in sorted(set(recorded) | set(wanted)):
        a, b = recorded.get(key, _ABSENT), wanted.get(key, _ABSENT)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append((f"{prefix}{key}", a, b))
    return found


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def copy_adapter(source: Path, target: Path) -> None:
    """Put a saved PEFT adapter's files at the top of `target`, where `load_generator(..., adapter=...)` looks."""
    for item in source.iterdir():
        if item.is_file():
            shutil.copy2(item, target / item.name)
