"""Tiny random models that tests and benchmarks build locally (nothing is downloaded): a Qwen2-shaped
causal LM with a ChatML tokenizer, and a sentence-transformers embedder."""
