"""Text normalisation shared by the allowlist and the captions, so they match the same way.

Matching rule (documented in the README): a query matches a caption when the query's
normalised token sequence occurs as a contiguous run of whole tokens in the caption's.
Normalisation: Unicode NFKC; typographic apostrophes (U+2019, U+02BC) become "'";
lower-case (unless case-sensitive, MetaCLIP's semantics); every character that is not a
letter, digit or apostrophe becomes a space; apostrophes at token edges are dropped; runs
of spaces collapse to one. Padding both sides with one space
turns whole-token matching into plain substring matching (" cat " is not in " cats ").
"""

from __future__ import annotations

import re
import unicodedata

# Typographic apostrophes ("don’t") are the ASCII one: web text uses both for the same word.
TYPOGRAPHIC_APOSTROPHES = ("\u2019", "\u02bc")
_NON_TOKEN = re.compile(r"[^\w']+|_+", re.UNICODE)
_EDGE_APOSTROPHE = re.compile(r"(?:(?<=\s)|^)'+|'+(?=\s|$)")
_SPACES = re.compile(r"\s+")


def normalize(text: str, case_sensitive: bool = False) -> str:
    """Normalised tokens joined by single spaces, no padding ('' when nothing is left)."""
    text = unicodedata.normalize("NFKC", text)
    for typographic in TYPOGRAPHIC_APOSTROPHES:
        text = text.replace(typographic, "'")
    if not case_sensitive:
        text = text.lower()
    text = _NON_TOKEN.sub(" ", text)
    text = _EDGE_APOSTROPHE.sub("", text)
    return _SPACES.sub(" ", text).strip()


def padded(text: str, case_sensitive: bool = False) -> str:
    """normalize() with one space on each side: the form the matcher searches."""
    return f" {normalize(text, case_sensitive)} "


def tokens(text: str, case_sensitive: bool = False) -> list[str]:
    norm = normalize(text, case_sensitive)
    return norm.split(" ") if norm else []
