"""A tiny GGUF for llama.cpp tests: the tiny HF Qwen2 of `tiny_lm.py`, converted weight for weight.

Why convert instead of writing random GGUF weights: with the very same weights, tokenizer and chat template
in both files, a test can hold llama.cpp's direct-mode distributions against transformers' (same argmax,
small total variation), which is the parity the llama.cpp engine promises for the real models.

What llama.cpp needs from a Qwen2 GGUF (and what `convert_hf_to_gguf.py` would write for a real one):
arch "qwen2"; tensor names from `gguf.TENSOR_NAMES` (q/k/v carry biases); arrays in torch's (out, in)
layout (GGUFWriter reverses the shape for ggml); no `output.weight` when the embeddings are tied
(llama.cpp falls back to `token_embd`); a "gpt2" BPE vocabulary listing every token by id with the
full byte alphabet, its merges, specials typed CONTROL, eos `<|im_end|>` and no BOS. The tiny tokenizer
splits words with GPT-2's regex (`ByteLevel(use_regex=True)`), hence pre-tokenizer "gpt-2".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from calm_rag.errors import CalmRagError

_LAYER_TENSORS = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
}
_GLOBAL_TENSORS = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}


def gguf_tensor_name(hf_name: str) -> str:
    """`model.layers.3.self_attn.q_proj.bias` -> `blk.3.attn_q.bias` (GGUF's names for Qwen2)."""
    stem, _, kind = hf_name.rpartition(".")
    if stem in _GLOBAL_TENSORS:
        return f"{_GLOBAL_TENSORS[stem]}.{kind}"
    parts = stem.split(".")
    if parts[:2] == ["model", "layers"] and ".".join(parts[3:]) in _LAYER_TENSORS:
        return f"blk.{parts[2]}.{_LAYER_TENSORS['.'.join(parts[3:])]}.{kind}"
    raise CalmRagError(f"no GGUF name for tensor {hf_name}")


def _vocabulary(tokenizer_json: dict[str, Any]) -> tuple[list[str], list[int], list[str]]:
    """Tokens by id, their GGUF token types, and the merges as 'left right' strings."""
    import gguf

    model = tokenizer_json["model"]
    if model.get("type") != "BPE":
        raise CalmRagError("only byte-level BPE tokenizers can be written as a tiny GGUF")
    by_id = {index: token for token, index in model["vocab"].items()}
    special = {entry["id"]: entry["content"] for entry in tokenizer_json.get("added_tokens", [])}
    by_id.update(special)
    if sorted(by_id) != list(range(len(by_id))):
        raise CalmRagError("the tokenizer's ids are not contiguous")
    tokens = [by_id[index] for index in range(len(by_id))]
    types = [int(gguf.TokenType.CONTROL if index in special else gguf.TokenType.NORMAL) for index in range(len(tokens))]
    merges = [" ".join(pair) if isinstance(pair, list) else pair for pair in model.get("merges", [])]
    return tokens, types, merges


def convert_qwen2_to_gguf(model_dir: Path, out: Path) -> Path:
    """Write the small float32 HF Qwen2 folder `model_dir` (weights, tokenizer.json, chat template) as
    an F32 GGUF at `out`."""
    import gguf
    from safetensors import safe_open

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "qwen2":
        raise CalmRagError(f"{model_dir} is not a Qwen2 model")
    tokenizer_json = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    tokens, types, merges = _vocabulary(tokenizer_json)
    template_file = model_dir / "chat_template.jinja"
    template = template_file.read_text(encoding="utf-8") if template_file.is_file() else None
    rope = config.get("rope_parameters") or {}
    hidden, heads = config["hidden_size"], config["num_attention_heads"]

    writer = gguf.GGUFWriter(str(out), "qwen2")
    writer.add_name(model_dir.name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(hidden)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_key_length(config.get("head_dim") or hidden // heads)
    writer.add_value_length(config.get("head_dim") or hidden // heads)
    writer.add_rope_freq_base(float(rope.get("rope_theta", config.get("rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_eos_token_id(int(config["eos_token_id"]))
    if config.get("pad_token_id") is not None:
        writer.add_pad_token_id(int(config["pad_token_id"]))
    writer.add_add_bos_token(False)
    if template:
        writer.add_chat_template(template)
    with safe_open(str(model_dir / "model.safetensors"), framework="np") as weights:
        for name in weights.keys():  # noqa: SIM118 - safe_open is not iterable
            writer.add_tensor(gguf_tensor_name(name), weights.get_tensor(name).astype("float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def build_tiny_gguf(folder: Path, *, hidden_size: int = 32, layers: int = 2, seed: int = 0) -> tuple[Path, Path]:
    """The tiny HF model (`folder/hf`) and the same weights as `folder/tiny-qwen2-f32.gguf`; returns both."""
    from calm_rag.testing.tiny_lm import build_tiny_causal_lm

    hf = build_tiny_causal_lm(folder / "hf", hidden_size=hidden_size, layers=layers, seed=seed)
    return hf, convert_qwen2_to_gguf(hf, folder / "tiny-qwen2-f32.gguf")
