"""Chat prompts rendered on calm-rag's side, for engines that talk to a server.

Why client-side: direct mode needs the prompt to end inside the assistant turn, right after the
localized answer label ("Antwort:"), and a chat endpoint cannot express that; so prompts go to
`/v1/completions` as text, rendered with the model's own chat template, exactly as the transformers
engine renders them. Two sources for the template:
- `ChatTemplateRenderer`: the Hugging Face tokenizer of the model (a local folder, a provisioned
  bundle, or a hub id whose tokenizer files alone are fetched - never the weights);
- `ServerTemplateRenderer`: llama.cpp's `/apply-template`, i.e. the template stored in the GGUF.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from calm_rag.errors import CalmRagError
from calm_rag.generation.server_client import ServerClient
from calm_rag.prompts import Message

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


class Renderer(Protocol):
    def __call__(self, messages: Sequence[Message], prefill: str = "") -> str: ...


def plain_text(messages: Sequence[Message]) -> str:
    """How a model without a chat template is prompted (as in the transformers engine)."""
    return "\n\n".join(message["content"] for message in messages) + "\n\n"


class ChatTemplateRenderer:
    """The model's chat template from its Hugging Face tokenizer: the same prompt text the transformers
    engine builds, so answers and label distributions are comparable across engines."""

    def __init__(self, tokenizer: Any, *, plain_prompts: bool = False, name: str = "model") -> None:
        self.tokenizer = tokenizer
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        if not self.has_chat_template and not plain_prompts:
            raise CalmRagError(f"model {name} has no chat template; pass --plain-prompts to prompt it with plain text")

    def __call__(self, messages: Sequence[Message], prefill: str = "") -> str:
        if not self.has_chat_template:
            return plain_text(messages) + prefill
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True) + prefill


class ServerTemplateRenderer:
    """The chat template stored in the GGUF, applied by llama.cpp's server (`POST /apply-template`)."""

    def __init__(self, client: ServerClient) -> None:
        self.client = client

    def __call__(self, messages: Sequence[Message], prefill: str = "") -> str:
        answer = self.client.post("/apply-template", {"messages": list(messages)}, root=True)
        if not isinstance(answer.get("prompt"), str):
            raise CalmRagError(f"{self.client.root_url}/apply-template returned no prompt")
        return answer["prompt"] + prefill


def tokenizer_location(source: str) -> str | None:
    """Where the tokenizer of `source` (folder, short name or hub id) can be loaded from without fetching
    weights: the folder itself, a provisioned offline bundle, or the hub id (tokenizer files only)."""
    from calm_rag.config import load_settings
    from calm_rag.models import hub, store
    from calm_rag.models.registry import find_spec

    folder = Path(source).expanduser()
    if folder.is_dir():
        return str(folder)
    spec = find_spec(source)
    if spec is not None:
        check = store.bundle_status(spec, load_settings().model_cache)
        return str(check.folder) if check.ok else spec.hub_id
    return source if hub.looks_like_hub_id(source) else None


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in _TOKENIZER_FILES)


def load_tokenizer(location: str) -> Any:
    """AutoTokenizer from a folder (its tokenizer files, a bundle's float32 copy's, else the one GGUF in it,
    which transformers converts in about 20 s for a Qwen vocabulary) or a hub id."""
    from transformers import AutoTokenizer

    from calm_rag.models.store import TRANSFORMERS_DIR

    folder = Path(location)
    kwargs: dict[str, Any] = {}
    if folder.is_dir() and not _has_tokenizer(folder) and _has_tokenizer(folder / TRANSFORMERS_DIR):
        folder = folder / TRANSFORMERS_DIR
        location = str(folder)
    if folder.is_dir() and not _has_tokenizer(folder):
        ggufs = sorted(folder.glob("*.gguf"))
        if len(ggufs) != 1:
            raise CalmRagError(f"{folder} has no tokenizer files (tokenizer.json, tokenizer_config.json)")
        kwargs["gguf_file"] = ggufs[0].name  # transformers reads the vocabulary and template from the GGUF
    try:
        return AutoTokenizer.from_pretrained(location, **kwargs)
    except (OSError, ValueError) as error:
        raise CalmRagError(f"cannot load a tokenizer from {location}: {str(error).splitlines()[0]}") from None


def load_chat_renderer(source: str, *, plain_prompts: bool = False) -> ChatTemplateRenderer:
    """The chat renderer of `source` (folder, short name or hub id); a CalmRagError when calm-rag cannot
    find its tokenizer."""
    location = tokenizer_location(source)
    if location is None:
        raise CalmRagError(f"calm-rag does not know a tokenizer for {source!r}; pass --tokenizer (a model folder, "
                           "short name or hub id with the served model's tokenizer and chat template)")
    return ChatTemplateRenderer(load_tokenizer(location), plain_prompts=plain_prompts, name=source)
