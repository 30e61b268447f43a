"""Streamed WARC reading (archive._plain_records and streamed gzip members).

The promises checked (wit_pipeline/web/archive.py):
- a plain WARC read from a stream gives exactly what `parse_records(whole_file, 0, in_member=False)`
  gives, for any input and any read size, except that a record over MAX_RECORD_BYTES is Broken;
  memory about one record plus a read chunk; time linear in the file size;
- a gzip member inflating past STREAM_BYTES gives, when damaged or cut, the records before the
  damage, then at most garbage-derived Brokens and one member error; no exception escapes
  `iter_records` for bad bytes."""

from __future__ import annotations

import gzip
import io
import random

import pytest

from wit_pipeline.web import archive
from wit_pipeline.web.archive import Broken, Record, iter_records, parse_records


def _record(body: bytes, length: int | None = None) -> bytes:
    length = len(body) if length is None else length
    return b"WARC/1.0\r\nWARC-Type: resource\r\nContent-Length: %d\r\n\r\n%s\r\n\r\n" % (length, body)


def _view(items) -> list[tuple]:
    return [(r.offset, "broken", r.error) if isinstance(r, Broken) else (r.offset, r.headers, r.block) for r in items]


class _Tracked(bytearray):
    """archive's bytearray, counting the bytes its find() calls scan and the most it held."""

    scanned = 0
    peak = 0

    def find(self, sub, start=0, end=None):  # type: ignore[override]
        stop = len(self) if end is None else min(end, len(self))
        found = super().find(sub, start, stop)
        _Tracked.scanned += max(0, (found + len(sub) if found >= 0 else stop) - start)
        return found

    def __iadd__(self, other):  # type: ignore[override]
        out = super().__iadd__(other)
        _Tracked.peak = max(_Tracked.peak, len(self))
        return out


@pytest.fixture
def tracked(monkeypatch):
    monkeypatch.setattr(archive, "bytearray", _Tracked, raising=False)  # the module's name lookup
    _Tracked.scanned = _Tracked.peak = 0
    return _Tracked


class _ShortReads(io.RawIOBase):
    """A raw stream (a socket, a pipe, an HTTP body) whose read(n) returns fewer bytes than asked."""

    def __init__(self, data: bytes, most: int) -> None:
        self.data, self.pos, self.most = data, 0, most

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self.most if size < 0 else min(size, self.most)
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


PLAIN = _record(b"first") + _record(b"second")


@pytest.mark.parametrize(("kind", "chunk"), [("plain", 1), ("plain", 2), ("plain", 3), ("plain", 4), ("gzip", 1), ("gzip", 2)])
def test_any_read_size_finds_the_warc_or_gzip_header(monkeypatch, kind: str, chunk: int) -> None:
    """"For any read size": the file type is judged on the first read alone, so a read of
    fewer than 5 bytes (READ_CHUNK, or a stream that returns short reads) makes a good WARC
    "not a WARC file"."""
    data = PLAIN if kind == "plain" else gzip.compress(PLAIN, mtime=0)
    expected = _view(parse_records(PLAIN, 0, in_member=False))
    if kind == "gzip":
        expected = _view(parse_records(PLAIN, 0, in_member=True))
    monkeypatch.setattr(archive, "READ_CHUNK", chunk)
    assert _view(iter_records(io.BytesIO(data))) == expected


def test_a_stream_with_short_reads_is_read_whole() -> None:
    """At the default READ_CHUNK: a raw stream may answer read(1 MiB) with a few bytes."""
    assert _view(iter_records(_ShortReads(PLAIN, 4))) == _view(parse_records(PLAIN, 0, in_member=False))


@pytest.mark.parametrize("kind", ["plain", "gzip per record", "gzip whole"])
def test_a_content_length_of_thousands_of_digits_costs_only_its_record(monkeypatch, kind: str) -> None:
    """No exception escapes iter_records for bad bytes: int() refuses over 4300 digits
    (ValueError, Python >= 3.11), which ends the whole file (extract reports it as unreadable)."""
    bad = b"WARC/1.0\r\nWARC-Type: resource\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\nx\r\n\r\n"
    parts = [_record(b"before"), bad, _record(b"after")]
    if kind == "plain":
        data = b"".join(parts)
    elif kind == "gzip per record":
        data = b"".join(gzip.compress(p, mtime=0) for p in parts)
    else:
        monkeypatch.setattr(archive, "STREAM_BYTES", 100)
        data = gzip.compress(b"".join(parts), mtime=0)
    got = list(iter_records(io.BytesIO(data)))  # raised ValueError
    assert [r.block for r in got if isinstance(r, Record)] == [b"before", b"after"]
    assert sum(isinstance(r, Broken) for r in got) == 1


