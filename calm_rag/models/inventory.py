"""`list_models`: where every known model resolves from right now, without touching the network."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from calm_rag.config import Settings, load_settings
from calm_rag.models import hub, store
from calm_rag.models.registry import MODELS, ModelSpec


@dataclass(frozen=True)
class ModelStatus:
    name: str
    role: str
    hub_id: str
    default: bool
    bundled: bool
    """Whether `calm-rag models pull` can provision it."""
    source: str
    """'hf-cache' | 'bundle' | 'missing' (the order `resolve_model` tries them, network aside)."""
    path: Path | None
    size_bytes: int | None
    status: str
    """'ok', 'missing', or 'damaged: <reason>' for a bundle that would not resolve."""
    description: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path) if self.path else None
        return data


def model_status(spec: ModelSpec, settings: Settings, *, deep: bool = False) -> ModelStatus:
    common = {"name": spec.name, "role": spec.role, "hub_id": spec.hub_id, "default": spec.default,
              "bundled": spec.bundle is not None, "description": spec.description}
    cached = hub.find_in_hf_cache(spec.hub_id, spec.role)
    if cached is not None:
        return ModelStatus(**common, source="hf-cache", path=cached.path, size_bytes=store.folder_size(cached.path),
                           status="ok")
    if spec.bundle is not None:
        check = store.bundle_status(spec, settings.model_cache, deep=deep)
        if check.ok and check.manifest is not None:
            return ModelStatus(**common, source="bundle", path=check.folder,
                               size_bytes=int(check.manifest.get("size_bytes") or store.folder_size(check.folder)),
                               status="ok")
        if check.folder.exists():
            return ModelStatus(**common, source="missing", path=check.folder, size_bytes=None,
                               status=f"damaged: {check.reason}")
    return ModelStatus(**common, source="missing", path=None, size_bytes=None, status="missing")


def list_models(settings: Settings | None = None, *, deep: bool = False) -> list[ModelStatus]:
    """Every known model and where it is available offline; `deep` re-hashes bundle files."""
    settings = settings or load_settings()
    return [model_status(spec, settings, deep=deep) for spec in MODELS]
