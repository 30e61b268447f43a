"""Alt-text cleaning and the drop rules."""

from __future__ import annotations

import random

import pytest

from wit_pipeline.text.textfilter import GENERIC_WORDS, clean_text, drop_reason, junk_rule
from wit_pipeline.text.textnorm import tokens


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
