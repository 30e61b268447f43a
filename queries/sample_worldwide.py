"""Seeded small Wikipedia-like dumps, pageview files and an Open Multilingual WordNet in several
languages, for tests, benchmarks and the worldwide demo.

`LANGUAGES` holds real words of Chinese, Japanese, Thai (written without spaces), German (Latin
script) and Arabic (right to left). Articles are wikitext with localised markup (file and
category links in the wiki's own namespace names, which the siteinfo header declares) around
sentences drawn Zipf-like from the words, with fixed collocations (`Language.collocations`)
that a segmenter keeps as two words, so unigram, bigram and PMI counts are non-trivial. Every
tenth page is a redirect and every seventh a talk page, as in the English sample
(queries.sample_dump, which `language="en"` reuses unchanged).

    write_dump(folder, "ja", pages=300)      -> folder/jawiki-20240501-pages-articles.xml.bz2
    write_pageviews(folder, "ja", titles)    -> folder/pageviews-20240501-000000.gz (ja, ja.m and noise)
    write_omw(folder, ["ja", "th"])          -> folder/omw-1.4/jpn/wn-data-jpn.tab, ...
    write_omw_lmf(folder, "ja")              -> folder/omw-ja.xml (WN-LMF, the wn package's format)
"""

from __future__ import annotations

import gzip
import itertools
import random
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape

from queries import sample_dump

DATE = "20240501"


@dataclass(frozen=True)
class Language:
    code: str
    words: tuple[str, ...]  # content words, most frequent first
    particles: tuple[str, ...]  # function words between them
    collocations: tuple[tuple[str, str], ...]  # always adjacent: high-PMI bigrams
    spaced: bool  # words separated by spaces
    stop: str  # what ends a sentence
    namespaces: dict[int, str]  # -2 media, 1 talk, 6 file, 14 category (as siteinfo declares them)
    thumb: str  # the localised `thumb` image option


LANGUAGES: dict[str, Language] = {
    "zh": Language(
        "zh", tuple("中国 北京 上海 城市 河流 山脉 猫 狗 学校 大学 音乐 电影 历史 文化 科学 技术 经济 政治 艺术 语言 "
                    "人口 面积 地区 国家 政府 公司 铁路 机场 图书馆 医院 公园 汽车 飞机 火车 电脑 天气 森林 海洋".split()),
        ("的", "是", "在", "和", "有", "也"), (("美丽", "花园"), ("古老", "寺庙")), False, "。",
        {-2: "Media", 1: "Talk", 6: "File", 14: "Category"}, "thumb"),
    "ja": Language(
        "ja", tuple("東京 大阪 日本 都市 川 山 猫 犬 学校 大学 音楽 映画 歴史 文化 科学 技術 経済 政治 芸術 言語 "
                    "人口 面積 地域 国 政府 会社 鉄道 空港 図書館 病院 公園 自動車 飛行機 電車 写真 天気 森 海".split()),
        ("の", "は", "が", "を", "に", "で", "と"), (("美しい", "庭園"), ("古い", "寺院")), False, "。",
        {-2: "メディア", 1: "ノート", 6: "ファイル", 14: "Category"}, "サムネイル"),
    "th": Language(
        "th", tuple("ภาษา ประเทศ เมือง แม่น้ำ ภูเขา แมว สุนัข โรงเรียน มหาวิทยาลัย ดนตรี ภาพยนตร์ ประวัติศาสตร์ "
                    "วัฒนธรรม วิทยาศาสตร์ เทคโนโลยี เศรษฐกิจ การเมือง ศิลปะ ประชากร พื้นที่ รัฐบาล บริษัท รถไฟ "
                    "สนามบิน ห้องสมุด โรงพยาบาล สวน รถยนต์ เครื่องบิน ทะเล ป่า อากาศ".split()),
        ("และ", "ของ", "ที่", "เป็น", "มี", "ใน"), (("บ้าน", "ใหม่"), ("วัด", "เก่า")), False, " ",
        {-2: "สื่อ", 1: "พูดคุย", 6: "ไฟล์", 14: "หมวดหมู่"}, "thumb"),
    "de": Language(
        "de", tuple("Stadt Fluss Berg Katze Hund Schule Universität Musik Film Geschichte Kultur Wissenschaft Technik "
                    "Wirtschaft Politik Kunst Sprache Bevölkerung Fläche Region Land Regierung Unternehmen Eisenbahn "
                    "Flughafen Museum Bibliothek Krankenhaus Park Garten Auto Flugzeug Zug Wetter Wald Meer Straße "
                    "Brücke Kirche Schloss".split()),
        ("der", "die", "das", "und", "ist", "in", "mit", "von"), (("schwarzer", "wald"), ("rotes", "kreuz")), True, ".",
        {-2: "Medium", 1: "Diskussion", 6: "Datei", 14: "Kategorie"}, "mini"),
    "ar": Language(
        "ar", tuple("مدينة نهر جبل قطة كلب مدرسة جامعة موسيقى فيلم تاريخ ثقافة علم تقنية اقتصاد سياسة فن لغة سكان "
                    "مساحة منطقة دولة حكومة شركة مطار متحف مكتبة مستشفى حديقة سيارة طائرة قطار طقس غابة بحر".split()),
        ("في", "من", "على", "و", "إلى", "هذا"), (("الأمم", "المتحدة"), ("الشرق", "الأوسط")), True, ".",
        {-2: "ميديا", 1: "نقاش", 6: "ملف", 14: "تصنيف"}, "تصغير"),
}
# ISO 639-3 codes of Open Multilingual WordNet 1.4 for the sample languages.
OMW_CODES = {"zh": "cmn", "ja": "jpn", "th": "tha", "de": "deu", "ar": "arb", "en": "eng"}


