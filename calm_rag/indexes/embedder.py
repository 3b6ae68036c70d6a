"""Text -> unit vectors with a sentence-transformers model, the way retrieval needs them.

Why this wrapper and not `SentenceTransformer.encode` directly:
- Queries and documents get the model's own prompts (EmbeddingGemma ships `query`/`document`
  prompts; e5 models expect "query: "/"passage: " but do not ship them, so they are filled in
  here). The prompts used are recorded in the index manifest, so a search embeds its queries the
  same way the build embedded its documents.
- Vectors are L2-normalised here, not by the model: some model folders lack the Normalize module,
  and the FAISS store computes cosine similarity as an inner product of unit vectors.
- Texts are sorted by length before batching (less padding) and fed in slices so that a long
  encode shows one rich progress bar on stderr (stdout stays clean for --json).
- `dtype="bfloat16"` halves memory and speeds up CPUs with bf16 units; `dtype="int8"` applies
  torch's dynamic int8 quantisation to the Linear layers (CPU only: the ONNX backend cannot be
  installed next to transformers 5, see bench/retrieval.py). Outputs are float32 either way.

Model names go through `calm_rag.models.resolve_model(name, role="embedder")`, imported on first
use so that `calm-rag --help` stays fast; an existing local folder is accepted as is.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from calm_rag.errors import CalmRagError

DType = Literal["float32", "bfloat16", "int8"]
Backend = Literal["torch", "onnx", "openvino"]

_DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")
_E5_PROMPTS = {"query": "query: ", "document": "passage: "}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedderConfig:
    """How to load and run an embedder."""

    name: str | None = None
    """Short name, hub id or local folder; None: `load_settings().embedder`."""
    device: str | None = None
    """'cpu', 'cuda', ...; None: `load_settings().device` ('auto' picks CUDA when present)."""
    dtype: DType = "float32"
    backend: Backend = "torch"
    batch_size: int = 32
    max_seq_length: int | None = None
    """Truncate inputs to this many tokens (None: the model's own limit)."""
    progress: bool | None = None
    """Show a progress bar: None shows it for long encodes when stderr is a terminal."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra `SentenceTransformer(model_kwargs=...)`, e.g. {'file_name': 'onnx/model_qint8_avx512.onnx'}."""

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "bfloat16", "int8"):
            raise CalmRagError(f"unknown embedder dtype {self.dtype!r}; choose float32, bfloat16 or int8")
        if self.batch_size < 1:
            raise CalmRagError("the embedder batch size must be at least 1")


@dataclass(frozen=True)
class ResolvedEmbedder:
    """Where an embedder comes from: what `resolve_model` said, or a local folder as is."""

    name: str
    path: Path
    hub_id: str | None = None
    revision: str | None = None
    source: str = "local"

    @property
    def model_id(self) -> str:
        """The identity recorded in manifests: the hub id when known, else the given name."""
        return self.hub_id or self.name


def resolve_embedder(name_or_path: str | None = None) -> ResolvedEmbedder:
    """Resolve a short name, hub id or path (default: the settings' embedder) through `resolve_model`."""
    from calm_rag.config import load_settings
    from calm_rag.models import resolve_model

    name = name_or_path or load_settings().embedder
    resolved = resolve_model(name, role="embedder")
    return ResolvedEmbedder(name=resolved.name, path=Path(resolved.path).resolve(), hub_id=resolved.hub_id,
                            revision=resolved.revision, source=resolved.source)


def _pick_device(device: str | None, dtype: DType) -> str:
    """'auto' picks CUDA when present, except for int8: dynamic quantisation runs on the CPU only."""
    from calm_rag.config import load_settings

    wanted = device or load_settings().device
    if wanted != "auto":
        return wanted
    import torch

    return "cuda" if torch.cuda.is_available() and dtype != "int8" else "cpu"


def _cast(model: Any, dtype: DType, name: str) -> Any:
    import torch

    if dtype == "bfloat16":
        return model.to(torch.bfloat16)
    if model.device.type != "cpu":
        raise CalmRagError(f"int8 embedder ({name}) runs on CPU only; use --dtype bfloat16 on {model.device.type}")
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def _normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


