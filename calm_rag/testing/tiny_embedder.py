"""A tiny random sentence-transformers model, made offline in a second: for tests and benchmarks.

No network and no weights to download: a WordPiece vocabulary is trained with `tokenizers` on a
few multilingual sentences (Latin, Chinese, Arabic, Cyrillic, Devanagari...), and a 2-layer,
32-wide BERT with random weights is wrapped as `SentenceTransformer([Transformer, Pooling])` with
e5-style `query`/`document` prompts and no Normalize module (so the embedder's own normalisation
is exercised). Its vectors carry lexical overlap only, which is enough to test plumbing.
`hidden`/`layers` can be raised to get a model of realistic cost for throughput benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Aspirin reduces fever, pain and inflammation.",
    "Paris is the capital of France. Berlin is the capital of Germany.",
    "Berlin ist die Hauptstadt von Deutschland und hat viele Museen.",
    "Paris est la capitale de la France et une grande ville.",
    "Roma è la capitale d'Italia.",
    "Madrid es la capital de España.",
    "巴黎是法国的首都。北京是中国的首都。长城很长。",
    "東京は日本の首都です。富士山は高いです。",
    "القاهرة هي عاصمة مصر. النيل نهر طويل.",
    "Москва — столица России.",
    "नई दिल्ली भारत की राजधानी है।",
    "서울은 한국의 수도입니다.",
    "query: passage: what where when who how why which 0 1 2 3 4 5 6 7 8 9",
)


def build_tiny_embedder(path: str | os.PathLike[str], *, hidden: int = 32, layers: int = 2, vocab_size: int = 1000,
                        max_length: int = 256, seed: int = 0, extra_text: tuple[str, ...] = ()) -> Path:
    """Save a random sentence-transformers model under `path` and return the folder to load."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from tokenizers import (
        Tokenizer,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import BertConfig, BertModel, BertTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    out = Path(path)
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(list(SENTENCES + extra_text) * 3,
                                  trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                                           show_progress=False))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    fast = BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]", model_max_length=max_length)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=max(1, hidden // 16), intermediate_size=hidden * 4,
                        max_position_embeddings=max_length)
    BertModel(config).save_pretrained(raw)
    fast.save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=max_length)
    pooling = Pooling(hidden, pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling], prompts={"query": "query: ", "document": "passage: "},
                                device="cpu")
    model_dir = out / "model"
    model.save(str(model_dir))
    return model_dir