def header(code: str) -> bytes:
    """The <mediawiki> opening and <siteinfo> of `code`wiki, with its localised namespaces."""
    names = LANGUAGES[code].namespaces if code in LANGUAGES else {}
    spaces = "".join(f'<namespace key="{k}" case="first-letter">{escape(v)}</namespace>' for k, v in sorted(names.items()))
    return (f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="{code}">\n'
            f"  <siteinfo><sitename>Wikipedia</sitename><dbname>{code}wiki</dbname>"
            f'<namespaces><namespace key="0" case="first-letter" />{spaces}</namespaces></siteinfo>\n').encode("utf-8")


def _sentence(rng: random.Random, lang: Language, cum_weights: list[float]) -> str:
    words = []
    for _ in range(rng.randint(4, 9)):
        words += [rng.choices(lang.words, cum_weights=cum_weights)[0], rng.choice(lang.particles)]
    if rng.random() < 0.5:
        words.insert(rng.randrange(len(words)), " ".join(rng.choice(lang.collocations)) if lang.spaced
                     else "".join(rng.choice(lang.collocations)))
    if rng.random() < 0.2:
        i = rng.randrange(len(words))
        words[i] = f"[[{words[i]}]]"
    text = " ".join(words) if lang.spaced else "".join(words)
    return (text[0].upper() + text[1:] if lang.spaced else text) + lang.stop


def _wikitext(rng: random.Random, lang: Language, title: str, cum_weights: list[float], sentences: int) -> str:
    file_ns, cat_ns = lang.namespaces[6], lang.namespaces[14]
    parts = [f"{{{{Infobox|name={title}|stats={{| class=wikitable\n| a || b\n|}}}}}}",
             f"'''{title}'''{_sentence(rng, lang, cum_weights)}<ref>{{{{cite web|url=http://example.org|title=t}}}}</ref>"]
    for i in range(sentences):
        if i and i % 8 == 0:
            parts.append(f"\n== {rng.choice(lang.words)} ==\n[[{file_ns}:X{i}.jpg|{lang.thumb}|{rng.choice(lang.words)}]]")
        parts.append(_sentence(rng, lang, cum_weights))
    parts.append(f"\n[[{cat_ns}:{lang.words[0]}]]\n[[en:Thing]]")
    return (" " if lang.spaced else "").join(parts)


def sample_pages(code: str, n: int, seed: int = 0, sentences: int | None = None) -> list[bytes]:
    """n <page> elements (UTF-8 XML) of language `code`, the same for the same arguments."""
    if code == "en":
        return sample_dump.sample_pages(n, seed, **({"sentences": sentences} if sentences else {}))
    sentences = sentences or 30
    lang = LANGUAGES[code]
    rng = random.Random(f"{code}:{seed}")
    cum_weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(lang.words))))  # Zipf
    pages = []
    for i in range(n):
        title = page_title(code, i)
        if i % 10 == 9:
            target = lang.words[i % len(lang.words)]
            pages.append(sample_dump.page_xml(i + 1, title, 0, f"#REDIRECT [[{target}]]", redirect=target))
        elif i % 7 == 6:
            pages.append(sample_dump.page_xml(i + 1, f"{lang.namespaces[1]}:{title}", 1,
                                              _wikitext(rng, lang, title, cum_weights, sentences)))
        else:
            pages.append(sample_dump.page_xml(i + 1, title, 0, _wikitext(rng, lang, title, cum_weights, sentences)))
    return pages


def page_title(code: str, i: int) -> str:
    """The title of page i of the sample (a word and its number)."""
    words = LANGUAGES[code].words
    return f"{words[(i * 7) % len(words)]} {i}"


def dump_name(code: str, multistream: bool = False) -> str:
    return f"{code}wiki-{DATE}-pages-articles{'-multistream' if multistream else ''}.xml.bz2"


