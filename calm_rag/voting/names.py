"""Whether two short answers in different scripts are one name transliterated: a consonant skeleton.

The embedder knows that "Gagarin" and "加加林" mean the same, but short spans are compressed: a name
written in another script often lands below the cosine threshold ("Gagarin" / "加加林" 0.77, "Canberra" /
"堪培拉" 0.76) while related-but-different names land above it ("Tokyo" / "Kyoto" 0.81). A transliteration
keeps the consonants, though: both spans are read aloud into consonant classes (`sound_key`), and two spans
in different scripts whose skeletons match sound alike (`sounds_alike`). `calm_rag.voting.matching` still
asks the embedder for a floor below its threshold, so this only promotes a near miss and never splits
what the cosine merged.

Reading aloud: Latin by spelling rules (th = t, ph = f, c before e/i = s, ...); Cyrillic, Arabic and
kana letter by letter; Chinese characters by their Mandarin reading, from a table of the characters that
transliterate foreign names (any other character, or a kanji name such as 東京: no key). Consonants fall
into classes every script tells apart (b/p/f/v, t/d, k/g/q, s/z/sh/ch/ts, l/r, m, n); the vowels, w, y,
Latin j and the h sounds (h, х, ه, ح, خ, ع) drop; an r before a consonant or at the end drops (Chinese and
non-rhotic English don't say it: "Mozart" = 莫扎特 = m-s-t); a consonant written twice in a row counts once.
A leading article ("The Nile", "der Nil", "النيل") and a generic geographic word ("River", "Fluss", "река",
"河", "川") drop first, so "The Nile River", "尼罗河", "ナイル川", "Нил" and "النيل" all read n-l.

Only skeletons of `MIN_CONSONANTS` or more count: two consonants are too common to identify a name.
"Nile" reads n-l like "Neil" (尼尔, ニール) and Niger's 尼日尔, and Ghana, Guinea, Guyana and Kenya all read
k-n; on such pairs the embedder is no help either ("Nile" / "尼尔" 0.80, "Nile" / "尼罗河" 0.79).
"""

from __future__ import annotations

import re
import unicodedata

ARTICLES = frozenset("the a an der die das ein eine le la les l un une il lo i gli uno una el los las o os as um uma"
                     .split())
"""Leading articles that `answer_key` and `sound_key` drop ("the nile" = "nile")."""

_GENERIC = frozenset("river rivers fluss fleuve riviere rio fiume река lake lac lago озеро mount mountain mont monte "
                     "berg гора ocean ozean oceano океан نهر بحيرة جبل محيط".split())
"""Generic geographic words in a name ("Nile River", "Mont Blanc"): said in one language, not another."""
_GENERIC_SUFFIX = "河江川湖山峰"
"""The same in Chinese and Japanese, as the last character of a name ("尼罗河", "ナイル川")."""

