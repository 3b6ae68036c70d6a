"""What calm-rag reads from a GGUF file without loading it: architecture, size, chat template, tensor shapes.

Why a reader of its own: `gguf.GGUFReader` builds a numpy view per array element, which took 28 s on a
header with a Qwen-sized vocabulary (151k tokens and merges), and transformers' fast reader imports
torch. This one reads the header (GGUF v2/v3: magic, counts, key/value pairs, tensor table) with
`struct` from a memory map, skips arrays without materializing them, and never touches tensor data:
milliseconds for any model. The format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from calm_rag.errors import CalmRagError

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_LENGTH = struct.Struct("<Q")
_VERSIONS = (2, 3)


@dataclass(frozen=True)
class GgufSummary:
    architecture: str
    name: str | None
    """`general.name` (who quantized what)."""
    parameters: int
    chat_template: bool
    block_count: int | None
    shapes: dict[str, tuple[int, ...]] = field(repr=False)
    """Tensor name -> shape in torch's (out, in) order (GGUF stores ggml's reversed `ne`)."""

    @property
    def float32_bytes(self) -> int:
        """Size of the weights dequantized to float32: what a transformers copy takes on disk."""
        return 4 * self.parameters


@dataclass(frozen=True)
class _Array:
    """Where an array's values start in the header (read only on demand: a vocabulary is 150k+ strings)."""

    start: int
    element: int
    length: int


class _Header:
    """A cursor over a GGUF header; arrays are skipped (their values are never needed here)."""

    def __init__(self, data: mmap.mmap) -> None:
        self.data = data
        self.pos = 0

    def scalar(self, fmt: str) -> object:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def count(self, fmt: str = "<Q") -> int:
        return int(self.scalar(fmt))  # type: ignore[call-overload]

    def skip(self, size: int) -> None:
        self.pos += size
        if self.pos > len(self.data):
            raise ValueError("the header runs past the end of the file")

    def string(self) -> str:
        length = self.count()
        start = self.pos
        self.skip(length)
        return self.data[start:self.pos].decode("utf-8", errors="replace")

    def value(self, kind: int) -> object:
        if kind in _SCALAR:
            return self.scalar(_SCALAR[kind])
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise ValueError(f"unknown metadata value type {kind}")
        element, length = self.count("<I"), self.count()
        start = self.pos
        self._skip_array(element, length)
        return _Array(start, element, length)

    def _skip_array(self, element: int, length: int) -> None:
        if element in _SCALAR:
            self.skip(struct.calcsize(_SCALAR[element]) * length)
        elif element == _STRING:  # a vocabulary: 150k+ strings, so the tightest loop
            pos, data, read_length = self.pos, self.data, _LENGTH.unpack_from
            for _ in range(length):
                pos += 8 + read_length(data, pos)[0]
            self.skip(pos - self.pos)
        else:
            for _ in range(length):
                self.value(element)


@contextmanager
def _mapped(path: Path) -> Iterator[mmap.mmap]:
    """The file at `path`, memory-mapped read-only (the header is read from it, never copied)."""
    with path.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield data


def _parse(data: mmap.mmap) -> tuple[dict[str, object], dict[str, tuple[int, ...]]]:
    """(scalar and string metadata, tensor name -> torch-order shape) of a mapped GGUF."""
    header = _Header(data)
    if header.scalar("<4s") != b"GGUF":
        raise ValueError("no GGUF magic")
    version = header.count("<I")
    if version not in _VERSIONS:
        raise ValueError(f"GGUF version {version}")
    tensors, pairs = header.count(), header.count()
    metadata: dict[str, object] = {}
    for _ in range(pairs):
        key = header.string()
        metadata[key] = header.value(header.count("<I"))
    shapes: dict[str, tuple[int, ...]] = {}
    for _ in range(tensors):
        name = header.string()
        ne = [header.count() for _ in range(header.count("<I"))]
        header.skip(12)  # ggml type (u32) and data offset (u64)
        shapes[name] = tuple(reversed(ne))
    return metadata, shapes


_CONTROL_TYPES = frozenset({3, 4})
"""llama.cpp token types CONTROL and USER_DEFINED: the chat markup and added tokens of the tokenizer."""


def control_tokens(path: Path) -> frozenset[str]:
    """The GGUF tokenizer's control and user-defined tokens (`<|im_start|>`, `<tool_call>`, ...), what
    retrieved passages are stripped of when no Hugging Face tokenizer is at hand."""
    try:
        with _mapped(path) as data:
            metadata, _ = _parse(data)  # the arrays below are read from the same mapping, at the offsets it found
            tokens, types = metadata.get("tokenizer.ggml.tokens"), metadata.get("tokenizer.ggml.token_type")
            if not isinstance(tokens, _Array) or not isinstance(types, _Array) or types.element not in _SCALAR:
                return frozenset()
            kinds = struct.unpack_from(f"<{types.length}{_SCALAR[types.element][-1]}", data, types.start)
            wanted = {index for index, kind in enumerate(kinds) if kind in _CONTROL_TYPES}
            header = _Header(data)
            header.pos = tokens.start
            found = set()
            for index in range(tokens.length):
                text = header.string()
                if index in wanted and text.strip():
                    found.add(text)
    except (OSError, ValueError, struct.error, OverflowError) as error:
        raise CalmRagError(f"{path} is not a readable GGUF file ({error})".splitlines()[0]) from None
    return frozenset(found)


def read_summary(path: Path) -> GgufSummary:
    """Header facts of the GGUF at `path`; a file that is not a GGUF is a one-line error."""
    try:
        with _mapped(path) as data:
            metadata, shapes = _parse(data)
    except (OSError, ValueError, struct.error, OverflowError) as error:
        raise CalmRagError(f"{path} is not a readable GGUF file ({error})".splitlines()[0]) from None
    architecture = metadata.get("general.architecture")
    if not isinstance(architecture, str) or not architecture:
        raise CalmRagError(f"{path} has no general.architecture; not a model GGUF")
    name, template = metadata.get("general.name"), metadata.get("tokenizer.chat_template")
    blocks = metadata.get(f"{architecture}.block_count")
    parameters = 0
    for shape in shapes.values():
        count = 1
        for size in shape:
            count *= size
        parameters += count
    return GgufSummary(architecture=architecture, name=name if isinstance(name, str) else None,
                       parameters=parameters, chat_template=isinstance(template, str) and bool(template),
                       block_count=blocks if isinstance(blocks, int) else None, shapes=shapes)


def single_gguf(folder: Path) -> Path | None:
    """The one `.gguf` file directly in `folder`, if there is exactly one (several: ambiguous, None)."""
    found = sorted(path for path in folder.glob("*.gguf") if path.is_file())
    return found[0].resolve() if len(found) == 1 else None
