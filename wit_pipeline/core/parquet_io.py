"""Parquet files written the same way by every job: sorted rows, one schema, atomic rename.

Sorting by a stable column and fixing the row-group layout makes a file's bytes a function
of its rows only, whatever order a runner delivered them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from wit_pipeline.core import fsio
from wit_pipeline.core.schema import validate

ROW_GROUP_SIZE = 64 * 1024


def write_rows(url: str, rows: Iterable[Mapping[str, Any]], schema: pa.Schema, sort_by: str) -> int:
    """Write rows sorted by `sort_by` to `url` atomically; returns the row count."""
    ordered = sorted(rows, key=lambda r: r[sort_by])
    return _write(url, pa.Table.from_pylist(ordered, schema=schema))


def write_tables(url: str, tables: Iterable[pa.Table], schema: pa.Schema, sort_by: str) -> int:
    """write_rows for rows that arrive as tables (no Python object per row): concatenated,
    sorted by `sort_by` (stable), written atomically; returns the row count."""
    table = pa.concat_tables([schema.empty_table(), *(t.select(schema.names).cast(schema) for t in tables)])
    return _write(url, table.take(pc.sort_indices(table, [(sort_by, "ascending")])))


def _write(url: str, table: pa.Table) -> int:
    with fsio.atomic_open(url, "wb") as f:
        pq.write_table(table.combine_chunks(), f, row_group_size=ROW_GROUP_SIZE, compression="zstd")
    return table.num_rows


def read_parquet(source: str | IO[bytes], columns: list[str] | None = None) -> pa.Table:
    """One parquet file, from a URL (any fsspec filesystem) or an open binary file.

    The one place that reads a parquet file: through `pq.ParquetFile`, never `pq.read_table`
    on a file object. After that returns, an Arrow I/O thread is still releasing the read's
    Python buffers for a moment; a process that exits then aborts (SIGABRT, "terminate called
    without an active exception"; apache/arrow#50482): 71 of 150 processes here that read a
    200k-row file and exited. (img2dataset reads its input that way, then downloads for seconds.)
    """
    if isinstance(source, str):
        with fsspec.open(source, "rb") as f:
            try:
                return read_parquet(f, columns)
            except pa.ArrowInvalid as exc:
                raise pa.ArrowInvalid(f"{source}: {exc}") from None
    # Every read of the Python file happens on this thread: with pre-buffering or threaded
    # column reads, Arrow's threads read it and release its buffers, and a process that exits
    # while one still does aborts (about 1 process in 100 under load).
    file = pq.ParquetFile(source, pre_buffer=False)
    missing = [c for c in columns or () if c not in file.schema_arrow.names]
    if missing:  # ParquetFile.read would leave them out without a word
        raise pa.ArrowInvalid(f"no column {', '.join(map(repr, missing))} in this parquet file")
    table = file.read(columns=columns, use_threads=False)
    # Parquet does not check that strings are UTF-8; a string that is not would fail later, in
    # a conversion to Python or a Beam coder, naming nothing. Linear in the data, like the read.
    table.validate(full=True)
    return table


def read_table(urls: str | list[str], schema: pa.Schema, what: str = "parquet") -> pa.Table:
    """Read one or more parquet files (a glob is fine) and validate them against `schema`."""
    paths = fsio.expand(urls) if isinstance(urls, str) else list(urls)
    if not paths:
        raise FileNotFoundError(f"{what}: no files match {urls!r}")
    tables = []
    for path in paths:
        table = read_parquet(path)
        validate(table, schema, f"{what} {path}")
        tables.append(table.select(schema.names).cast(schema))
    return pa.concat_tables(tables)
