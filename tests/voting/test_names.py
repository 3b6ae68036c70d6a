"""Transliterated names (issue #18): the consonant skeleton of `calm_rag.voting.names` and how matching
uses it. No model: the encoder is a fake whose cosines are set per test."""

from __future__ import annotations

import numpy as np
import pytest

from calm_rag.errors import CalmRagError
from calm_rag.voting import ClusterConfig, Encode, cluster_answers, semantic_match
from calm_rag.voting.matching import DEFAULT_THRESHOLD, SOUND_MARGIN
from calm_rag.voting.names import MIN_CONSONANTS, sound_key, sounds_alike

# one name, as each language writes it (en, de, fr, zh, ja, ru, ar)
GAGARIN = {"en": "Gagarin", "de": "Juri Gagarin", "fr": "Gagarine", "zh": "加加林", "ja": "ガガーリン",
           "ru": "Гагарин", "ar": "غاغارين"}
BEETHOVEN = {"en": "Beethoven", "de": "Beethoven", "fr": "Beethoven", "zh": "贝多芬", "ja": "ベートーヴェン",
             "ru": "Бетховен", "ar": "بيتهوفن"}
CANBERRA = {"en": "Canberra", "de": "Canberra", "fr": "Canberra", "zh": "堪培拉", "ja": "キャンベラ",
            "ru": "Канберра", "ar": "كانبرا"}
TORONTO = {"en": "Toronto", "de": "Toronto", "fr": "Toronto", "zh": "多伦多", "ja": "トロント", "ru": "Торонто",
           "ar": "تورونتو"}
MOZART = {"en": "Mozart", "de": "Mozart", "fr": "Mozart", "zh": "莫扎特", "ru": "Моцарт", "ar": "موتسارت"}
NILE = {"en": "The Nile River", "de": "der Nil", "fr": "Le Nil", "zh": "尼罗河", "ja": "ナイル川", "ru": "Нил",
        "ar": "النيل"}
CONGO = {"en": "Congo", "de": "der Kongo", "fr": "Le Congo", "zh": "刚果河", "ja": "コンゴ川", "ru": "Конго"}


@pytest.mark.parametrize(("forms", "skeleton"), [
    (GAGARIN, "kkln"), (BEETHOVEN, "ptpn"), (CANBERRA, "knpl"), (TORONTO, "tlnt"), (MOZART, "mst"), (NILE, "nl"),
    (CONGO, "knk")])
def test_every_script_reads_a_name_to_one_skeleton(forms: dict[str, str], skeleton: str) -> None:
    for lang, text in forms.items():
        if lang == "de" and text == "Juri Gagarin":  # the first name adds its consonants
            assert sound_key(text) == ("latin", "lkkln")
            continue
        assert sound_key(text) is not None and sound_key(text)[1] == skeleton, (lang, text)  # type: ignore[index]


def test_articles_generic_words_and_the_arabic_article_drop() -> None:
    assert sound_key("The Nile River") == sound_key("Nile") == ("latin", "nl")
    assert sound_key("der Rhein") == sound_key("Rhein")
    assert sound_key("نهر النيل") == sound_key("نيل") == ("arabic", "nl")
    assert sound_key("Река Нил") == ("cyrillic", "nl")
    assert sound_key("珠江") == ("cjk", "skn")  # a one-character name keeps its suffix
    assert sound_key("Mount Everest") == sound_key("Everest")


def test_spelling_rules() -> None:
    assert sound_key("Mississippi") == ("latin", "mssp") and sound_key("密西西比") == ("cjk", "mssp")
    assert sound_key("Austria") != sound_key("Australia")  # the l of -alia is a second one
    assert sound_key("Nietzsche")[1] == sound_key("Ницше")[1]  # type: ignore[index]
    assert sound_key("ばっは") == sound_key("バッハ")  # hiragana reads as katakana


@pytest.mark.parametrize("text", ["東京", "K2", "Tokyo东京", "", "!!!", "서울"])
def test_no_key_for_what_cannot_be_read(text: str) -> None:
    assert sound_key(text) is None


@pytest.mark.parametrize(("first", "second"), [
    (GAGARIN["en"], GAGARIN["zh"]), (GAGARIN["zh"], GAGARIN["ru"]), (GAGARIN["ja"], GAGARIN["ar"]),
    (BEETHOVEN["de"], BEETHOVEN["zh"]), (BEETHOVEN["ja"], BEETHOVEN["ru"]), (CANBERRA["fr"], CANBERRA["ar"]),
    (TORONTO["en"], TORONTO["ja"]), (MOZART["de"], MOZART["zh"]), (MOZART["ru"], MOZART["ar"])])
def test_one_name_in_two_scripts_sounds_alike(first: str, second: str) -> None:
    assert sounds_alike(sound_key(first), sound_key(second))


