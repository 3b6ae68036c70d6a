"""Finding a hub id in the local Hugging Face cache, and (only when online) on the live hub.

huggingface_hub reads HF_HUB_CACHE / HF_HOME / HF_HUB_OFFLINE once, at import; calm-rag reads them
at call time instead and passes `cache_dir` explicitly, so a changed environment (a test, a
notebook) is honoured. The live hub is only tried when HF_HUB_OFFLINE is unset and a 2-second
TCP probe of the endpoint succeeds: on machines without hub access that costs one failed DNS
lookup per process instead of minutes of retries.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from calm_rag.models.registry import Role

_TRUE = {"1", "true", "yes", "on"}
PROBE_TIMEOUT_S = 2.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedSnapshot:
    path: Path
    revision: str
    """The snapshot folder's name: the hub commit it was downloaded at."""


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, with the same precedence huggingface_hub uses."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def looks_like_hub_id(name: str) -> bool:
    """'owner/name' with no path syntax: what the hub accepts as a repo id."""
    parts = name.split("/")
    return (len(parts) == 2 and all(parts) and not name.startswith((".", "~"))
            and all(part not in (".", "..") for part in parts) and " " not in name)


def is_loadable(folder: Path, role: Role) -> bool:
    """Does the folder hold a model and not just a README? (A partial snapshot is not good enough.)"""
    if not (folder / "config.json").is_file():
        return False
    if role == "embedder" and (folder / "modules.json").is_file():
        return True
    weights = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
    return any((folder / name).is_file() for name in weights)


def find_in_hf_cache(hub_id: str, role: Role) -> CachedSnapshot | None:
    """The cached snapshot of `hub_id` (no network), if one is complete enough to load."""
    from huggingface_hub import snapshot_download

    cache = hf_cache_dir()
    if not cache.is_dir():
        return None
    try:
        found = Path(snapshot_download(hub_id, cache_dir=cache, local_files_only=True))
    except Exception as error:  # noqa: BLE001 - any failure here just means "not in the cache"
        log.debug("%s not in the HF cache %s: %s", hub_id, cache, error)
        return None
    if not is_loadable(found, role):
        log.debug("HF cache snapshot %s of %s lacks weights or config", found, hub_id)
        return None
    return CachedSnapshot(found, found.name)


@functools.cache
def hub_reachable() -> bool:
    """One short TCP probe of the hub endpoint per process."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def download_from_hub(hub_id: str, role: Role) -> CachedSnapshot | None:
    """Fetch `hub_id` into the HF cache when online; None when offline, unreachable or failing."""
    if hub_offline() or not hub_reachable():
        return None
    from huggingface_hub import snapshot_download

    try:
        found = Path(snapshot_download(hub_id, cache_dir=hf_cache_dir(), etag_timeout=5))
    except Exception as error:  # noqa: BLE001 - fall through to the offline bundle / clear error
        log.warning("could not download %s from the hub: %s", hub_id, error)
        return None
    return CachedSnapshot(found, found.name) if is_loadable(found, role) else None
