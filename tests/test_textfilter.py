"""Alt-text cleaning and the drop rules."""

from __future__ import annotations

import random
import re
import unicodedata

import pytest

from wit_pipeline.text import textfilter
from wit_pipeline.text.textfilter import GENERIC_WORDS, clean_text, drop_reason, junk_rule
from wit_pipeline.text.textnorm import normalize, tokens


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  A  red\n\tcat  ", "A red cat"),
        ("Fish &amp; chips &lt;3", "Fish & chips <3"),
        ("caf&eacute;&nbsp;au&#160;lait", "café au lait"),
        ("zero\u200bwidth\u00adsoft", "zerowidthsoft"),
        ("781\x97451", "781\u2014451"),  # C1 as windows-1252 (text decoded upstream as latin-1)
        ("Don\x92t \x93quoted\x94", "Don\u2019t \u201cquoted\u201d"),
        ("a\x81b\x8dc\x9d", "abc"),  # the five C1 codes windows-1252 leaves undefined go
        ("&#146;&#x97;", "\u2019\u2014"),  # as HTML reads the same numbers as references
        ("per\u200cs\u2060ian\ufeff", "persian"),
        ("non\u00a0breaking\u3000ideographic", "non breaking ideographic"),
        ("", ""),
        (" \n ", ""),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("cat", "too_short"),
        ("logo", "too_short"),
        ("a" * 1001, "too_long"),
        ("image", "junk"),
        ("Photo", "junk"),
        ("click here", "junk"),
        ("Click Here!", "junk"),
        ("thumbnail", "junk"),
        ("banner", "junk"),
        ("site logo", "junk"),
        ("image 3 of 10", "junk"),
        ("IMG_2031.JPG", "junk"),
        ("dsc0001.jpg", "junk"),
        ("DSC_0042", "junk"),
        ("my holiday.png", "junk"),
        ("https://example.com/cat.jpg", "junk"),
        ("www.example.com", "junk"),
        ("example.com/images/cat", "junk"),
        ("12345", "junk"),
        ("2021-05-12", "junk"),
        ("----- ***", "junk"),
        ("a red cat on a sofa", None),
        ("Escudo d'armas", None),
        ("Powered by MediaWiki", None),
        ("Logo of the Red Cross", None),  # a generic word among real ones is fine
        ("一只红色的猫", None),
        ("Boeing 747 at dusk", None),
        ("a" * 1000, None),
    ],
)
def test_drop_reason(text: str, reason: str | None) -> None:
    assert drop_reason(text) == reason


def test_length_limits_are_parameters() -> None:
    assert drop_reason("a red cat", min_chars=10) == "too_short"
    assert drop_reason("a red cat", max_chars=8) == "too_long"
    assert drop_reason("a red cat", min_chars=9, max_chars=9) is None


def test_junk_rule_names() -> None:
    assert junk_rule("image") == "generic"
    assert junk_rule("IMG_2031.JPG") == "filename"
    assert junk_rule("http://x.org/a.png") == "url"
    assert junk_rule("12345") == "non_letters"
    assert junk_rule("a red cat") is None


def test_generic_shortcut_agrees_with_the_tokens() -> None:
    """junk_rule skips normalising an ASCII text with a non-generic letter run; on random mixes
    of generic words, numbers, separators and look-alikes the rule is what the tokens say."""
    rng = random.Random(5)
    words = [*sorted(GENERIC_WORDS), "cat", "Photo", "IMAGE", "logo2", "12", "don't", "'logo'", "logo's",
             "\ufb01", "\uff4c\uff4f\uff47\uff4f", "\u0130mage", "img_1", "\u00e9", "photo\u0301", "\u00bd", "a1b"]
    seps = [" ", "  ", "-", "_", "'", "`", ".", "/", "\t", "\u2019", "\u200b", "!"]
    generic = 0
    for _ in range(20000):
        text = " ".join("".join(rng.choice(words) + rng.choice(seps) for _ in range(rng.randrange(1, 4))).split())
        rule = junk_rule(text)
        if rule in ("generic", None):  # not an earlier rule's
            assert (rule == "generic") == all(t in GENERIC_WORDS or t.isdigit() for t in tokens(text)), text
        generic += rule == "generic"
    assert generic > 1000


