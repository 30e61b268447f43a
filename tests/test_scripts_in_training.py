"""The trainer and `wit eval` take captions and class names in every script the shards hold."""

from __future__ import annotations

import unicodedata

import pytest

pytest.importorskip("tokenizers")

from train.evaluate import caption_label_fn  # noqa: E402
from train.tokenizer import byte_tokenizer, train_bpe  # noqa: E402

CAPTIONS = [
    "一只黑色的小猫在草地上睡觉",  # zh, no spaces
    "草の上で眠っている黒い子猫",  # ja, kanji and kana
    "قطة سوداء صغيرة تنام على العشب",  # ar, right to left
    "แมวดำตัวเล็กนอนหลับอยู่บนหญ้า",  # th, no spaces, combining vowel marks
    "a small black cat asleep on the grass",
    "eine kleine schwarze Katze schläft",
]


@pytest.mark.parametrize("make", [lambda: train_bpe(CAPTIONS * 20, vocab_size=400), byte_tokenizer])
def test_every_script_round_trips_without_unknown_tokens(make):
    tok = make()
    ids = tok.encode(CAPTIONS, context_length=200)
    assert int(ids.max()) < tok.vocab_size
    for caption, row in zip(CAPTIONS, ids.tolist()):
        body = row[1:row.index(tok.eot_id)]
        # nothing became an unknown token: the text comes back, as the tokenizer normalises it (NFKC, lower)
        assert body and tok.decode(body) == unicodedata.normalize("NFKC", caption).lower()
    unseen = "猫とคนที่ไม่เคยเห็น 🐈"  # characters the BPE never saw still encode, as bytes
    assert tok.decode([i for i in tok.encode([unseen], 64)[0].tolist() if i > 2]) == unseen


def test_class_names_in_any_language():
    label = caption_label_fn(["猫", "ねこ", "قطة", "แมว", "Katze", "cat"])
    assert label({"text": "一只黑色的小猫在草地上睡觉"}) == frozenset({0})
    assert label({"text": "かわいいねこです"}) == frozenset({1})
    assert label({"text": "قطة سوداء صغيرة"}) == frozenset({2})
    assert label({"text": "แมวดำตัวเล็ก"}) == frozenset({3})
    assert label({"text": "eine kleine schwarze Katze"}) == frozenset({4})
    assert label({"text": "concatenate"}) is None  # Latin names stay whole words
    assert label({"text": "猫 and cat"}) is None  # two classes: not guessed
