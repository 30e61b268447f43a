"""WARC records of one archive file, read so that a damaged record costs only itself.

Common Crawl writes one gzip member per record. Members are inflated one by one with zlib-ng
(zlib's API and error texts, inflating ~1.4x as fast; a bounded output per call, so a
decompression bomb costs time, not memory); a
member that fails to inflate is reported as `Broken` and reading resumes at the next gzip
header found after it, so bit flips or a spliced record lose only the records they touch.
A member cut short by the end of the file (a truncated download) is `Broken` too: zlib
knows where a member ends, and a record whose block is shorter than its Content-Length is
reported rather than passed off as a shorter page. Plain (uncompressed) WARC files, and a
member inflating to over STREAM_BYTES (a WARC gzipped whole), are read record by record as
the bytes arrive (a record over MAX_RECORD_BYTES is `Broken`), so memory is one record, not
the file. Such a member's records are passed on before its CRC, at its end, is checked:
zlib sees most damage at once, but a flipped bit in data deflate stores nearly as is (an
image) shows only there, so one record may pass with a wrong byte; the member's Broken is
reported either way. A file whose start is damaged, or whose member is cut, loses only
what the damage touches: reading goes on at the next gzip header. Offsets
are those of the record's gzip member (or of the record in a plain file): what a dead
letter names and `dd`/`warcio extract` accept.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from zlib_ng import zlib_ng

GZIP_MAGIC = b"\x1f\x8b\x08"
READ_CHUNK = 1 << 20
INFLATE_CHUNK = 8 << 20  # most bytes one zlib call may produce
MAX_RECORD_BYTES = 256 << 20  # a record larger than this is Broken (its bytes are never held)
MAX_HEADER_BYTES = 64 << 10
MAX_MARK_BYTES = 64 << 20  # a corrupt member larger than this resyncs from where it failed


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
    while head and len(head) < len(b"WARC/"):  # a stream may answer with fewer bytes than asked
        more = stream.read(READ_CHUNK)
        if not more:
            break
        head += more
    if not head:
        return
    if head.startswith(GZIP_MAGIC):
        for offset, data, error in _gzip_members(_Buffer(stream, head)):
            if error is not None:
                yield Broken(offset, error)
            elif isinstance(data, _MemberStream):
                yield from _big_member_records(data, offset)
            else:
                yield from parse_records(data, offset, in_member=True)
        return
    if not head.startswith(b"WARC/"):
        yield Broken(0, "not a WARC file (neither gzip nor a WARC/ header)")
        return
    yield from _plain_records(_Buffer(stream, head))


def _big_member_records(member: _MemberStream, offset: int) -> Iterator[Record | Broken]:
    """A big member's records as they inflate. The last is held: if the member ends in an
    error (cut or corrupt), the bytes after it were never checked (its end marker, or what
    the cut left of it), and the member's own Broken stands for it."""
    last = None
    for item in _plain_records(_Buffer(member, member.read(READ_CHUNK)), member=offset):
        if last is not None:
            yield last
        last = item
    if last is not None and member.error is None:
        yield last


def _plain_records(buf: _Buffer, member: int | None = None) -> Iterator[Record | Broken]:
    """The records of a plain WARC stream (or of one big gzip member, at offset `member`) as
    `parse_records` finds them in the whole of it, each read once it is whole: memory is one
    record and a read chunk, whatever the size. A record over MAX_RECORD_BYTES is `Broken`
    and skipped without being held."""
    clear = 0  # file offset before which no header end can start (a failed search saw it)
    while True:
        if not _skip_blank_lines(buf):
            return
        buf.mark = buf.pos
        offset = buf.offset() if member is None else member
        buf.available(_VERSION_LINE)
        blank = _blank_line(buf.data, buf.pos)
        head_end = _header_end(buf, clear, blank)
        is_warc = buf.data.startswith(b"WARC/", buf.pos)
        length = _length(_headers(buf.data, buf.pos, head_end)) if head_end >= 0 and is_warc else None
        if length is not None and length > MAX_RECORD_BYTES:
            record: Record | Broken = Broken(offset, f"record over {MAX_RECORD_BYTES >> 20} MiB (Content-Length {length})")
        else:
            if length is not None:  # the record and the blank line that must follow it (or the end of the file)
                buf.available(head_end + 2 * len(blank) + length - buf.pos)
            record, end = _parse_record(buf.data, buf.pos, offset, clear - buf.base)
        yield record
        if isinstance(record, Record):
            buf.pos = end
            continue
        if record.error == HEADER_TRUNCATED:
            clear = buf.base + buf.pos + MAX_HEADER_BYTES - 3
        if not buf.find(b"\nWARC/1.", buf.pos + 1):  # after a broken record, as parse_records
            return
        buf.pos += 1


