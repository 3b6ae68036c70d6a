"""The output folder of `train` and `merge`: built beside `--out`, renamed into place at the end.

A run is built in `.<name>.partial/` next to `--out` and renamed to `--out` only when every
artifact is written, so `--out` is either absent or complete (a killed run never leaves a
half-written adapter that `ask --adapter` would load). The partial folder also holds `work/`:
the per-round caches and Trainer checkpoints that `--resume` continues from, and `run.json`,
the run's config and inputs, which a resumed run must match.

`--overwrite` replaces only what calm-rag wrote: every run folder carries a marker (`MARKER`) from
its first moment, and anything at `--out` without one is refused. The old run is renamed aside
before the new one moves in and deleted after, so no crash can lose both.
"""

from __future__ import annotations

import json
import os
import shutil
import time
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
        A non-resumable job (merge) just discards a partial folder left by a crash.

        `overwrite` only ever replaces a calm-rag run (`is_run`): anything else at `out` (a file, a folder of
        someone's data, a typo'd home directory) is refused, whatever the flags say."""
        if resume and overwrite:
            raise CalmRagError("--resume and --overwrite exclude each other")
        out = Path(out)
        partial = out.parent / f".{out.name}.partial"
        if out.exists() or out.is_symlink():
            if not overwrite:
                if resume:
                    raise CalmRagError(f"{out} is a finished run, there is nothing to resume; pass --overwrite to "
                                       "redo it")
                raise CalmRagError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
            if not is_run(out):
                raise CalmRagError(f"{out} is not a calm-rag run (no {MARKER}); --overwrite only replaces a run "
                                   "calm-rag wrote: move it away or choose another --out")
        if partial.exists() or partial.is_symlink():
            if not (is_run(partial) or _holds_no_files(partial)):
                raise CalmRagError(f"{partial} is in the way and is not an interrupted calm-rag run; move it away")
            if not resume:
                if resumable and not overwrite:
                    raise CalmRagError(f"an interrupted run is at {partial}; pass --resume to continue it or "
                                       "--overwrite to start over")
                _remove(partial)
        resumed = partial.is_dir()
        if not (partial / MARKER).is_file():
            write_json(partial / MARKER, {"calm_rag_run": 1})  # first, so the folder is never unclaimed
        try:
            (partial / "work").mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CalmRagError(f"cannot create {partial}: {error.strerror or error}") from None
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
        if not isinstance(recorded, dict):
            raise CalmRagError(f"cannot resume {self.partial}: {path} is damaged; pass --overwrite to start over")
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
        _remove(self.partial)

    def finalize(self) -> Path:
        """Drop the work folder and move the finished run to `out`. An old run there (--overwrite) is renamed
        aside first and deleted only once the new one is in place: a crash in between leaves one of the two
        complete, never neither."""
        shutil.rmtree(self.work, ignore_errors=True)
        old = None
        if self.out.exists() or self.out.is_symlink():
            if not is_run(self.out):  # appeared while this run worked
                raise CalmRagError(f"{self.out} appeared during the run and is not a calm-rag run; the new run is "
                                   f"in {self.partial}")
            old = _aside(self.out)
        os.replace(self.partial, self.out)
        if old is not None:
            _remove(old)
        return self.out


MARKER = ".calm-rag-run"
"""Written into every run folder when it is created: what `--overwrite` checks before it replaces anything."""


def is_run(folder: Path) -> bool:
    """Whether `folder` is a calm-rag run (train or merge output, finished or partial): a real folder (not a
    link to one elsewhere) holding the run marker, or, for runs older than the marker, a `manifest.json` of
    calm-rag's shape, a merge's `calm_merge.json` or a partial run's `work/run.json`."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    if any((folder / name).is_file() for name in (MARKER, "calm_merge.json", "work/run.json")):
        return True
    manifest = folder / "manifest.json"
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else None
    except (OSError, ValueError, RecursionError):
        return False
    return (isinstance(recorded, dict) and recorded.get("command") in ("train", "train-pairs")
            and isinstance(recorded.get("config"), dict))


def _holds_no_files(folder: Path) -> bool:
    """A folder of empty folders: what a run killed before it wrote its marker may leave."""
    return folder.is_dir() and not folder.is_symlink() and not any(not path.is_dir() for path in folder.rglob("*"))


def _aside(folder: Path) -> Path:
    """Rename `folder` to a fresh hidden name beside it (one rename: atomic, nothing copied)."""
    target = folder.parent / f".{folder.name}.old-{os.getpid()}-{time.time_ns()}"
    os.replace(folder, target)
    return target


def _remove(folder: Path) -> None:
    """Delete a run folder: renamed aside first, so a crash mid-delete never leaves a half-deleted folder
    under a name a later run would resume from."""
    if folder.exists() or folder.is_symlink():
        shutil.rmtree(_aside(folder), ignore_errors=True)


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
