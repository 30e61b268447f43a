"""Alt/title text cleaning and the rules that drop text which cannot describe an image.

`clean_text` gives the text a browser shows (entities unescaped, C1 controls read as
windows-1252, invisibles removed, whitespace collapsed);
`drop_reason` says why a cleaned text is unusable: `too_short`, `too_long` or `junk`.
Junk is a small set of rules (see `junk_rule`), each aimed at a kind of alt text that web
authors and CMSs emit without describing the picture:

- `generic`: every token is a generic word or a number ("image", "logo 2", "click here",
  "thumbnail", "photo 3 of 10"); the word set is `GENERIC_WORDS`.
- `filename`: a file name or camera default name ("IMG_2031.JPG", "dsc0001.jpg", "DSC_0042").
- `url`: the text is a URL or a bare domain/path ("https://x.org/a.png", "www.example.com").
- `non_letters`: under half of the non-space characters are letters ("12345", "--- ---",
  "12/05/2021"), which covers a lone number.

"""

from __future__ import annotations

import html
import re

from wit_pipeline.text.textnorm import tokens

TOO_SHORT = "too_short"
TOO_LONG = "too_long"
JUNK = "junk"

GENERIC_WORDS = frozenset(
    """
    image images img imgs picture pictures pic pics photo photos photograph foto logo logos
    icon icons thumbnail thumbnails thumb thumbs banner banners placeholder spacer avatar
    graphic button untitled loading default blank none null undefined alt text click here
    no of the a an and for this our site page view see read more full size large small
    """.split()
)

_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_C1 = re.compile("[\x80-\x9f]+")
_C1_OR_INVISIBLE = re.compile("[\x80-\x9f\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_IMAGE_EXT = r"(?:jpe?g|png|gif|webp|bmp|svg|tiff?|avif|heic|ico)"
_FILENAME = re.compile(rf"^[\w\-.()~+ ]*\.{_IMAGE_EXT}$", re.IGNORECASE)
_CAMERA_NAME = re.compile(r"^(?:img|dsc[nf]?|dcim|pxl|pict?|mvc|gopr|sam|wp)[_\- ]?\d{2,}\w*$", re.IGNORECASE)
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|www\.)\S*$|^[\w-]+(?:\.[\w-]+)+/\S*$", re.IGNORECASE)
_BARE_DOMAIN = re.compile(r"^[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|edu|gov|io|co|de|fr|uk|info|biz)$", re.IGNORECASE)
# A lower-case ASCII text whose every maximal run of letters is a generic word. Each letter run
# can be read only one way, so the repetition is possessive (*+): no backtracking on a miss.
_GENERIC_RUNS_ONLY = re.compile(r"(?:[^a-z]+|(?:%s)(?![a-z]))*+" % "|".join(sorted(GENERIC_WORDS)))
_NOT_ASCII_LETTER = bytes(c for c in range(128) if not chr(c).isalpha())
# Letters of common scripts that normalisation keeps as non-ASCII letters, whatever surrounds
# them (tests/test_textfilter.py checks every one): a token holding one is neither a generic
# word nor a number. Latin-1's i-based letters are left out (a dot above can make "i").
_KEPT_NON_ASCII_LETTER = re.compile(
    "[\u00c0-\u00cb\u00d0-\u00d6\u00d8-\u00eb\u00f0-\u00f6\u00f8-\u00ff\u0391-\u03a1\u03a3-\u03a9"
    "\u03b1-\u03c9\u0410-\u044f\u05d0-\u05ea\u0620-\u064a\u0905-\u0939\u0e01-\u0e30\u3041-\u3096"
    "\u30a1-\u30fa\u4e00-\u9fff\uac00-\ud7a3]"
)


def _c1(m: re.Match) -> str:
    return m.group(0).encode("latin-1").decode("cp1252", "ignore")


def clean_text(text: str, unescape: bool = True) -> str:
    """The text a browser shows: HTML entities unescaped (unless the HTML parser already
    did); C1 controls read as the windows-1252 characters they stand for, as HTML reads
    `&#146;` (they come from text decoded upstream as true latin-1: `Don\x92t` is `Don’t`),
    the five that windows-1252 leaves undefined removed; invisible characters removed;
    whitespace collapsed and stripped."""
    if unescape:
        text = html.unescape(text)
    if not text.isascii() and _C1_OR_INVISIBLE.search(text):  # one scan for the common text with neither
        text = _C1.sub(_c1, text)
        text = _INVISIBLE.sub("", text)
    return " ".join(text.split())


def junk_rule(text: str) -> str | None:
    """The name of the first junk rule the (cleaned) text meets, or None."""
    dotted = "." in text or ":" in text  # every URL and file-name pattern holds one (not a camera name)
    if dotted and (_URL.match(text) or _BARE_DOMAIN.match(text)):
        return "url"
    if (dotted and _FILENAME.match(text)) or _CAMERA_NAME.match(text):
        return "filename"
    if _under_half_letters(text):
        return "non_letters"
    if not _may_be_generic(text):
        return None
    if all(t in GENERIC_WORDS or t.isdigit() for t in tokens(text)):
        return "generic"
    return None


def _under_half_letters(text: str) -> bool:
    """Whether under half the non-space characters are letters (str.isalpha). An ASCII text is
    read as bytes, whose isalpha and letter count (deleting the other bytes) run on a table."""
    if text.isascii():
        data = text.encode("ascii").replace(b" ", b"")
        return not data.isalpha() and len(data.translate(None, _NOT_ASCII_LETTER)) * 2 < len(data)
    chars = text.replace(" ", "")
    return not chars.isalpha() and sum(map(str.isalpha, chars)) * 2 < len(chars)


def _may_be_generic(text: str) -> bool:
    """False when a text cannot be all generic words and numbers, so normalising it can be
    skipped: an ASCII text with a run of letters that is no generic word (a generic token is a
    whole letter run: an ASCII token is letters, digits and inner apostrophes), or a text
    holding a letter that normalisation keeps non-ASCII. Other texts may be: NFKC can make
    ASCII letters ("ﬁ" is "fi")."""
    if text.isascii():
        return _GENERIC_RUNS_ONLY.fullmatch(text.lower()) is not None
    return _KEPT_NON_ASCII_LETTER.search(text) is None


def drop_reason(text: str, min_chars: int = 5, max_chars: int = 1000) -> str | None:
    """Why a cleaned text is unusable (`too_short`, `too_long`, `junk`), or None to keep it."""
    n = len(text)
    if n < min_chars:
        return TOO_SHORT
    if n > max_chars:
        return TOO_LONG
    if junk_rule(text) is not None:
        return JUNK
    return None
