"""WordNet 3.0 entries, read straight from the database files (no nltk, no network).

Debian's `wordnet-base` installs the files at /usr/share/wordnet. Two readings:

- `synsets` (the default, MetaCLIP's): the name of every synset, i.e. its first lemma, lower-
  cased, `_` -> space (NLTK's `synset.name()` up to the first dot), from `data.noun`,
  `data.verb`, `data.adj`, `data.adv`. A data line is `offset lex_filenum ss_type w_cnt word
  lex_id ...`; adjective words may carry a syntactic marker, `(a)`, `(p)`, `(ip)`, which is
  not part of the name. stat = the number of synsets with that name. WordNet 3.0: 117,659
  synsets, 86,554 distinct names.
- `lemmas`: every lemma of every synset, from the `index.*` files (one line per lemma and part
  of speech: `lemma pos synset_cnt ...`); stat = synsets the lemma is in, summed over parts
  of speech. WordNet 3.0: 147,306 distinct lemmas.

Both skip the licence header (lines starting with two spaces). Accounting (stage `wordnet`):
every line is kept (first time its entry is seen) or dropped as `duplicate` (seen already:
another sense or part of speech), `malformed` or `empty` (nothing left after textnorm).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import fsspec

from wit_pipeline.core import fsio
from wit_pipeline.core.stats import Tally
from wit_pipeline.text import textnorm

STAGE = "wordnet"
POS = ("noun", "verb", "adj", "adv")
INDEX_FILES = tuple(f"index.{p}" for p in POS)
DATA_FILES = tuple(f"data.{p}" for p in POS)
MODES = ("synsets", "lemmas")
DEFAULT_DIR = "/usr/share/wordnet"
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")


def files_for(mode: str) -> tuple[str, ...]:
    """The files a reading needs (all of them are checked before a job starts)."""
    return DATA_FILES if mode == "synsets" else INDEX_FILES


def missing_files(directory: str, mode: str) -> list[str]:
    return [name for name in files_for(mode) if not fsio.exists(fsio.join(directory, name))]


def parse_index_line(line: str) -> tuple[str, int] | None:
    """(lemma with spaces, synset count) of an index line; None if it is not one."""
    fields = line.split()
    if len(fields) < 4 or not (fields[2].isascii() and fields[2].isdigit()):
        return None
    return fields[0].replace("_", " "), int(fields[2])


def parse_data_line(line: str) -> tuple[str, int] | None:
    """(synset name, 1) of a data line; None if it is not one."""
    fields = line.split(maxsplit=5)
    if len(fields) < 5 or not (fields[0].isascii() and fields[0].isdigit()):
        return None
    return _ADJ_MARKER.sub("", fields[4]).lower().replace("_", " "), 1


def read_entries(directory: str, tally: Tally, mode: str = "synsets") -> dict[str, int]:
    """entry -> stat (see the module docstring), in sorted order; a missing file is an error."""
    if mode not in MODES:
        raise ValueError(f"WordNet mode must be one of {', '.join(MODES)}, got {mode!r}")
    parse: Callable[[str], tuple[str, int] | None] = parse_data_line if mode == "synsets" else parse_index_line
    missing = missing_files(directory, mode)
    if missing:
        raise FileNotFoundError(f"WordNet directory {directory} lacks {', '.join(missing)} (a WordNet 3.0 dict "
                                "directory; Debian: apt-get install wordnet-base)")
    stats: dict[str, int] = {}
    for name in files_for(mode):
        with fsspec.open(fsio.join(directory, name), "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or not line.strip():
                    continue  # licence header
                tally.inc(STAGE, "in")
                parsed = parse(line)
                if parsed is None:
                    tally.dropped(STAGE, "malformed")
                    continue
                entry, count = parsed
                if not textnorm.normalize(entry):
                    tally.dropped(STAGE, "empty")
                elif entry in stats:
                    stats[entry] += count
                    tally.dropped(STAGE, "duplicate")
                else:
                    stats[entry] = count
                    tally.kept(STAGE)
    return dict(sorted(stats.items()))


__all__ = ["DATA_FILES", "DEFAULT_DIR", "INDEX_FILES", "MODES", "files_for", "missing_files", "parse_data_line",
           "parse_index_line", "read_entries"]