_PINYIN = """
a阿 ai艾埃爱 an安 ang昂 ao奥澳敖 ba巴拔芭 ban班 bang邦 bao保宝堡鲍 bei贝北倍 ben本奔 bi比毕彼碧必庇 bian边
bin宾滨彬 bo波博伯柏勃玻泊 bu布步卜不 cai采蔡 ci茨慈 cong聪 cui崔 cha查察 chai柴 chang昌 che彻车 chen陈
cheng成城程 chi赤池 chong崇 chu楚初 chuan川 chun春 da达大 dai戴代黛 dan丹旦 dang当 dao道 de德得 deng登邓
di迪蒂狄地第帝底 dian典殿 ding丁定 dong东栋 du杜督度 dun敦顿盾 duo多朵铎 e厄俄额鄂 en恩 er尔耳二儿 fa法发
fan凡范梵 fang方芳 fei菲费斐非 fen芬汾 feng丰冯峰 fo佛 fu富福弗夫傅符伏 ga噶尕 gai盖 gan甘干 gang冈刚岗港
ge格戈哥歌葛 gen根 geng耿 gong贡 gu古谷固 gua瓜 guan关 gui圭贵桂 guo果郭国 ha哈 hai海亥 han汉罕翰韩 hang杭
hao豪浩 he赫合何荷和河 hei黑 heng亨恒 hong洪宏红 hu胡呼虎湖 hua华 huai怀 huang黄皇 hui惠辉 huo霍
ji吉基济纪季冀及 jia加佳嘉贾迦 jian坚简建剑 jiang江姜 jie杰捷洁 jin金锦晋津 jing京井 jiu久九 ju居菊 jun君俊
ka卡喀 kai凯开恺 kan坎堪 kang康 kao考 ke克科柯可珂 ken肯 kong孔 ku库酷 kui奎 kun昆坤 kuo阔 la拉腊喇
lai莱来赖 lan兰蓝岚 lang朗郎浪 lao劳老 le勒乐 lei雷蕾累 leng冷棱 li利里力立丽黎李理莉礼 lian连莲联 liang良梁
liao辽 lie列烈 lin林琳临 ling灵凌岭铃玲 liu留柳刘流 long隆龙 lou娄楼 lu卢鲁路陆露禄 luo罗洛骆 lun伦仑轮 lü吕律
ma马玛麻 mai迈麦 man曼满蔓 mang芒 mao毛茂 mei梅美玫 men门 meng蒙孟梦 mi米密弥 mian缅 miao苗 min敏民
ming明名 mo莫摩墨默漠 mou牟 mu穆姆木慕 na纳娜那拿 nai奈乃耐 nan南楠 nao瑙 nei内 ni尼妮倪 nie涅聂 ning宁
niu纽牛 nu努奴 nuo诺 ou欧鸥 pa帕 pai派 pan潘 pang庞 pei佩培裴 peng彭蓬鹏 pi皮匹 pin品 ping平 po珀坡泼
pu普浦蒲朴 qi奇齐契琪其 qia恰 qian千乾 qiao乔桥 qie切 qin钦秦琴 qing庆清 qiong琼 qiu丘秋 qu曲屈 ran冉 re热
ri日 rong荣 ru如茹儒 rui瑞睿 ruo若 sa萨撒 sai赛塞 san三 sang桑 se瑟色 sen森 sha沙莎 shan珊杉山 shang尚
shao绍少 she舍 shen申深 sheng圣 shi施史士什诗石 shou寿 shu舒 shui水 si斯思丝司 song松宋 su苏素 sui绥隋
sun孙 suo索 ta塔他 tai泰太台 tan坦谭 tang唐汤塘 tao陶桃 te特 teng滕腾 ti提 tian天田 tong通桐 tu图土突
tuo托陀拓 wa瓦娃哇 wai外 wan万湾宛 wang旺王 wei威维韦魏伟薇 wen文温 wo沃渥 wu乌武吴伍 xi西希悉锡席喜茜
xia夏 xian先仙 xiang香 xiao肖萧 xie谢 xin辛欣新 xiu休修 xu徐许旭 xun逊讯 ya亚雅娅 yan延燕彦 yang扬杨洋阳
yao尧耀 ye耶叶 yi伊依易意 yin因音印殷茵 ying英莹 yong永 you尤优 yu于宇玉余 yuan元园 yue约越 yun云 zan赞
ze泽 zha扎札乍 zhan詹湛 zhe哲 zhen珍真 zheng正郑 zhi芝志治 zhong中 zhou周洲 zhu朱珠 zi兹孜 zong宗 zu祖 zuo佐
"""
"""Mandarin readings of the characters that transliterate foreign names (and the generic suffixes)."""

_PINYIN_INITIALS = (("zh", "s"), ("ch", "s"), ("sh", "s"), ("b", "p"), ("p", "p"), ("f", "p"), ("d", "t"),
                    ("t", "t"), ("g", "k"), ("k", "k"), ("j", "k"), ("q", "k"), ("x", "s"), ("z", "s"), ("c", "s"),
                    ("s", "s"), ("l", "l"), ("r", "l"), ("m", "m"), ("n", "n"), ("h", ""), ("y", ""), ("w", ""))


def _syllable(pinyin: str) -> str:
    """A pinyin syllable as consonant letters with 'a' for its vowel: "lun" -> "lan", "er" -> "al"."""
    if pinyin == "er":
        return "al"
    initial = next(((spelled, sound) for spelled, sound in _PINYIN_INITIALS if pinyin.startswith(spelled)), ("", ""))
    return initial[1] + "a" + ("n" if pinyin.endswith(("n", "ng")) else "")


_HAN = {char: _syllable(group[:len(group) - len(group.lstrip("abcdefghijklmnopqrstuvwxyzü"))])
        for group in _PINYIN.split() for char in group.lstrip("abcdefghijklmnopqrstuvwxyzü")}

_KANA_ROWS = {"": "アイウエオァィゥェォヤユヨャュョワヲヰヱハヒヘホ", "k": "カキクケコガギグゲゴ", "s": "サシスセソザジズゼゾチツヂヅ",
              "t": "タテトダデド", "n": "ナニヌネノ", "p": "フバビブベボパピプペポヴ", "m": "マミムメモ", "l": "ラリルレロ"}
_KANA = {kana: sound + "a" for sound, row in _KANA_ROWS.items() for kana in row} | {"ン": "n", "ッ": "", "ー": ""}

