"""Concept captions and Wikipedia-like dumps in several languages and scripts (the worldwide demo).

Languages: Chinese and Japanese (written without spaces: their words match inside a run of
text, MetaCLIP 2's substring rule), Arabic (right to left, spaced) and German (Latin script),
beside English. `caption` describes a concept (colour x shape) in a language so that language
ID names that language; `write_dump` writes a small `<code>wiki` XML dump whose articles use the
same words, so `wit build-queries --language CODE` finds the colour and shape words among the
language's frequent words, as it would find them in a real Wikipedia: MetaCLIP 2's recipe keeps
a language's top 10% of words by count, so each dump also holds a long tail of rare words
(made-up words in the language's script), as every Wikipedia does.
"""

from __future__ import annotations

import bz2
import random
from pathlib import Path
from xml.sax.saxutils import escape

from wit_pipeline.synthetic.concepts import COLOURS, SHAPES, Concept, all_concepts

LANGUAGES = ("zh", "ja", "ar", "de")  # beside English

# The word for each colour and shape, as a list for the language would hold it.
WORDS: dict[str, dict[str, str]] = {
    "zh": {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "orange": "橙色", "purple": "紫色",
           "black": "黑色", "white": "白色", "circle": "圆形", "square": "正方形", "triangle": "三角形",
           "star": "星形", "cross": "十字", "ring": "圆环"},
    "ja": {"red": "赤", "green": "緑", "blue": "青", "yellow": "黄色", "orange": "オレンジ", "purple": "紫",
           "black": "黒", "white": "白", "circle": "丸", "square": "四角", "triangle": "三角形",
           "star": "星", "cross": "十字", "ring": "リング"},
    "ar": {"red": "أحمر", "green": "أخضر", "blue": "أزرق", "yellow": "أصفر", "orange": "برتقالي", "purple": "بنفسجي",
           "black": "أسود", "white": "أبيض", "circle": "دائرة", "square": "مربع", "triangle": "مثلث",
           "star": "نجمة", "cross": "صليب", "ring": "حلقة"},
    "de": {"red": "Rot", "green": "Grün", "blue": "Blau", "yellow": "Gelb", "orange": "Orange", "purple": "Lila",
           "black": "Schwarz", "white": "Weiß", "circle": "Kreis", "square": "Quadrat", "triangle": "Dreieck",
           "star": "Stern", "cross": "Kreuz", "ring": "Ring"},
}
_AR_FEMININE = {"circle", "star", "ring"}  # "its colour": لونها, else لونه
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "zh": ("这是一张{colour}的{shape}的照片，背景是灰色的。", "图片上有一个{colour}的{shape}。",
           "我们在工作室里拍了这个{colour}{shape}。"),
    "ja": ("灰色の背景に{colour}い{shape}が写っています。", "これは{colour}の{shape}の写真です。",
           "私たちのアトリエで撮った{colour}色の{shape}です。"),
    "ar": ("صورة {shape} {pron} {colour} على خلفية رمادية", "هذه صورة {shape} {pron} {colour} التقطناها في المرسم",
           "نرى في الصورة {shape} {pron} {colour}"),
    "de": ("Das Foto zeigt {shape} in {colour} vor einem grauen Hintergrund.",
           "Auf diesem Bild sieht man {shape} in der Farbe {colour}.",
           "Unser Foto aus der Werkstatt zeigt {shape} in {colour} auf einem Tisch."),
}
_DE_ARTICLES = {"circle": "einen", "square": "ein", "triangle": "ein", "star": "einen", "cross": "ein", "ring": "einen"}
# Japanese adjectives in -i take the stem + い; the others are nouns used with の or 色の.
_JA_I_ADJECTIVES = {"red", "blue", "black", "white"}
_FILLER: dict[str, tuple[str, ...]] = {
    "zh": ("这个", "城市", "历史", "人们", "国家", "世界", "文化", "重要", "地区", "发展"),
    "ja": ("この", "都市", "歴史", "人々", "国", "世界", "文化", "重要な", "地域", "発展"),
    "ar": ("هذه", "المدينة", "تاريخ", "الناس", "بلد", "العالم", "ثقافة", "مهم", "منطقة", "تطور"),
    "de": ("diese", "Stadt", "Geschichte", "Menschen", "Land", "Welt", "Kultur", "wichtig", "Region", "Entwicklung"),
}
_SEP = {"zh": "", "ja": "", "ar": " ", "de": " "}
# (first, last code point, letters per word) of the made-up rare words: CJK ideographs,
# katakana, Arabic letters, Latin letters
_RARE = {"zh": (0x4E00, 0x9FA5, (2, 2)), "ja": (0x30A2, 0x30F3, (3, 5)), "ar": (0x0628, 0x064A, (3, 6)),
         "de": (0x61, 0x7A, (5, 9))}
