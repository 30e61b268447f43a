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
