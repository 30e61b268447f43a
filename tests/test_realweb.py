"""A harvest of a generated crawl with real-web pages (gen-crawl --real-web) yields the text
and URL a browser shows: every encoding label family, lazy images, normalisation cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from beam_jobs import harvest
from wit_pipeline.core import parquet_io, schema, stats
from wit_pipeline.core.outputs import STATS
from wit_pipeline.stages.harvest import outputs
from wit_pipeline.synthetic import realweb
from wit_pipeline.synthetic.generate import generate_crawl
from wit_pipeline.text import textnorm
from wit_pipeline.text.allowlist import DEMO, load_allowlist
from wit_pipeline.text.langid import LanguageIdentifier


@pytest.fixture(scope="module")
def real_crawl(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("realweb")
    return root, generate_crawl(root, "http://127.0.0.1:9", seed=5, pages=8, imgs_per_page=4, files=2, real_web=True)


def _harvest(root: Path, kind: str, out: Path, languages: str) -> tuple[dict, dict[tuple[str, str], list[int]]]:
    argv = ["--input", str(root / "crawl" / kind / "*.gz"), "--output", str(out), "--languages", languages,
            "--min-lang-score", "0", "--num-shards", "1"]
    assert harvest.run(argv) == 0
    doc = json.loads((out / STATS).read_text())
    table = parquet_io.read_table(str(out / "candidates" / "*.parquet"), schema.CANDIDATES)
    rows = table.to_pylist()
    return doc, {(r["url"], r["text"]): r["query_ids"] for r in rows}


@pytest.fixture(scope="module")
def runs(real_crawl, tmp_path_factory):
    root, truth = real_crawl
    # The encoded pages mix a caption with text in their own script: keep whatever language
    # LID gives the planted texts, so what is tested is extraction and matching.
    lid = LanguageIdentifier()
    languages = ",".join(sorted({lid.predict(x["text"])[0] for x in truth["real_web"]["links"]} | {"en"}))
    return {kind: _harvest(root, kind, tmp_path_factory.mktemp(f"harvest_{kind}"), languages)
            for kind in ("warc", "wat")}


def test_truth_counts_what_was_planted(real_crawl) -> None:
    root, truth = real_crawl
    rw = truth["real_web"]
    assert rw["counts"] == {
        "pages": len(realweb.ENCODINGS) + 2,
        "img_links": len(realweb.ENCODINGS) + len(realweb.LAZY) + len(realweb.NORMALISATION),
        "by_kind": {"encoding": len(realweb.ENCODINGS), "lazy": len(realweb.LAZY),
                    "normalisation": len(realweb.NORMALISATION)},
    }
    assert all((root / page["path"]).is_file() for page in rw["pages"])
    # The bytes on disk are not UTF-8 where the page says otherwise: decoding is really tested.
    assert sum(1 for page in rw["pages"] if not _is_utf8((root / page["path"]).read_bytes())) >= 9


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_harvest_of_warc_gives_what_a_browser_shows(real_crawl, runs) -> None:
    _, truth = real_crawl
    doc, candidates = runs["warc"]
    stats.check_stages(doc["stages"], outputs.CHAINED)
    queries = {q: i for i, q in enumerate(load_allowlist(DEMO).queries)}
    for link in truth["real_web"]["links"]:
        ids = candidates.get((link["url"], link["text"]))
        assert ids is not None, link
        assert {queries[q] for q in link["queries"]} <= set(ids), link  # e.g. "Red™" matches "red"
    lazy = sum(1 for link in truth["real_web"]["links"] if link["kind"] == "lazy")
    assert lazy and sum(doc["url_from"].values()) >= lazy  # stats.json says where those URLs came from


def test_harvest_of_wat_gives_what_common_crawl_recorded(real_crawl, runs) -> None:
    """WAT input: the page's text is right when Common Crawl decoded it (its latin-1 reading of
    windows-1252 is undone), but lazy images are lost: only `src` was recorded."""
    _, truth = real_crawl
    doc, candidates = runs["wat"]
    stats.check_stages(doc["stages"], outputs.CHAINED)
    links = truth["real_web"]["links"]
    for link in links:
        found = (link["url"], link["text"]) in candidates
        assert found == (link["kind"] != "lazy"), link
    assert any("\x92" in link["wat_text"] for link in links)  # the WAT really held C1 characters
    assert doc["url_from"] == {}  # WAT records only `src`
    spacer = [x for x in candidates if x[0].endswith(realweb._SPACER)]
    assert len(spacer) == sum(1 for x in links if x["wat_src"] == realweb._SPACER)


def test_normalisation_cases_match_their_queries_by_textnorm() -> None:
    for template in realweb.NORMALISATION:
        text = template.format(C="Red", c="red", s="circle")
        assert {"red", "circle"} <= set(textnorm.tokens(text)), text


def test_real_web_crawl_is_byte_reproducible(tmp_path) -> None:
    for name in ("a", "b"):
        generate_crawl(tmp_path / name, "http://127.0.0.1:9", seed=1, pages=4, imgs_per_page=2, files=1, real_web=True)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files and all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
