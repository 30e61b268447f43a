"""The gzip member inflater of web/archive.py: zlib-ng gives what the standard zlib gives (the
records, Broken offsets and error texts of damaged files), and the per-call bookkeeping (a
call that stops at INFLATE_CHUNK, a member fed in pieces) reads the same records whatever
the call sizes."""

from __future__ import annotations

import gzip
import io
import random
import types
import zlib

import pytest

from wit_pipeline.web import archive
from wit_pipeline.web.archive import Broken, iter_records


def _record(i: int, rnd: random.Random) -> bytes:
    words = [rnd.choice(["alt", "img", "src", "page", "x" * rnd.randint(1, 9)]) for _ in range(rnd.randint(5, 900))]
    body = " ".join(words).encode() + rnd.randbytes(rnd.randint(0, 300))
    return (b"WARC/1.0\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:%d>\r\nContent-Length: %d\r\n\r\n%s\r\n\r\n"
            % (i, len(body), body))


def _damaged_files(seed: int, count: int) -> list[bytes]:
    """gzip-per-record files with flipped bits, cuts, splices and inserted garbage."""
    rnd = random.Random(seed)
    files = []
    for _ in range(count):
        data = bytearray(b"".join(gzip.compress(_record(i, rnd), rnd.choice([1, 6, 9])) for i in range(12)))
        for _ in range(rnd.choice([0, 1, 2, 4])):
            at = rnd.randrange(len(data))
            data[at] ^= 1 << rnd.randrange(8)
        if rnd.random() < 0.3:
            at = rnd.randrange(len(data))
            del data[at : at + rnd.randint(1, 400)]
        if rnd.random() < 0.3:
            at = rnd.randrange(len(data))
            data[at:at] = rnd.randbytes(rnd.randint(1, 60))
        if rnd.random() < 0.3:
            del data[rnd.randrange(len(data)) :]
        files.append(bytes(data))
    return files


def _view(data: bytes) -> list[tuple]:
    return [(r.offset, "broken", r.error) if isinstance(r, Broken) else (r.offset, r.headers, r.block)
            for r in iter_records(io.BytesIO(data))]


STDLIB_ZLIB = types.SimpleNamespace(decompressobj=zlib.decompressobj, error=zlib.error)


def test_zlib_ng_reads_what_zlib_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    files = _damaged_files(seed=5, count=120)
    with_ng = [_view(data) for data in files]
    monkeypatch.setattr(archive, "zlib_ng", STDLIB_ZLIB)
    assert [_view(data) for data in files] == with_ng
    errors = {r[2] for view in with_ng for r in view if r[1] == "broken"}
    assert any(e.startswith("corrupt gzip member: Error -3") for e in errors)  # zlib's own texts were compared
    assert "gzip member truncated (no end-of-stream marker)" in errors


@pytest.mark.parametrize(("inflate_chunk", "feed_bytes", "stream_bytes"), [(64, 16 << 10, 64 << 20), (1000, 100, 64 << 20),
                                                                          (300, 700, 2000)])
def test_call_sizes_do_not_change_the_records(monkeypatch: pytest.MonkeyPatch, inflate_chunk: int, feed_bytes: int,
                                              stream_bytes: int) -> None:
    """Small calls: a member takes many, each on what the last left unconsumed or on the next
    feed; a member past STREAM_BYTES is streamed. Good files read the same; so do damaged
    ones, up to the streamed member's last call (zlib drops what a failing call inflated)."""
    files = _damaged_files(seed=11, count=40)
    rnd = random.Random(3)
    whole = gzip.compress(b"".join(_record(i, rnd) for i in range(20)))
    expected = [_view(data) for data in files]
    expected_whole = _view(whole)
    monkeypatch.setattr(archive, "INFLATE_CHUNK", inflate_chunk)
    monkeypatch.setattr(archive, "FEED_BYTES", feed_bytes)
    monkeypatch.setattr(archive, "STREAM_BYTES", stream_bytes)
    assert _view(whole) == expected_whole
    assert len(expected_whole) == 20 and not any(r[1] == "broken" for r in expected_whole)
    if stream_bytes > 1 << 20:  # members are inflated whole: damage is found the same way
        assert [_view(data) for data in files] == expected


def test_a_record_past_inflate_chunk_is_followed_by_the_next_member() -> None:
    """9 MiB of zeros inflate from ~9 KiB: the member ends in a call fed the previous call's
    unconsumed tail, whose stale copy of the bytes after the member was counted twice (a
    false 'bytes between records are not a gzip member' before the next record)."""
    records = [_record_bytes(b"a"), _record_bytes(b"\0" * (9 << 20)), _record_bytes(b"after")]
    members = [gzip.compress(r) for r in records]
    got = _view(b"".join(members))
    assert [(r[0], r[2]) for r in got] == [(0, b"a"), (len(members[0]), b"\0" * (9 << 20)),
                                           (len(members[0]) + len(members[1]), b"after")]


def _record_bytes(body: bytes) -> bytes:
    return b"WARC/1.0\r\nWARC-Type: resource\r\nContent-Length: %d\r\n\r\n%s\r\n\r\n" % (len(body), body)
