"""`wit harvest --allowlist FOLDER`: per-language matching and thresholds, end to end on generated crawls."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from beam_jobs import harvest
from queries import __file__ as queries_init
from wit_pipeline.core import keys, parquet_io, schema
from wit_pipeline.core.outputs import STATS
from wit_pipeline.core.stats import check_stages
from wit_pipeline.stages import language_t
from wit_pipeline.stages.balance import cap_kept
from wit_pipeline.synthetic import worldwide
from wit_pipeline.synthetic.generate import generate_crawl
from wit_pipeline.text.allowlist import write_allowlist
from wit_pipeline.text.languages import lid_to_wiki

QUERIES = Path(queries_init).parent
LANGUAGES = ("ar", "de", "en", "ja", "zh")


def _run(wat_glob: str, out: Path, allowlist: Path, *extra: str) -> dict:
    argv = ["--input", wat_glob, "--output", str(out), "--allowlist", str(allowlist), "--num-shards", "2", "--no-progress",
            *extra]
    assert harvest.run(argv) == 0
    return json.loads((out / STATS).read_text())


def _rows(folder: Path, what: str, table_schema) -> list[dict]:
    path = folder / what
    return parquet_io.read_table(str(path / "*.parquet") if path.is_dir() else str(path), table_schema).to_pylist()


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((folder / "selected").glob("*.parquet"))}


@pytest.mark.parametrize("mode", ["prob", "cap"])
def test_a_folder_holding_only_en_tsv_changes_nothing(crawl, tmp_path, mode):
    """The English-only result of a folder with en.tsv alone is today's, byte for byte."""
    english = tmp_path / "en.tsv"
    shutil.copyfile(QUERIES / "demo_allowlist.tsv", english)
    folder = tmp_path / "lists"
    folder.mkdir()
    shutil.copyfile(english, folder / "en.tsv")
    one = _run(crawl.wat_glob, tmp_path / "file", english, "--balance", mode, "--t", "3")
    two = _run(crawl.wat_glob, tmp_path / "folder", folder, "--balance", mode, "--t", "3")
    assert one["stages"] == two["stages"]
    assert _digests(tmp_path / "file") == _digests(tmp_path / "folder") != {}
    cand = [_rows(tmp_path / d, "candidates", schema.CANDIDATES) for d in ("file", "folder")]
    assert sorted(map(str, cand[0])) == sorted(map(str, cand[1]))
    counts = [_rows(tmp_path / d, "query_counts.parquet", schema.QUERY_COUNTS) for d in ("file", "folder")]
    assert {r.pop("language") for r in counts[0]} == {None} and {r.pop("language") for r in counts[1]} == {"en"}
    assert counts[0] == counts[1]
    assert (one["p"], one["t_per_language"]) == (None, {})
    assert two["t_per_language"] == {"en": 3} and 0 < two["p"] < 1


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    truth = generate_crawl(root / "crawl", "http://127.0.0.1:9", seed=2, pages=30, worldwide=True)
    folder = root / "lists"
    folder.mkdir()
    shutil.copyfile(QUERIES / "demo_allowlist.tsv", folder / "en.tsv")
    for lang in worldwide.LANGUAGES:
        write_allowlist(str(folder / f"{lang}.tsv"), worldwide.concept_rows(lang))
    return root, folder, truth, str(root / "crawl" / "crawl" / "wat" / "*.wat.gz")


def _query_languages(folder: Path) -> list[str]:
    from wit_pipeline.text.allowlist_folder import load_folder

    return load_folder(str(folder)).languages()


