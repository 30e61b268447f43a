"""Splitting one dump file over many workers: multistream dumps and their index.

Wikimedia's `...-pages-articles-multistream.xml.bz2` is a concatenation of bz2 streams: a
header (siteinfo), then one stream per 100 pages, then a footer (`</mediawiki>`). Its
`...-multistream-index.txt.bz2` has one line per page, `offset:page_id:title`, where offset
is the byte offset of the page's stream. The distinct offsets, grouped into byte ranges of
about `range_bytes`, are units of work that any worker reads on its own: seek, read the
range, decompress and parse each stream separately (a corrupt stream costs only itself).
The same holds for per-part files (`...-multistream1.xml-p1p41242.bz2` with
`...-multistream-index1.txt-p1p41242.bz2`). A dump without an index next to it is read
whole by one worker (queries.wikipedia.iter_pages).
"""

from __future__ import annotations

import bz2
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import fsspec

from queries import wikipedia
from wit_pipeline.core import fsio
from wit_pipeline.core.stats import Tally

_MULTISTREAM = re.compile(r"-multistream(\d*)\.xml(-p\d+p\d+)?\.bz2$")
_INDEX = re.compile(r"-multistream-index\d*\.txt(-p\d+p\d+)?\.bz2$")
_FOOTER = b"</mediawiki>"


class DumpRange(NamedTuple):
    """Byte range [streams[0], end) of a multistream dump; `streams` are its streams' offsets."""

    url: str
    streams: tuple[int, ...]
    end: int


def index_of(dump_url: str) -> str | None:
    """The index file's URL of a multistream dump (or part), or None for other dumps."""
    if not _MULTISTREAM.search(dump_url):
        return None
    return _MULTISTREAM.sub(r"-multistream-index\1.txt\2.bz2", dump_url)


def is_index(url: str) -> bool:
    return bool(_INDEX.search(url))


def stream_offsets(index_url: str) -> list[int]:
    """Sorted distinct stream offsets of an index file; a malformed line is an error naming it."""
    offsets: set[int] = set()
    with fsspec.open(index_url, "rt", compression="infer", encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            head = line.split(":", 1)[0]
            if not (head.isascii() and head.isdigit()):
                raise ValueError(f"{index_url} line {line_no}: expected offset:page_id:title, got {line[:80]!r}")
            offsets.add(int(head))
    return sorted(offsets)


def plan_ranges(url: str, offsets: list[int], size: int, range_bytes: int) -> list[DumpRange]:
    """Group consecutive streams into ranges of at least `range_bytes` (the last one ends at
    `size` and so holds the footer stream). Bytes before the first offset are the header."""
    ranges: list[DumpRange] = []
    group: list[int] = []
    for offset in offsets:
        if group and offset - group[0] >= range_bytes:
            ranges.append(DumpRange(url, tuple(group), offset))
            group = []
        group.append(offset)
    if group:
        ranges.append(DumpRange(url, tuple(group), size))
    return ranges


def units_of(dump: tuple[str, str | None], range_bytes: int) -> list[str | DumpRange]:
    """(dump URL, its index URL or None) -> units of work: byte ranges when there is an index,
    else the whole file (read by one worker)."""
    url, index = dump
    if index is None:
        return [url]
    fs, path = fsio.filesystem(url)
    return plan_ranges(url, stream_offsets(index), fs.size(path), range_bytes)


def _stream_xml(raw: bytes) -> Iterator[bytes]:
    """One stream's pages wrapped in a root element (decompressed lazily, so a corrupt stream
    fails inside the page reader, which reports it)."""
    yield b"<mediawiki>"
    data = bz2.decompress(raw).rstrip()
    yield data[: -len(_FOOTER)] if data.endswith(_FOOTER) else data
    yield b"</mediawiki>"


def read_range(r: DumpRange, tally: Tally, on_error: wikipedia.OnError) -> Iterator[wikipedia.Page]:
    """Every page of a range, stream by stream (stages `inputs` = streams, `pages`)."""
    start = r.streams[0]
    with fsspec.open(r.url, "rb") as f:
        f.seek(start)
        data = f.read(r.end - start)
    bounds = [*r.streams, r.end]
    for a, b in zip(bounds, bounds[1:]):
        yield from wikipedia.pages_of_unit(_stream_xml(data[a - start:b - start]), f"{r.url}@{a}", tally, on_error)



def read_summary(reads: list[dict[str, Any]]) -> dict[str, Any]:
    """How a job's reading went, from its reads.jsonl rows (`started`, `seconds`, `worker`):
    units read, distinct workers, most units being read at the same time."""
    edges = sorted([(r["started"], 1) for r in reads] + [(r["started"] + r["seconds"], -1) for r in reads])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return {"units": len(reads), "workers": len({r["worker"] for r in reads}), "max_parallel": peak}


__all__ = ["DumpRange", "index_of", "is_index", "plan_ranges", "read_range", "read_summary", "stream_offsets", "units_of"]
