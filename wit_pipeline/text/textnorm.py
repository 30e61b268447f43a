"""Text normalisation shared by the allowlist and the captions, so they match the same way.

Matching rule (documented in the README): a query matches a caption when the query's
normalised token sequence occurs as a contiguous run of whole tokens in the caption's.
A token character is a letter, a digit, an apostrophe or a combining mark (Unicode M*: the
vowel signs of "हिन्दी" belong to their word). Normalisation, in order:

1. every apostrophe variant (’ ‘ ʼ ´ ` ′) becomes "'"; zero-width joiners, soft hyphens and
   other in-word invisibles are removed;
2. characters that are not token characters become spaces *before* NFKC, so NFKC cannot
   fold a symbol into letters ("Apple™ Watch" is "apple watch", not "appletm watch");
3. Unicode NFKC (full-width letters, ligatures, composed accents);
4. lower-case unless case-sensitive (MetaCLIP's semantics), "İ" lower-casing to "i";
5. non-token characters (again: NFKC can make some, "½" is "1⁄2") and "_" become spaces,
   apostrophes at token edges are dropped, runs of spaces collapse to one.
Padding both sides with one space turns whole-token matching into plain substring matching
(" cat " is not in " cats "). `fold` (steps 1-3) and `lower` are what the matcher's batch
normaliser shares, so both sides stay one rule.
"""

from __future__ import annotations

import re
import sys
import unicodedata

APOSTROPHES = "\u2019\u2018\u02bc\u00b4`\u2032"
_TO_APOSTROPHE = {ord(c): "'" for c in APOSTROPHES}
# Invisible inside a word (as textfilter.clean_text removes them): zero-width space, ZWNJ,
# ZWJ, word joiner, BOM / ZWNBSP, soft hyphen.
_IN_WORD_INVISIBLE = {ord(c): None for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad"}
_FOLD_TABLE = {**_TO_APOSTROPHE, **_IN_WORD_INVISIBLE}
_FOLD_CHARS = re.compile("[" + "".join(map(chr, _FOLD_TABLE)) + "]")


def _mark_ranges() -> str:
    """Combining marks (Mn, Mc, Me) as a regex class body; all sit below U+20000 but the
    variation selectors supplement (U+E0100-U+E01EF)."""
    cps = [c for c in (*range(0x300, 0x20000), *range(0xE0100, 0xE01F0)) if unicodedata.category(chr(c))[0] == "M"]
    ranges, start = [], cps[0]
    for prev, cur in zip(cps, [*cps[1:], sys.maxunicode + 2]):
        if cur != prev + 1:
            ranges.append(f"{chr(start)}-{chr(prev)}" if prev > start else chr(start))
            start = cur
    return re.escape("".join(ranges)).replace("\\-", "-")


MARKS = _mark_ranges()
# Not a token character, outside ASCII (the matcher maps ASCII with a byte table).
NON_ASCII_NON_TOKEN = re.compile(rf"[^\x00-\x7f\w{MARKS}]+")
_NON_TOKEN = re.compile(rf"[^\w'{MARKS}]+|_+")
_EDGE_APOSTROPHE = re.compile(r"(?:(?<=\s)|^)'+|'+(?=\s|$)")
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Steps 1-3 for a non-ASCII text (ASCII needs only "`" -> "'"). Step 2 only matters
    where NFKC changes something, so a text already in NFKC skips both."""
    if _FOLD_CHARS.search(text):
        text = text.translate(_FOLD_TABLE)
    if unicodedata.is_normalized("NFKC", text):
        return text
    return unicodedata.normalize("NFKC", NON_ASCII_NON_TOKEN.sub(" ", text))  # ASCII is NFKC-stable


def lower(text: str) -> str:
    """Lower case, with "İ" as "i" (str.lower gives "i" + a combining dot above)."""
    text = text.lower()
    return text.replace("i\u0307", "i") if "\u0307" in text else text


def normalize(text: str, case_sensitive: bool = False) -> str:
    """Normalised tokens joined by single spaces, no padding ('' when nothing is left)."""
    text = text.replace("`", "'") if text.isascii() else fold(text)
    if not case_sensitive:
        text = lower(text)
    text = _NON_TOKEN.sub(" ", text)
    text = _EDGE_APOSTROPHE.sub("", text)
    return _SPACES.sub(" ", text).strip()


def padded(text: str, case_sensitive: bool = False) -> str:
    """normalize() with one space on each side: the form the matcher searches."""
    return f" {normalize(text, case_sensitive)} "


def tokens(text: str, case_sensitive: bool = False) -> list[str]:
    norm = normalize(text, case_sensitive)
    return norm.split(" ") if norm else []
