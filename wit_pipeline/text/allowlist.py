"""The allowlist file: a TSV with header `query<TAB>source<TAB>stat`, one query per row.
The one reader and writer of the format, beside the matcher that consumes it (`queries/`
builds lists and ships the demo one; harvest, curate and eval read them here).

A query's id is its 0-based data-row index; harvest counts, balancing and shards all refer
to queries by that id, so the file is read strictly: a wrong header, a row with the wrong
number of fields, or a query that normalises to nothing (textnorm) is an error naming the
line. Two queries with the same normal form would match exactly the same captions and split
one concept's balancing budget between two ids, so they are an error too, unless the caller
passes allow_duplicates=True (the matcher then gives every such id the same matches).
`stat` is the number the source was selected by (a count, PMI, page views); empty -> None.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import fsspec

from wit_pipeline.core.fsio import atomic_open
from wit_pipeline.text import textnorm

HEADER = ("query", "source", "stat")
SHOWN_CHARS = 80  # an error quotes this much of a field or line: a 1 MB line makes a short error


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """repr(value), cut to `limit` characters with the full length named: errors stay one short line."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


@dataclass(frozen=True)
class Allowlist:
    """Queries by id, with the source and selection statistic of each."""

    queries: list[str]
    sources: list[str] = field(default_factory=list)
    stats: list[float | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.queries)

    def rows(self) -> list[tuple[str, str, float | None]]:
        return list(zip(self.queries, self.sources, self.stats))


def _parse_stat(text: str, line: int) -> float | None:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"allowlist line {line}: stat {shown(text)} is not a number") from None
    if math.isnan(value):
        raise ValueError(f"allowlist line {line}: stat is NaN")
    return value


def _format_stat(stat: float | int | str | None) -> str:
    if stat is None:
        return ""
    if isinstance(stat, float) and stat.is_integer():
        return str(int(stat))
    return str(stat)


def parse_allowlist(text: str, case_sensitive: bool = False, allow_duplicates: bool = False,
                    name: str = "allowlist") -> Allowlist:
    """Parse allowlist TSV text; see the module docstring for what is rejected."""
    # Lines end at "\n" only (not at U+2028 and friends, which a query may contain); no
    # CSV quoting, so quotes in a query are kept verbatim.
    lines = [line[:-1] if line.endswith("\r") else line for line in text.removeprefix("\ufeff").split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or tuple(lines[0].split("\t")) != HEADER:
        got = lines[0] if lines else ""
        raise ValueError(f"{name}: header must be {'<TAB>'.join(HEADER)!r}, got {shown(got)}")
    queries: list[str] = []
    sources: list[str] = []
    stats: list[float | None] = []
    seen: dict[str, int] = {}
    for line_no, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{name} line {line_no}: expected 3 tab-separated fields, got {len(fields)}: {shown(line)}")
        query, source, stat = fields
        norm = textnorm.normalize(query, case_sensitive)
        if not norm:
            raise ValueError(f"{name} line {line_no}: query {shown(query)} is empty after normalisation")
        if norm in seen and not allow_duplicates:
            first = seen[norm]
            raise ValueError(
                f"{name} line {line_no}: query {shown(query)} duplicates line {first + 2} "
                f"({shown(queries[first])}) after normalisation to {shown(norm)}"
            )
        seen.setdefault(norm, len(queries))
        queries.append(query)
        sources.append(source)
        stats.append(_parse_stat(stat, line_no))
    if not queries:  # every id-based output would be empty: a mistake, not a run worth making
        raise ValueError(f"{name}: no queries (only the header)")
    return Allowlist(queries, sources, stats)


DEMO = "demo"  # names the bundled demo list wherever the code runs (a launcher's path is not a worker's)


def resolve(url: str) -> str:
    """The file behind an --allowlist value: `demo` is the list inside the installed package."""
    if url == DEMO:
        import importlib.resources

        return str(importlib.resources.files("queries") / "demo_allowlist.tsv")
    return url


def load_allowlist(url: str, case_sensitive: bool = False, allow_duplicates: bool = False) -> Allowlist:
    """Read and validate an allowlist TSV from a local path or URL (gs://, s3://, ...), or `demo`."""
    url = resolve(url)
    with fsspec.open(url, "rb") as f:
        data = f.read()
    return parse_allowlist(decode_utf8(data, url), case_sensitive, allow_duplicates, name=url)


def decode_utf8(data: bytes, name: str) -> str:
    """UTF-8 text of a file, or a ValueError naming the file, line and byte that are not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{name} line {line}: not UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start})") from None


def write_allowlist(url: str, rows: Iterable[tuple[str, str, float | int | str | None]] | Allowlist) -> int:
    """Write rows (query, source, stat) as an allowlist TSV atomically; returns the row count.

    Tabs and newlines cannot be stored in a field, so they are an error rather than a
    silently shifted column.
    """
    if isinstance(rows, Allowlist):
        rows = rows.rows()
    buf = io.StringIO()
    buf.write("\t".join(HEADER) + "\n")
    n = 0
    for n, row in enumerate(rows, start=1):
        query, source, stat = row
        stat_text = _format_stat(stat)
        for value in (query, source, stat_text):
            if any(c in value for c in "\t\r\n"):
                raise ValueError(f"allowlist row {n}: field {shown(value)} contains a tab or newline")
        _parse_stat(stat_text, n)
        buf.write(f"{query}\t{source}\t{stat_text}\n")
    with atomic_open(url, "wb") as f:
        f.write(buf.getvalue().encode("utf-8"))
    return n


__all__ = ["Allowlist", "HEADER", "load_allowlist", "parse_allowlist", "write_allowlist"]
