"""The allowlist TSV: strict reading (ids are row indexes), atomic writing, fsspec URLs."""

from __future__ import annotations

import pytest

from wit_pipeline.text.allowlist import Allowlist, load_allowlist, parse_allowlist, write_allowlist


def test_round_trip_keeps_ids_sources_and_stats(tmp_path):
    rows = [("red", "unigram", 1200), ("red circle", "bigram", 31.5), ("circle", "wordnet", None),
            ('Say "cheese"', "title", 70.0), ("don't\u2028stop", "title", 3)]
    url = str(tmp_path / "sub" / "allow.tsv")
    assert write_allowlist(url, rows) == 5
    allow = load_allowlist(url)
    assert len(allow) == 5
    assert allow.queries == ["red", "red circle", "circle", 'Say "cheese"', "don't\u2028stop"]
    assert allow.sources == ["unigram", "bigram", "wordnet", "title", "title"]
    assert allow.stats == [1200.0, 31.5, None, 70.0, 3.0]
    assert (tmp_path / "sub" / "allow.tsv").read_text(encoding="utf-8").splitlines()[:3] == [
        "query\tsource\tstat", "red\tunigram\t1200", "red circle\tbigram\t31.5"]
    # Writing an Allowlist back gives the same bytes.
    again = str(tmp_path / "again.tsv")
    write_allowlist(again, allow)
    assert (tmp_path / "again.tsv").read_bytes() == (tmp_path / "sub" / "allow.tsv").read_bytes()
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["allow.tsv"]  # no temp files left


def test_fsspec_url(tmp_path):
    write_allowlist("memory://wit-test/allow.tsv", [("cat", "unigram", 5)])
    assert load_allowlist("memory://wit-test/allow.tsv") == Allowlist(["cat"], ["unigram"], [5.0])


def test_crlf_bom_and_trailing_newline_are_tolerated():
    allow = parse_allowlist("\ufeffquery\tsource\tstat\r\ncat\tunigram\t1\r\ndog\tunigram\t\r\n")
    assert allow.queries == ["cat", "dog"] and allow.stats == [1.0, None]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "header must be"),
        ("query\tsource\n", "header must be"),
        ("q\tsource\tstat\ncat\tunigram\t1\n", "header must be"),
        ("query\tsource\tstat\ncat\tunigram\n", "line 2: expected 3 tab-separated fields, got 2"),
        ("query\tsource\tstat\ncat\tunigram\t1\tx\n", "line 2: expected 3 tab-separated fields, got 4"),
        ("query\tsource\tstat\ncat\tunigram\t1\n\tunigram\t1\n", "line 3: query '' is empty"),
        ("query\tsource\tstat\n?!\tunigram\t1\n", "line 2: query '?!' is empty after normalisation"),
        ("query\tsource\tstat\ncat\tunigram\tlots\n", "line 2: stat 'lots' is not a number"),
        ("query\tsource\tstat\nNew York\ttitle\t9\nnew-york\tbigram\t40\n",
         "line 3: query 'new-york' duplicates line 2 ('New York') after normalisation to 'new york'"),
    ],
)
def test_bad_files_are_clear_errors(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        parse_allowlist(text)


def test_duplicates_by_rule():
    text = "query\tsource\tstat\nNew York\ttitle\t9\nnew-york\tbigram\t40\n"
    assert parse_allowlist(text, allow_duplicates=True).queries == ["New York", "new-york"]
    # Case-sensitive normal forms differ only in case here, so they are not duplicates.
    assert len(parse_allowlist("query\tsource\tstat\nApple\ttitle\t1\napple\tunigram\t2\n", case_sensitive=True)) == 2
    with pytest.raises(ValueError, match="duplicates line 2"):
        parse_allowlist("query\tsource\tstat\nApple\ttitle\t1\napple\tunigram\t2\n")


def test_write_rejects_fields_that_would_shift_columns(tmp_path):
    with pytest.raises(ValueError, match="contains a tab or newline"):
        write_allowlist(str(tmp_path / "a.tsv"), [("red\tcircle", "bigram", 1)])
    with pytest.raises(ValueError, match="not a number"):
        write_allowlist(str(tmp_path / "a.tsv"), [("red", "unigram", "many")])
    assert not list(tmp_path.iterdir())


def test_bundled_demo_allowlist_is_strictly_valid():
    from queries import DEMO_ALLOWLIST
    from wit_pipeline.text.matcher import QueryMatcher

    allow = load_allowlist(DEMO_ALLOWLIST)  # no duplicates, no empty queries, numeric stats
    assert len(allow) > 100
    assert set(allow.sources) <= {"unigram", "bigram", "title", "wordnet"}
    matcher = QueryMatcher.from_file(DEMO_ALLOWLIST)
    assert matcher.size == len(allow)
    assert allow.queries.index("red") in matcher.match("A RED thing")


def test_demo_names_the_bundled_list_wherever_it_runs():
    """`--allowlist demo` travels to Dataflow workers as a name, not as the launcher's path."""
    from queries import DEMO_ALLOWLIST
    from wit_pipeline.text.allowlist import DEMO, resolve

    assert resolve(DEMO) == DEMO_ALLOWLIST and resolve("gs://b/list.tsv") == "gs://b/list.tsv"
    assert load_allowlist(DEMO).queries == load_allowlist(DEMO_ALLOWLIST).queries


def test_a_megabyte_line_makes_a_short_error():
    line = "x" * 10**6  # one field: the wrong number of fields
    with pytest.raises(ValueError) as info:
        parse_allowlist(f"query\tsource\tstat\n{line}\n")
    message = str(info.value)
    assert "line 2" in message and "1000000 characters" in message and len(message) < 300
    with pytest.raises(ValueError) as info:
        parse_allowlist(f"{line}\ncat\tunigram\t1\n")
    assert "header must be" in str(info.value) and len(str(info.value)) < 300


def test_non_utf8_allowlist_names_its_file_and_line(tmp_path):
    path = tmp_path / "allow.tsv"
    path.write_bytes(b"query\tsource\tstat\ncat\tunigram\t1\nbad\xff\tunigram\t2\n")
    with pytest.raises(ValueError, match=r"allow\.tsv line 3: not UTF-8 \(byte 0xff"):
        load_allowlist(str(path))


def test_a_header_only_allowlist_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no queries"):
        parse_allowlist("query\tsource\tstat\n")
    path = tmp_path / "allow.tsv"
    path.write_text("query\tsource\tstat\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"allow\.tsv: no queries"):
        load_allowlist(str(path))
