"""The LID label -> Wikipedia language table and the folding of variants."""

from __future__ import annotations

import re

import pytest

from wit_pipeline.text import languages
from wit_pipeline.text.langid import LanguageIdentifier, default_model_path


def test_table_covers_the_models_labels():
    with open(default_model_path(), "rb") as f:
        in_model = {m.decode() for m in re.findall(rb"__label__([a-z_]+)", f.read())}
    assert in_model == set(languages.LID176_LABELS)
    assert len(languages.LID176_TO_WIKI) == 175  # all but lrc


@pytest.mark.parametrize("label, code", [
    ("en", "en"), ("__label__de", "de"), ("zh", "zh"), ("ja", "ja"), ("th", "th"), ("ar", "ar"),
    ("yue", "zh"),  # Cantonese: zh_yue, a variant of zh
    ("cbk", "cbk_zam"),  # Chavacano's Wikipedia code
    ("wuu", "wuu"),  # Wu has its own Wikipedia
    ("lrc", None), ("xx", None), ("", None),
])
def test_lid_to_wiki(label, code):
    assert languages.lid_to_wiki(label) == code


@pytest.mark.parametrize("code, base", [
    ("zh_yue", "zh"), ("zh_classical", "zh"), ("zh_min_nan", "zh"), ("be_tarask", "be"), ("nds_nl", "nds"),
    ("simple", "en"), ("cbk_zam", "cbk_zam"), ("roa_rup", "roa_rup"), ("en", "en"),
])
def test_base_code_folds_variants(code, base):
    assert languages.base_code(code) == base


def test_unknown_code_is_an_error():
    with pytest.raises(ValueError, match="not a Wikipedia language code"):
        languages.base_code("english")


def test_model_labels_map_through_the_table():
    lid = LanguageIdentifier()
    for text, code in [("这是一只在草地上睡觉的黑色小猫", "zh"), ("草の上で眠っている黒い子猫の写真です", "ja"),
                       ("قطة سوداء صغيرة تنام على العشب الأخضر", "ar"), ("ein kleines schwarzes Kätzchen schläft im Gras", "de")]:
        assert languages.lid_to_wiki(lid.predict(text)[0]) == code