@pytest.mark.parametrize("mode", ["prob", "cap"])
def test_worldwide_harvest(world, tmp_path, mode):
    root, folder, truth, wat_glob = world
    doc = _run(wat_glob, tmp_path / "out", folder, "--languages", "all", "--balance", mode, "--t", "4")
    check_stages(doc["stages"])
    by = {s["name"]: s for s in doc["stages"]}
    # French and Spanish captions (the crawl's non-English category) have no list: counted, never matched
    assert by["filter"]["dropped"]["no_allowlist_for_language"] > 0
    assert "wrong_language" not in by["filter"]["dropped"]  # --languages all
    languages = _query_languages(folder)
    candidates = _rows(tmp_path / "out", "candidates", schema.CANDIDATES)
    assert {c["language"] for c in candidates} == set(LANGUAGES)
    for c in candidates:  # matched only against the list of its own language
        assert {languages[q] for q in c["query_ids"]} == {lid_to_wiki(c["language"])}, c
    chinese = [c for c in candidates if c["language"] == "zh"]
    assert chinese and all(" " not in c["text"] for c in chinese)  # unspaced text, matched by substring

    counts = _rows(tmp_path / "out", "query_counts.parquet", schema.QUERY_COUNTS)
    assert all(r["language"] == languages[r["query_id"]] for r in counts)
    matched = {r["query_id"]: r["count"] for r in counts}
    expected = language_t.thresholds(matched, languages, 4)
    assert doc["p"] == pytest.approx(expected["p"]) and doc["t_per_language"] == expected["t_per_language"]
    assert set(doc["t_per_language"]) == set(LANGUAGES) and doc["t_per_language"]["en"] == 4
    t_of = expected["t_by_query"]

    # the selection is the per-language rule, a function of (key, query, seed) only
    unique = {c["key"]: c["query_ids"] for c in candidates}
    selected = {r["key"] for r in _rows(tmp_path / "out", "selected", schema.SELECTED)}
    if mode == "prob":
        want = {k for k, ids in unique.items()
                if any(matched[q] <= t_of[q] or keys.uniform(k, q, 0) < t_of[q] / matched[q] for q in ids)}
        assert selected == want
    else:
        assert all(r["kept"] == cap_kept(r["count"], t_of[r["query_id"]]) for r in counts)
        assert any(r["kept"] != cap_kept(r["count"], 4) for r in counts)  # some language's t is not English's


def test_a_language_kept_without_a_list_is_a_counted_drop(world, tmp_path):
    _, folder, _, wat_glob = world
    only = tmp_path / "only-en"
    only.mkdir()
    shutil.copyfile(folder / "en.tsv", only / "en.tsv")
    doc = _run(wat_glob, tmp_path / "out", only, "--languages", "en,zh,ja")
    by = {s["name"]: s for s in doc["stages"]}
    dropped = by["filter"]["dropped"]
    assert dropped["no_allowlist_for_language"] > 0 and dropped["wrong_language"] > 0
    assert {c["language"] for c in _rows(tmp_path / "out", "candidates", schema.CANDIDATES)} == {"en"}


@pytest.mark.parametrize("files, message", [
    ({"en.tsv": "query\tsource\tstat\n"}, "no queries"),
    ({"en.tsv": "query\tsource\tstat\ncat\tu\t1\n", "klingon.tsv": "query\tsource\tstat\nqa\tu\t1\n"},
     "klingon.tsv: 'klingon' is not a Wikipedia language code"),
    ({"de.tsv": "query\tsource\nKatze\tu\n"}, "de.tsv: header must be"),
    ({"notes.txt": "x"}, "holds no <code>.tsv"),
])
def test_bad_folders_are_one_line_before_any_work(world, tmp_path, capsys, files, message):
    _, _, _, wat_glob = world
    folder = tmp_path / "lists"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        harvest.run(["--input", wat_glob, "--output", str(out), "--allowlist", str(folder), "--languages", "all"])
    said = str(exc.value.code) + capsys.readouterr().err
    assert exc.value.code != 0 and message in said and "\n" not in said.strip(), said
    assert not out.exists()


def test_languages_all_stands_alone(world, tmp_path, capsys):
    _, folder, _, wat_glob = world
    with pytest.raises(SystemExit) as exc:
        harvest.run(["--input", wat_glob, "--output", str(tmp_path / "o"), "--allowlist", str(folder), "--languages", "all,en"])
    assert exc.value.code == 2 and "--languages all stands alone" in capsys.readouterr().err
