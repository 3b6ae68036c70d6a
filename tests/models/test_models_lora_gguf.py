"""PEFT LoRA -> llama.cpp GGUF LoRA: metadata, tensor names and shapes, scaling, caching, refusals, and llama.cpp
itself applying it (a real xllamacpp server on the tiny GGUF, compared with PEFT on the same weights)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from calm_rag.errors import CalmRagError
from calm_rag.models import adapter_fingerprint, convert_lora_to_gguf, lora_gguf

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GGUF_TARGETS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(HF folder, F32 GGUF) of one tiny random Qwen2 with the same weights."""
    from calm_rag.testing.tiny_gguf import build_tiny_gguf

    return build_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf"))


def make_adapter(base: Path, folder: Path, *, seed: int = 0, **lora: object) -> Path:
    """A PEFT LoRA adapter with non-zero A and B (init_lora_weights=False), saved as calm-rag trains them."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    options = {"r": 4, "lora_alpha": 16, "target_modules": TARGETS, "init_lora_weights": False, **lora}
    get_peft_model(model, LoraConfig(**options)).save_pretrained(folder)
    return folder


def _reader(path: Path):
    from gguf import GGUFReader

    return GGUFReader(str(path))


def test_a_peft_adapter_becomes_a_gguf_lora_llama_cpp_reads(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    hf, base = tiny_pair
    adapter = make_adapter(hf, tmp_path / "adapter")
    out = convert_lora_to_gguf(adapter, base_gguf=base)
    assert out == adapter / "calm-rag-lora.gguf"
    reader = _reader(out)
    fields = {name: reader.get_field(name).contents() for name in (
        "general.architecture", "general.type", "adapter.type", "adapter.lora.alpha", "calm_rag.adapter.sha256")}
    assert fields == {"general.architecture": "qwen2", "general.type": "adapter", "adapter.type": "lora",
                      "adapter.lora.alpha": 16.0, "calm_rag.adapter.sha256": adapter_fingerprint(adapter)}
    tensors = {tensor.name: tensor for tensor in reader.tensors}
    assert sorted(tensors) == sorted(f"blk.{layer}.{target}.weight.lora_{half}"
                                     for layer in range(2) for target in GGUF_TARGETS for half in "ab")
    peft = load_file(str(adapter / "adapter_model.safetensors"))
    base_shapes = {tensor.name: tuple(reversed(tensor.shape.tolist())) for tensor in _reader(base).tensors}
    hf_names = dict(zip(GGUF_TARGETS, ["self_attn." + t for t in TARGETS[:4]] + ["mlp." + t for t in TARGETS[4:]],
                        strict=True))
    for layer in range(2):
        for target in GGUF_TARGETS:
            name = f"blk.{layer}.{target}.weight"
            a, b = tensors[name + ".lora_a"], tensors[name + ".lora_b"]
            stem = f"base_model.model.model.layers.{layer}.{hf_names[target]}"
            assert (a.data == peft[stem + ".lora_A.weight"]).all() and (b.data == peft[stem + ".lora_B.weight"]).all()
            out_features, in_features = base_shapes[name]
            # ggml's ne as llama.cpp checks it: a = [in, rank], b = [rank, out]
            assert a.shape.tolist() == [in_features, 4] and b.shape.tolist() == [4, out_features]


def test_rslora_scales_like_peft(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    hf, _ = tiny_pair
    adapter = make_adapter(hf, tmp_path / "rs", r=8, lora_alpha=4, use_rslora=True)
    alpha = _reader(convert_lora_to_gguf(adapter)).get_field("adapter.lora.alpha").contents()
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(hf), adapter)
    scaling = peft.base_model.model.model.layers[0].self_attn.q_proj.scaling["default"]
    assert math.isclose(alpha / 8, scaling, rel_tol=1e-6)  # llama.cpp scales by alpha / rank


def test_the_conversion_is_cached_and_redone_when_the_adapter_changes(tiny_pair: tuple[Path, Path], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    hf, _ = tiny_pair
    adapter = make_adapter(hf, tmp_path / "adapter", seed=0)
    first = convert_lora_to_gguf(adapter)
    with monkeypatch.context() as patched:
        patched.setattr(lora_gguf, "_write", lambda *a, **k: pytest.fail("converted an unchanged adapter again"))
        assert convert_lora_to_gguf(adapter) == first
    retrained = make_adapter(hf, tmp_path / "other", seed=1)
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        shutil.copy(retrained / name, adapter / name)
    assert convert_lora_to_gguf(adapter) == first
    assert _reader(first).get_field("calm_rag.adapter.sha256").contents() == adapter_fingerprint(adapter)
    assert not list(adapter.glob(".*.tmp"))


def test_a_read_only_adapter_folder_converts_into_the_model_cache(tiny_pair: tuple[Path, Path], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    hf, _ = tiny_pair
    adapter = make_adapter(hf, tmp_path / "adapter")
    real = lora_gguf._write

    def read_only(target: Path, *args: object) -> Path:
        if target.parent == adapter:
            raise PermissionError(13, "Permission denied", str(target))
        return real(target, *args)

    monkeypatch.setattr(lora_gguf, "_write", read_only)
    out = convert_lora_to_gguf(adapter)
    assert out.parent.name == "lora-gguf" and out.name == adapter_fingerprint(adapter)[:32] + ".gguf"
    monkeypatch.setattr(lora_gguf, "_write", lambda *a, **k: pytest.fail("converted again"))
    assert convert_lora_to_gguf(adapter) == out


def test_an_adapter_for_another_base_is_refused(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    from calm_rag.testing.tiny_gguf import build_tiny_gguf

    hf, _ = tiny_pair
    adapter = make_adapter(hf, tmp_path / "adapter")
    _, wider = build_tiny_gguf(tmp_path / "wider", hidden_size=64)
    with pytest.raises(CalmRagError, match=r"does not fit the base GGUF: blk\.0\.attn_k\.weight is shaped \(32, 64\) "
                                           r"there, the adapter expects \(16, 32\)"):
        convert_lora_to_gguf(adapter, base_gguf=wider)


@pytest.mark.parametrize("change", ["embeddings", "dora", "not-lora", "no-weights"])
def test_what_llama_cpp_cannot_apply_is_refused_in_one_line(tiny_pair: tuple[Path, Path], tmp_path: Path,
                                                           change: str) -> None:
    hf, _ = tiny_pair
    if change == "embeddings":
        adapter = make_adapter(hf, tmp_path / "a", target_modules=["q_proj", "embed_tokens"])
        expected = "embed_tokens.* is not a LoRA weight of q/k/v/o/gate/up/down"
    elif change == "dora":
        adapter = make_adapter(hf, tmp_path / "a", use_dora=True)
        expected = "use_dora cannot be converted for llama.cpp"
    else:
        adapter = make_adapter(hf, tmp_path / "a")
        if change == "not-lora":
            config = json.loads((adapter / "adapter_config.json").read_text())
            (adapter / "adapter_config.json").write_text(json.dumps({**config, "peft_type": "IA3"}))
            expected = "is not a LoRA adapter"
        else:
            (adapter / "adapter_model.safetensors").unlink()
            expected = "cannot read the weights of the adapter"
    with pytest.raises(CalmRagError, match=expected) as error:
        convert_lora_to_gguf(adapter)
    assert "\n" not in str(error.value)


def _llama_logprobs(gguf: Path, ids: list[int], loras: tuple[tuple[Path, float], ...]) -> dict[int, float]:
    import httpx

    from calm_rag.generation.llamacpp_engine import LlamaCppOptions, LlamaCppServer

    options = LlamaCppOptions(slots=1, threads=1, context_per_slot=256, loras=loras)
    with LlamaCppServer(gguf, alias="tiny", options=options) as server:
        reply = httpx.post(server.url + "/completion", timeout=60, json={
            "prompt": ids, "n_predict": 1, "n_probs": 10, "temperature": 0, "post_sampling_probs": False})
    reply.raise_for_status()
    return {entry["id"]: entry["logprob"] for entry in reply.json()["completion_probabilities"][0]["top_logprobs"]}


def test_llama_cpp_applies_the_converted_adapter_like_peft(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    """Real llama.cpp (xllamacpp) on the tiny GGUF, with and without the LoRA, against PEFT on the same weights."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf, base = tiny_pair
    adapter = make_adapter(hf, tmp_path / "adapter", lora_alpha=64)
    lora = convert_lora_to_gguf(adapter, base_gguf=base)
    tokenizer = AutoTokenizer.from_pretrained(hf)
    model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32).eval()
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32), adapter).eval()

    def next_token(net: object, ids: list[int]) -> torch.Tensor:
        with torch.no_grad():
            return torch.log_softmax(net(torch.tensor([ids])).logits[0, -1], dim=-1)

    # llama.cpp reports no probabilities when the token it picks is a partial UTF-8 sequence (random weights
    # pick those often), so take a prompt whose greedy next token is whole with and without the adapter.
    for text in ("Antwort: C. The answer is", "Answer: B", "Question: ", "Réponse : A", "0123456789", "Options"):
        ids = tokenizer(text)["input_ids"]
        plain, adapted = next_token(model, ids), next_token(peft, ids)
        if all("\ufffd" not in tokenizer.decode([int(dist.argmax())]) for dist in (plain, adapted)):
            break
    else:
        pytest.fail("no prompt with whole greedy tokens")

    without = _llama_logprobs(base, ids, ())
    with_lora = _llama_logprobs(base, ids, ((lora, 1.0),))
    assert max(abs(logprob - float(plain[token])) for token, logprob in without.items()) < 1e-3
    assert max(abs(logprob - float(adapted[token])) for token, logprob in with_lora.items()) < 1e-3
    assert float((adapted.exp() - plain.exp()).abs().sum()) / 2 > 0.05  # the adapter matters...
    assert max(with_lora.items(), key=lambda item: item[1])[0] == int(adapted.argmax())  # ...and llama.cpp applied it
    assert with_lora != without
