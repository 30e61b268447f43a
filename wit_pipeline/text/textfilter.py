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
_LETTER_RUNS = re.compile("[a-z]+")
_BARE_DOMAIN = re.compile(r"^[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|edu|gov|io|co|de|fr|uk|info|biz)$", re.IGNORECASE)


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
    if _URL.match(text) or _BARE_DOMAIN.match(text):
        return "url"
    if _FILENAME.match(text) or _CAMERA_NAME.match(text):
        return "filename"
    chars = text.replace(" ", "")
    if not chars.isalpha() and sum(map(str.isalpha, chars)) * 2 < len(chars):  # all letters: the common case
        return "non_letters"
    if not _may_be_generic(text):
        return None
    if all(t in GENERIC_WORDS or t.isdigit() for t in tokens(text)):
        return "generic"
    return None


def _may_be_generic(text: str) -> bool:
    """False when an ASCII text has a run of letters that is no generic word: a generic token
    is a whole letter run (an ASCII token is letters, digits and inner apostrophes), so that
    run's token is neither generic nor a number, and normalising the text can be skipped.
    Other texts may be: NFKC can make letters ("ﬁ" is "fi")."""
    return not text.isascii() or GENERIC_WORDS.issuperset(_LETTER_RUNS.findall(text.lower()))


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
