"""Choosing and loading an engine: one `EngineConfig`, one `load_generator` for every command and the library.

The engine is picked by `--engine`, `engine = "..."` in calm-rag.toml or `CALM_RAG_ENGINE`; the
options that only make sense for one engine (a base URL for a server, a device for transformers, slots
for llama.cpp) are checked here, before any model loads, so a wrong combination is one clear line.

- transformers: the model folder in process (training, CUDA, the reference);
- llama.cpp: the model's GGUF in llama.cpp's server inside this process (`find_gguf`), a PEFT adapter
  converted to a GGUF LoRA once (`calm_rag.models.lora_gguf`);
- openai: any OpenAI-compatible server; `model` is the served name and, when calm-rag knows it (short
  name, hub id, folder), also where the tokenizer and chat template come from (`tokenizer` overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calm_rag.config import check_device, check_dtype, load_settings
from calm_rag.errors import CalmRagError
from calm_rag.generation.base import Generator, check_engine

if TYPE_CHECKING:
    from calm_rag.generation.rendering import Renderer
    from calm_rag.models import ResolvedModel

DEFAULT_SLOTS = 8


@dataclass(frozen=True)
class EngineConfig:
    engine: str = "auto"
    """auto (llama.cpp when the model has a GGUF, else transformers), transformers (in-process, training and
    CUDA), llama.cpp (in-process server on the GGUF) or openai (any OpenAI-compatible server at `base_url`)."""
    device: str = "auto"
    """transformers only."""
    dtype: str = "auto"
    """transformers only."""
    plain_prompts: bool = False
    """Allow a generator without a chat template (prompted with plain text)."""
    base_url: str | None = None
    """openai only: the server's /v1 URL."""
    api_key: str | None = None
    """openai only."""
    tokenizer: str | None = None
    """openai and llama.cpp: where the tokenizer and chat template come from (folder, short name or hub id)
    when the model names none calm-rag knows, or to override it."""
    slots: int | None = None
    """llama.cpp only: sequences decoded in parallel; size it to languages x samples (default 8)."""
    threads: int | None = None
    """llama.cpp only: CPU threads (default: every CPU this process may use)."""
    timeout_s: float = 600.0
    """openai and llama.cpp: longest wait for one request."""
    share_prefixes: bool = True
    """openai (on a llama.cpp server) and llama.cpp: evaluate the start that one call's prompts share (a RAG
    question's passages in every language) once and restore it into the other slots; False evaluates it in
    every slot (slower; greedy outputs are the same either way; for comparing)."""

    def __post_init__(self) -> None:
        check_engine(self.engine)
        check_device(self.device)
        check_dtype(self.dtype)
        only = {"base_url": ("--base-url", ("openai",)), "api_key": ("--api-key", ("openai",)),
                "tokenizer": ("--tokenizer", ("openai", "llama.cpp", "auto")),
                "slots": ("--slots", ("llama.cpp", "auto")), "threads": ("--threads", ("llama.cpp", "auto"))}
        for attribute, (flag, engines) in only.items():
            if getattr(self, attribute) is not None and self.engine not in engines:
                raise CalmRagError(f"{flag} needs --engine {' or '.join(engines)}")
        if self.engine == "openai" and not self.base_url:
            raise CalmRagError("--engine openai needs --base-url (the server's /v1 URL)")
        if self.slots is not None and self.slots < 1:
            raise CalmRagError("--slots must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise CalmRagError("--threads must be at least 1")
        if self.timeout_s <= 0:
            raise CalmRagError("the request timeout must be positive")

    @classmethod
    def from_settings(cls, engine: str | None = None, *, device: str | None = None, **given: Any) -> EngineConfig:
        """The engine a caller asks for, with the user's settings (calm-rag.toml, CALM_RAG_ENGINE, ...) where it
        is silent: what `calm-rag ask/eval/serve` run when no --engine or --device is given, for apps and
        benchmarks that want the same choice."""
        settings = load_settings()
        return cls(engine=engine or settings.engine, device=device or settings.device, **given)


def resolve_engine(model: str, config: EngineConfig) -> str:
    """The engine `auto` stands for: llama.cpp when `model` has a GGUF to run (an offline bundle that keeps
    one, a .gguf file, a folder holding one), else transformers; any other engine as configured."""
    if config.engine != "auto":
        return config.engine
    path = Path(model).expanduser()
    if _bundle_with_gguf(model) is not None or path.suffix == ".gguf" or (path.is_dir() and any(path.glob("*.gguf"))):
        return "llama.cpp"
    return "transformers"


def pin_engine(model: str, config: EngineConfig) -> EngineConfig:
    """`config` with `auto` replaced by the engine it stands for (`resolve_engine`), auto's llama.cpp settings
    dropped when it picks transformers. A caller that resolves once and passes the pinned config on (an eval run
    to its cache key and its generator) looks at a bundle's verified-stamp once instead of at every step."""
    if config.engine != "auto":
        return config
    kind = resolve_engine(model, config)
    return replace(config, engine=kind, **({} if kind == "llama.cpp" else {"slots": None, "threads": None,
                                                                          "tokenizer": None}))


def find_gguf(model: str) -> ResolvedModel:
    """`model` (short name, hub id, folder or .gguf file) resolved with the GGUF llama.cpp runs; a
    CalmRagError when it has none."""
    from calm_rag.models import resolve_model

    resolved = _bundle_with_gguf(model) or resolve_model(model, role="generator")
    if resolved.gguf is None:
        raise CalmRagError(f"{model} has no GGUF file, which the llama.cpp engine runs: pass a .gguf file (or a folder "
                           "with one), `calm-rag models pull` a bundled model, or use --engine transformers")
    return resolved


def _bundle_with_gguf(model: str) -> ResolvedModel | None:
    """The provisioned bundle of a known model when it keeps a GGUF. Looked at before `resolve_model`, which
    prefers the Hugging Face snapshot (safetensors, which llama.cpp cannot run) and downloads one when online."""
    from calm_rag.config import load_settings
    from calm_rag.models import ResolvedModel, store
    from calm_rag.models.registry import find_spec

    spec = find_spec(model)
    if spec is None or spec.bundle is None:
        return None
    check = store.bundle_status(spec, load_settings().model_cache.expanduser())
    manifest = check.manifest if check.ok else None
    kept = manifest.get("gguf") if manifest else None
    if manifest is None or not isinstance(kept, str):
        return None
    revision = manifest.get("revision")
    return ResolvedModel(path=check.folder, name=model, hub_id=spec.hub_id, source="bundle",
                         revision=revision if isinstance(revision, str) else None, gguf=check.folder / kept)


def llamacpp_lora(adapter: Path, resolved: ResolvedModel) -> Path:
    """The GGUF LoRA of a PEFT adapter, checked against the base it was trained on and the GGUF it will
    run on (converted once, cached beside the adapter)."""
    from calm_rag.generation.loading import base_names, check_adapter_base
    from calm_rag.models.lora_gguf import convert_lora_to_gguf

    check_adapter_base(adapter, base_names(resolved))
    assert resolved.gguf is not None
    return convert_lora_to_gguf(adapter, resolved.gguf)


def _llamacpp_renderer(resolved: ResolvedModel, config: EngineConfig) -> Renderer | None:
    """The Hugging Face chat template when a tokenizer is at hand (the same prompts as transformers), else
    None: the GGUF's own template, applied by llama.cpp (or plain text with `plain_prompts`)."""
    from calm_rag.generation.rendering import (
        ChatTemplateRenderer,
        load_chat_renderer,
        load_tokenizer,
        plain_text,
    )
    from calm_rag.models.gguf_files import read_summary

    if config.tokenizer:
        return load_chat_renderer(config.tokenizer, plain_prompts=config.plain_prompts)
    if resolved.path.is_dir() and (resolved.path / "tokenizer_config.json").is_file():
        return ChatTemplateRenderer(load_tokenizer(str(resolved.path)), plain_prompts=config.plain_prompts,
                                    name=resolved.name)
    assert resolved.gguf is not None
    if read_summary(resolved.gguf).chat_template:
        return None
    if not config.plain_prompts:
        raise CalmRagError(f"model {resolved.name} has no chat template; pass --plain-prompts to prompt it "
                           "with plain text")
    return lambda messages, prefill="": plain_text(messages) + prefill


def load_generator(model: str, config: EngineConfig = EngineConfig(), *, adapter: str | Path | None = None,
                   merge_adapter: bool = True) -> Generator:
    """The generator `model` names (short name, hub id or path; the served model name for openai) on the
    configured engine, with `adapter` applied. Servers (llama.cpp, openai) have a `close()`."""
    config = pin_engine(model, config)
    if config.engine == "transformers":
        from calm_rag.generation.transformers_engine import TransformersGenerator

        return TransformersGenerator.load(model, adapter=adapter, device=config.device, dtype=config.dtype,
                                          plain_prompts=config.plain_prompts, merge_adapter=merge_adapter)
    from calm_rag.generation.openai_engine import OpenAIGenerator, OpenAIOptions
    from calm_rag.generation.server_client import ClientOptions

    if config.engine == "openai":
        if adapter is not None:
            raise CalmRagError("--adapter cannot be applied to a remote server: serve it there (vLLM: --enable-lora "
                               "--lora-modules NAME=ADAPTER_DIR) and pass --model NAME")
        assert config.base_url is not None
        return OpenAIGenerator(config.base_url, model, renderer=_openai_renderer(model, config), api_key=config.api_key,
                               options=OpenAIOptions(client=ClientOptions(timeout_s=config.timeout_s),
                                                     share_prefixes=config.share_prefixes))

    from calm_rag.generation.llamacpp_engine import (
        IN_PROCESS,
        LlamaCppGenerator,
        LlamaCppOptions,
    )

    resolved = find_gguf(model)
    assert resolved.gguf is not None
    loras = ((llamacpp_lora(Path(adapter), resolved), 1.0),) if adapter is not None else ()
    slots = config.slots or DEFAULT_SLOTS
    client = OpenAIOptions(client=replace(IN_PROCESS, timeout_s=config.timeout_s), concurrency=slots,
                           share_prefixes=config.share_prefixes)
    return LlamaCppGenerator(resolved.gguf, name=resolved.hub_id or resolved.name,
                             renderer=_llamacpp_renderer(resolved, config),
                             options=LlamaCppOptions(slots=slots, threads=config.threads, loras=loras), client=client)


def _openai_renderer(model: str, config: EngineConfig) -> Renderer | None:
    """`--tokenizer`, else the model's own tokenizer when calm-rag knows where it is; None (a served name calm-rag
    does not know) leaves rendering to the server's template endpoint, which `OpenAIGenerator` checks for."""
    from calm_rag.generation.rendering import load_chat_renderer, tokenizer_location

    if not config.tokenizer and tokenizer_location(model) is None:
        return None
    return load_chat_renderer(config.tokenizer or model, plain_prompts=config.plain_prompts)