@pytest.mark.parametrize(("first", "second"), [
    (BEETHOVEN["en"], MOZART["zh"]), (BEETHOVEN["ru"], MOZART["en"]), ("Ottawa", TORONTO["zh"]),
    ("渥太华", TORONTO["en"]), ("Sydney", CANBERRA["zh"]), ("悉尼", CANBERRA["en"]), (NILE["en"], CONGO["zh"]),
    (NILE["ru"], CONGO["en"])])
def test_different_names_do_not(first: str, second: str) -> None:
    assert not sounds_alike(sound_key(first), sound_key(second))


def test_same_script_and_short_skeletons_never_sound_alike() -> None:
    assert not sounds_alike(sound_key("Gagarin"), sound_key("Gagarine"))  # the embedder's call, not ours
    assert MIN_CONSONANTS == 3
    assert sound_key("The Nile")[1] == sound_key("尼罗河")[1] == "nl"  # type: ignore[index]
    assert not sounds_alike(sound_key("The Nile"), sound_key("尼罗河"))  # n-l is also Neil (尼尔), Niger (尼日尔)
    assert not sounds_alike(sound_key("Ghana"), sound_key("几内亚"))  # k-n: Ghana, Guinea, Guyana, Kenya


def pairwise_encoder(cosine: float, *groups: tuple[str, ...]) -> Encode:
    """Texts within a group have exactly `cosine` with each other; any two other texts are orthogonal."""
    group_of = {text: number for number, group in enumerate(groups) for text in group}
    own: dict[str, int] = {}

    def encode(texts: list[str]) -> np.ndarray:
        rows = np.zeros((len(texts), len(groups) + 64), dtype=np.float32)
        for row, text in enumerate(texts):
            axis = len(groups) + own.setdefault(text, len(own))
            if text in group_of:
                rows[row, group_of[text]], rows[row, axis] = np.sqrt(cosine), np.sqrt(1 - cosine)
            else:
                rows[row, axis] = 1.0
        return rows

    return encode


NEAR = DEFAULT_THRESHOLD - SOUND_MARGIN / 2  # a near miss, inside the margin
FAR = DEFAULT_THRESHOLD - SOUND_MARGIN * 2  # below the floor


def test_a_transliterated_near_miss_clusters_across_scripts() -> None:
    encode = pairwise_encoder(NEAR, ("Gagarin", "加加林", "Гагарин", "غاغارين"))
    answers = {"en": ["Gagarin"], "zh": ["加加林"], "ru": ["Гагарин"], "ar": ["غاغارين"]}
    clustering = cluster_answers(answers, encode)
    assert len(clustering.clusters) == 1 and len(clustering.clusters[0].languages) == 4
    off = cluster_answers(answers, encode, ClusterConfig(sound_margin=0.0))
    assert len(off.clusters) == 4  # cosine alone, as before the check


def test_the_check_never_lifts_different_names_or_pairs_below_the_floor() -> None:
    near = pairwise_encoder(NEAR, ("Beethoven", "莫扎特", "Ottawa", "多伦多"))
    assert len(cluster_answers({"en": ["Beethoven"], "zh": ["莫扎特"]}, near).clusters) == 2
    assert not semantic_match("Ottawa", "多伦多", near)
    far = pairwise_encoder(FAR, ("Gagarin", "加加林"))
    assert not semantic_match("Gagarin", "加加林", far)
    assert semantic_match("Gagarin", "加加林", pairwise_encoder(NEAR, ("Gagarin", "加加林")))
    assert not semantic_match("Gagarin", "加加林", pairwise_encoder(NEAR, ("Gagarin", "加加林")), sound_margin=0.0)


@pytest.mark.parametrize("threshold", [0.7, 0.8, 0.9, 0.55])
def test_a_lifted_pair_reaches_any_threshold_exactly(threshold: float) -> None:
    encode = pairwise_encoder(threshold - SOUND_MARGIN / 2, ("Toronto", "多伦多"))
    assert semantic_match("Toronto", "多伦多", encode, threshold)
    assert len(cluster_answers({"en": ["Toronto"], "zh": ["多伦多"]}, encode,
                               ClusterConfig(threshold=threshold)).clusters) == 1


def test_complete_linkage_still_needs_every_pair() -> None:
    """Two spellings that sound alike with one member of a cluster but not another stay out of it."""
    encode = pairwise_encoder(NEAR, ("Gagarin", "加加林", "Armstrong"))
    clustering = cluster_answers({"en": ["Gagarin", "Armstrong"], "zh": ["加加林"]}, encode,
                                 ClusterConfig(threshold=DEFAULT_THRESHOLD))
    sizes = sorted(len(cluster.members) for cluster in clustering.clusters)
    assert sizes == [1, 2]
    assert {member.text for member in clustering.clusters[0].members} == {"Gagarin", "加加林"}


def test_config_rejects_a_margin_outside_the_unit_interval() -> None:
    with pytest.raises(CalmRagError):
        ClusterConfig(sound_margin=-0.1)
