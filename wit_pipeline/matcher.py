"""Whole-token matching of captions against the allowlist (CLIP's "text includes a query").

Rule: a query matches a caption when the query's normalised token sequence
(`wit_pipeline.textnorm`) occurs as a contiguous run of whole tokens in the caption's.
Both sides are normalised and padded with one space, so whole-token matching is plain
substring search: " cat " is in " a cat sat " but not in " cats ". Every occurrence counts,
overlapping and nested ones included ("new york" and "york" both match "new york city"),
and a caption's result is the sorted list of unique query ids.

How: whole-token matching makes a hash of token n-grams exact, and in CPython faster than
an Aho-Corasick automaton over characters (bench/match.py compares both and checks they give
the same ids on every caption). A batch of captions is normalised in a few passes over its
NUL-joined text; every token and every token bigram is looked up in one C-level map() over
the batch; longer n-grams are only formed where the shorter one begins some longer entry.

Queries that normalise to the same string ("New-York", "new york") share one table key and
every one of their ids matches wherever that form occurs; a query that normalises to nothing
could never match and is rejected.

case_sensitive=True: MetaCLIP matches raw, case-sensitive substrings (so "cat" matches
"Concatenate" and "Cat" does not match "cat"). We keep the case of both sides but still
apply the rest of the normalisation and whole-token matching: "Cat" matches "a Cat sat" and
"Cat." but neither "cat" nor "Cats".

A 500k-entry allowlist takes ~2 s and ~80 MiB to load: build it once per worker
process from a file (`from_file`, inside DoFn.setup through Beam's Shared), never in a DoFn's
__init__; the matcher refuses to be pickled so that mistake fails loudly.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import re
import unicodedata
from collections.abc import Sequence


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


def normalize_batch(texts: Sequence[str], case_sensitive: bool = False) -> str:
    """textnorm.padded() of every text, joined by NUL (tests hold it to textnorm)."""
    return " " + " ".join(batch_tokens(texts, case_sensitive)) + " "


def batch_tokens(texts: Sequence[str], case_sensitive: bool = False) -> list[str]:
    """textnorm.tokens() of every text, with a NUL token between texts, in whole-batch passes.

    NFKC only for non-ASCII texts (ASCII is already normal), then lower() and the
    token-character rule over the whole batch (neither acts across the spaces around a NUL),
    then edge apostrophes. A NUL inside a text is a space, as textnorm makes it.
    """
    if any(_SEP in t for t in texts):
        texts = [t.replace(_SEP, " ") for t in texts]
    joined = " \x00 ".join(t if t.isascii() else unicodedata.normalize("NFKC", t) for t in texts)
    if not case_sensitive:
        joined = joined.lower()
    ascii_only = joined.isascii()
    text = joined.encode("utf-8").translate(_ASCII_TABLE).decode("utf-8")
    if not ascii_only:
        text = _NON_ASCII_NON_TOKEN.sub(" ", text)
    if "'" in text:
        # Apostrophes at token edges go, one per edge per pass (runs are short).
        text = f" {text} "
        while " '" in text or "' " in text:
            text = text.replace(" '", " ").replace("' ", " ")
    return text.split()


class QueryMatcher:
    """Exact n-gram tables over the normalised allowlist (see the module docstring)."""

    def __init__(self, tables: list[dict], prefixes: list[frozenset], extra: dict[int, tuple[int, ...]],
                 size: int, case_sensitive: bool) -> None:
        # tables[0]: token -> id; tables[k]: (k+1)-tuple of tokens -> id (the smallest id of
        # that normal form; `extra` lists all ids of forms shared by several queries).
        # prefixes[k]: (k+1)-tuples that begin a longer entry (prunes the search for k >= 1).
        self._tables = tables
        self._prefixes = prefixes
        self._extra = extra
        self.size = size
        self.case_sensitive = case_sensitive

    @classmethod
    def from_queries(cls, queries: Sequence[str], case_sensitive: bool = False) -> "QueryMatcher":
        """Build from query strings; a query's id is its index in `queries`."""
        tables: list[dict] = [{}]
        prefixes: list[set] = [set()]
        extra: dict[int, list[int]] = {}
        interned: dict[str, str] = {}
        norms = [seg.strip(" ") for i in range(0, len(queries), 10_000)
                 for seg in normalize_batch(queries[i:i + 10_000], case_sensitive).split(_SEP)]
        for qid, (query, norm) in enumerate(zip(queries, norms)):
            if not norm:
                raise ValueError(f"query {qid} ({query!r}) is empty after normalisation")
            toks = tuple(interned.setdefault(t, t) for t in norm.split(" "))
            n = len(toks)
            while len(tables) < n:
                tables.append({})
                prefixes.append(set())
            key = toks[0] if n == 1 else toks
            table = tables[n - 1]
            if key in table:
                first = table[key]
                extra.setdefault(first, [first]).append(qid)
                continue
            table[key] = qid
            for k in range(2, n):
                prefixes[k - 1].add(toks[:k])
        return cls(tables, [frozenset(p) for p in prefixes],
                   {k: tuple(v) for k, v in extra.items()}, len(queries), case_sensitive)

    @classmethod
    def from_file(cls, url: str, case_sensitive: bool = False) -> "QueryMatcher":
        """Build from an allowlist TSV (see queries.allowlist); ids are data-row indexes.

        Duplicate normal forms are accepted here (each of their ids matches); a pipeline that
        wants them rejected calls load_allowlist() first, as the harvest job does.
        """
        from queries.allowlist import load_allowlist

        allowlist = load_allowlist(url, case_sensitive=case_sensitive, allow_duplicates=True)
        return cls.from_queries(allowlist.queries, case_sensitive)

    def __len__(self) -> int:
        return self.size

    def __reduce__(self):
        raise TypeError(
            "QueryMatcher is not picklable (a 500k allowlist is ~80 MiB of tables): build it per "
            "worker process with QueryMatcher.from_file(url) inside DoFn.setup (beam Shared)"
        )

    def match(self, text: str) -> list[int]:
        """Sorted unique ids of the queries whose tokens occur in `text`."""
        return self.match_many([text])[0]

    def match_many(self, texts: Sequence[str]) -> list[list[int]]:
        """match() for every text: whole-batch passes, per-caption work only to collect ids."""
        n = len(texts)
        if n == 0:
            return []
        tables, prefixes = self._tables, self._prefixes
        depth = len(tables)
        words = batch_tokens(texts, self.case_sensitive)
        # Sentinels: an n-gram that reaches past the end holds a separator and matches nothing.
        words.extend(itertools.repeat(_SEP, depth))
        # The index of the separator after each caption (the last is the first sentinel).
        ends = list(itertools.compress(itertools.count(), map(_SEP.__eq__, words)))[:n]
        # Single tokens: one lookup per position, aligned with `words`.
        hits1 = list(map(tables[0].get, words))
        # n-grams, sparse: (position, id) of every hit. Bigrams are looked up everywhere;
        # longer n-grams only where the shorter one begins some longer entry. zip() tuples
        # consumed at once are recycled, so this allocates little per token.
        deep_pos: list[int] = []
        deep_ids: list[int] = []
        if depth > 1:
            hits2 = list(map(tables[1].get, zip(words, words[1:])))
            found = list(map(operator.is_not, hits2, itertools.repeat(None)))
            deep_pos.extend(itertools.compress(itertools.count(), found))
            deep_ids.extend(itertools.compress(hits2, found))
        if depth > 2:
            positions = list(itertools.compress(
                range(len(words) - depth), map(prefixes[1].__contains__, zip(words, words[1:]))))
            for k in range(2, depth):
                if not positions:
                    break
                cols = [list(map(words.__getitem__, map(operator.add, positions, itertools.repeat(j))))
                        for j in range(k + 1)]
                hits = list(map(tables[k].get, zip(*cols)))
                found = list(map(operator.is_not, hits, itertools.repeat(None)))
                deep_pos.extend(itertools.compress(positions, found))
                deep_ids.extend(itertools.compress(hits, found))
                positions = list(itertools.compress(positions, map(prefixes[k].__contains__, zip(*cols))))
        deep: dict[int, list[int]] = {}
        for pos, qid in zip(deep_pos, deep_ids):
            deep.setdefault(bisect.bisect_left(ends, pos), []).append(qid)
        out: list[list[int]] = []
        start = 0
        for i, end in enumerate(ends):
            ids = set(hits1[start:end])
            if i in deep:
                ids.update(deep[i])
            ids.discard(None)
            out.append(sorted(ids))
            start = end + 1
        if self._extra:
            out = [self._expand(ids_) for ids_ in out]
        return out

    def _expand(self, ids: list[int]) -> list[int]:
        if not any(i in self._extra for i in ids):
            return ids
        out: set[int] = set()
        for i in ids:
            out.update(self._extra.get(i, (i,)))
        return sorted(out)
