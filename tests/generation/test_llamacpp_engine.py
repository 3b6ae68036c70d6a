"""The llama.cpp engine on the tiny GGUF: the conversion, parity with transformers on the same weights,
LoRA adapters, lifecycle, and the engine choice (`EngineConfig`, `load_generator`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.engines import EngineConfig, load_generator
from calm_rag.generation.llamacpp_engine import LlamaCppGenerator, LlamaCppServer
from calm_rag.generation.openai_engine import OpenAIGenerator
from calm_rag.prompts import answer_prefill, mcq_messages
from calm_rag.questions import Question, make_choices
from tests.generation.conftest import SERVED_NAME

QUESTIONS = {
    "en": ("Where in the eastern US would you find an anemone?",
           ["flower bed", "florida keys", "tide pool", "coral sea", "aquarium"]),
    "zh": ("在美国东部哪里可以找到海葵？", ["花坛", "佛罗里达群岛", "潮池", "珊瑚海", "水族馆"]),
    "de": ("Wo im Osten der USA findet man eine Anemone?",
           ["Blumenbeet", "Florida Keys", "Gezeitenbecken", "Korallenmeer", "Aquarium"]),
    "fr": ("Où trouve-t-on une anémone dans l'est des États-Unis ?",
           ["parterre", "keys de Floride", "bassin de marée", "mer de corail", "aquarium"]),
    "ja": ("アメリカ東部でイソギンチャクが見つかるのはどこ？", ["花壇", "フロリダキーズ", "潮だまり", "珊瑚海", "水族館"]),
    "it": ("Dove si trova un anemone negli Stati Uniti orientali?",
           ["aiuola", "florida keys", "pozza di marea", "mar dei coralli", "acquario"]),
}
MAX_TOTAL_VARIATION = 1e-3
"""Measured: at most 2.3e-5 on these 18 prompts (F32 weights on both sides); the smallest argmax margin
of the transformers distributions is 2e-3, so the argmax must agree everywhere."""


def direct_prompts(generator: Any) -> tuple[list[str], list[list[str]]]:
    """18 direct-mode prompts: 6 languages x 3, 4 or 5 options, ending after the localized answer label."""
    prompts, labels = [], []
    for lang, (text, options) in QUESTIONS.items():
        for count in (3, 4, 5):
            question = Question(id=lang, lang=lang, question=text, choices=make_choices(options[:count]))
            prompts.append(generator.render(mcq_messages(question, mode="direct"), prefill=answer_prefill(lang)))
            labels.append(list(question.labels))
    return prompts, labels


def total_variation(first: dict[str, float], second: dict[str, float]) -> float:
    return 0.5 * sum(abs(first[label] - second[label]) for label in first)


@pytest.fixture(scope="module")
def llamacpp(tiny_pair: tuple[Path, Path]) -> Any:
    generator = load_generator(str(tiny_pair[1]), EngineConfig(engine="llama.cpp", tokenizer=str(tiny_pair[0]),
                                                               slots=4, threads=1))
    yield generator
    generator.close()


def test_the_tiny_gguf_holds_the_hf_models_weights_and_template(tiny_pair: tuple[Path, Path],
                                                                tiny_transformers: Any) -> None:
    from calm_rag.models.gguf_files import read_summary

    summary = read_summary(tiny_pair[1])
    assert summary.architecture == "qwen2" and summary.chat_template
    assert summary.parameters == sum(p.numel() for p in tiny_transformers.model.parameters())
    assert summary.shapes["blk.0.attn_k.bias"] == (16,) and "output.weight" not in summary.shapes  # tied


def test_direct_mode_matches_transformers_on_the_same_weights(llamacpp: Any, tiny_transformers: Any) -> None:
    prompts, labels = direct_prompts(tiny_transformers)
    assert prompts == direct_prompts(llamacpp)[0]  # same chat template, same text
    reference = tiny_transformers.label_distributions(prompts, labels)
    found = llamacpp.label_distributions(prompts, labels)
    assert [max(d, key=d.get) for d in found] == [max(d, key=d.get) for d in reference]
    assert max(total_variation(a, b) for a, b in zip(reference, found)) < MAX_TOTAL_VARIATION
    assert all(not d.missing for d in found)


def test_the_openai_engine_on_the_same_server_url_gives_the_same_distributions(
        llamacpp_server: LlamaCppServer, tiny_pair: tuple[Path, Path], llamacpp: Any) -> None:
    remote = load_generator(SERVED_NAME, EngineConfig(engine="openai", base_url=llamacpp_server.url + "/v1",
                                                      tokenizer=str(tiny_pair[0])))
    try:
        assert isinstance(remote, OpenAIGenerator)
        prompts, labels = direct_prompts(remote)
        for ours, theirs in zip(remote.label_distributions(prompts[:4], labels[:4]),
                                llamacpp.label_distributions(prompts[:4], labels[:4])):
            assert total_variation(ours, theirs) < 1e-4  # two servers, batched differently: ~1e-5
    finally:
        remote.close()


def test_sampling_and_greedy_on_the_in_process_engine(llamacpp: Any, tiny_transformers: Any) -> None:
    prompts = [llamacpp.render([{"role": "user", "content": text}])
               for text in ("Wann entdeckte Scheele Sauerstoff?", "Answer: C", "A. B. C. D.")]
    samples = llamacpp.generate([prompts[0]] * 6, GenerationConfig(max_new_tokens=6, temperature=0.9))
    assert len(set(samples)) >= 5
    config = GenerationConfig(max_new_tokens=6, temperature=0)
    assert llamacpp.generate(prompts, config) == tiny_transformers.generate(prompts, config)


def test_choice_continuation_on_the_in_process_engine(llamacpp: Any) -> None:
    from tests.generation.test_choice_continuation import check_on_engine

    check_on_engine(llamacpp, reproducible=False)


def test_close_stops_the_server_and_a_dead_server_is_a_clear_error(tiny_pair: tuple[Path, Path]) -> None:
    with LlamaCppGenerator(tiny_pair[1], name="lifecycle") as generator:
        url = generator.server.url
        assert httpx.get(url + "/health").status_code == 200
        generator.server.close()  # the server dies under a running generator
        with pytest.raises(CalmRagError, match="stopped answering"):
            generator.generate([generator.render([{"role": "user", "content": "x"}])],
                               GenerationConfig(temperature=0, max_new_tokens=2))
    assert not generator.server.running
    generator.close()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health")


def test_a_lora_adapter_is_applied_like_transformers_applies_it(tmp_path: Path, tiny_pair: tuple[Path, Path],
                                                                tiny_transformers: Any) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from calm_rag.generation.transformers_engine import TransformersGenerator

    folder = tmp_path / "model"
    shutil.copytree(tiny_pair[0], folder)
    shutil.copy(tiny_pair[1], folder / "model.gguf")  # one folder: HF weights, tokenizer and the GGUF
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(folder),
                          LoraConfig(r=4, lora_alpha=8, target_modules=modules))
    torch.manual_seed(1)
    for name, parameter in peft.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_(0, 0.5)  # PEFT starts B at zero; the adapter must change something
    peft.save_pretrained(tmp_path / "adapter")

    reference = TransformersGenerator.load(str(folder), adapter=tmp_path / "adapter", device="cpu")
    prompts, labels = direct_prompts(reference)
    prompts, labels = prompts[:6], labels[:6]
    with load_generator(str(folder), EngineConfig(engine="llama.cpp", slots=2), adapter=tmp_path / "adapter") as ours:
        found = ours.label_distributions(prompts, labels)
    adapted = reference.label_distributions(prompts, labels)
    base = tiny_transformers.label_distributions(prompts, labels)
    assert max(total_variation(a, b) for a, b in zip(adapted, base)) > 0.01  # the adapter matters
    assert max(total_variation(a, b) for a, b in zip(adapted, found)) < MAX_TOTAL_VARIATION


def test_a_gguf_without_a_template_needs_plain_prompts(tmp_path: Path) -> None:
    from calm_rag.testing.tiny_gguf import convert_qwen2_to_gguf
    from calm_rag.testing.tiny_lm import build_tiny_causal_lm

    hf = build_tiny_causal_lm(tmp_path / "base", chat_template=False)
    gguf = convert_qwen2_to_gguf(hf, tmp_path / "base.gguf")
    with pytest.raises(CalmRagError, match="--plain-prompts"):
        load_generator(str(gguf), EngineConfig(engine="llama.cpp", slots=1))
    with load_generator(str(gguf), EngineConfig(engine="llama.cpp", slots=1, plain_prompts=True)) as generator:
        assert generator.render([{"role": "user", "content": "Frage"}], prefill="Antwort:") == "Frage\n\nAntwort:"


# ---- choosing an engine: one-line errors before anything loads ------------------------------------


@pytest.mark.parametrize(("config", "message"), [
    ({"engine": "vllm"}, "unknown engine 'vllm'"),
    ({"base_url": "http://x/v1"}, "--base-url needs --engine openai"),
    ({"engine": "llama.cpp", "base_url": "http://x/v1"}, "--base-url needs --engine openai"),
    ({"engine": "openai"}, "--engine openai needs --base-url"),
    ({"engine": "llama.cpp", "api_key": "k"}, "--api-key needs --engine openai"),
    ({"engine": "transformers", "tokenizer": "x"}, "--tokenizer needs --engine openai or llama.cpp or auto"),
    ({"engine": "openai", "base_url": "http://x/v1", "slots": 4}, "--slots needs --engine llama.cpp or auto"),
    ({"engine": "llama.cpp", "slots": 0}, "--slots must be at least 1"),
])
def test_bad_engine_combinations_are_one_line(config: dict[str, Any], message: str) -> None:
    with pytest.raises(CalmRagError, match=message):
        EngineConfig(**config)


def test_a_model_without_a_gguf_cannot_run_on_llamacpp(tiny_pair: tuple[Path, Path]) -> None:
    with pytest.raises(CalmRagError, match="has no GGUF file.*--engine transformers"):
        load_generator(str(tiny_pair[0]), EngineConfig(engine="llama.cpp"))


def test_a_file_that_is_not_a_gguf_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "broken.gguf"
    fake.write_bytes(b"not a gguf at all")
    with pytest.raises(CalmRagError, match="llama.cpp could not load"):
        LlamaCppServer(fake, alias="broken")


def test_an_adapter_is_refused_on_the_openai_engine_before_any_request() -> None:
    config = EngineConfig(engine="openai", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(CalmRagError, match="--adapter cannot be applied to a remote server"):
        load_generator("served", config, adapter="runs/x")


def test_the_answer_line_grammar_gives_every_sample_its_answer_line(llamacpp: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny random model writes noise; under the grammar each sample still ends with its language's answer
    label and a short span on its own line, so no span needs the continuation. Without it the noise has no such
    line. (The explanation allowance is cut so that the noise fits the tiny model's context.)"""
    from calm_rag.generation import open_sampling
    from calm_rag.generation.open_sampling import sample_open_responses

    monkeypatch.setattr(open_sampling, "EXPLANATION_LINES", 2)
    monkeypatch.setattr(open_sampling, "LINE_CHARS", 40)
    from calm_rag.questions import ParallelQuestion

    question = ParallelQuestion("q", {"de": Question("q", "de", "Wie viele Beine hat eine Spinne?"),
                                      "zh": Question("q", "zh", "蜘蛛有几条腿？")}, "de")
    config = GenerationConfig(max_new_tokens=400, temperature=0.7, seed=3)
    [free] = sample_open_responses(llamacpp, [question], ["de", "zh"], 2, config, continue_spans=False)
    [constrained] = sample_open_responses(llamacpp, [question], ["de", "zh"], 2, config, continue_spans=False,
                                          constrain_spans=True)
    assert sum(s.span_source == "answer_line" for items in free.values() for s in items) < 4
    for lang, items in constrained.items():
        for sample in items:
            last = sample.text.strip().splitlines()[-1].replace("\ufffd", "")  # the noise splits characters
            assert last.startswith(answer_prefill(lang)) and 0 < len(last) - len(answer_prefill(lang)) <= 61
            assert sample.span_source == "answer_line" and sample.span
