"""Transliterated names with the real default embedder (EmbeddingGemma, as `load_encoder` prompts it):
one name in en/de/fr/zh/ja/ru/ar forms lands in one cluster, related-but-different names stay apart.
Skipped when the embedder is not provisioned. Run with `pytest -m slow tests/voting/test_names_real.py`."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from calm_rag.config import Settings
from calm_rag.errors import CalmRagError
from calm_rag.voting import CachedEncoder, ClusterConfig, cluster_answers, semantic_match

pytestmark = pytest.mark.slow
# conftest isolates the model cache per test; these tests need the real one (the calling shell's).
REAL_CACHE = str(Path(os.environ.get("CALM_RAG_MODEL_CACHE") or Settings().model_cache).expanduser())
EMBEDDER = "embeddinggemma-300m"

NAMES = {
    "gagarin": {"en": "Gagarin", "de": "Gagarin", "fr": "Gagarine", "zh": "加加林", "ja": "ガガーリン", "ru": "Гагарин",
                "ar": "غاغارين"},
    "beethoven": {"en": "Beethoven", "zh": "贝多芬", "ja": "ベートーヴェン", "ru": "Бетховен", "ar": "بيتهوفن"},
    "toronto": {"en": "Toronto", "zh": "多伦多", "ja": "トロント", "ru": "Торонто", "ar": "تورونتو"},
    "moscow": {"en": "Moscow", "de": "Moskau", "fr": "Moscou", "zh": "莫斯科", "ja": "モスクワ", "ru": "Москва",
               "ar": "موسكو"},
    "sydney": {"en": "Sydney", "zh": "悉尼", "ja": "シドニー", "ru": "Сидней", "ar": "سيدني"},
    "congo": {"en": "Congo", "zh": "刚果河", "ja": "コンゴ川", "ru": "Конго"},
    "tokyo": {"en": "Tokyo", "de": "Tokio", "ja": "東京", "ru": "Токио"},
}
APART = [("beethoven", "mozart"), ("ottawa", "toronto"), ("sydney", "canberra"), ("nile", "congo")]
OTHERS = {
    "mozart": ("Mozart", "莫扎特", "モーツァルト", "Моцарт"),
    "ottawa": ("Ottawa", "渥太华", "オタワ"),
    "canberra": ("Canberra", "堪培拉", "キャンベラ", "Канберра", "كانبرا"),
    "nile": ("The Nile", "Le Nil", "der Nil", "尼罗河", "ナイル川", "Нил", "النيل"),
}


@pytest.fixture(scope="module")
def encode() -> CachedEncoder:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CALM_RAG_MODEL_CACHE", REAL_CACHE)
        from calm_rag.indexes.encoder import load_encoder
        from calm_rag.models import resolve_model

        try:
            resolve_model(EMBEDDER, role="embedder")
            return CachedEncoder(load_encoder(EMBEDDER))
        except CalmRagError as error:
            pytest.skip(f"real embedder not provisioned: {error}")


@pytest.mark.parametrize("name", sorted(NAMES))
def test_one_name_in_every_script_is_one_cluster(encode: CachedEncoder, name: str) -> None:
    forms = NAMES[name]
    clustering = cluster_answers({lang: [text] for lang, text in forms.items()}, encode)
    assert len(clustering.clusters) == 1, [[m.text for m in c.members] for c in clustering.clusters]


def test_the_transliteration_check_is_what_joins_gagarin(encode: CachedEncoder) -> None:
    """Cosine alone splits 加加林 (0.77 with "Gagarin"); the check on the spans joins it."""
    forms = {lang: [text] for lang, text in NAMES["gagarin"].items()}
    assert len(cluster_answers(forms, encode, ClusterConfig(sound_margin=0.0)).clusters) > 1
    assert len(cluster_answers(forms, encode).clusters) == 1


@pytest.mark.parametrize(("one", "other"), APART)
def test_related_but_different_names_stay_apart(encode: CachedEncoder, one: str, other: str) -> None:
    first = list(NAMES.get(one, {}).values()) or list(OTHERS[one])
    second = list(NAMES.get(other, {}).values()) or list(OTHERS[other])
    merged = [(a, b) for a, b in itertools.product(first, second) if semantic_match(a, b, encode)]
    assert merged == []


@pytest.mark.xfail(strict=True, reason="n-l is two consonants, too common to identify a name (Neil 尼尔, Niger "
                   "尼日尔); the embedder puts 尼罗河 at 0.77-0.79, below the threshold (issue #18, f27)")
def test_the_nile_in_chinese_still_splits(encode: CachedEncoder) -> None:
    assert semantic_match("The Nile", "尼罗河", encode)
