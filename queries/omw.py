"""Open Multilingual WordNet lemmas of one language, from a copy the user supplies.

OMW data cannot be fetched at run time (the `wn` package and `nltk.download` need the network),
so `--omw` names a copy, in one of three forms:

- NLTK's `omw-1.4` folder (`<iso3>/wn-data-<iso3>.tab`), one language's folder of it, or one
  `.tab` file. A line is `offset-pos<TAB>iso3:lemma<TAB>lemma`; other types (`iso3:def`,
  `iso3:exe`) are definitions and examples, `#` lines the header.
- WN-LMF XML (`omw-ja.xml`, plain, .gz or .xz; the OMW releases' format): every
  <LexicalEntry> of a <Lexicon> whose language is the wanted one, its <Lemma writtenForm> and
  the synsets of its <Sense>s. A folder of such files is read whole.
- The `wn` package's data directory (the folder holding `wn.db`), read through `wn` (which
  must then be installed); its lexicons of the wanted language.

A lexicon's language matches when its BCP 47 tag's first subtag is the Wikipedia code or the
OMW (ISO 639-3) code (`ja`, `jpn`; `cmn-Hans` for zh). As MetaCLIP 2's
build_multilingual_wordnet.py takes them: every lemma of every synset, `_` -> space; stat = the
synsets the lemma names. `+` (OMW's morpheme mark in some languages) is removed in unspaced
scripts, as MetaCLIP 2 does everywhere, and is a space in the others (MetaCLIP's "a+b" -> "ab"
glues two words of a spaced language). MetaCLIP 2 pairs 30 OMW languages with Wikipedia codes;
its table maps `als` (OMW's Albanian) to the Alemannic Wikipedia, which wit corrects to `sq`.

Accounting (stage `wordnet`, as for English WordNet): every (synset, lemma) pair in; kept the
first time its lemma is seen, else dropped as `duplicate`, `malformed` or `empty` (nothing left
after textnorm).
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from queries import segment
from wit_pipeline.core import fsio
from wit_pipeline.core.stats import Tally
from wit_pipeline.text import textnorm

STAGE = "wordnet"
# Wikipedia code -> OMW 1.4 (ISO 639-3) code: MetaCLIP 2's wordnet_to_wiki, reversed, `als` corrected.
WIKI_TO_OMW: dict[str, str] = {
    "fi": "fin", "he": "heb", "sl": "slv", "it": "ita", "nn": "nno", "no": "nob", "sq": "als", "pl": "pol",
    "hr": "hrv", "nl": "nld", "ro": "ron", "ar": "arb", "is": "isl", "sv": "swe", "pt": "por", "zh": "cmn",
    "ja": "jpn", "da": "dan", "sk": "slk", "lt": "lit", "bg": "bul", "eu": "eus", "ca": "cat", "gl": "glg",
    "es": "spa", "el": "ell", "ms": "zsm", "id": "ind", "fr": "fra", "th": "tha",
}
LMF_SUFFIXES = (".xml", ".xml.gz", ".xml.xz")
WN_DB = "wn.db"

Pair = tuple[str, str] | None  # (synset, lemma as written), or None for a malformed record


def _tags(language: str) -> set[str]:
    return {language, WIKI_TO_OMW.get(language, language)}


def _speaks(tag: str | None, language: str) -> bool:
    return bool(tag) and tag.replace("_", "-").split("-")[0].lower() in _tags(language)


def tab_file(path: str, language: str) -> str | None:
    """The .tab file of `language` under `path` (an omw-1.4 folder, a language folder or the
    file itself; local or a URL), or None when the copy has none for it."""
    iso = WIKI_TO_OMW.get(language)
    if not fsio.isdir(path):
        return path if path.endswith(".tab") and fsio.exists(path) else None
    if iso is None:
        return None
    for candidate in (fsio.join(path, iso, f"wn-data-{iso}.tab"), fsio.join(path, f"wn-data-{iso}.tab")):
        if fsio.exists(candidate):
            return candidate
    return None


def lmf_files(path: str) -> list[str]:
    """WN-LMF files at `path` (the file, or every one in the folder)."""
    if fsio.isdir(path):
        return sorted(fsio.join(path, n) for n in fsio.names(path) if n.endswith(LMF_SUFFIXES))
    return [path] if path.endswith(LMF_SUFFIXES) and fsio.exists(path) else []


def is_wn_data(path: str) -> bool:
    return fsio.isdir(path) and fsio.exists(fsio.join(path, WN_DB))


def parse_line(line: str, iso: str | None) -> Pair | str:
    """(synset, lemma) of a tab lemma line; '' for another type of line (definition, example,
    another language's lemma); None when it is not a tab line at all."""
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) < 3 or "-" not in fields[0] or ":" not in fields[1]:
        return None
    lang, _, kind = fields[1].partition(":")
    if kind != "lemma" or (iso is not None and lang != iso):
        return ""
    return fields[0], fields[2]


