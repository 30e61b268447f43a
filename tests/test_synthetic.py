"""The generated crawl: deterministic, parseable by warcio, and exactly what truth.json says."""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin

import pytest
from PIL import Image
from selectolax.lexbor import LexborHTMLParser
from warcio.archiveiterator import ArchiveIterator

from queries import DEMO_ALLOWLIST
from wit_pipeline.synthetic import corruptions
from wit_pipeline.synthetic.concepts import COLOURS, SHAPES, TEXTURES, all_concepts
from wit_pipeline.synthetic.generate import (
    eval_image,
    generate_crawl,
    render_eval_set,
    run,
    write_concept_shards,
)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _records(path: str) -> list[tuple[object, bytes]]:
    with open(path, "rb") as f:
        return [(r, r.content_stream().read()) for r in ArchiveIterator(f)]


def _response_is_whole(record, payload: bytes) -> bool:
    declared = record.http_headers.get_header("Content-Length") if record.http_headers else None
    return declared is not None and len(payload) == int(declared)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    base = "http://127.0.0.1:9"
    a = generate_crawl(tmp_path / "a", base, seed=3, pages=12)
    b = generate_crawl(tmp_path / "b", base, seed=3, pages=12)
    c = generate_crawl(tmp_path / "c", base, seed=4, pages=12)
    assert c != a  # another seed plants other things
    da, db, dc = _digests(tmp_path / "a"), _digests(tmp_path / "b"), _digests(tmp_path / "c")
    assert a == b
    assert da == db
    assert len(da) == a["counts"]["image_files"] + 12 + 2 * 3 + 2  # images, pages, WARC + WAT, truth, robots.txt
    warcs = [k for k in da if k.startswith("crawl/")]
    assert all(da[k] != dc.get(k) for k in warcs)


def test_warc_files_parse_and_hold_what_truth_counts(crawl):
    truth = crawl.truth
    files = sorted(glob.glob(crawl.warc_glob))
    assert [str(Path(f).relative_to(crawl.root)) for f in files] == truth["warc_files"]
    types: Counter[str] = Counter()
    imgs, alts = 0, 0
    for path in files:
        records = _records(path)
        assert records[0][0].rec_type == "warcinfo"
        truncated = str(Path(path).relative_to(crawl.root)) == truth["truncated"]["warc"]
        for i, (rec, payload) in enumerate(records):
            last_of_truncated = truncated and i == len(records) - 1
            if rec.rec_type == "response":
                if last_of_truncated:  # warcio yields the cut record with a short payload
                    assert not _response_is_whole(rec, payload)
                    assert rec.rec_headers.get_header("WARC-Target-URI") == truth["truncated"]["page_url"]
                    continue
                assert _response_is_whole(rec, payload)
                tree = LexborHTMLParser(payload.decode("utf-8"))
                for img in tree.css("img"):
                    imgs += 1
                    alts += bool(img.attributes.get("alt"))
            types[rec.rec_type] += 1
    assert dict(types) == truth["counts"]["warc_records"]
    assert imgs == truth["counts"]["img_links"] == 400
    assert alts == truth["counts"]["img_with_alt"]


def test_wat_files_parse_and_links_match_truth(crawl):
    truth = crawl.truth
    files = sorted(glob.glob(crawl.wat_glob))
    assert [str(Path(f).relative_to(crawl.root)) for f in files] == truth["wat_files"]
    described: Counter[str] = Counter()
    warcinfos, bad_json = 0, 0
    found: Counter[tuple] = Counter()
    a_links = 0
    for path in files:
        records = _records(path)
        truncated = str(Path(path).relative_to(crawl.root)) == truth["truncated"]["wat"]
        for i, (rec, payload) in enumerate(records):
            if rec.rec_type == "warcinfo":
                warcinfos += 1
                continue
            assert rec.rec_headers.get_header("Content-Type") == "application/json"
            try:
                doc = json.loads(payload)
            except json.JSONDecodeError:
                assert truncated and i == len(records) - 1, f"unparseable WAT record {i} in {path}"
                bad_json += 1
                continue
            env = doc["Envelope"]
            described[env["WARC-Header-Metadata"]["WARC-Type"]] += 1
            html = env["Payload-Metadata"].get("HTTP-Response-Metadata", {}).get("HTML-Metadata")
            if html is None:
                continue
            page = env["WARC-Header-Metadata"]["WARC-Target-URI"]
            for link in html["Links"]:
                if link["path"] == "IMG@/src":
                    found[(page, link["url"], link.get("alt"), link.get("title"))] += 1
                else:
                    assert link["path"] == "A@/href"
                    a_links += 1
    assert bad_json == 1
    assert warcinfos == truth["counts"]["wat_records"]["warcinfo"] == 3
    assert sum(described.values()) == truth["counts"]["wat_records"]["metadata"]
    assert dict(described) == truth["counts"]["wat_metadata_by_warc_type"]
    assert a_links == truth["counts"]["a_links"]
    expected = Counter((x["page"], x["src"], x["alt"], x["title"]) for x in truth["links"])
    assert found == expected