_CYRILLIC = {**dict.fromkeys("аеёиоуыэюяйіїє", "a"), **dict.fromkeys("бпфв", "p"), **dict.fromkeys("дт", "t"),
             **dict.fromkeys("гк", "k"), **dict.fromkeys("жзсцчшщ", "s"), "л": "l", "р": "r", "м": "m", "н": "n",
             "х": "", "ь": "", "ъ": ""}
_ARABIC = {**dict.fromkeys("اأإآٱويىةءئؤ", "a"), **dict.fromkeys("عهحخ", ""), **dict.fromkeys("بفپڤ", "p"),
           **dict.fromkeys("تدطضثذ", "t"), **dict.fromkeys("كقغگج", "k"), **dict.fromkeys("سزشصظ", "s"),
           "ل": "l", "ر": "r", "م": "m", "ن": "n"}

_LATIN_RULES = [(re.compile(pattern), sound) for pattern, sound in [
    (r"ng$", "n"), (r"sch|sh|ch(?![rl])|tz|ts|z", "s"), (r"ch|ck|qu|gh|q|g|k", "k"), (r"c(?=[eiy])", "s"),
    (r"c", "k"), (r"x", "ks"), (r"th|d|ð|þ|đ", "t"), (r"ph|[bfv]", "p"), (r"ł", "l"), (r"[aeiouyæøœı]", "a"),
    (r"[hwj]", "")]]
"""Spelling to sound, in order; each rule writes capitals, so a later rule never rereads its output."""


def _latin(word: str) -> str | None:
    for pattern, sound in _LATIN_RULES:
        word = pattern.sub(sound.upper(), word)
    word = word.lower()
    return word if set(word) <= set("ptkslrmna") else None


def _script(char: str) -> str | None:
    name = unicodedata.name(char, "")
    if name.startswith(("HIRAGANA", "KATAKANA")):
        return "kana"
    for script in ("LATIN", "CYRILLIC", "ARABIC", "CJK"):
        if name.startswith(script):
            return script.lower()
    return None


def _words(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())
    folded = unicodedata.normalize("NFC", "".join(ch for ch in decomposed  # accents go, kana voicing marks stay
                                                  if unicodedata.category(ch) != "Mn" or ch in "\u3099\u309a"))
    words = [word for word in re.split(r"[^\w]+|_", folded) if word]
    if len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    words = [word[2:] if word.startswith("ال") and len(word) > 3 else word for word in words]
    kept = [word for word in words if word not in _GENERIC] or words
    if len(kept) == 1 and len(kept[0]) > 2 and kept[0][-1] in _GENERIC_SUFFIX:
        kept = [kept[0][:-1]]
    return kept


def _read(word: str, script: str) -> str | None:
    if script == "latin":
        return _latin(word)
    table = {"cyrillic": _CYRILLIC, "arabic": _ARABIC, "cjk": _HAN}.get(script)
    if script == "arabic":
        word = word.replace("تس", "س")  # ts, as in موتسارت (Mozart)
    if script == "kana":
        table = _KANA
        word = "".join(chr(ord(ch) + 0x60) if "\u3041" <= ch <= "\u3096" else ch for ch in word)
    if table is None or any(ch not in table for ch in word):
        return None
    return "".join(table[ch] for ch in word)


SoundKey = tuple[str, str]
"""(script, consonant skeleton): ("latin", "kkln") for "Gagarin"."""

MIN_CONSONANTS = 3
"""Skeletons shorter than this never make two spans sound alike (see the module docstring)."""


def sound_key(text: str) -> SoundKey | None:
    """(script, consonant skeleton) of a short name, or None when it mixes scripts, has digits or a
    character this module cannot read aloud. "The Nile River" -> ("latin", "nl"); "尼罗河" -> ("cjk", "nl")."""
    words = _words(text)
    scripts = {_script(ch) for word in words for ch in word}
    if not words or len(scripts) != 1 or None in scripts:
        return None
    script = scripts.pop()
    read = [_read(word, script) for word in words]
    if any(sounds is None for sounds in read):
        return None
    sounds = re.sub(r"r(?!a)", "", "".join(read)).replace("r", "l")  # type: ignore[arg-type]
    return script, re.sub(r"([^a])\1+", r"\1", sounds).replace("a", "")


def sounds_alike(one: SoundKey | None, other: SoundKey | None) -> bool:
    """Whether two keys are in different scripts and share a skeleton of at least `MIN_CONSONANTS`."""
    return (one is not None and other is not None and one[0] != other[0] and one[1] == other[1]
            and len(one[1]) >= MIN_CONSONANTS)
