"""Open Multilingual WordNet lemmas of one language, from a copy the user supplies.

OMW data cannot be fetched at run time (the `wn` package and `nltk.download` need the network),
so `--omw` names a copy: NLTK's `omw-1.4` folder (`<iso3>/wn-data-<iso3>.tab`), one language's
folder of it, or one `.tab` file. A tab line is `offset-pos<TAB>iso3:lemma<TAB>lemma` (other
types, `iso3:def`, `iso3:exe`, are definitions and examples and are skipped; `#` lines are the
header). As MetaCLIP 2's build_multilingual_wordnet.py takes them: every lemma of every
synset, `_` -> space; stat = the synsets the lemma names. `+` (OMW's morpheme mark in some
languages) is removed in unspaced scripts, as MetaCLIP 2 does everywhere, and is a space in
the others (MetaCLIP's "a+b" -> "ab" glues two words of a spaced language together). MetaCLIP 2 pairs 30 OMW languages with Wikipedia codes; its table maps `als`
(OMW's Albanian) to the Alemannic Wikipedia, which wit corrects to `sq`.

Accounting (stage `wordnet`, as for English WordNet): every lemma line in; kept the first time
its entry is seen, else dropped as `duplicate`, `malformed` or `empty` (nothing left after
textnorm).
"""

from __future__ import annotations

import io

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


def tab_file(path: str, language: str) -> str | None:
    """The .tab file of `language` under `path` (an omw-1.4 folder, a language folder or the
    file itself; local or a URL), or None when the copy has no data for it."""
    iso = WIKI_TO_OMW.get(language)
    if not fsio.isdir(path):
        return path if path.endswith(".tab") and fsio.exists(path) else None
    if iso is None:
        return None
    for candidate in (fsio.join(path, iso, f"wn-data-{iso}.tab"), fsio.join(path, f"wn-data-{iso}.tab")):
        if fsio.exists(candidate):
            return candidate
    return None


def parse_line(line: str, iso: str | None, plus: str = "") -> tuple[str, str] | None | str:
    """(synset, lemma) of a lemma line; '' for another type of line (definition, example,
    another language's lemma); None when it is not a tab line at all. `plus` replaces OMW's
    `+` morpheme mark: nothing in unspaced scripts, a space elsewhere."""
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) < 3 or "-" not in fields[0] or ":" not in fields[1]:
        return None
    lang, _, kind = fields[1].partition(":")
    if kind != "lemma" or (iso is not None and lang != iso):
        return ""
    return fields[0], fields[2].replace("_", " ").replace("+", plus).strip()


def read_entries(path: str, language: str, tally: Tally) -> dict[str, int]:
    """lemma -> number of synsets it names, sorted; {} with no data for the language."""
    found = tab_file(path, language)
    if found is None:
        return {}
    iso = WIKI_TO_OMW.get(language)
    synsets: dict[str, set[str]] = {}
    with fsio.open(found, "rb") as raw:
        for line in io.TextIOWrapper(raw, encoding="utf-8", errors="replace"):
            if line.startswith("#") or not line.strip():
                continue
            parsed = parse_line(line, iso, "" if segment.is_unspaced(language) else " ")
            if parsed == "":
                continue
            tally.inc(STAGE, "in")
            if parsed is None:
                tally.dropped(STAGE, "malformed")
                continue
            synset, lemma = parsed
            if not textnorm.normalize(lemma):
                tally.dropped(STAGE, "empty")
            elif lemma in synsets:
                synsets[lemma].add(synset)
                tally.dropped(STAGE, "duplicate")
            else:
                synsets[lemma] = {synset}
                tally.kept(STAGE)
    return {lemma: len(s) for lemma, s in sorted(synsets.items())}


__all__ = ["STAGE", "WIKI_TO_OMW", "parse_line", "read_entries", "tab_file"]
