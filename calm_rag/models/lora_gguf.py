"""PEFT LoRA adapter -> llama.cpp GGUF LoRA adapter, so `--adapter` works on the llama.cpp engine.

llama.cpp applies a LoRA adapter to a GGUF base at load time, but reads adapters only as GGUF files:
`general.type = "adapter"`, `adapter.type = "lora"`, `adapter.lora.alpha`, and for each adapted weight
`<base tensor>.lora_a` / `.lora_b`, e.g. `blk.3.attn_q.weight.lora_a`. The layout is PEFT's own: lora_a
is A with numpy shape (rank, in) and lora_b is B with shape (out, rank) (ggml's `ne` is the reverse), and
llama.cpp scales by alpha / rank as PEFT does (llama.cpp's `convert_lora_to_gguf.py`, src/llama-adapter.cpp).
For Qwen2 llama.cpp's converter moves base weights over unpermuted, so A and B pass through unchanged.

The result is cached beside the adapter as `calm-rag-lora.gguf`, stamped with the adapter's content
fingerprint and rebuilt when the adapter's files change; where the adapter folder is read-only it goes
to the model cache instead. Only what calm-rag trains is supported (LoRA on q/k/v/o/gate/up/down of a
Qwen2 model); anything else is refused with one line rather than converted wrongly.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from calm_rag.config import load_settings
from calm_rag.errors import CalmRagError
from calm_rag.models import gguf_files
from calm_rag.models.fingerprint import adapter_fingerprint

LORA_GGUF_NAME = "calm-rag-lora.gguf"
FINGERPRINT_KEY = "calm_rag.adapter.sha256"
_ARCHITECTURES = ("qwen2",)
_TARGETS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
_KEY = re.compile(r"base_model\.model\.(?P<module>.+)\.lora_(?P<which>[AB])\.weight")
_LAYER = re.compile(r"\.layers\.(\d+)\.")

Pairs = dict[str, tuple[Any, Any]]
"""GGUF base tensor name (`blk.0.attn_q.weight`) -> (A, B) as float32 numpy arrays."""


def convert_lora_to_gguf(adapter_dir: Path, base_gguf: Path | None = None) -> Path:
    """The llama.cpp GGUF of the PEFT LoRA adapter in `adapter_dir`, converted now unless cached (module doc).

    With `base_gguf`, the adapter is checked against that base (architecture, every adapted tensor
    present with matching shape) so a mismatch is a clear error here, not a llama.cpp load failure."""
    adapter_dir = Path(adapter_dir)
    fingerprint = adapter_fingerprint(adapter_dir)
    config = _read_config(adapter_dir)
    base = gguf_files.read_summary(base_gguf) if base_gguf is not None else None
    architecture = base.architecture if base is not None else _ARCHITECTURES[0]
    if architecture not in _ARCHITECTURES:
        raise CalmRagError(f"LoRA adapters for llama.cpp are supported on {', '.join(_ARCHITECTURES)} models, "
                           f"not {architecture}; use --engine transformers")
    beside = adapter_dir / LORA_GGUF_NAME
    fallback = load_settings().model_cache.expanduser() / "lora-gguf" / f"{fingerprint[:32]}.gguf"
    cached = next((path for path in (beside, fallback) if _stamped(path, fingerprint)), None)
    if cached is not None:
        if base is not None:
            _check_base(adapter_dir, _read_pairs_from_gguf(cached), base)
        return cached
    pairs = _load_pairs(adapter_dir)
    if base is not None:
        _check_base(adapter_dir, pairs, base)
    alpha = _alpha(adapter_dir, config, pairs)
    try:
        return _write(beside, architecture, alpha, fingerprint, pairs, adapter_dir.name)
    except OSError:
        fallback.parent.mkdir(parents=True, exist_ok=True)
        return _write(fallback, architecture, alpha, fingerprint, pairs, adapter_dir.name)


def _read_config(adapter_dir: Path) -> dict[str, Any]:
    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CalmRagError(f"cannot read {adapter_dir}/adapter_config.json: {error}".splitlines()[0]) from None
    if not isinstance(config, dict) or str(config.get("peft_type", "")).upper() != "LORA":
        raise CalmRagError(f"{adapter_dir} is not a LoRA adapter (peft_type is not LORA)")
    unsupported = [name for name in ("use_dora", "lora_bias", "alpha_pattern", "modules_to_save",
                                     "trainable_token_indices") if config.get(name)]
    if unsupported:
        raise CalmRagError(f"{adapter_dir}: {', '.join(unsupported)} cannot be converted for llama.cpp; "
                           "use --engine transformers with this adapter")
    if not isinstance(config.get("lora_alpha"), int | float) or not config.get("r"):
        raise CalmRagError(f"{adapter_dir}/adapter_config.json lacks lora_alpha or r")
    return config


def _alpha(adapter_dir: Path, config: dict[str, Any], pairs: Pairs) -> float:
    """The alpha llama.cpp needs to scale like PEFT: PEFT scales by alpha/r (rsLoRA: alpha/sqrt(r)),
    llama.cpp always by alpha/r with r the tensor's rank."""
    alpha = float(config["lora_alpha"])
    if not config.get("use_rslora"):
        return alpha
    ranks = {a.shape[0] for a, _ in pairs.values()}
    if len(ranks) != 1:
        raise CalmRagError(f"{adapter_dir}: rsLoRA with ranks that differ by layer cannot be converted for llama.cpp")
    return alpha * math.sqrt(ranks.pop())


