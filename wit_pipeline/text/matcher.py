"""Whole-token matching of captions against the allowlist (CLIP's "text includes a query").

Rule: a query matches a caption when the query's normalised token sequence
(`wit_pipeline.text.textnorm`) occurs as a contiguous run of whole tokens in the caption's.
Both sides are normalised and padded with one space, so whole-token matching is plain
substring search: " cat " is in " a cat sat " but not in " cats ". Every occurrence counts,
overlapping and nested ones included ("new york" and "york" both match "new york city"),
and a caption's result is the sorted list of unique query ids.

How: whole-token matching makes exact n-gram lookup equivalent to the padded substring
search, and lets the per-token work run in a few whole-batch passes (bench/match.py compares
it with a per-caption pyahocorasick loop and checks both give the same ids on every caption).
A batch of captions is normalised in a few passes over its NUL-joined text and every token
becomes an integer id in one C-level map() over the batch; from there it is numpy: unigram
hits by indexing, and an n-gram of k tokens is the key (id of its first k-1 tokens) * width +
(id of token k), looked up with one searchsorted per k, only at the positions where the
shorter n-gram begins some longer entry.

Queries that normalise to the same string ("New-York", "new york") share one table key and
every one of their ids matches wherever that form occurs; a query that normalises to nothing
could never match and is rejected.

case_sensitive=True: MetaCLIP matches raw, case-sensitive substrings (so "cat" matches
"Concatenate" and "Cat" does not match "cat"). We keep the case of both sides but still
apply the rest of the normalisation and whole-token matching: "Cat" matches "a Cat sat" and
"Cat." but neither "cat" nor "Cats".

Unspaced scripts (MetaCLIP 2's rule, its `get_spaced_metadata`): an entry whose normal form
begins or ends with a character of a script written without spaces (CJK ideographs, and here
hiragana and katakana too, which MetaCLIP's ranges omit so that a Japanese entry ending in kana
would need spaces around it; Thai, Lao, Burmese, Khmer, Tibetan) is not bounded by a token edge
on that side: "東京" matches inside "東京タワーの夜景", and "iphone手机" (Latin start, CJK end)
matches "买 iphone手机壳" but not "买iphone手机壳". MetaCLIP also leaves a punctuation edge
unbounded; normalisation already makes every punctuation mark a token edge on both sides, so
that part of the rule holds by construction. Those entries are found by one Aho-Corasick
automaton (pyahocorasick) over the caption's padded normal form, with a space on each bounded
side of the key; only captions holding a character of those scripts are searched, so a list
without such entries (and every caption without such characters) costs what it did.

A 500k-entry allowlist takes ~2 s and ~90 MiB to load: build it once per worker
process from a file (`from_file`, inside DoFn.setup through Beam's Shared), never in a DoFn's
__init__; the matcher refuses to be pickled so that mistake fails loudly.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import ahocorasick
import numpy as np

from wit_pipeline.text import textnorm

# The batch separator: normalisation turns it into a space in any caption, and no entry can
# contain it, so no match crosses from one caption into the next.
_SEP = "\x00"
# ASCII bytes that are not token characters (textnorm: not a letter, digit or apostrophe)
# become spaces, "`" an apostrophe; the separator and every byte of a multi-byte UTF-8
# sequence pass through.
_ASCII_TABLE = bytes(
    0x27 if chr(c) == "`" else c if c >= 0x80 or c == 0 or chr(c) == "'" or chr(c).isalnum() else 0x20
    for c in range(256)
)
# What the table let through that is not a token character.
_NON_ASCII_NON_TOKEN = textnorm.NON_ASCII_NON_TOKEN
# Scripts written without spaces: MetaCLIP 2's ranges (CJK ideographs, radicals and
# compatibility ideographs; Thai, Lao, Burmese, Khmer, Tibetan), plus hiragana, katakana and
# the ideographic iteration and closing marks (々〆〇), which Japanese writes inside words.
_UNSPACED_RANGES = (
    "\u3005-\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u2e80-\u2fdf\u2ff0-\u2fff"
    "\U00020000-\U0002ebef\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u0f00-\u0fff"
)
_UNSPACED = re.compile(f"[{_UNSPACED_RANGES}]")


def unspaced(char: str) -> bool:
    """Whether `char` belongs to a script written without spaces (see the module docstring)."""
    return _UNSPACED.match(char) is not None


def substring_key(norm: str) -> str | None:
    """The automaton key of a normal form with an unbounded edge: a space on each bounded side;
    None when both edges are bounded (a whole-token entry)."""
    left, right = unspaced(norm[0]), unspaced(norm[-1])
    if not (left or right):
        return None
    return ("" if left else " ") + norm + ("" if right else " ")


def normalize_batch(texts: Sequence[str], case_sensitive: bool = False) -> str:
    """textnorm.padded() of every text, joined by NUL (tests hold it to textnorm)."""
    return " " + " ".join(batch_tokens(texts, case_sensitive)) + " "


def batch_tokens(texts: Sequence[str], case_sensitive: bool = False) -> list[str]:
    """textnorm.tokens() of every text, with a NUL token between texts, in whole-batch passes.

    textnorm.fold only for non-ASCII texts (ASCII is already normal), then textnorm.lower and
    the token-character rule over the whole batch (neither acts across the spaces around a
    NUL), then edge apostrophes. A NUL inside a text is a space, as textnorm makes it.
    The non-ASCII part of the rule is a regex that costs per character: in a batch of mostly
    ASCII texts it runs on each non-ASCII text alone, lower-cased first as the rule wants.
    """
    if any(_SEP in t for t in texts):
        texts = [t.replace(_SEP, " ") for t in texts]
    if 2 * sum(map(str.isascii, texts)) >= len(texts):
        joined = " \x00 ".join(t if t.isascii() else _non_ascii_form(t, case_sensitive) for t in texts)
        if not case_sensitive:
            joined = joined.lower()  # the ASCII texts: str.lower leaves the lower-cased others as they are
        text = joined.encode("utf-8").translate(_ASCII_TABLE).decode("utf-8")
    else:
        joined = " \x00 ".join(t if t.isascii() else textnorm.fold(t) for t in texts)
        if not case_sensitive:
            joined = textnorm.lower(joined)
        text = joined.encode("utf-8").translate(_ASCII_TABLE).decode("utf-8")
        text = _NON_ASCII_NON_TOKEN.sub(" ", text)
    if "'" in text:
        # Apostrophes at token edges go, one per edge per pass (runs are short).
        text = f" {text} "
        while " '" in text or "' " in text:
            text = text.replace(" '", " ").replace("' ", " ")
    return text.split()


def _non_ascii_form(text: str, case_sensitive: bool) -> str:
    """A non-ASCII text folded, lower-cased (unless case-sensitive) and with its non-ASCII
    non-token characters as spaces (the ASCII ones are left to the batch's byte table)."""
    text = textnorm.fold(text)
    if not case_sensitive:
        text = textnorm.lower(text)
    text.encode("utf-8")  # a lone surrogate fails the batch here, as the batch's encoding does in the other path
    return _NON_ASCII_NON_TOKEN.sub(" ", text)


class QueryMatcher:
    """Token ids and sorted n-gram keys over the normalised allowlist (module docstring)."""

    def __init__(self, vocab: dict[str, int], unigram: np.ndarray, heads: np.ndarray, tails: np.ndarray,
                 levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]], extra: dict[int, tuple[int, ...]],
                 size: int, case_sensitive: bool, automaton: ahocorasick.Automaton | None = None) -> None:
        # vocab: token -> id in [0, V); the separator is V and every unknown token V + 1.
        # unigram[id]: the query whose whole form is that token, else -1.
        # heads[id] / tails[id]: the token begins / continues some multi-token entry.
        # levels[k - 2] for entries of k >= 2 tokens: sorted int64 keys p * (V + 2) + t, where p
        # is the prefix id of the first k - 1 tokens (the token id itself for k = 2) and t the
        # k-th token id; with each key the query of that k-token form (-1 if none) and the
        # prefix id of the k tokens when they begin a longer entry (-1 if not).
        # A form shared by several queries holds its smallest id; `extra` lists all of them.
        self._vocab = vocab
        self._unigram = unigram
        self._heads = heads
        self._tails = tails
        self._levels = levels
        self._extra = extra
        self.size = size
        self.case_sensitive = case_sensitive
        # entries with an unbounded edge: key -> tuple of their query ids (None when there are none)
        self._automaton = automaton

    @classmethod
    def from_queries(cls, queries: Sequence[str], case_sensitive: bool = False) -> "QueryMatcher":
        """Build from query strings; a query's id is its index in `queries`."""
        norms = [seg.strip(" ") for i in range(0, len(queries), 10_000)
                 for seg in normalize_batch(queries[i:i + 10_000], case_sensitive).split(_SEP)]
        vocab: dict[str, int] = {}
        forms: list[list[int]] = []
        for qid, (query, norm) in enumerate(zip(queries, norms)):
            if not norm:
                raise ValueError(f"query {qid} ({query!r}) is empty after normalisation")
            forms.append([vocab.setdefault(t, len(vocab)) for t in norm.split(" ")])
        width = len(vocab) + 2  # token ids, the separator, unknown
        unigram = np.full(width, -1, np.int64)
        heads = np.zeros(width, bool)
        tails = np.zeros(width, bool)
        depth = max(map(len, forms), default=1)
        # k -> key -> [query id of the k-token form or -1, prefix id of the k tokens or -1]
        grams: list[dict[int, list[int]]] = [{} for _ in range(depth + 1)]
        prefix_count = [0] * (depth + 1)
        extra: dict[int, list[int]] = {}
        substring: dict[str, list[int]] = {}
        for qid, (form, norm) in enumerate(zip(forms, norms)):
            if (key := substring_key(norm)) is not None:
                substring.setdefault(key, []).append(qid)
                continue
            n = len(form)
            if n == 1:
                first = int(unigram[form[0]])
                if first >= 0:
                    extra.setdefault(first, [first]).append(qid)
                else:
                    unigram[form[0]] = qid
                continue
            heads[form[0]] = True
            tails[form[1:]] = True
            prefix = form[0]
            for k in range(2, n):
                slot = grams[k].setdefault(prefix * width + form[k - 1], [-1, -1])
                if slot[1] < 0:
                    slot[1] = prefix_count[k]
                    prefix_count[k] += 1
                prefix = slot[1]
            slot = grams[n].setdefault(prefix * width + form[-1], [-1, -1])
            if slot[0] >= 0:
                extra.setdefault(slot[0], [slot[0]]).append(qid)
            else:
                slot[0] = qid
        levels = []
        for k in range(2, depth + 1):
            keys = np.fromiter(grams[k].keys(), np.int64, len(grams[k]))
            values = np.array(list(grams[k].values()), np.int64).reshape(-1, 2)
            order = np.argsort(keys)
            levels.append((keys[order], values[order, 0], values[order, 1]))
        vocab[_SEP] = width - 2
        automaton = None
        if substring:
            automaton = ahocorasick.Automaton()
            for key, qids in substring.items():
                automaton.add_word(key, tuple(qids))
            automaton.make_automaton()
        return cls(vocab, unigram, heads, tails, levels, {k: tuple(v) for k, v in extra.items()},
                   len(queries), case_sensitive, automaton)

    @classmethod
    def from_file(cls, url: str, case_sensitive: bool = False) -> "QueryMatcher":
        """Build from an allowlist TSV (see wit_pipeline.text.allowlist); ids are data-row indexes.

        Duplicate normal forms are accepted here (each of their ids matches); a pipeline that
        wants them rejected calls load_allowlist() first, as the harvest job does.
        """
        from wit_pipeline.text.allowlist import load_allowlist

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
        """match() for every text: whole-batch passes, per-caption work only to slice results."""
        n = len(texts)
        if n == 0:
            return []
        width = len(self._unigram)
        words = batch_tokens(texts, self.case_sensitive)
        words.append(_SEP)  # batch_tokens puts a separator between texts; one more ends the last
        ids = np.fromiter(map(self._vocab.get, words, itertools.repeat(width - 1)), np.int64, len(words))
        ends = np.flatnonzero(ids == width - 2)  # the separator after each text
        hit_pos = [np.flatnonzero(self._unigram[ids] >= 0)]
        hit_ids = [self._unigram[ids[hit_pos[0]]]]
        # n-grams grow one token at a time from the positions whose prefix begins a longer entry.
        pos = np.flatnonzero(self._heads[ids[:-1]] & self._tails[ids[1:]])
        prefix = ids[pos]
        for k, (keys, qids, pids) in enumerate(self._levels, start=2):
            if not len(pos):
                break
            key = prefix * width + ids[pos + (k - 1)]  # the last token is the separator: in range
            at = np.searchsorted(keys, key)
            at[at == len(keys)] = 0
            found = keys[at] == key
            pos, at = pos[found], at[found]
            q = qids[at]
            hit_pos.append(pos[q >= 0])
            hit_ids.append(q[q >= 0])
            longer = pids[at] >= 0
            pos, prefix = pos[longer], pids[at][longer]
        text_of = np.searchsorted(ends, np.concatenate(hit_pos))
        pairs = np.sort((text_of << 32) | np.concatenate(hit_ids))
        first = np.ones(len(pairs), bool)  # unique by hand: np.unique hashes before it sorts, slower here
        first[1:] = pairs[1:] != pairs[:-1]
        pairs = pairs[first]
        flat = (pairs & 0xFFFFFFFF).tolist()
        bounds = np.searchsorted(pairs >> 32, np.arange(n + 1)).tolist()
        out = [flat[a:b] for a, b in zip(bounds, bounds[1:])]
        if self._extra:
            out = [self._expand(ids_) for ids_ in out]
        if self._automaton is not None:
            self._match_substrings(texts, words, ends.tolist(), out)
        return out

    def _match_substrings(self, texts: Sequence[str], words: list[str], ends: list[int],
                          out: list[list[int]]) -> None:
        """Add the matches of entries with an unbounded edge, for the texts holding a character
        of an unspaced script (module docstring). Only a non-ASCII text can: an ASCII text's
        normal form is ASCII."""
        for i, text in enumerate(texts):
            if text.isascii():
                continue
            padded = " " + " ".join(words[ends[i - 1] + 1 if i else 0:ends[i]]) + " "
            if not _UNSPACED.search(padded):
                continue
            found = {q for _, qids in self._automaton.iter(padded) for q in qids}
            if found:
                out[i] = sorted(found.union(out[i]))

    def _expand(self, ids: list[int]) -> list[int]:
        if not any(i in self._extra for i in ids):
            return ids
        out: set[int] = set()
        for i in ids:
            out.update(self._extra.get(i, (i,)))
        return sorted(out)