_NOT_BLANK = re.compile(rb"[^\r\n]")


def _skip_blank_lines(buf: _Buffer) -> bool:
    """Move past the blank lines that end a record (dropping them as it goes); False at the end."""
    while (found := _NOT_BLANK.search(buf.data, buf.pos)) is None:
        buf.pos = buf.mark = len(buf.data)
        if not buf.available(1):
            return False
    buf.pos = found.start()
    return True


def _header_end(buf: _Buffer, clear: int, blank: bytes) -> int:
    """Where the header of the record at buf.pos ends (its blank line), reading on as needed;
    -1 if not within MAX_HEADER_BYTES. No byte is searched twice: `searched` (a file offset,
    as data may move when more is read) is where the search goes on."""
    searched = max(buf.offset(), clear)
    while (end := buf.data.find(blank, searched - buf.base, buf.pos + MAX_HEADER_BYTES)) < 0:
        have = len(buf.data) - buf.pos
        searched = max(searched, buf.base + len(buf.data) - len(blank) + 1)  # a blank line may straddle reads
        if have >= MAX_HEADER_BYTES or buf.available(have + READ_CHUNK) <= have:
            return -1
    return end


class _Buffer:
    """The file's bytes from `mark` on, read in chunks; `pos` is the next byte to inflate.

    A bytearray grown in place: reading on inside one huge member costs each byte once. The
    member being inflated is kept from its start (`mark`, to resync from just after it if it
    turns out corrupt) up to MAX_MARK_BYTES; past that the next gzip header is sought from
    where inflating stopped instead."""

    def __init__(self, stream: BinaryIO, head: bytes) -> None:
        self.stream, self.data, self.base, self.pos, self.mark, self.eof = stream, bytearray(head), 0, 0, 0, False

    def offset(self) -> int:
        return self.base + self.pos

    def available(self, n: int) -> int:
        """Read until n bytes are ready at `pos` (or the file ends); how many there are."""
        while len(self.data) - self.pos < n and not self.eof:
            more = self.stream.read(READ_CHUNK)
            if not more:
                self.eof = True
                break
            if self.pos - self.mark > MAX_MARK_BYTES:
                self.mark = self.pos
            keep = min(self.pos, self.mark)  # drop what no one can come back to
            if keep > READ_CHUNK:
                del self.data[:keep]
                self.base, self.pos, self.mark = self.base + keep, self.pos - keep, self.mark - keep
            self.data += more
        return len(self.data) - self.pos

    def find(self, needle: bytes, start: int) -> bool:
        """Move `pos` to the next `needle` at or after data[start] (data[mark] if start lies
        before the bytes kept: a huge member's start is gone), reading on; False at the end."""
        self.pos = max(start, self.mark)
        while True:
            found = self.data.find(needle, self.pos)
            if found >= 0:
                self.pos = found
                return True
            self.pos = max(self.pos, len(self.data) - len(needle) + 1)  # it may straddle reads
            self.mark = self.pos
            if self.available(len(needle) + READ_CHUNK // 2) < len(needle):
                self.pos = len(self.data)
                return False

    def find_magic(self, start: int) -> bool:
        """`find` the next gzip header."""
        return self.find(GZIP_MAGIC, start)


def _gzip_members(buf: _Buffer) -> Iterator[tuple[int, bytes, str | None]]:
    """(offset, inflated bytes, None) per gzip member, or (offset, b"", error) for bytes that
    are no member or a corrupt one (reading goes on at the next gzip header) or a member cut
    short by the end of the file."""
    while buf.available(len(GZIP_MAGIC)):
        start = buf.offset()
        if not buf.data.startswith(GZIP_MAGIC, buf.pos):
            if not buf.data[buf.pos:].strip() and buf.eof:  # trailing padding
                return
            buf.mark = buf.pos
            buf.find_magic(buf.pos + 1)
            yield start, b"", "bytes between records are not a gzip member"
            continue
        buf.mark = buf.pos
        data, error = _inflate_member(buf)
        yield start, data, error
        if isinstance(data, _MemberStream):
            while data.read(READ_CHUNK):  # what the reader left unread
                pass
            error = data.error
            if error is not None:
                yield start, b"", error  # after the records read before the damage
        if error is not None:  # corrupt, or "truncated": a damaged end may have read on into later members
            buf.find_magic(start + 1 - buf.base)  # just after this member's start (or the mark past it)


FEED_BYTES = 16 << 10  # compressed bytes per zlib call: what is left over is copied, keep it small
STREAM_BYTES = 64 << 20  # a member inflating to more is read record by record (a whole-file gzip)


class _MemberError(Exception):
    """A gzip member that is corrupt or cut short."""


def _inflate_member(buf: _Buffer) -> tuple[bytes | _MemberStream, str | None]:
    """Inflate the member at buf.pos, leaving pos after it: (data, None) or (b"", error); a
    member inflating to over STREAM_BYTES comes as a stream of its bytes instead (its error,
    if any, known once it is read). A loop of calls, not a generator: most members (one
    record each) take one zlib call, and a generator per member costs more than the call."""
    inflater = zlib_ng.decompressobj(31)
    try:
        first = _inflate_step(buf, inflater)
        if inflater.eof and len(first) <= STREAM_BYTES:  # most members: one record, one call
            return first, None
        out, size = [first], len(first)
        if size > STREAM_BYTES:
            return _MemberStream(out, _inflate_pieces(buf, inflater)), None
        while not inflater.eof:
            piece = _inflate_step(buf, inflater)
            out.append(piece)
            size += len(piece)
            if size > STREAM_BYTES:
                return _MemberStream(out, _inflate_pieces(buf, inflater)), None
    except _MemberError as exc:
        return b"", str(exc)
    return b"".join(out), None


def _inflate_pieces(buf: _Buffer, inflater: zlib_ng._Decompress) -> Iterator[bytes]:
    """The rest of the inflated bytes of the member at buf.pos, at most INFLATE_CHUNK at a
    time (a bomb costs time, not memory); pos is after the member once they are all read."""
    while not inflater.eof:
        yield _inflate_step(buf, inflater)


def _inflate_step(buf: _Buffer, inflater: zlib_ng._Decompress) -> bytes:
    """One zlib call, on what the last one left unread (it stopped at INFLATE_CHUNK) or else
    on the next FEED_BYTES; pos moves past what it consumed."""
    feed = inflater.unconsumed_tail
    try:
        if feed:
            fed = len(feed)
            piece = inflater.decompress(feed, INFLATE_CHUNK)
        else:
            fed = min(FEED_BYTES, buf.available(FEED_BYTES))
            if not fed:
                raise _MemberError("gzip member truncated (no end-of-stream marker)")
            # A view, not a copy: it is gone when the call returns, before the bytearray grows.
            piece = inflater.decompress(memoryview(buf.data)[buf.pos : buf.pos + fed], INFLATE_CHUNK)
    except zlib_ng.error as exc:
        raise _MemberError(f"corrupt gzip member: {exc}") from None
    # At the member's end what follows it is unused_data; unconsumed_tail keeps a stale copy
    # of it when the call was fed a tail (CPython's zlib and zlib_ng alike): counting both put
    # pos before the next member, a false "bytes between records" after an 8 MiB+ record.
    left = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
    buf.pos += fed - len(left)
    return piece


class _MemberStream:
    """A big member's inflated bytes as a readable stream; `error` is set (and the stream
    ends) where the member turns out corrupt or cut short."""

    def __init__(self, first: list[bytes], pieces: Iterator[bytes]) -> None:
        self.pieces, self.error = itertools.chain(first, pieces), None
        self.piece, self.at = b"", 0

    def read(self, size: int = -1) -> bytes:
        out, n = [], 0
        while size < 0 or n < size:
            if self.at == len(self.piece):
                try:
                    self.piece, self.at = next(self.pieces), 0
                except StopIteration:
                    break
                except _MemberError as exc:
                    self.error = str(exc)
                    break
                continue
            take = len(self.piece) - self.at if size < 0 else min(size - n, len(self.piece) - self.at)
            out.append(self.piece[self.at : self.at + take])
            self.at += take
            n += take
        return b"".join(out)


def parse_records(data: bytes, offset: int, in_member: bool) -> Iterator[Record | Broken]:
    """The records in `data` (one gzip member's or a whole plain file's bytes). In a plain
    file a record's offset is its own position; in a member it is the member's. After a
    broken record, reading goes on at the next `WARC/1.` line."""
    i, n, clear = 0, len(data), 0
    while i < n:
        found = _NOT_BLANK.search(data, i)  # past the blank lines that end the previous record
        if found is None:
            return
        i = found.start()
        here = offset if in_member else offset + i
        record, end = _parse_record(data, i, here, clear)
        yield record
        if isinstance(record, Broken):
            if record.error == HEADER_TRUNCATED:  # no header end starts before here: not again
                clear = i + MAX_HEADER_BYTES - 3
            found_at = data.find(b"\nWARC/1.", i + 1)
            end = found_at + 1 if found_at >= 0 else n
        i = end


HEADER_TRUNCATED = "record header truncated or over 64 KiB"
_VERSION_LINE = 32  # bytes within which the `WARC/x.y` line ends


def _blank_line(data: bytes | bytearray, i: int) -> bytes:
    """What ends the header of the record at data[i], and the record itself: CRLF CRLF, or
    LF LF when its version line ends in a bare LF (ClueWeb09 and other old crawlers wrote
    such records; warcio reads its header lines with readline and strips the CR)."""
    nl = data.find(b"\n", i, i + _VERSION_LINE)
    return b"\n\n" if nl > i and data[nl - 1] != 0x0D else b"\r\n\r\n"


def _parse_record(data: bytes | bytearray, i: int, offset: int, clear: int = 0) -> tuple[Record | Broken, int]:
    """The record at data[i] and where it ends, or a Broken; `clear`: no header end starts
    before data[clear] (a search after a broken record does not cover the same bytes again)."""
    if not data.startswith(b"WARC/", i):
        return Broken(offset, "not a WARC record (no WARC/ version line)"), len(data)
    blank = _blank_line(data, i)
    end = data.find(blank, max(i, clear), i + MAX_HEADER_BYTES)
    if end < 0:
        return Broken(offset, HEADER_TRUNCATED), len(data)
    headers = _headers(data, i, end)
    length = _length(headers)
    if length is None:
        text = headers.get("content-length", "")
        return Broken(offset, f"record header without a valid Content-Length ({text[:40]!r})"), len(data)
    start = end + len(blank)
    stop = start + length
    if stop > len(data):
        return Broken(offset, f"record truncated: {stop - len(data)} bytes of its Content-Length missing"), len(data)
    if len(data) - stop >= len(blank) and not data.startswith(blank, stop):  # every record ends so: a lying length
        return Broken(offset, "record not followed by its end marker (its Content-Length is wrong)"), len(data)
    return Record(offset, headers, bytes(data[start:stop])), stop


def _headers(data: bytes | bytearray, i: int, end: int) -> dict[str, str]:
    """The header fields of the record at data[i] whose header ends at data[end] (names
    lower-cased; a repeated field keeps its last value)."""
    headers: dict[str, str] = {}
    for line in data[i:end].decode("utf-8", "replace").split("\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def target_uri(value: str) -> str:
    """A `WARC-Target-URI` as warcio reads it: angle brackets around it (the WARC 1.0
    grammar's `<uri>`, written by wget 1.19 and others) removed, spaces as %20."""
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value.replace(" ", "%20") if " " in value else value


def _length(headers: dict[str, str]) -> int | None:
    """The Content-Length, if it is one: ASCII digits, at most 18 (int() refuses thousands)."""
    length = headers.get("content-length", "")
    return int(length) if length.isascii() and length.isdigit() and len(length) <= 18 else None
