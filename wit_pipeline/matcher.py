"""Whole-token matching of captions against the allowlist (CLIP's "text includes a query").

Rule: a query matches a caption when the query's normalised token sequence
(`wit_pipeline.textnorm`) occurs as a contiguous run of whole tokens in the caption's.
Both sides are normalised and padded with one space, so whole-token matching is plain
substring search: " cat " is in " a cat sat " but not in " cats ". Every occurrence counts,
overlapping and nested ones included ("new york" and "york" both match "new york city"),
and a caption's result is the sorted list of unique query ids.

Queries that normalise to the same string ("New-York", "new york") share one automaton key
whose value lists all their ids, so each of them matches wherever that form occurs; a query
that normalises to nothing can never match and is rejected.

case_sensitive=True: MetaCLIP matches raw, case-sensitive substrings (so "cat" matches
"Concatenate" and "Cat" does not match "cat"). We keep the case of both sides but still
apply the rest of the normalisation and whole-token matching: "Cat" matches "a Cat sat" and
"Cat." but neither "cat" nor "Cats".

The 500k-entry automaton takes ~1 s and ~170 MiB to build: build it once per worker process
from a file (`from_file`, wrapped in Beam's Shared) rather than pickling it into a graph.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence

import ahocorasick
import numpy as np

from wit_pipeline import textnorm

# The batch separator: normalisation turns it into a space in any caption, and no entry can
# contain it, so no match crosses from one caption into the next.
_SEP = "\x00"
# ASCII bytes that are not token characters (textnorm: not a letter, digit or apostrophe)
# become spaces; the separator and every byte of a multi-byte UTF-8 sequence pass through.
_ASCII_TABLE = bytes(
    c if c >= 0x80 or c == 0 or chr(c) == "'" or (chr(c).isalnum()) else 0x20 for c in range(256)
)
# What the table let through that is not a token character: non-ASCII non-word characters.
_NON_ASCII_NON_TOKEN = re.compile(r"[^\x00-\x7f\w]+")

class QueryMatcher:
    """An Aho-Corasick automaton over the padded, normalised allowlist."""

    def __init__(self, automaton: ahocorasick.Automaton, extra: dict[int, tuple[int, ...]],
                 size: int, case_sensitive: bool) -> None:
        self._automaton = automaton
        # Automaton values are the smallest query id of a normalised form; `extra` maps that
        # id to all ids sharing the form (only for forms shared by several queries).
        self._extra = extra
        self.size = size
        self.case_sensitive = case_sensitive

    @classmethod
    def from_queries(cls, queries: Sequence[str], case_sensitive: bool = False) -> "QueryMatcher":
        """Build from query strings; a query's id is its index in `queries`."""
        automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        first: dict[str, int] = {}
        extra: dict[int, list[int]] = {}
        for qid, query in enumerate(queries):
            norm = textnorm.normalize(query, case_sensitive)
            if not norm:
                raise ValueError(f"query {qid} ({query!r}) is empty after normalisation")
            if norm in first:
                extra.setdefault(first[norm], [first[norm]]).append(qid)
                continue
            first[norm] = qid
            automaton.add_word(f" {norm} ", qid)
        if first:
            automaton.make_automaton()
        return cls(automaton, {k: tuple(v) for k, v in extra.items()}, len(queries), case_sensitive)

    @classmethod
    def from_file(cls, url: str, case_sensitive: bool = False) -> "QueryMatcher":
        """Build from an allowlist TSV (see queries.allowlist); ids are data-row indexes."""
        from queries.allowlist import load_allowlist

        allowlist = load_allowlist(url, case_sensitive=case_sensitive, allow_duplicates=True)
        return cls.from_queries(allowlist.queries, case_sensitive)

    def __len__(self) -> int:
        return self.size

    def __reduce__(self):
        raise TypeError(
            "QueryMatcher is not picklable (a 500k automaton is ~100 MiB): build it per worker "
            "process with QueryMatcher.from_file(url) inside DoFn.setup (beam Shared)"
        )

    def _expand(self, ids: list[int]) -> list[int]:
        if not self._extra or not any(i in self._extra for i in ids):
            return ids
        out: set[int] = set()
        for i in ids:
            out.update(self._extra.get(i, (i,)))
        return sorted(out)

    def match(self, text: str) -> list[int]:
        """Sorted unique ids of the queries whose tokens occur in `text`."""
        if self._automaton.kind != ahocorasick.AHOCORASICK:
            return []
        haystack = textnorm.padded(text, self.case_sensitive)
        return self._expand(sorted({v for _, v in self._automaton.iter(haystack)}))

    def _normalize_batch(self, texts: Sequence[str]) -> str:
        """The padded normal forms of `texts` joined by the separator, in whole-batch passes.

        Equal to _SEP.join(textnorm.padded(t) for t in texts) (tests check it): NFKC only
        for non-ASCII texts, then lower() and the token-character rule over the batch (neither
        acts across a space), then edge apostrophes per token.
        """
        if any(_SEP in t for t in texts):
            texts = [t.replace(_SEP, " ") for t in texts]
        joined = " \x00 ".join(t if t.isascii() else unicodedata.normalize("NFKC", t) for t in texts)
        if not self.case_sensitive:
            joined = joined.lower()
        ascii_only = joined.isascii()
        text = joined.encode("utf-8").translate(_ASCII_TABLE).decode("utf-8")
        if not ascii_only:
            text = _NON_ASCII_NON_TOKEN.sub(" ", text)
        words = text.split()
        if "'" in text:
            words = [w for t in words if (w := t.strip("'"))]
        return " " + " ".join(words) + " "

    def match_many(self, texts: Sequence[str]) -> list[list[int]]:
        """match() for every text, in one automaton pass over the whole batch."""
        n = len(texts)
        if n == 0:
            return []
        if self._automaton.kind != ahocorasick.AHOCORASICK:
            return [[] for _ in range(n)]
        haystack = self._normalize_batch(texts)
        flat = np.fromiter(itertools.chain.from_iterable(self._automaton.iter(haystack)), dtype=np.int64)
        if flat.size == 0:
            return [[] for _ in range(n)]
        ends, ids = flat[0::2], flat[1::2]
        # Caption i occupies haystack[starts[i]:starts[i+1]-1]; a match ends inside one caption.
        lengths = np.fromiter(map(len, haystack.split(_SEP)), dtype=np.int64, count=n)
        bounds = np.cumsum(lengths + 1)
        caption = np.searchsorted(bounds, ends, side="right")
        # Sorted unique (caption, id) pairs, then cut per caption.
        combined = np.unique(caption * (int(ids.max()) + 1) + ids)
        width = int(ids.max()) + 1
        cap_of = combined // width
        id_list = (combined % width).tolist()
        cuts = np.searchsorted(cap_of, np.arange(n + 1)).tolist()
        out = [id_list[cuts[i]:cuts[i + 1]] for i in range(n)]
        if self._extra:
            out = [self._expand(ids_) for ids_ in out]
        return out