def _tab_pairs(url: str, language: str) -> Iterator[Pair]:
    iso = WIKI_TO_OMW.get(language)
    with fsio.open(url, "rb") as raw:
        for line in io.TextIOWrapper(raw, encoding="utf-8", errors="replace"):
            if line.startswith("#") or not line.strip():
                continue
            parsed = parse_line(line, iso)
            if parsed != "":
                yield parsed  # type: ignore[misc]


def _lmf_pairs(url: str, language: str) -> Iterator[Pair]:
    import fsspec

    wanted = False
    with fsspec.open(url, "rb", compression="infer") as f:
        for event, elem in ET.iterparse(f, events=("start", "end")):
            tag = elem.tag.rsplit("}", 1)[-1]
            if event == "start":
                if tag == "Lexicon":
                    wanted = _speaks(elem.get("language"), language)
                continue
            if tag == "LexicalEntry":
                if wanted:
                    lemma = next((c.get("writtenForm") for c in elem if c.tag.rsplit("}", 1)[-1] == "Lemma"), None)
                    senses = [c.get("synset") for c in elem if c.tag.rsplit("}", 1)[-1] == "Sense"]
                    if not lemma or not senses or not all(senses):
                        yield None
                    else:
                        yield from ((synset, lemma) for synset in senses)
                elem.clear()
            elif tag in ("Synset", "SyntacticBehaviour"):
                elem.clear()


def _wn() -> object:
    try:
        import wn
    except ImportError:
        raise ValueError("--omw names a wn data directory: reading it needs the wn package (pip install wn==1.1.1)") from None
    return wn


def _wn_lexicons(path: str, language: str) -> list[str]:
    """Specifiers (`id:version`) of the language's lexicons in a wn data directory."""
    wn = _wn()
    before = wn.config.data_directory
    wn.config.data_directory = path
    try:
        return [lex.specifier() for lex in wn.lexicons() if _speaks(lex.language, language)]
    finally:
        wn.config.data_directory = before


def _wn_pairs(path: str, lexicons: list[str]) -> Iterator[Pair]:
    wn = _wn()
    before = wn.config.data_directory
    wn.config.data_directory = path
    try:
        for specifier in lexicons:
            for word in wn.Wordnet(lexicon=specifier).words():
                for synset in word.synsets():
                    yield synset.id, word.lemma()
    finally:
        wn.config.data_directory = before


def pairs(path: str, language: str) -> Iterator[Pair] | None:
    """(synset, lemma) pairs of `language` in the copy at `path`, or None when it has none
    (see the module docstring for the forms it may take)."""
    if is_wn_data(path):
        lexicons = _wn_lexicons(path, language)
        return _wn_pairs(path, lexicons) if lexicons else None
    tab = tab_file(path, language)
    if tab is not None:
        return _tab_pairs(tab, language)
    files = lmf_files(path)
    if files and any(_lmf_speaks(url, language) for url in files):
        return (pair for url in files for pair in _lmf_pairs(url, language))
    return None


def _lmf_speaks(url: str, language: str) -> bool:
    """Whether an LMF file holds a lexicon of the language (reads up to its first lexicon tags)."""
    import fsspec

    with fsspec.open(url, "rb", compression="infer") as f:
        for _, elem in ET.iterparse(f, events=("start",)):
            if elem.tag.rsplit("}", 1)[-1] == "Lexicon" and _speaks(elem.get("language"), language):
                return True
            if elem.tag.rsplit("}", 1)[-1] == "LexicalEntry":
                return False  # one lexicon per OMW file: its entries have begun
    return False


def has_language(path: str, language: str) -> bool:
    """Whether the copy at `path` holds data for the language (checked before a build starts;
    ValueError when it is a wn data directory and wn is not installed)."""
    return pairs(path, language) is not None


def read_entries(path: str, language: str, tally: Tally) -> dict[str, int]:
    """lemma -> number of synsets it names, sorted; {} with no data for the language."""
    found = pairs(path, language)
    if found is None:
        return {}
    plus = "" if segment.is_unspaced(language) else " "
    synsets: dict[str, set[str]] = {}
    for pair in found:
        tally.inc(STAGE, "in")
        if pair is None:
            tally.dropped(STAGE, "malformed")
            continue
        synset, lemma = pair[0], pair[1].replace("_", " ").replace("+", plus).strip()
        if not textnorm.normalize(lemma):
            tally.dropped(STAGE, "empty")
        elif lemma in synsets:
            synsets[lemma].add(synset)
            tally.dropped(STAGE, "duplicate")
        else:
            synsets[lemma] = {synset}
            tally.kept(STAGE)
    return {lemma: len(s) for lemma, s in sorted(synsets.items())}


__all__ = ["STAGE", "WIKI_TO_OMW", "has_language", "is_wn_data", "lmf_files", "pairs", "parse_line", "read_entries",
           "tab_file"]
