"""What calm-rag reads from a GGUF file without loading it: architecture, size, chat template, tensor shapes.

`gguf.GGUFReader` memory-maps the file, so this reads the header and tensor table, never the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from calm_rag.errors import CalmRagError


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


def _string(reader: object, key: str) -> str | None:
    found = reader.get_field(key)  # type: ignore[attr-defined]
    if found is None:
        return None
    value = found.contents()
    return value if isinstance(value, str) else None


def read_summary(path: Path) -> GgufSummary:
    """Header facts of the GGUF at `path`; a file that is not a GGUF is a one-line error."""
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
    except Exception as error:  # noqa: BLE001 - whatever the parser trips on, the file is not usable
        raise CalmRagError(f"{path} is not a readable GGUF file ({type(error).__name__}: {error})".splitlines()[0]) \
            from None
    architecture = _string(reader, "general.architecture")
    if not architecture:
        raise CalmRagError(f"{path} has no general.architecture; not a model GGUF")
    blocks = reader.get_field(f"{architecture}.block_count")
    shapes = {tensor.name: tuple(int(n) for n in reversed(tensor.shape.tolist())) for tensor in reader.tensors}
    return GgufSummary(architecture=architecture, name=_string(reader, "general.name"),
                       parameters=sum(int(tensor.n_elements) for tensor in reader.tensors),
                       chat_template=bool(_string(reader, "tokenizer.chat_template")),
                       block_count=int(blocks.contents()) if blocks is not None else None, shapes=shapes)


def single_gguf(folder: Path) -> Path | None:
    """The one `.gguf` file directly in `folder`, if there is exactly one (several: ambiguous, None)."""
    found = sorted(path for path in folder.glob("*.gguf") if path.is_file())
    return found[0].resolve() if len(found) == 1 else None
