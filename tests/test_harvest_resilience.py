"""A hostile record costs only itself, and a killed harvest costs only unfinished files."""

from __future__ import annotations

import collections
import gzip
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from beam_jobs import harvest
from wit_pipeline.core import parquet_io, schema, stats
from wit_pipeline.core.outputs import STATS
from wit_pipeline.core.stats import DictTally
from wit_pipeline.web import extract
from wit_pipeline.web.archive import Broken, iter_records
from wit_pipeline.web.extract import iter_pairs, record_pairs


def _wat_record(payload: bytes, uri: str = "https://x.example/p") -> bytes:
    head = (f"WARC/1.0\r\nWARC-Type: metadata\r\nWARC-Target-URI: {uri}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
    return gzip.compress(head + payload + b"\r\n\r\n", mtime=0)


def _envelope(uri: str, links: list[dict]) -> bytes:
    return orjson.dumps({"Envelope": {"WARC-Header-Metadata": {"WARC-Type": "response", "WARC-Target-URI": uri},
                                      "Payload-Metadata": {"HTTP-Response-Metadata": {
                                          "Response-Message": {"Status": "200"},
                                          "HTML-Metadata": {"Links": links}}}}})


def _img(url: str, alt: str) -> dict:
    return {"path": "IMG@/src", "url": url, "alt": alt}


@pytest.mark.parametrize("crafted", [
    b"[" * 200_000,  # nested far beyond any parser's recursion limit
    _envelope("https://x.example/odd", [_img("http://e.com:\u00b2/x.jpg", "a superscript port")]),
    _envelope("https://x.example/huge", [_img("http://e.com/" + "a" * 100_000 + ".jpg", "a very long url")]),
], ids=["nested_json", "superscript_port", "huge_url"])
def test_a_crafted_record_costs_only_itself(tmp_path: Path, crafted: bytes) -> None:
    good_before = _envelope("https://x.example/a", [_img("/red.jpg", "a red circle")])
    good_after = _envelope("https://x.example/b", [_img("/blue.jpg", "a blue square")])
    path = tmp_path / "crafted.warc.wat.gz"
    path.write_bytes(_wat_record(good_before) + _wat_record(crafted) + _wat_record(good_after))
    tally, errors = DictTally(), []
    pairs = list(iter_pairs(str(path), tally, lambda source, msg: errors.append((source, msg))))
    stats.check_stages(stats.stages_from_counters(tally.counts, ("read", "extract")))
    texts = [p["text"] for p in pairs]
    assert texts[0] == "a red circle" and texts[-1] == "a blue square"
    assert tally.counts["read:in"] == 3
    # the crafted record is a counted drop; a dead letter names it when it is a failure
    dropped = sum(n for k, n in tally.counts.items() if k.startswith(("read:dropped", "extract:dropped")))
    assert dropped >= 1
    assert all(source.startswith(f"{path}@") for source, _ in errors)


def test_an_exception_in_one_record_is_its_dead_letter(tmp_path: Path, monkeypatch) -> None:
    """Fault injection: the page handler raises for one record only."""
    pages = [_envelope(f"https://x.example/{i}", [_img(f"/{i}.jpg", f"a red circle number {i}")]) for i in range(5)]
    path = tmp_path / "f.warc.wat.gz"
    path.write_bytes(b"".join(_wat_record(p) for p in pages))
    real = extract.pairs_from_images

    def flaky(page_url, *args, **kwargs):
        if page_url.endswith("/2"):
            raise RuntimeError("injected")
        return real(page_url, *args, **kwargs)

    monkeypatch.setattr(extract, "pairs_from_images", flaky)
    tally, errors = DictTally(), []
    pairs = list(iter_pairs(str(path), tally, lambda source, msg: errors.append((source, msg))))
    assert [p["page_url"][-1] for p in pairs] == ["0", "1", "3", "4"]
    assert tally.counts["read:dropped.error"] == 1 and tally.counts["extract:in"] == 4
    stats.check_stages(stats.stages_from_counters(tally.counts, ("read", "extract")))
    assert len(errors) == 1 and "RuntimeError: injected" in errors[0][1]


def test_fault_in_the_harvest_job_is_dead_lettered(crawl, tmp_path: Path, monkeypatch) -> None:
    """Fault injection through the whole job: language ID raises for one text."""
    from wit_pipeline.text.langid import LanguageIdentifier

    real = LanguageIdentifier.predict
    victim = {}

    def flaky(self, text):
        if not victim and "red" in text:
            victim["text"] = text
        if text == victim.get("text"):
            raise RuntimeError("injected")
        return real(self, text)

    monkeypatch.setattr(LanguageIdentifier, "predict", flaky)
    out = tmp_path / "h"
    assert harvest.run(["--input", crawl.wat_glob, "--output", str(out), "--num-shards", "1", "--no-progress"]) == 0
    doc = json.loads((out / STATS).read_text())
    by = {s["name"]: s for s in doc["stages"]}
    assert by["filter"]["dropped"]["error"] >= 1  # the text, each time it occurs
    dead = parquet_io.read_table(str(out / "dead_letter" / "*.parquet"), schema.DEAD_LETTER).to_pylist()
    assert sum(d["stage"] == "filter" for d in dead) == by["filter"]["dropped"]["error"]
    assert all("RuntimeError: injected" in d["error"] for d in dead if d["stage"] == "filter")



def test_fault_in_the_matcher_costs_only_its_text(crawl, tmp_path: Path, monkeypatch) -> None:
    """The matcher raises for one text: the batch is matched text by text, that text's pairs
    are the match stage's errors and dead letters, every other pair is matched as before."""
    from wit_pipeline.text.matcher import QueryMatcher

    clean = tmp_path / "clean"
    assert harvest.run(["--input", crawl.wat_glob, "--output", str(clean), "--num-shards", "1", "--no-progress"]) == 0
    real = QueryMatcher.match_many
    victim = {}

    def flaky(self, texts):
        for text in texts:
            if not victim and "red" in text:
                victim["text"] = text
        if victim.get("text") in texts:
            raise RuntimeError("injected")
        return real(self, texts)

    monkeypatch.setattr(QueryMatcher, "match_many", flaky)
    out = tmp_path / "h"
    assert harvest.run(["--input", crawl.wat_glob, "--output", str(out), "--num-shards", "1", "--no-progress"]) == 0
    by = {s["name"]: s for s in json.loads((out / STATS).read_text())["stages"]}
    before = {s["name"]: s for s in json.loads((clean / STATS).read_text())["stages"]}
    errors = by["match"]["dropped"]["error"]
    assert errors >= 1 and by["match"]["in"] == before["match"]["in"]
    assert by["match"]["out"] + errors == before["match"]["out"]  # the victim matched before
    dead = parquet_io.read_table(str(out / "dead_letter" / "*.parquet"), schema.DEAD_LETTER).to_pylist()
    assert sum(d["stage"] == "match" for d in dead) == errors
    selected = parquet_io.read_table(str(out / "selected" / "*.parquet"), schema.SELECTED).column("caption").to_pylist()
    assert selected and victim["text"] not in selected

# --- fuzz: mutated archives never stop a file, and untouched records are still read ---------


def _members(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each record's gzip member."""
    offsets = [r.offset for r in iter_records(_bytes_io(data))]
    return list(zip(offsets, offsets[1:] + [len(data)]))


def _bytes_io(data: bytes):
    import io

    return io.BytesIO(data)


def _pairs_by_member(data: bytes) -> dict[int, list[tuple]]:
    out = {}
    for record in iter_records(_bytes_io(data)):
        assert not isinstance(record, Broken)
        pairs = record_pairs("x", record, DictTally(), lambda *_: None)
        out[record.offset] = [(p["url"], p["text"], p["page_url"]) for p in pairs]
    return out


def _mutate(data: bytes, members: list[tuple[int, int]], rng: random.Random) -> tuple[bytes, tuple[int, int]]:
    """A mutated copy and the byte range of the original it touched."""
    kind = rng.choice(("flip", "flip", "truncate", "splice", "zero_run"))
    if kind == "flip":
        i = rng.randrange(len(data))
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:], (i, i + 1)
    if kind == "zero_run":
        i = rng.randrange(len(data))
        n = rng.randint(1, 64)
        return data[:i] + bytes(n) + data[i + n:], (i, i + n)
    if kind == "truncate":
        i = rng.randrange(1, len(data))
        return data[:i], (i, len(data))
    start, end = members[rng.randrange(len(members))]  # a record copied into the middle of another
    i = rng.randrange(len(data))
    return data[:i] + data[start:end] + data[i:], (i, i + 1)


@pytest.mark.parametrize("kind", ["wat", "warc"])
def test_fuzzed_archives(crawl, kind: str, tmp_path: Path) -> None:
    source = sorted(crawl.root.glob(f"crawl/{kind}/*.gz"))[0].read_bytes()
    members = _members(source)[:40]
    data = source[: members[-1][1]]
    expected = _pairs_by_member(data)
    rng = random.Random(f"fuzz-{kind}")
    path = tmp_path / f"fuzz.{kind}.gz"
    for case in range(150):
        mutated, (lo, hi) = _mutate(data, members, rng)
        path.write_bytes(mutated)
        tally = DictTally()
        got = collections.Counter((p["url"], p["text"], p["page_url"])
                                  for p in iter_pairs(str(path), tally, lambda *_: None))
        stats.check_stages(stats.stages_from_counters(tally.counts, ("read", "extract")))
        untouched = collections.Counter(pair for start, end in members if end <= lo or start >= hi
                                        for pair in expected[start])
        missing = untouched - got
        assert not missing, (case, lo, hi, list(missing)[:2])


# --- a killed harvest resumes: only unfinished files are read again -------------------------


def _many_files(crawl, folder: Path, n: int) -> str:
    """n complete WAT files, each the crawl's complete WAT files repeated (bigger, slower)."""
    folder.mkdir()
    complete = sorted(crawl.root.glob("crawl/wat/*.wat.gz"))[:-1]  # the last one is truncated on purpose
    body = b"".join(p.read_bytes() for p in complete)
    for i in range(n):
        (folder / f"copy-{i:02d}.warc.wat.gz").write_bytes(body * 6)
    return str(folder / "*.wat.gz")


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_killed_harvest_resumes_with_identical_outputs(crawl, tmp_path: Path) -> None:
    glob = _many_files(crawl, tmp_path / "in", 8)
    argv = ["--input", glob, "--balance", "cap", "--t", "5", "--num-shards", "2", "--no-progress"]
    whole = tmp_path / "whole"
    assert harvest.run([*argv, "--output", str(whole)]) == 0

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "beam_jobs.harvest", *argv, "--output", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    parts = out / "candidates"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(parts.glob("*.parquet")):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.parquet")}
    assert 0 < len(done) < 8, "the kill should land during the per-file stage"
    assert not (out / STATS).exists()

    assert harvest.run([*argv, "--output", str(out)]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.parquet")}
    assert {name: after[name] for name in done} == done  # finished files were not read again
    assert len(after) == 8
    assert _tree(out) == _tree(whole)  # the kill's temporary part is gone too


# --- a plain (uncompressed) WARC is read record by record, as if read whole -----------------


@pytest.mark.parametrize("chunk", [7, 4096, 1 << 20])
def test_plain_warc_streams_the_records_the_whole_file_holds(crawl, monkeypatch, chunk: int) -> None:
    """A plain WARC is not read whole into memory: records are parsed as the stream
    arrives. Whatever the read size, crafted and fuzzed files give exactly what parsing the
    whole file at once gives (the reference: `parse_records` over all its bytes)."""
    from wit_pipeline.web import archive

    plain = gzip.decompress(sorted(crawl.root.glob("crawl/warc/*.warc.gz"))[0].read_bytes())
    records = plain.split(b"\r\n\r\nWARC/1.")
    lie = records[2].replace(b"Content-Length: ", b"Content-Length: 9", 1)
    crafted = [
        plain,
        plain + b"\r\n\r\n\r\n",  # trailing blank lines
        plain[: len(plain) // 2],  # cut inside a record
        plain + b"garbage at the end",
        b"\r\n\r\nWARC/1.".join([*records[:2], lie, *records[3:]]),  # a lying Content-Length
        b"\r\n\r\nWARC/1.".join([*records[:2], records[2].replace(b"\r\n\r\n", b"\r\n", 1), *records[3:]]),
        plain.replace(b"Content-Length", b"Content-Lenght", 1),
    ]
    rng = random.Random("plain")
    for _ in range(60):
        i = rng.randrange(len(plain))
        crafted.append(plain[:i] + bytes([plain[i] ^ (1 << rng.randrange(8))]) + plain[i + 1:])
        crafted.append(plain[:i] + plain[i + rng.randint(1, 500):])

    def view(items):
        return [(r.offset, "broken", r.error) if isinstance(r, Broken) else (r.offset, r.headers, r.block) for r in items]

    monkeypatch.setattr(archive, "READ_CHUNK", chunk)
    for n, data in enumerate(crafted):
        expected = view(archive.parse_records(data, 0, in_member=False))
        assert view(iter_records(_bytes_io(data))) == expected, n
    assert len(view(iter_records(_bytes_io(plain)))) == plain.count(b"\r\n\r\nWARC/1.") + 1


def test_a_plain_warc_record_over_the_cap_is_broken_and_reading_goes_on(monkeypatch) -> None:
    from wit_pipeline.web import archive

    monkeypatch.setattr(archive, "MAX_RECORD_BYTES", 1000)

    def record(body: bytes) -> bytes:
        return b"WARC/1.0\r\nWARC-Type: resource\r\nContent-Length: %d\r\n\r\n%s\r\n\r\n" % (len(body), body)

    data = record(b"small") + record(b"x" * 5000) + record(b"after")
    got = list(iter_records(_bytes_io(data)))
    assert [r.block for r in got if not isinstance(r, Broken)] == [b"small", b"after"]
    assert [r.error for r in got if isinstance(r, Broken)] == ["record over 0 MiB (Content-Length 5000)"]


@pytest.mark.parametrize("stream_bytes", [1000, 64 << 20])
def test_a_whole_file_gzip_is_read_record_by_record(monkeypatch, stream_bytes: int) -> None:
    """A WARC gzipped whole (one member, `gzip file.warc`) inflating past STREAM_BYTES is read
    record by record (it was one broken record past 256 MiB): the records of the whole
    member, at the member's offset. Damage costs the records from it on, not the file's."""
    from wit_pipeline.web import archive

    rng = random.Random("whole-file")
    pages = [_envelope(f"https://x.example/{i}", [_img(f"/{rng.getrandbits(64):x}.jpg", f"picture {i}")])
             for i in range(300)]
    plain = b"".join(gzip.decompress(_wat_record(p)) for p in pages)
    monkeypatch.setattr(archive, "READ_CHUNK", 4096)
    monkeypatch.setattr(archive, "FEED_BYTES", 512)  # zlib drops the output of a call that fails: small calls
    monkeypatch.setattr(archive, "STREAM_BYTES", stream_bytes)
    expected = list(archive.parse_records(plain, 0, in_member=True))
    whole = gzip.compress(plain, mtime=0)
    assert len(expected) == 300 and list(iter_records(_bytes_io(whole))) == expected

    after = _wat_record(_envelope("https://x.example/after", [_img("/a.jpg", "a blue square")]))
    damaged = bytearray(whole)
    damaged[len(whole) // 2] ^= 0xFF
    got = list(iter_records(_bytes_io(bytes(damaged) + after)))
    broken = [i for i, r in enumerate(got) if isinstance(r, Broken)]
    assert {got[i].offset for i in broken} == {0} and got[broken[-1]].error.startswith("corrupt gzip member")
    assert got[-1].offset == len(whole) and b"a blue square" in got[-1].block  # the next member is read
    if stream_bytes < len(plain):
        # zlib may inflate a little garbage before it sees the damage; the member's CRC, which
        # would prove it, is at its end: the records before it are passed on as they come
        assert 100 < broken[0] < 300 and got[: broken[0] - 1] == expected[: broken[0] - 1]
    else:  # read whole: the member is one broken record, as before
        assert got[:-1] == [Broken(0, got[0].error)]
