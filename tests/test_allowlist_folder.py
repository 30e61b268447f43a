"""Allowlist folders: ids unique across languages, strict reading, matching by LID language."""

from __future__ import annotations

import pytest

from wit_pipeline.text.allowlist_folder import FolderMatcher, is_folder, load_folder

HEADER = "query\tsource\tstat\n"


def write(folder, files):
    folder.mkdir(exist_ok=True)
    for name, rows in files.items():
        (folder / name).write_text(HEADER + "".join(f"{q}\tunigram\t1\n" for q in rows), encoding="utf-8")
    return str(folder)


@pytest.fixture
def folder(tmp_path):
    return write(tmp_path / "lists", {"en.tsv": ["cat", "dog"], "zh.tsv": ["猫", "黑猫"], "zh_yue.tsv": ["貓"],
                                      "ja.tsv": ["猫", "ねこ"], "README.txt": []})


def test_ids_follow_sorted_codes(folder):
    lists = load_folder(folder)
    assert lists.codes == ("en", "ja", "zh", "zh_yue")
    assert lists.offsets == (0, 2, 4, 6)
    assert lists.queries == ["cat", "dog", "猫", "ねこ", "猫", "黑猫", "貓"]
    assert lists.languages() == ["en", "en", "ja", "ja", "zh", "zh", "zh"]
    assert is_folder(folder) and not is_folder(folder + "/en.tsv")


def test_a_text_is_matched_only_against_its_languages_list(folder):
    m = FolderMatcher.from_folder(folder)
    texts = ["a black cat", "一只黑猫在睡觉", "黒い猫とねこ", "貓", "un chat noir", "cat 猫"]
    labels = ["en", "zh", "ja", "yue", "fr", "en"]
    # zh text: zh's ids only (4, 5), never ja's 猫 (2); yue folds into zh, with zh_yue's list;
    # a French text has no list: None, not [].
    assert m.match_many(texts, labels) == [[0], [4, 5], [2, 3], [6], None, [0]]
    assert m.has_list("yue") and not m.has_list("fr")


def test_keep_limits_the_languages_built(folder):
    m = FolderMatcher.from_folder(folder, keep={"en"})
    assert m.match_many(["cat", "猫"], ["en", "zh"]) == [[0], None]


@pytest.mark.parametrize("files, message", [
    ({"en.tsv": []}, "no queries"),
    ({"english.tsv": ["cat"]}, "not a Wikipedia language code"),
    ({"notes.txt": []}, "holds no <code>.tsv"),
])
def test_bad_folders(tmp_path, files, message):
    with pytest.raises(ValueError, match=message):
        load_folder(write(tmp_path / "bad", files))


def test_unparsable_file(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "de.tsv").write_text("query\tsource\nKatze\tunigram\n", encoding="utf-8")
    with pytest.raises(ValueError, match="de.tsv: header must be"):
        load_folder(str(bad))
    (bad / "de.tsv").write_bytes(HEADER.encode() + b"Katze\xff\tunigram\t1\n")
    with pytest.raises(ValueError, match="de.tsv: not UTF-8"):
        load_folder(str(bad))
