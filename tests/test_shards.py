"""wit_pipeline.shards: streaming raw tars safely, deterministic final shards, manifests."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import webdataset as wds

from wit_pipeline import shards
from wit_pipeline.core import keys
from wit_pipeline.core.schema import SAMPLE_JSON_KEYS
from wit_pipeline.core.stats import DictTally


def _meta(i: int, **extra: object) -> dict:
    url, caption = f"http://img.example/{i}.jpg", f"a red circle {i}"
    return {
        "url": url,
        "caption": caption,
        "key": f"{i:09d}",  # img2dataset's own running key
        "status": "success",
        "page_url": f"http://page.example/{i}",
        "language": "en",
        "lang_score": 0.9,
        "query_ids": [2, 0],
        "width": 8,
        "height": 8,
        **extra,
    }


def _add(tar: tarfile.TarFile, name: str, data: bytes, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _raw_tar(path: Path) -> None:
    with tarfile.open(path, "w") as tar:
        for i in range(3):  # three good samples, img2dataset layout
            _add(tar, f"{i:09d}.jpg", b"jpegbytes%d" % i)
            _add(tar, f"{i:09d}.txt", b"caption")
            _add(tar, f"{i:09d}.json", json.dumps(_meta(i), indent=4).encode())
        _add(tar, "../evil.jpg", b"evil")
        _add(tar, "/abs/evil.jpg", b"evil")
        _add(tar, "sub/000000009.jpg", b"evil")
        _add(tar, "000000010.jpg", b"", tarfile.SYMTYPE, "/etc/passwd")
        _add(tar, "dir", b"", tarfile.DIRTYPE)
        _add(tar, "000000014.jpg", b"x" * 1001)  # over max_member_bytes: skipped unread
        _add(tar, "000000011.txt", b"no image")  # json and image missing
        _add(tar, "000000011.json", json.dumps(_meta(11)).encode())
        _add(tar, "000000012.jpg", b"no json")
        _add(tar, "000000013.jpg", b"x")
        _add(tar, "000000013.json", b"{not json")


def test_iter_tar_samples_groups_and_skips_unsafe_members(tmp_path: Path) -> None:
    raw = tmp_path / "00000.tar"
    _raw_tar(raw)
    tally = DictTally()
    samples = list(shards.iter_tar_samples(str(raw), tally, max_member_bytes=1000))
    assert [s["__key__"] for s in samples] == ["000000000", "000000001", "000000002", "000000011", "000000012", "000000013"]
    assert sorted(samples[0]) == ["__key__", "__url__", "jpg", "json", "txt"]
    assert tally.as_dict() == {"read:dropped.bad_member": 5, "read:dropped.oversized_member": 1, "read:in": 6}
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["00000.tar"]  # nothing extracted anywhere
    assert not (tmp_path.parent / "evil.jpg").exists()

    results = [shards.raw_record(s) for s in samples]
    assert [r for _, r in results] == [None, None, None, "missing_image", "missing_json", "bad_json"]
    rec = results[1][0]
    assert rec["key"] == keys.sample_key("http://img.example/1.jpg", "a red circle 1")
    assert rec["query_ids"] == [0, 2] and rec["image"] == b"jpegbytes1" and rec["ext"] == "jpg"
    # the download job carries our key as `sample_key`; it wins over recomputing
    carried = {**samples[1], "json": json.dumps(_meta(1, sample_key="00000000000000ab")).encode()}
    assert shards.raw_record(carried)[0]["key"] == "00000000000000ab"


@pytest.mark.parametrize("bad", ["../../evil10", "/etc/evil12", "00000000000000AB", "00000000000000a", "0" * 17,
                                 "0000000000000\ab", "", 12, ["00000000000000ab"]])
def test_a_carried_key_that_is_not_a_key_is_dropped(bad) -> None:
    """Keys name tar members: anything but 16 lower-case hex chars is `bad_key`."""
    meta = {"url": "http://e.com/a.jpg", "caption": "c", "sample_key": bad}
    assert shards.raw_record({"jpg": b"x", "json": json.dumps(meta).encode()}) == (None, "bad_key")
    assert not keys.is_key(bad)
    assert keys.is_key(keys.sample_key("http://e.com/a.jpg", "c"))


def _final(i: int) -> dict:
    rec = {
        "key": f"{i:016x}",
        "url": f"http://img.example/{i}.jpg",
        "page_url": "http://page.example/",
        "text": f"caption {i}",
        "language": "en",
        "lang_score": 0.5,
        "query_ids": [1, 0],
        "phash": "00ff00ff00ff00ff",
        "width": 4,
        "height": 3,
        "image": b"img%d" % i,
        "ext": "jpg",
    }
    return {**rec, "json": shards.sample_json(rec, ["red", "circle"])}


def test_write_shard_is_deterministic_sorted_and_readable(tmp_path: Path) -> None:
    samples = [_final(i) for i in (5, 1, 3)]
    a = shards.write_shard(str(tmp_path / "a" / shards.shard_name(0)), samples)
    b = shards.write_shard(str(tmp_path / "b" / shards.shard_name(0)), list(reversed(samples)))
    data = (tmp_path / "a" / "wit-000000.tar").read_bytes()
    assert a == b == (3, len(data), hashlib.sha256(data).hexdigest())
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["wit-000000.tar", "wit-000000.tar"]

    with tarfile.open(tmp_path / "a" / "wit-000000.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members][:3] == [f"{1:016x}.jpg", f"{1:016x}.json", f"{1:016x}.txt"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}

    got = list(wds.WebDataset(str(tmp_path / "a" / "wit-000000.tar"), shardshuffle=False))
    assert [s["__key__"] for s in got] == [f"{i:016x}" for i in (1, 3, 5)]
    doc = json.loads(got[0]["json"])
    assert set(SAMPLE_JSON_KEYS) <= set(doc)
    assert doc["queries"] == ["circle", "red"] and doc["query_ids"] == [1, 0] and got[0]["txt"] == b"caption 1"


def test_write_shard_rejects_duplicate_keys_and_leaves_no_temp(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        shards.write_shard(str(tmp_path / "x.tar"), [_final(1), _final(1)])
    assert list(tmp_path.iterdir()) == []


def test_manifest_roundtrip(tmp_path: Path) -> None:
    entries = []
    for i, idx in enumerate([(1, 2), (3,)]):
        name = shards.shard_name(i)
        n, nbytes, sha = shards.write_shard(str(tmp_path / name), [_final(j) for j in idx])
        entries.append({"name": name, "samples": n, "bytes": nbytes, "sha256": sha})
    doc = shards.write_manifest(str(tmp_path), entries[::-1], {"write": 3}, {"samples_per_shard": 2}, 7)
    assert doc == shards.read_manifest(str(tmp_path))
    assert doc["totals"] == {"shards": 2, "samples": 3, "bytes": sum(e["bytes"] for e in entries)}
    assert [s["name"] for s in doc["shards"]] == ["wit-000000.tar", "wit-000001.tar"]
    assert doc["seed"] == 7 and doc["config"] == {"samples_per_shard": 2}
    assert [shards.sha256_of(u) for u in shards.shard_urls(str(tmp_path))] == [e["sha256"] for e in entries]


def test_query_names_travel_with_the_sample():
    """The harvest carries the matched queries by name, so a curate given another allowlist
    (or none) cannot rename them; ids alone fall back to the allowlist it is given."""
    import json as _json

    from wit_pipeline.shards import raw_record, sample_json

    meta = {"url": "http://e.com/a.jpg", "caption": "a striped cat", "sample_key": "00000000000000ff", "query_ids": [7, 3],
            "queries": ["cat", "striped"], "page_url": "http://e.com/", "language": "en", "lang_score": 0.9}
    rec, reason = raw_record({"jpg": b"\xff\xd8", "json": _json.dumps(meta).encode()})
    assert reason is None and rec["queries"] == ["cat", "striped"]
    doc = sample_json({**rec, "phash": "0" * 16, "width": 1, "height": 1}, queries=["wrong"] * 10)
    assert doc["queries"] == ["cat", "striped"] and doc["query_ids"] == [3, 7]
    older = {k: v for k, v in rec.items() if k != "queries"}
    assert sample_json({**older, "phash": "0" * 16, "width": 1, "height": 1},
                       queries=[f"q{i}" for i in range(10)])["queries"] == ["q3", "q7"]
    bad, reason = raw_record({"jpg": b"\xff\xd8", "json": _json.dumps({**meta, "queries": [1, 2]}).encode()})
    assert bad is None and reason == "bad_json"
