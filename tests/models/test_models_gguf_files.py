"""The GGUF header reader: the same facts as gguf-py's reader, in milliseconds on a real-sized vocabulary."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from calm_rag.errors import CalmRagError
from calm_rag.models.gguf_files import read_summary, single_gguf
from tests.models.conftest import write_tiny_gguf


@pytest.mark.parametrize("quantize", [False, True], ids=["f32", "q8_0"])
def test_the_summary_matches_gguf_py(tmp_path: Path, quantize: bool) -> None:
    from gguf import GGUFReader

    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path, quantize=quantize)
    summary = read_summary(path)
    reader = GGUFReader(str(path))
    assert summary.architecture == "qwen2" and summary.name == "tiny qwen2 for tests"
    assert summary.block_count == 2 and summary.chat_template is True
    assert summary.shapes == {t.name: tuple(reversed(t.shape.tolist())) for t in reader.tensors}
    assert summary.parameters == sum(int(t.n_elements) for t in reader.tensors)
    assert summary.shapes["blk.0.attn_k.weight"] == (16, 32)  # (out, in), as torch has it


def test_a_real_sized_vocabulary_is_read_fast(tmp_path: Path) -> None:
    import gguf
    import numpy as np

    path = tmp_path / "vocab.gguf"
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_token_list([f"token{i}" for i in range(152_000)])
    writer.add_token_types([1] * 152_000)
    writer.add_token_merges([f"a{i} b{i}" for i in range(151_000)])
    writer.add_chat_template("{{ messages }}")
    writer.add_tensor("output_norm.weight", np.ones(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    started = time.monotonic()
    summary = read_summary(path)
    assert time.monotonic() - started < 2  # gguf.GGUFReader took 28 s on such a header here
    assert summary.chat_template and summary.shapes == {"output_norm.weight": (8,)}


@pytest.mark.parametrize("damage", ["not-gguf", "truncated", "empty"])
def test_a_file_that_is_not_a_whole_gguf_is_one_line(tmp_path: Path, tiny_gguf: Path, damage: str) -> None:
    path = tmp_path / "bad.gguf"
    data = tiny_gguf.read_bytes()
    path.write_bytes({"not-gguf": b"PK\x03\x04" + data[4:], "truncated": data[:2000], "empty": b""}[damage])
    with pytest.raises(CalmRagError, match="is not a readable GGUF file") as error:
        read_summary(path)
    assert "\n" not in str(error.value)


def test_single_gguf_finds_exactly_one(tmp_path: Path) -> None:
    assert single_gguf(tmp_path) is None
    (tmp_path / "a.gguf").write_bytes(b"x")
    assert single_gguf(tmp_path) == (tmp_path / "a.gguf").resolve()
    (tmp_path / "b.gguf").write_bytes(b"x")
    assert single_gguf(tmp_path) is None