def write_dump(folder: str | Path, code: str, pages: int = 200, seed: int = 0, multistream: bool = False) -> Path:
    """A `<code>wiki-...-pages-articles.xml.bz2` (multistream with its index if asked) in folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    found = sample_pages(code, pages, seed)
    path = folder / dump_name(code, multistream)
    head = sample_dump.HEADER if code == "en" else header(code)
    if multistream:
        index = folder / f"{code}wiki-{DATE}-pages-articles-multistream-index.txt.bz2"
        sample_dump.write_multistream(found, str(path), str(index), header=head)
    else:
        import bz2

        path.write_bytes(bz2.compress(head + b"".join(found) + sample_dump.FOOTER))
    return path


def write_pageviews(folder: str | Path, code: str, pages: int = 200, seed: int = 0) -> Path:
    """An hourly pageview file: views of the sample's titles on `code` and `code.m` (Zipf-like),
    plus lines the title rule must leave out: another project of the language (`code.d`,
    Wiktionary), another language, a talk page and a percent-encoded title."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"views:{code}:{seed}")
    domain = code.replace("_", "-")
    lines = []
    for i in range(pages):
        if i % 10 == 9 or i % 7 == 6:
            continue
        raw = page_title(code, i).replace(" ", "_")
        views = int(2000 / (1 + i % 50)) + rng.randint(0, 9)
        lines.append(f"{domain} {raw if i % 5 else quote(raw)} {views} 0")
        lines.append(f"{domain}.m {raw} {views // 2 + 1} 0")
        lines.append(f"{domain}.d {raw} 500 0")
    talk = LANGUAGES[code].namespaces[1] if code in LANGUAGES else "Talk"
    lines += [f"{domain} {talk}:{page_title(code, 0).replace(' ', '_')} 900 0", "xx Other_wiki 900 0"]
    path = folder / f"pageviews-{DATE}-000000.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0))
    return path


def omw_pairs(code: str) -> list[tuple[str, str]]:
    """The sample wordnet of a language: (synset, lemma) pairs from its words, some synsets with
    a second lemma written `a+b` (OMW's morpheme mark), one pair listed twice."""
    words = LANGUAGES[code].words[:12] if code in LANGUAGES else ("dog", "cat")
    found = []
    for i, word in enumerate(words):
        synset = f"{2084071 + i * 17:08d}-n"
        found.append((synset, word))
        if i % 3 == 0:
            found.append((synset, f"{word}+{words[(i + 1) % len(words)]}"))
    return [*found, (f"{2084071:08d}-n", words[0])]


def write_omw(folder: str | Path, codes: list[str]) -> Path:
    """NLTK's `omw-1.4` layout (`<iso3>/wn-data-<iso3>.tab`: `offset-pos<TAB>iso3:lemma<TAB>lemma`,
    with definitions as another type) holding `omw_pairs` per language; returns the omw-1.4 folder."""
    root = Path(folder) / "omw-1.4"
    for code in codes:
        iso = OMW_CODES[code]
        lines = [f"# Sample wordnet for {code}\thttps://example.org\tCC-BY-4.0"]
        for synset, lemma in omw_pairs(code):
            lines += [f"{synset}\t{iso}:lemma\t{lemma}", f"{synset}\t{iso}:def\t0\t{lemma} {lemma}"]
        (root / iso).mkdir(parents=True, exist_ok=True)
        (root / iso / f"wn-data-{iso}.tab").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_omw_lmf(folder: str | Path, code: str) -> Path:
    """The same sample wordnet as WN-LMF 1.1 XML (`omw-<code>.xml`, the OMW releases' and the
    `wn` package's format), language tagged with the OMW code (`jpn`, `cmn-Hans`)."""
    iso = OMW_CODES[code]
    tag = "cmn-Hans" if iso == "cmn" else iso
    entries: dict[str, list[str]] = {}
    for synset, lemma in omw_pairs(code):
        if synset not in entries.setdefault(lemma, []):
            entries[lemma].append(synset)
    lex = f"omw-{code}"
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<!DOCTYPE LexicalResource SYSTEM "http://globalwordnet.github.io/schemas/WN-LMF-1.1.dtd">',
           '<LexicalResource xmlns:dc="https://globalwordnet.github.io/schemas/dc/">',
           f'  <Lexicon id="{lex}" label="Sample {code}" language="{tag}" email="x@example.org" '
           'license="https://creativecommons.org/licenses/by/4.0/" version="1.4">']
    for n, (lemma, synsets) in enumerate(entries.items()):
        out.append(f'    <LexicalEntry id="{lex}-e{n}"><Lemma writtenForm="{escape(lemma)}" partOfSpeech="n"/>')
        out += [f'      <Sense id="{lex}-e{n}-{s}" synset="{lex}-{s}"/>' for s in synsets]
        out.append("    </LexicalEntry>")
    out += [f'    <Synset id="{lex}-{s}" ili="" partOfSpeech="n"/>' for s in sorted({s for v in entries.values() for s in v})]
    out += ["  </Lexicon>", "</LexicalResource>"]
    path = Path(folder) / f"omw-{code}.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


__all__ = ["LANGUAGES", "Language", "OMW_CODES", "dump_name", "header", "page_title", "sample_pages", "write_dump",
           "omw_pairs", "write_omw", "write_omw_lmf", "write_pageviews"]