RARE_WORDS = 1500  # per dump: each occurs about once or twice
_END = {"zh": "。", "ja": "。", "ar": ".", "de": "."}


def caption(concept: Concept, language: str, rng: random.Random) -> str:
    """A sentence in `language` describing `concept` (its colour and shape words as WORDS has them)."""
    words = WORDS[language]
    template = rng.choice(_TEMPLATES[language])
    colour, shape = words[concept.colour], words[concept.shape]
    if language == "ja":
        if "{colour}い" in template and concept.colour not in _JA_I_ADJECTIVES:
            template = template.replace("{colour}い", "{colour}の")
        elif "{colour}色" in template and colour.endswith("色"):
            template = template.replace("{colour}色", "{colour}")
    if language == "de":
        shape = f"{_DE_ARTICLES[concept.shape]} {shape}"
    pron = "لونها" if concept.shape in _AR_FEMININE else "لونه"
    return template.format(colour=colour, shape=shape, pron=pron)


def concept_rows(language: str) -> list[tuple[str, str, None]]:
    """Allowlist rows of a language's colour and shape words (tests and benchmarks; the demo
    builds its lists with `wit build-queries --language` from `write_dump`'s dumps)."""
    return [(word, "unigram", None) for word in WORDS[language].values()]


def rare_words(language: str, n: int = RARE_WORDS, seed: int = 0) -> list[str]:
    """n made-up words in the language's script (the dump's long tail)."""
    rng = random.Random(f"wit-worldwide-rare|{language}|{seed}")
    lo, hi, (shortest, longest) = _RARE[language]
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(shortest, longest))))
    return sorted(words)


def article(language: str, rng: random.Random, rare: list[str], sentences: int = 12) -> str:
    """Wikitext-free article text: concept sentences between sentences of common filler words
    and a sentence of rare words."""
    concepts = all_concepts()
    parts = []
    for _ in range(sentences):
        if rng.random() < 0.6:
            parts.append(caption(rng.choice(concepts), language, rng))
        else:
            words = rng.choices(_FILLER[language], k=rng.randint(4, 9))
            parts.append(_SEP[language].join(words) + _END[language])
    parts.append(" ".join(rng.choices(rare, k=40)) + _END[language])  # spaced: no rare word runs into another
    return " ".join(parts)


def write_dump(path: str | Path, language: str, pages: int = 60, seed: int = 0) -> Path:
    """A `<language>wiki` pages-articles XML dump (bz2) of `pages` articles; returns its path."""
    rng = random.Random(f"wit-worldwide-dump|{language}|{seed}")
    rare = rare_words(language, seed=seed)
    out = [f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="{language}">\n'
           f"  <siteinfo><sitename>Wikipedia</sitename><dbname>{language}wiki</dbname></siteinfo>\n"]
    for i in range(pages):
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        title = f"{WORDS[language][colour]}{_SEP[language] or ''}{WORDS[language][shape]} {i}"
        out.append(f"  <page><title>{escape(title)}</title><ns>0</ns><id>{i + 1}</id><revision><id>{i + 1000}</id>"
                   f'<text xml:space="preserve">{escape(article(language, rng, rare))}</text></revision></page>\n')
    out.append("</mediawiki>\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bz2.compress("".join(out).encode("utf-8"), 9))
    return path
