"""WordNet 3.0 lemmas, read straight from the database's index files (no nltk, no network).

Debian's `wordnet-base` installs the files at /usr/share/wordnet. Each of `index.noun`,
`index.verb`, `index.adj`, `index.adv` has a licence header (lines starting with two
spaces) and then one line per lemma: `lemma pos synset_cnt p_cnt [ptr...] sense_cnt
tagsense_cnt synset_offset...`, with `_` for spaces ("ice_cream"). Every lemma of every
synset is in some index file, so the union of their first fields is "all WordNet synsets'
lemmas"; a lemma's stat is the number of synsets it names, summed over parts of speech.

Accounting (stage `wordnet`): every lemma line is kept (first time the lemma is seen) or
dropped as `duplicate` (the same lemma under another part of speech), `malformed` or
`empty` (nothing left after textnorm).
"""

from __future__ import annotations

import fsspec

from wit_pipeline.core import fsio
from wit_pipeline.core.stats import Tally
from wit_pipeline.text import textnorm

STAGE = "wordnet"
INDEX_FILES = ("index.noun", "index.verb", "index.adj", "index.adv")
DEFAULT_DIR = "/usr/share/wordnet"


def parse_index_line(line: str) -> tuple[str, int] | None:
    """(lemma with spaces, synset count) of an index line; None if it is not one."""
    fields = line.split()
    if len(fields) < 4 or not fields[2].isdigit():
        return None
    return fields[0].replace("_", " "), int(fields[2])


def read_lemmas(directory: str, tally: Tally) -> dict[str, int]:
    """lemma -> synsets over all parts of speech, in sorted order; a missing file is an error."""
    synsets: dict[str, int] = {}
    for name in INDEX_FILES:
        url = fsio.join(directory, name)
        try:
            f = fsspec.open(url, "rt", encoding="utf-8", errors="replace").open()
        except FileNotFoundError:
            raise FileNotFoundError(f"WordNet index file {url} not found (a WordNet 3.0 dict directory "
                                    f"has {', '.join(INDEX_FILES)}; Debian: apt-get install wordnet-base)") from None
        with f:
            for line in f:
                if line.startswith("  ") or not line.strip():
                    continue  # licence header
                tally.inc(STAGE, "in")
                parsed = parse_index_line(line)
                if parsed is None:
                    tally.inc(STAGE, "dropped.malformed")
                    continue
                lemma, count = parsed
                if not textnorm.normalize(lemma):
                    tally.inc(STAGE, "dropped.empty")
                elif lemma in synsets:
                    synsets[lemma] += count
                    tally.inc(STAGE, "dropped.duplicate")
                else:
                    synsets[lemma] = count
                    tally.inc(STAGE, "out")
    return dict(sorted(synsets.items()))


__all__ = ["DEFAULT_DIR", "INDEX_FILES", "parse_index_line", "read_lemmas"]
