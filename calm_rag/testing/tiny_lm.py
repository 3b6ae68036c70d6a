"""Tiny random models for tests and benchmarks, built locally (nothing is downloaded).

Like TRL's and sentence-transformers' own test suites, calm-rag's tests run the whole pipeline
on a randomly initialised model a few hundred kilobytes in size, so index/ask/train/eval run
in seconds on a CPU. `build_tiny_causal_lm` writes a Qwen2-shaped model with a byte-level BPE
tokenizer (trained on the registry's prompts, so every language's script is covered) and a
ChatML chat template.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> list[str]:
    from calm_rag.languages import LANGUAGES

    lines = []
    for lang in LANGUAGES.values():
        lines += [lang.instruction, lang.direct_instruction, lang.open_instruction, lang.question_label,
                  lang.options_label, lang.answer_label, *lang.answer_markers]
    lines += ["A. B. C. D. E. (A) (B) (C) (D) (E) A B C D E", "Answer: C", "0123456789"]
    return lines


def build_tiny_tokenizer(vocab_size: int = 800, chat_template: bool = True):
    """A byte-level BPE `PreTrainedTokenizerFast` with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    if chat_template:
        wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_tiny_causal_lm(path: Path, *, hidden_size: int = 32, layers: int = 2, seed: int = 0,
                         chat_template: bool = True) -> Path:
    """Save a random Qwen2ForCausalLM + tokenizer to `path` and return it."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tiny_tokenizer(chat_template=chat_template)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
