"""Reading and writing data: dataset readers (parallel multiple-choice folders, open-question folders,
XQuAD-R, samples files), the one JSONL reader and the one atomic writer. Nothing here touches a model."""

from calm_rag.data.jsonl import read_json, read_jsonl, read_records, write_json, write_jsonl, write_text_atomic
from calm_rag.data.open import XQUAD_QUERIES, is_open_dataset, load_open_dataset
from calm_rag.data.parallel import dataset_hash, load_parallel_dataset

__all__ = ["XQUAD_QUERIES", "dataset_hash", "is_open_dataset", "load_open_dataset", "load_parallel_dataset",
           "read_json", "read_jsonl", "read_records", "write_json", "write_jsonl", "write_text_atomic"]