def test_offsets_in_wat_point_at_warc_records(crawl):
    wat = sorted(glob.glob(crawl.wat_glob))[0]
    warc = crawl.root / crawl.truth["warc_files"][0]
    data = warc.read_bytes()
    for rec, payload in _records(wat)[1:6]:
        c = json.loads(payload)["Container"]
        with io.BytesIO(data[int(c["Offset"]):]) as f:
            first = next(iter(ArchiveIterator(f)))
            assert first.rec_headers.get_header("WARC-Record-ID") == rec.rec_headers.get_header("WARC-Refers-To")


def test_truth_categories_are_planted_as_counted(crawl):
    t = crawl.truth
    c = t["counts"]
    links = t["links"]
    assert sum(c["by_category"].values()) == sum(c["by_url_form"].values()) == sum(c["by_expect"].values()) == 400
    assert c["by_lang"] == {"de": 4, "es": 4, "fr": 4, "zh": 4}
    assert c["by_expect"]["private_address"] == 3 and c["by_expect"]["decompression_bomb"] == 1
    # Every local link's src resolves, from its page, to its absolute URL.
    for x in links:
        if x["url_form"] in ("absolute", "relative_parent", "relative_root", "protocol_relative"):
            assert urljoin(x["page"], x["src"]) == x["url"], x
    # Files exist exactly for what the server should find.
    for x in links:
        on_disk = x["url"] is not None and x["url"].startswith(crawl.base_url) and \
            (crawl.root / x["url"][len(crawl.base_url) + 1:]).is_file()
        assert on_disk == (x["expect"] in ("ok", "noai", "decode_error", "decompression_bomb")), x
    # Repeated pairs: 4 pairs on 3 distinct pages each.
    rep = Counter((x["url"], x["alt"]) for x in links if x["category"] == "repeated")
    assert len(rep) == len(t["repeated_pairs"]) == 4 and set(rep.values()) == {3}
    assert all(len({x["page"] for x in links if (x["url"], x["alt"]) == pair}) == 3 for pair in rep)
    # Exact duplicates share bytes, near duplicates do not; both have distinct captions per group.
    for group in t["exact_dup_groups"]:
        assert len({t["images"][u[len(crawl.base_url) + 1:]]["sha256"] for u in group}) == 1
    for group in t["near_dup_groups"]:
        assert len(group) == 4 and len({t["images"][u[len(crawl.base_url) + 1:]]["sha256"] for u in group}) == 4
    for cat in ("exact_dup", "near_dup"):
        by_group: dict[str, set[str]] = {}
        for x in links:
            if x["category"] == cat:
                by_group.setdefault(x["group"], set()).add(x["alt"])
        assert all(len(alts) == (3 if cat == "exact_dup" else 4) for alts in by_group.values())
    # Leaked eval images are byte-identical to the eval set's.
    concepts = {cc.name: cc for cc in all_concepts()}
    for leak in t["eval_leak"]:
        label, k = map(int, leak["eval_id"].split("-"))
        data = (crawl.root / leak["url"][len(crawl.base_url) + 1:]).read_bytes()
        assert data == eval_image(all_concepts()[label], k)
        assert concepts[t["images"][leak["url"][len(crawl.base_url) + 1:]]["concept"]] == all_concepts()[label]


def test_bad_images_are_bad_and_good_ones_decode(crawl):
    t = crawl.truth
    kinds = Counter(v["kind"] for v in t["images"].values())
    assert kinds["truncated_jpeg"] == 4 and kinds["random_bytes"] == 4 and kinds["decompression_bomb"] == 1
    for path, meta in sorted(t["images"].items()):
        data = (crawl.root / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"]
        if meta["kind"] == "ok":
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                assert im.size == (meta["width"], meta["height"])
        elif meta["kind"] == "decompression_bomb":
            with pytest.raises(Image.DecompressionBombError):
                Image.open(io.BytesIO(data))
            assert len(data) < 200_000
        else:
            with pytest.raises((OSError, SyntaxError)):
                with Image.open(io.BytesIO(data)) as im:
                    im.load()


def _get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), b""


