"""GGUF -> plain safetensors on a tiny real GGUF (F32 and Q8_0), and the export checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from calm_rag.errors import CalmRagError
from calm_rag.models import convert
from tests.models.conftest import write_tiny_gguf


def _logits(model, tokenizer) -> object:
    import torch

    ids = tokenizer.apply_chat_template([{"role": "user", "content": "the"}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    with torch.no_grad():
        return model(**ids).logits


@pytest.mark.parametrize("quantize", [False, True], ids=["f32", "q8_0"])
def test_converted_model_matches_the_gguf_and_is_plain(tmp_path: Path, quantize: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = tmp_path / "tiny.gguf"
    write_tiny_gguf(gguf_path, quantize=quantize)
    out = tmp_path / "plain"
    report = convert.convert_gguf(gguf_path, out)
    assert report.gguf_name == "tiny qwen2 for tests" and report.dtype == "float32" and report.parameters > 0

    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    plain = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template and "<|im_start|>assistant" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert getattr(plain, "hf_quantizer", None) is None
    assert {p.dtype for p in plain.parameters()} == {torch.float32} and plain.training is False
    eos = plain.generation_config.eos_token_id
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in (eos if isinstance(eos, list) else [eos])

    direct = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="tiny.gguf", dtype=torch.float32)
    assert torch.allclose(_logits(plain, tokenizer), _logits(direct, tokenizer), atol=1e-6)


def test_plain_model_accepts_a_lora_adapter(tmp_path: Path, tiny_gguf: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path / "plain"
    convert.convert_gguf(tiny_gguf, out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert trainable > 0
    peft_model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_strip_quantization_removes_every_trace() -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=16, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    removed: list[object] = []

    class FakeQuantizer:
        def remove_quantization_config(self, target: object) -> None:
            removed.append(target)
            del target.hf_quantizer

    model.hf_quantizer = FakeQuantizer()
    model.config.quantization_config = {"quant_method": "gguf"}
    steps = convert.strip_quantization(model)
    assert removed == [model] and not hasattr(model.config, "quantization_config")
    assert getattr(model, "hf_quantizer", None) is None and model.is_quantized is False
    assert any("FakeQuantizer" in step for step in steps)


def test_a_tokenizer_without_chat_template_is_refused(tmp_path: Path, tiny_gguf: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path / "plain"
    convert.convert_gguf(tiny_gguf, folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = None
    with pytest.raises(CalmRagError, match="no chat template"):
        convert.export_plain(model, tokenizer, tmp_path / "again")


def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(CalmRagError, match="transformers could not load bogus.gguf"):
        convert.convert_gguf(bogus, tmp_path / "out")


def test_conversion_loads_without_hub_kernels(tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loaded model is thrown away after export, so the flag is read where it is loaded."""
    from transformers import AutoModelForCausalLM

    loaded: list[object] = []
    original = AutoModelForCausalLM.from_pretrained.__func__

    def keep(cls: type, *args: object, **kwargs: object) -> object:
        model = original(cls, *args, **kwargs)
        loaded.append(model)
        return model

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(keep))
    convert.convert_gguf(tiny_gguf, tmp_path / "plain")
    assert len(loaded) == 1 and loaded[0].use_kernels is False
