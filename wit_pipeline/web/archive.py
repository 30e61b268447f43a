"""WARC records of one archive file, read so that a damaged record costs only itself.

Common Crawl writes one gzip member per record. Members are inflated one by one with zlib
(C speed, a bounded output per call, so a decompression bomb costs time, not memory); a
member that fails to inflate is reported as `Broken` and reading resumes at the next gzip
header found after it, so bit flips or a spliced record lose only the records they touch.
A member cut short by the end of the file (a truncated download) is `Broken` too: zlib
knows where a member ends, and a record whose block is shorter than its Content-Length is
reported rather than passed off as a shorter page. Plain (uncompressed) WARC files are
read whole. Offsets are those of the record's gzip member (or of the record in a plain
file): what a dead letter names and `dd`/`warcio extract` accept.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b\x08"
READ_CHUNK = 1 << 20
INFLATE_CHUNK = 8 << 20  # most bytes one zlib call may produce
MAX_RECORD_BYTES = 256 << 20  # a member or record larger than this is skipped as Broken
MAX_HEADER_BYTES = 64 << 10


@dataclass(frozen=True, slots=True)
class Record:
    """One WARC record: its headers (names lower-cased) and its content block."""

    offset: int
    headers: dict[str, str]
    block: bytes

    @property
    def type(self) -> str:
        return self.headers.get("warc-type", "")


@dataclass(frozen=True, slots=True)
class Broken:
    """Bytes at `offset` that formed no complete record, and why."""

    offset: int
    error: str


def iter_records(stream: BinaryIO) -> Iterator[Record | Broken]:
    """Every record of a gzip-per-record or plain WARC/WAT stream, in file order."""
    head = stream.read(READ_CHUNK)
    if not head:
        return
    if head.startswith(GZIP_MAGIC):
        for offset, data, error in _gzip_members(stream, head):
            if error is not None:
                yield Broken(offset, error)
            else:
                yield from parse_records(data, offset, in_member=True)
        return
    if not head.startswith(b"WARC/"):
        yield Broken(0, "not a WARC file (neither gzip nor a WARC/ header)")
        return
    yield from parse_records(head + stream.read(), 0, in_member=False)


def _gzip_members(stream: BinaryIO, pending: bytes) -> Iterator[tuple[int, bytes, str | None]]:
    """(offset, inflated bytes, None) per gzip member, or (offset, b"", error) for a member
    that is corrupt (reading goes on at the next gzip header) or truncated (the end)."""
    pos = 0  # file offset of pending[0]
    at_eof = False
    while True:
        while len(pending) < len(GZIP_MAGIC) and not at_eof:
            more = stream.read(READ_CHUNK)
            at_eof = not more
            pending += more
        if not pending.strip():  # trailing padding or nothing: the end
            return
        if not pending.startswith(GZIP_MAGIC):
            skip, pending, at_eof = _resync(stream, pending, 1, at_eof)
            yield pos, b"", "bytes between records are not a gzip member"
            pos += skip
            continue
        start = pos
        data, used, error, pending, at_eof = _inflate_member(stream, pending, at_eof)
        if error is None:
            pos = start + used
            yield start, data, None
            continue
        yield start, b"", error
        if error.startswith("gzip member truncated"):
            return
        skip, pending, at_eof = _resync(stream, pending, 1, at_eof)
        pos = start + skip


def _inflate_member(stream: BinaryIO, pending: bytes, at_eof: bool) -> tuple[bytes, int, str | None, bytes, bool]:
    """Inflate the member at pending[0]: (data, compressed size, error, bytes from the
    member's start on when it failed or else those after it, at_eof)."""
    inflater = zlib.decompressobj(31)
    consumed: list[bytes] = []  # this member's compressed input, kept to resync after a failure
    out: list[bytes] = []
    size = 0
    error: str | None = None
    data = pending
    while True:
        consumed.append(data)
        try:
            while data:
                piece = inflater.decompress(data, INFLATE_CHUNK)
                size += len(piece)
                if size <= MAX_RECORD_BYTES:
                    out.append(piece)
                elif error is None:
                    error, out = f"gzip member inflates to over {MAX_RECORD_BYTES >> 20} MiB", []
                if inflater.eof:
                    break
                data = inflater.unconsumed_tail
        except zlib.error as exc:
            return b"", 0, f"corrupt gzip member: {exc}", b"".join(consumed), at_eof
        if inflater.eof:
            tail = inflater.unused_data
            used = sum(map(len, consumed)) - len(tail)
            if error is not None:
                return b"", used, error, tail, at_eof
            return b"".join(out), used, None, tail, at_eof
        data = stream.read(READ_CHUNK)
        if not data:
            return b"", 0, "gzip member truncated (no end-of-stream marker)", b"", True


def _resync(stream: BinaryIO, buffer: bytes, start: int, at_eof: bool) -> tuple[int, bytes, bool]:
    """Skip to the next gzip header at or after buffer[start]: (bytes skipped, the buffer
    from that header on, at_eof). Reads on as needed; an empty buffer means none was found."""
    skipped = 0
    while True:
        found = buffer.find(GZIP_MAGIC, start)
        if found >= 0:
            return skipped + found, buffer[found:], at_eof
        if at_eof:
            return skipped + len(buffer), b"", True
        keep = max(start, len(buffer) - len(GZIP_MAGIC) + 1)  # a header may straddle reads
        skipped += keep
        buffer = buffer[keep:]
        start = 0
        more = stream.read(READ_CHUNK)
        at_eof = not more
        buffer += more


def parse_records(data: bytes, offset: int, in_member: bool) -> Iterator[Record | Broken]:
    """The records in `data` (one gzip member's or a whole plain file's bytes). In a plain
    file a record's offset is its own position; in a member it is the member's."""
    i, n = 0, len(data)
    while i < n:
        while i < n and data[i] in b"\r\n":  # the blank lines that end the previous record
            i += 1
        if i >= n:
            return
        here = offset if in_member else offset + i
        record, i = _parse_record(data, i, here)
        yield record
        if isinstance(record, Broken):
            return  # the rest of this member (or plain file) has no trustworthy boundary


def _parse_record(data: bytes, i: int, offset: int) -> tuple[Record | Broken, int]:
    if not data.startswith(b"WARC/", i):
        return Broken(offset, "not a WARC record (no WARC/ version line)"), len(data)
    end = data.find(b"\r\n\r\n", i, i + MAX_HEADER_BYTES)
    if end < 0:
        return Broken(offset, "record header truncated or over 64 KiB"), len(data)
    headers: dict[str, str] = {}
    for line in data[i:end].split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("utf-8", "replace")
    length = headers.get("content-length", "")
    if not (length.isascii() and length.isdigit()):
        return Broken(offset, f"record header without a valid Content-Length ({length[:40]!r})"), len(data)
    start = end + 4
    stop = start + int(length)
    if stop > len(data):
        return Broken(offset, f"record truncated: {stop - len(data)} bytes of its Content-Length missing"), len(data)
    return Record(offset, headers, data[start:stop]), stop