class Embedder:
    """A loaded embedding model that returns float32, L2-normalised vectors."""

    def __init__(self, model: Any, resolved: ResolvedEmbedder, config: EmbedderConfig) -> None:
        self.model = model
        self.resolved = resolved
        self.config = config
        self._lock = threading.Lock()
        prompts: dict[str, str] = dict(getattr(model, "prompts", None) or {})
        query = prompts.get("query")
        document = next((prompts[key] for key in _DOCUMENT_PROMPT_NAMES if key in prompts), None)
        if query is None and document is None and "e5" in resolved.model_id.lower():
            query, document = _E5_PROMPTS["query"], _E5_PROMPTS["document"]
        self.prompts: dict[str, str] = {"query": query or "", "document": document or ""}
        dimension = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
        if dimension is None:
            dimension = int(self._encode(["dimension probe"], self.prompts["document"], "document").shape[1])
        self.dimension: int = int(dimension)

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def model_id(self) -> str:
        return self.resolved.model_id

    @classmethod
    def load(cls, name_or_path: str | None = None, config: EmbedderConfig | None = None) -> Embedder:
        """Resolve and load a sentence-transformers model; a `CalmRagError` if it cannot be loaded."""
        config = config or EmbedderConfig()
        resolved = resolve_embedder(name_or_path or config.name)
        if not resolved.path.is_dir():
            raise CalmRagError(f"embedder {resolved.name!r}: model folder {resolved.path} does not exist")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            kwargs: dict[str, Any] = {"device": _pick_device(config.device, config.dtype), "local_files_only": True,
                                      "backend": config.backend}
            model_kwargs = dict(config.model_kwargs or {})
            if config.backend == "torch":  # as in generation.loading: no layer code fetched from the Hub
                model_kwargs.setdefault("use_kernels", False)
            if model_kwargs:
                kwargs["model_kwargs"] = model_kwargs
            model = SentenceTransformer(str(resolved.path), **kwargs)
        except CalmRagError:
            raise
        except Exception as error:  # noqa: BLE001 - any load failure is the user's model folder
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CalmRagError(f"cannot load embedder {resolved.name!r} from {resolved.path}: {first}") from None
        if config.dtype != "float32" and config.backend == "torch":
            model = _cast(model, config.dtype, resolved.name)
        if config.max_seq_length:
            model.max_seq_length = config.max_seq_length
        return cls(model, resolved, config)

    def describe(self) -> dict[str, Any]:
        """The manifest's `embedder` entry."""
        return {"name": self.resolved.name, "model_id": self.model_id, "hub_id": self.resolved.hub_id,
                "revision": self.resolved.revision, "path": str(self.resolved.path), "dimension": self.dimension,
                "normalized": True, "prompts": dict(self.prompts), "dtype": self.config.dtype,
                "backend": self.config.backend}

    def embed_documents(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        """Unit vectors for passages, with the model's document prompt."""
        return self._embed(texts, self.prompts["document"], "document", progress, "Embedding chunks")

    def embed_queries(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        """Unit vectors for questions, with the model's query prompt."""
        return self._embed(texts, self.prompts["query"], "query", progress, "Embedding queries")

    def _encode(self, texts: list[str], prompt: str, task: str) -> np.ndarray:
        encode = self.model.encode_query if task == "query" else self.model.encode_document
        with self._lock:
            output = encode(texts, prompt=prompt, batch_size=self.config.batch_size, show_progress_bar=False,
                            convert_to_numpy=False, convert_to_tensor=True)
        return output.float().cpu().numpy()

    def _embed(self, texts: list[str], prompt: str, task: str, progress: bool | None, label: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = np.argsort([-len(text) for text in texts], kind="stable")
        step = max(self.config.batch_size * 8, 1)
        show = progress if progress is not None else self.config.progress
        if show is None:
            show = len(texts) > step and sys.stderr.isatty()
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        slices = range(0, len(texts), step)
        if not show:
            for start in slices:
                idx = order[start:start + step]
                out[idx] = self._encode([texts[i] for i in idx], prompt, task)
            return _normalize(out)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            job = bar.add_task(label, total=len(texts))
            for start in slices:
                idx = order[start:start + step]
                out[idx] = self._encode([texts[i] for i in idx], prompt, task)
                bar.advance(job, len(idx))
        return _normalize(out)
