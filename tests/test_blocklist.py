"""`wit curate --blocklist`: the file format, and a curate run that keeps listed images (by
sha256 of their bytes, or pHash within a distance) out of every shard, counted `blocklisted`."""

from __future__ import annotations

import hashlib
import json
import tarfile

import pytest
from test_curate import _read_all, make_raw

from beam_jobs import curate
from wit_pipeline.core.outputs import STATS
from wit_pipeline.image import blocklist, phash


def test_parse_kinds_distances_and_comments():
    text = ("# known-bad images\n\n"
            f"sha256 {'AB' * 32}\n"
            "phash 00000000000000ff\n"
            "PHASH ffff000000000000 0\n")
    bl = blocklist.parse(text)
    assert len(bl) == 3
    assert bl.blocks("ab" * 32, None)
    assert bl.blocks(None, "000000000000000f")  # 4 bits away: the default distance
    assert not bl.blocks(None, "00000000000f0000")
    assert bl.blocks(None, "ffff000000000000") and not bl.blocks(None, "ffff000000000001")  # distance 0: exact
    assert not bl.blocks("cd" * 32, "1234123412341234")


def test_a_bom_is_no_part_of_the_first_line(tmp_path):
    path = tmp_path / "bl.txt"
    path.write_bytes("\ufeffsha256 {}\n".format("a" * 64).encode())
    assert blocklist.load(str(path)).blocks("a" * 64, None)


def test_bytes_that_are_not_utf8_are_an_error_naming_their_line(tmp_path):
    path = tmp_path / "bl.txt"
    path.write_bytes(b"# list\n" * 3000 + b"sha256 \xff\n")
    with pytest.raises(ValueError, match=r"bl.txt line 3001: not UTF-8"):
        blocklist.load(str(path))


@pytest.mark.parametrize("line", ["md5 abcd", "sha256 xyz", f"sha256 {'a' * 63}", "phash 123", "phash " + "a" * 16 + " 99",
                                  "phash " + "a" * 16 + " -1", "phash " + "a" * 16 + " 2 3"])
def test_a_bad_line_is_an_error_naming_it(line):
    with pytest.raises(ValueError, match="line 2"):
        blocklist.parse(f"# ok\n{line}\n")


def test_curate_drops_blocklisted_images_and_never_writes_them(tmp_path):
    raw = make_raw(tmp_path)
    images = {}  # sample key -> image bytes, from the raw shards
    for tar_path in sorted(raw["raw"].glob("0000[01].tar")):
        with tarfile.open(tar_path) as tar:
            members = {m.name: m for m in tar.getmembers()}
            for name, m in members.items():
                if name.endswith(".json"):
                    key = json.loads(tar.extractfile(m).read())["sample_key"]
                    jpg = members.get(name[:-5] + ".jpg")
                    if jpg is not None:
                        images[key] = tar.extractfile(jpg).read()
    k = raw["keys"]
    listed = tmp_path / "blocklist.txt"
    listed.write_text("# test list\n"
                      f"sha256 {hashlib.sha256(images[k[0]]).hexdigest()}\n"  # 0 and its byte copy
                      f"phash {phash.to_hex(phash.phash64_bytes(images[k[2]])[0])} 2\n")
    out = tmp_path / "out"
    assert curate.run(["--input", str(raw["raw"]), "--output", str(out), "--allowlist", str(raw["allow"]),
                       "--seed", "5", "--max-pixels", "1000000", "--blocklist", str(listed)]) == 0
    written = {s["__key__"] for s in _read_all(out)}
    assert k[1] in written and not written & {k[0], k["exact"], k[2]}
    stats = json.loads((out / STATS).read_text())
    decode = {s["name"]: s for s in stats["stages"]}["decode"]
    assert decode["dropped"]["blocklisted"] == 3
    assert decode["in"] == decode["out"] + sum(decode["dropped"].values())


def test_a_malformed_blocklist_stops_curate_before_it_runs(tmp_path, capsys):
    raw = make_raw(tmp_path)
    bad = tmp_path / "bad.txt"
    bad.write_text("sha256 nothex\n")
    assert curate.run(["--input", str(raw["raw"]), "--output", str(tmp_path / "out"), "--allowlist", str(raw["allow"]),
                       "--blocklist", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "line 1" in err[0]
    assert not (tmp_path / "out").exists()


def test_a_listed_file_is_dropped_after_download_resized_it(tmp_path):
    """A blocklist lists the files as served; download re-encodes an image larger than
    --image-size, so the stored bytes have another sha256. img2dataset's sha256 of the fetched
    bytes (in the sample's json) is checked too: the listed file is blocklisted all the same."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from wit_pipeline.core import keys, schema
    from wit_pipeline.stages import download as dl
    from wit_pipeline.synthetic.concepts import all_concepts
    from wit_pipeline.synthetic.images import encode, render
    from wit_pipeline.synthetic.origins import Origin, Route

    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    big, small = (encode(render(all_concepts()[i], (s, s), seed=i)) for i, s in ((0, 400), (1, 96)))
    routes = {"/big.jpg": Route(200, big, {"Content-Type": "image/jpeg"}),
              "/small.jpg": Route(200, small, {"Content-Type": "image/jpeg"})}
    with Origin(routes) as origin:
        rows = [{"url": origin.url(p), "caption": f"a {p}", "key": keys.sample_key(origin.url(p), f"a {p}"),
                 "page_url": origin.url("/"), "language": "en", "lang_score": 0.9, "query_ids": [0], "queries": ["red"]}
                for p in routes]
        pq.write_table(pa.Table.from_pylist(rows, schema=schema.SELECTED), tmp_path / "selected.parquet")
        config = dl.DownloadConfig(allow_loopback=True, threads=2, processes=1, timeout=5, retries=0)
        dl.download(str(tmp_path / "selected.parquet"), str(tmp_path / "raw"), config)
    with tarfile.open(tmp_path / "raw" / "00000.tar") as tar:
        stored = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.name.endswith(".jpg")}
    assert len(stored) == 2 and hashlib.sha256(big).hexdigest() not in {hashlib.sha256(b).hexdigest() for b in stored.values()}
    listed = tmp_path / "blocklist.txt"
    listed.write_text(f"sha256 {hashlib.sha256(big).hexdigest()}\n")
    allow = tmp_path / "allow.tsv"
    allow.write_text("query\tsource\tstat\nred\tword\t1\n")
    out = tmp_path / "out"
    assert curate.run(["--input", str(tmp_path / "raw"), "--output", str(out), "--allowlist", str(allow),
                       "--blocklist", str(listed)]) == 0
    assert [json.loads(s["json"])["url"] for s in _read_all(out)] == [origin.url("/small.jpg")]
    decode = {s["name"]: s for s in json.loads((out / STATS).read_text())["stages"]}["decode"]
    assert decode["dropped"] == {"blocklisted": 1}

    from wit_pipeline.inspect import cli as inspect_cli  # the raw shards' contact sheet leaves it out too

    everything = inspect_cli.inspect_path(str(tmp_path / "raw"), samples=10, progress=False)[2]
    shown = inspect_cli.inspect_path(str(tmp_path / "raw"), samples=10, progress=False, blocked=blocklist.load(str(listed)))[2]
    assert sorted(c for _, _, c in everything) == ["a /big.jpg", "a /small.jpg"]
    assert [c for _, _, c in shown] == ["a /small.jpg"]