def test_a_run_of_blank_lines_is_not_held_in_memory(monkeypatch, tracked) -> None:
    """Memory is about one record plus a read chunk: the blank-line skip does not move `mark`,
    so every blank line after a record stays in the buffer (up to MAX_MARK_BYTES, 64 MiB).
    The same bytes as non-blank garbage are dropped as they are passed (the control)."""
    monkeypatch.setattr(archive, "READ_CHUNK", 4096)
    monkeypatch.setattr(archive, "MAX_HEADER_BYTES", 4096)  # a header is sought this far ahead
    for between in (b"x" * 400_000 + b"\r\n", b"\r\n" * 200_000):
        tracked.peak = 0
        data = _record(b"a") + between + _record(b"b")
        got = list(iter_records(io.BytesIO(data)))
        assert [r.block for r in got if isinstance(r, Record)] == [b"a", b"b"]
        assert tracked.peak < 32 << 10, (between[:2], tracked.peak)  # held 400 KB of blank lines


def test_resync_points_do_not_each_rescan_a_whole_header_window(monkeypatch, tracked) -> None:
    """Time linear in the file size: after a broken record every "\\nWARC/1." is a new record
    start, and for each one the next MAX_HEADER_BYTES are searched for "\\r\\n\\r\\n" (twice:
    _header_end, then _parse_record), so the work is size x MAX_HEADER_BYTES / 8: 10 s per MiB
    at the default 64 KiB (a 1 GB hostile file: hours). Counted here as bytes scanned."""
    monkeypatch.setattr(archive, "MAX_HEADER_BYTES", 4096)
    data = _record(b"a") + b"\nWARC/1." * 8192 + _record(b"b")
    got = _view(iter_records(io.BytesIO(data)))
    assert got == _view(parse_records(data, 0, in_member=False))  # the same records...
    assert tracked.scanned < 8 * len(data), tracked.scanned / len(data)  # ...but ~1000 passes over it


def test_a_corrupt_streamed_member_is_reported_and_costs_at_most_the_damaged_record(monkeypatch) -> None:
    """A bit flip in bytes deflate barely compresses (an image body) changes one inflated byte,
    and zlib sees it only at the CRC at the member's end. A streamed member cannot wait for
    that (it would hold the whole member), so the record holding the byte is passed on, and the
    member's error is reported after its records: the dead letter says the file is damaged.
    (Not none at all: the archive docstring says why.)"""
    monkeypatch.setattr(archive, "STREAM_BYTES", 100_000)
    rng = random.Random(4)
    plain = b"".join(_record(rng.randbytes(20_000)) for _ in range(40))
    whole = bytearray(gzip.compress(plain, mtime=0))
    whole[len(whole) // 2] ^= 0x01
    got = list(iter_records(io.BytesIO(bytes(whole))))
    assert got[-1].error.startswith("corrupt gzip member")  # the damage is reported
    good = list(parse_records(plain, 0, in_member=True))
    corrupt = [i for i, r in enumerate(got) if isinstance(r, Record) and r not in good]
    assert len(corrupt) <= 1 and len([r for r in got if isinstance(r, Record)]) >= 39


def test_a_cut_streamed_member_does_not_turn_a_broken_record_into_a_record(monkeypatch) -> None:
    """Cut members: the records before the cut, then Brokens. A record whose Content-Length is
    wrong (Broken in the whole member: no end marker after it) becomes a Record when the cut
    leaves fewer than 4 bytes after its claimed length: the cut is taken for the end of a file."""
    monkeypatch.setattr(archive, "STREAM_BYTES", 10)
    lying = _record(b"0123456789", length=5)
    plain = _record(b"first") + lying + _record(b"third")
    expected = _view(parse_records(plain, 0, in_member=True))
    assert [e[1] == "broken" for e in expected] == [False, True, False]
    stored = gzip.compress(plain, compresslevel=0, mtime=0)  # 10-byte header, 5-byte block header
    cut = 10 + 5 + len(_record(b"first")) + lying.index(b"01234") + 5
    got = _view(iter_records(io.BytesIO(stored[:cut])))
    assert got[-1][2].startswith("gzip member truncated")
    assert [g for g in got if g[1] != "broken"] == expected[:1]  # got also Record b"01234"


def test_bytes_that_are_no_record_are_not_called_a_record_over_the_cap(monkeypatch) -> None:
    """Only a record over MAX_RECORD_BYTES may differ from parse_records; bytes without a
    WARC/ line but with a large Content-Length field are called "record over 0 MiB"."""
    monkeypatch.setattr(archive, "MAX_RECORD_BYTES", 1000)
    data = _record(b"a") + b"garbage\r\nContent-Length: 5000\r\n\r\nzz\r\n" + _record(b"b")
    assert _view(iter_records(io.BytesIO(data))) == _view(parse_records(data, 0, in_member=False))