def _tensors(adapter_dir: Path) -> dict[str, Any]:
    """The adapter's tensors as float32 numpy arrays (through torch: numpy has no bfloat16)."""
    import torch

    weights = adapter_dir / "adapter_model.safetensors"
    try:
        if weights.is_file():
            from safetensors.torch import load_file

            loaded = load_file(str(weights), device="cpu")
        else:
            loaded = torch.load(adapter_dir / "adapter_model.bin", map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - a missing or unreadable weights file, whatever the cause
        raise CalmRagError(f"cannot read the weights of the adapter {adapter_dir}: {error}".splitlines()[0]) from None
    return {name: tensor.to(torch.float32).numpy() for name, tensor in loaded.items()}


def _load_pairs(adapter_dir: Path) -> Pairs:
    import gguf

    tensors = _tensors(adapter_dir)
    layers = [int(match.group(1)) for name in tensors if (match := _LAYER.search(name))]
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.QWEN2, max(layers, default=0) + 1)
    halves: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        match = _KEY.fullmatch(key)
        target = names.get_name(match.group("module")) if match else None
        if match is None or target is None or target.rpartition(".")[2] not in _TARGETS:
            raise CalmRagError(f"{adapter_dir}: tensor {key} is not a LoRA weight of q/k/v/o/gate/up/down; "
                               "llama.cpp conversion supports only those (use --engine transformers)")
        halves.setdefault(f"{target}.weight", {})[match.group("which")] = value
    if not halves:
        raise CalmRagError(f"{adapter_dir}: the adapter holds no LoRA weights")
    pairs: Pairs = {}
    for name, half in sorted(halves.items()):
        a, b = half.get("A"), half.get("B")
        if a is None or b is None or a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise CalmRagError(f"{adapter_dir}: the LoRA A/B weights of {name} are incomplete or do not fit together")
        pairs[name] = (a, b)
    return pairs


def _check_base(adapter_dir: Path, pairs: Pairs, base: gguf_files.GgufSummary) -> None:
    for name, (a, b) in pairs.items():
        shape = base.shapes.get(name)
        if shape != (b.shape[0], a.shape[1]):
            found = "absent" if shape is None else f"shaped {shape}"
            raise CalmRagError(f"the adapter {adapter_dir} does not fit the base GGUF: {name} is {found} there, the "
                               f"adapter expects ({b.shape[0]}, {a.shape[1]}); pass the model it was trained on")


def _read_pairs_from_gguf(path: Path) -> Pairs:
    from gguf import GGUFReader

    halves: dict[str, dict[str, Any]] = {}
    for tensor in GGUFReader(str(path)).tensors:
        name, _, which = tensor.name.rpartition(".")
        halves.setdefault(name, {})[which] = tensor.data
    return {name: (half["lora_a"], half["lora_b"]) for name, half in halves.items()}


def _stamped(path: Path, fingerprint: str) -> bool:
    """Is `path` a GGUF LoRA converted from exactly these adapter files?"""
    if not path.is_file():
        return False
    try:
        from gguf import GGUFReader

        field = GGUFReader(str(path)).get_field(FINGERPRINT_KEY)
    except Exception:  # noqa: BLE001 - an unreadable or truncated cache file is simply rebuilt
        return False
    return field is not None and field.contents() == fingerprint


def _write(target: Path, architecture: str, alpha: float, fingerprint: str, pairs: Pairs, name: str) -> Path:
    """Write via a temporary file and rename: a kill mid-write leaves no GGUF that looks complete."""
    import gguf

    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        writer = gguf.GGUFWriter(str(scratch), architecture)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(name)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32)
        writer.add_string(FINGERPRINT_KEY, fingerprint)
        for tensor, (a, b) in pairs.items():
            writer.add_tensor(f"{tensor}.lora_a", a)
            writer.add_tensor(f"{tensor}.lora_b", b)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)
    return target
