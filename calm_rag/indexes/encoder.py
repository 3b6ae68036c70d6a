"""The answer encoder of open-question voting: calm-rag's embedder as an `Encode` (texts -> unit rows)."""

from __future__ import annotations

import numpy as np

from calm_rag.voting import Encode


def load_encoder(name_or_path: str | None = None) -> Encode:
    """An `Encode` over calm-rag's embedder (default: the settings' embedder). Answers are compared with
    each other, a symmetric task, so the model's own sentence-similarity prompt is used where it ships
    one (EmbeddingGemma's "STS", with which `DEFAULT_THRESHOLD` was measured); otherwise its query prompt,
    on both sides alike. EmbeddingGemma's query prompt separates short answers worse (same meaning
    0.46-1.00, related-but-different 0.32-0.80), which is why it is not the first choice."""
    from calm_rag.indexes import Embedder

    embedder = Embedder.load(name_or_path)
    prompt = (getattr(embedder.model, "prompts", None) or {}).get("STS")
    if prompt is None:
        return lambda texts: embedder.embed_queries(list(texts))

    def encode(texts: list[str]) -> np.ndarray:
        return embedder.model.encode(list(texts), prompt=prompt, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)

    return encode