def plain_junk_rule(text: str) -> str | None:
    """The junk rules as their docstring states them, with no shortcut."""
    if textfilter._URL.match(text) or textfilter._BARE_DOMAIN.match(text):
        return "url"
    if textfilter._FILENAME.match(text) or textfilter._CAMERA_NAME.match(text):
        return "filename"
    chars = text.replace(" ", "")
    if sum(map(str.isalpha, chars)) * 2 < len(chars):
        return "non_letters"
    if all(t in GENERIC_WORDS or t.isdigit() for t in tokens(text)):
        return "generic"
    return None


def test_junk_rule_is_the_plain_rule_on_hostile_mixes() -> None:
    """The shortcuts (no '.' or ':' means no URL or file name, ASCII counted as bytes, the
    generic regex, the kept non-ASCII letters) change no verdict."""
    rng = random.Random(11)
    pieces = [*sorted(GENERIC_WORDS)[::4], "cat", "Photo", "IMG_2031", "DSC 0042", ".jpg", ".PNG", "www.", "http://",
              "://", "x.org/", "example.com", "/", ".", ":", "12", "2021", "\u00bd", "\u0663", "\ufb01", "\uff4c\uff4f\uff47\uff4f",
              "\u0130", "I\u0307", "i\u0307", "\u00ec", "\u00cf", "\u0307", "\u0323", "\u017f", "\u212a", "\u01c7", "\u00e9",
              "\u4e2d\u6587", "\u3042", "\u30ab\u3099", "\ud55c", "\u1161", "\u11a8", "\u0416", "\u03a3", "\u05d0", "\u0628",
              "\u0915\u093c", "\u0e01", "\u00aa", "\u00ba", "\u2163", "\u00b2", "\x00", "\n", "\u2028", "\ud800", "_", "'", "-",
              "!", "\u200d", "\U0001f600", " ", "  "]
    for _ in range(30000):
        text = "".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randrange(1, 6)))
        assert junk_rule(text) == plain_junk_rule(text), repr(text)


def test_kept_non_ascii_letters_stay_non_ascii_letters() -> None:
    """Every letter the generic shortcut trusts normalises to a non-ASCII letter: alone, in
    every precomposed form built on its base, and before any combining mark."""
    kept = [chr(c) for c in range(0x30000) if textfilter._KEPT_NON_ASCII_LETTER.match(chr(c))]
    assert len(kept) > 30000

    def keeps_one(text: str) -> bool:
        return any(not c.isascii() and c.isalpha() for c in normalize(text))

    assert [c for c in kept if not keeps_one(c)] == []
    bases = {unicodedata.normalize("NFD", c)[0] for c in kept}
    composites = [chr(p) for p in range(0x30000) if re.fullmatch(r"[0-9A-F]+ [0-9A-F]+", unicodedata.decomposition(chr(p)))]
    firsts = {chr(int(unicodedata.decomposition(p).split()[0], 16)) for p in composites}
    assert not any(chr(int(unicodedata.decomposition(p).split()[1], 16)) in kept for p in composites)
    assert [p for p in composites if unicodedata.normalize("NFD", p)[0] in bases and not keeps_one(p)] == []
    marks = [chr(c) for c in range(0x300, 0x30000) if unicodedata.combining(chr(c))] + [chr(c) for c in range(0x1160, 0x1200)]
    composing = [c for c in kept if unicodedata.decomposition(c) or c in firsts] + kept[::211]
    assert [(c, m) for c in composing for m in marks if not keeps_one(c + m)] == []