def test_server_serves_images_404s_and_noai(crawl):
    by_expect: dict[str, dict] = {}
    for x in crawl.truth["links"]:
        by_expect.setdefault(x["expect"], x)
    ok = by_expect["ok"]
    status, headers, body = _get(ok["url"])
    assert status == 200 and body == (crawl.root / ok["image"]).read_bytes()
    assert "X-Robots-Tag" not in headers
    assert _get(by_expect["http_404"]["url"])[0] == 404
    status, headers, _ = _get(by_expect["noai"]["url"])
    assert status == 200 and headers["X-Robots-Tag"] == "noai"
    status, _, body = _get(crawl.truth["links"][0]["page"])
    assert status == 200 and b"<img" in body


def test_cli_small_crawl(tmp_path, capsys):
    assert run(["--out", str(tmp_path), "--base-url", "http://127.0.0.1:1/prefix", "--pages", "3", "--files", "2"]) == 0
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["counts"]["pages"] == 3 and len(truth["warc_files"]) == 2
    assert truth["counts"]["by_category"]["clean"] == 3  # specials exceed 30 links: one clean per page
    assert all(x["url"].startswith("http://127.0.0.1:1/prefix/") for x in truth["links"] if x["url_form"] != "absolute"
               and x["url"])
    assert "3 pages" in capsys.readouterr().out
    with pytest.raises(ValueError, match="base_url"):
        generate_crawl(tmp_path / "x", "ftp://nope")


def test_eval_set_and_concept_shards(tmp_path):
    doc = render_eval_set(tmp_path / "eval", n_per_concept=1)
    assert len(doc["items"]) == len(doc["classes"]) == len(all_concepts())
    assert json.loads((tmp_path / "eval" / "labels.json").read_text()) == doc
    first = tmp_path / "eval" / doc["items"][0]["path"]
    assert first.read_bytes() == eval_image(all_concepts()[0], 0)

    import webdataset as wds

    a = write_concept_shards(tmp_path / "a", n_samples=10, shard_size=4)
    b = write_concept_shards(tmp_path / "b", n_samples=10, shard_size=4)
    assert [Path(p).name for p in a] == ["00000.tar", "00001.tar", "00002.tar"]
    assert [Path(p).read_bytes() for p in a] == [Path(p).read_bytes() for p in b]
    samples = list(wds.WebDataset(a, shardshuffle=False).decode("pil"))
    assert len(samples) == 10
    s = samples[0]
    assert s["json"]["key"] == s["__key__"] and s["json"]["text"] == s["txt"] and s["jpg"].size == (64, 64)


def test_corruption_helpers():
    assert corruptions.truncate_tail(b"abcdefgh", 4) == b"abcdef"
    with pytest.raises(ValueError):
        corruptions.truncated(b"xyz", keep=1.0)


def test_demo_allowlist():
    with open(DEMO_ALLOWLIST, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows[0] == ["query", "source", "stat"]
    queries = [r[0] for r in rows[1:]]
    assert len(queries) == len(set(queries)) > 500
    assert {r[1] for r in rows[1:]} == {"unigram", "bigram", "title", "wordnet"}
    assert all(float(r[2]) >= 0 for r in rows[1:])
    assert set(COLOURS) | set(SHAPES) | set(TEXTURES) <= set(queries)
    assert "red circle" in queries and "checkered pattern" in queries


def test_off_topic_alts_are_english_and_match_no_demo_query(crawl):
    from wit_pipeline.synthetic.generate import OFF_TOPIC_ALTS
    from wit_pipeline.text.langid import LanguageIdentifier
    from wit_pipeline.text.matcher import QueryMatcher

    matcher, lid = QueryMatcher.from_file(DEMO_ALLOWLIST), LanguageIdentifier(None)
    assert matcher.match_many(list(OFF_TOPIC_ALTS)) == [[] for _ in OFF_TOPIC_ALTS]
    for alt in OFF_TOPIC_ALTS:
        language, score = lid.predict(alt)
        assert language == "en" and score >= 0.3, (alt, language, score)  # the harvest's default bar
    planted = [x for x in crawl.truth["links"] if x["category"] == "off_topic"]
    assert len(planted) == crawl.truth["counts"]["by_category"]["off_topic"] == 4
    assert {x["alt"] for x in planted} <= set(OFF_TOPIC_ALTS)
