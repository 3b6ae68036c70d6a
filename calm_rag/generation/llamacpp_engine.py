"""The `llama.cpp` engine: llama.cpp's own server, run inside this process on the model's GGUF file
(`xllamacpp.Server`, a prebuilt CPU wheel), talked to over HTTP by the openai engine's client.

Why a server and not bindings: llama.cpp's server already does continuous batching over parallel slots,
prompt caching and `n` samples sharing one prompt evaluation - exactly the L languages x K samples of a
question. On a 2-core CPU it answers about 9x faster than transformers in float32 on the same weights
(issue 14), loads in seconds and needs no float32 copy of the model.

Slots (`n_parallel`) default to 8 and are meant to be sized by the caller to L x K; the KV cache is
unified (`kv_unified`): all slots share `slots * context_per_slot` tokens, any one sequence may use up
to all of it, and `n` samples of one prompt share the prompt's cells. Different prompts that start alike
(the passages of a RAG question in every language) share that start through slot save/restore
(`calm_rag.generation.prefix_sharing`): the server gets a private slot-save folder and keeps idle slots'
cache. The GGUF is read into memory, not mapped: on CPUs with repacked kernels llama.cpp copies most
weights anyway, and a mapped file would be resident a second time (0.6 GB of the 1.5B's 1.1 GB). The
server listens on 127.0.0.1 at a random port and stops on `close()`, at the end of a `with` block, when
garbage-collected, or at exit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from calm_rag.errors import CalmRagError
from calm_rag.generation.openai_engine import OpenAIGenerator, OpenAIOptions
from calm_rag.generation.rendering import Renderer
from calm_rag.generation.server_client import ClientOptions
from calm_rag.models.gguf_files import control_tokens

IN_PROCESS = ClientOptions(retries=1, backoff_s=0.1)
"""The server lives and dies with this process: a refused connection will not heal by waiting."""


def cpu_threads() -> int:
    """CPUs this process may run on (a container's or taskset's limit, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class LlamaCppOptions:
    slots: int = 8
    """Sequences decoded together (llama.cpp `n_parallel`); size it to languages x samples."""
    context_per_slot: int = 2048
    """KV cache tokens per slot; the cache is shared, so the total is `slots * context_per_slot`."""
    threads: int | None = None
    """CPU threads for decoding and prompt processing; None: every CPU this process may use."""
    prompt_cache_mib: int = 256
    """Host memory for cached prompts beyond the slots' own (llama.cpp's default of 8 GiB would dwarf
    the model on a small machine)."""
    mmap: bool = False
    """Map the GGUF instead of reading it: less load work, but with repacked CPU weights (AVX2 and up) the
    mapped pages stay resident beside the repacked copy."""
    verbose: bool = False
    """Let llama.cpp log to stderr (load details, per-request timings)."""
    loras: tuple[tuple[Path, float], ...] = ()
    """GGUF LoRA adapters and their scales, applied to every request."""

    def __post_init__(self) -> None:
        if self.slots < 1 or self.context_per_slot < 16:
            raise CalmRagError("llama.cpp needs at least 1 slot and 16 context tokens per slot")
        if self.threads is not None and self.threads < 1:
            raise CalmRagError("threads must be at least 1")


def _stop(box: list[Any], slot_files: str) -> None:
    box.clear()
    shutil.rmtree(slot_files, ignore_errors=True)


class LlamaCppServer:
    """An `xllamacpp.Server` on one GGUF file, inside this process, on 127.0.0.1 at a random port."""

    def __init__(self, gguf: Path, *, alias: str, options: LlamaCppOptions = LlamaCppOptions()) -> None:
        import xllamacpp

        if not gguf.is_file():
            raise CalmRagError(f"GGUF file {gguf} does not exist")
        for lora, _ in options.loras:
            if not lora.is_file():
                raise CalmRagError(f"GGUF LoRA adapter {lora} does not exist")
        params = xllamacpp.CommonParams()
        params.model.path = str(gguf)
        params.model_alias = {alias}
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # the OS picks a free port; `listening_address` says which
        params.n_parallel = options.slots
        params.kv_unified = True
        params.n_ctx = options.slots * options.context_per_slot
        params.cache_prompt = True
        params.cache_ram_mib = options.prompt_cache_mib
        params.cache_idle_slots = False  # a prefix restored into an idle slot stays there until a prompt uses it
        params.fit_params = False  # the context is sized here; fitting loads the model a second time to probe
        params.load_mode = xllamacpp.llama_load_mode.LLAMA_LOAD_MODE_MMAP if options.mmap \
            else xllamacpp.llama_load_mode.LLAMA_LOAD_MODE_NONE
        slot_files = tempfile.mkdtemp(prefix="calm-rag-slots-")
        params.slot_save_path = slot_files + os.sep
        threads = options.threads or cpu_threads()
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.verbosity = 3 if options.verbose else -1
        params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(str(path), scale) for path, scale in options.loras]
        try:
            server = xllamacpp.Server(params)
        except RuntimeError:
            shutil.rmtree(slot_files, ignore_errors=True)
            raise CalmRagError(f"llama.cpp could not load {gguf}" + (" with its LoRA adapter" if options.loras else "")
                               + ": not a GGUF it supports, or not enough memory (rerun with a verbose llama.cpp "
                               "log to see why)") from None
        self.url: str = server.listening_address
        self.gguf = gguf
        self._box: list[Any] = [server]
        # Dropping the last reference runs ~Server, which stops the loop and joins its threads.
        self._finalizer = weakref.finalize(self, _stop, self._box, slot_files)

    @property
    def running(self) -> bool:
        return bool(self._box)

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class LlamaCppGenerator(OpenAIGenerator):
    """The `Generator` on llama.cpp inside this process: starts the server on `gguf`, then is an
    `OpenAIGenerator` pointed at it. Use it as a context manager or call `close()`."""

    def __init__(self, gguf: Path, *, name: str | None = None, renderer: Renderer | None = None,
                 options: LlamaCppOptions = LlamaCppOptions(), client: OpenAIOptions | None = None) -> None:
        """`renderer`: the model's Hugging Face chat template when a tokenizer folder is at hand (prompts then
        match the transformers engine's character for character); None renders with the GGUF's own template
        through the server. `client`: the HTTP side; by default as many requests in flight as slots, and
        one quick retry (`IN_PROCESS`)."""
        name = name or gguf.stem
        self.server = LlamaCppServer(gguf, alias=name, options=options)
        try:
            super().__init__(self.server.url + "/v1", name, renderer=renderer, name=name,
                             options=client or OpenAIOptions(concurrency=options.slots, client=IN_PROCESS),
                             special_tokens=None if renderer is not None else control_tokens(gguf))
        except BaseException:
            self.server.close()
            raise

    def close(self) -> None:
        super().close()
        self.server.close()
