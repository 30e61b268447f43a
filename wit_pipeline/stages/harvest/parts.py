"""The per-file part: one parquet per crawl file, its name, its footer and reading it back.

A part holds the file's matched candidates (schema.CANDIDATES, in extraction order); its
metadata holds the file's counts, its dead letters, the fingerprint of the settings that made
it and the version of the crawl file it was made from. It is written atomically, so a part
that is there and carries this run's fingerprint is done. The global half reads light
columns of it (`select.read_lights`); the writer of the selected pairs reads their records
back (`selected_rows`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from wit_pipeline.core import fsio, keys, parquet_io, schema
from wit_pipeline.stages.harvest.config import HarvestConfig

if TYPE_CHECKING:
    from wit_pipeline.text.allowlist_folder import FolderAllowlist

META_STATS, META_DEAD, META_FINGERPRINT = b"wit.stats", b"wit.dead_letters", b"wit.fingerprint"
META_INPUT = b"wit.input"  # the version of the crawl file the part was made from
# what a store says about a file that changes when its bytes do (local, gcsfs, s3fs, http)
VERSION_FIELDS = ("size", "mtime", "generation", "etag", "ETag", "LastModified", "Last-Modified")
RETRY = "retry"  # the fingerprint of a part whose file failed: never complete


def part_name(file_url: str) -> str:
    """The part of an input file: its base name made safe, plus a hash of the whole URL
    (two crawls' files may share a base name)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", file_url.rstrip("/").rsplit("/", 1)[-1])[-120:]
    digest = hashlib.blake2b(file_url.encode("utf-8"), digest_size=6).hexdigest()
    return f"{base}-{digest}.parquet"


def hash63(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") >> 1


def part_id(url: str) -> int:
    """A 63-bit id of a part, from its name: what crosses a shuffle instead of its URL."""
    return hash63(url.rsplit("/", 1)[-1])


def write_part(url: str, table: pa.Table, counts: dict[str, int], dead: list[dict], fingerprint: str,
               version: str = "") -> None:
    """The part, atomically: rows plus the file's counts, dead letters, fingerprint and the
    version of the input file it was made from."""
    meta = {META_STATS: json.dumps(counts, sort_keys=True), META_DEAD: json.dumps(dead, sort_keys=True),
            META_FINGERPRINT: fingerprint, META_INPUT: version}
    table = table.replace_schema_metadata(meta)
    with fsio.atomic_open(url, "wb") as f:
        pq.write_table(table, f, compression="zstd")


def _read_footer(url: str) -> pq.FileMetaData | None:
    """A part's parquet footer, or None when there is no readable part at `url`."""
    try:
        with fsio.open(url, "rb") as f:
            return pq.read_metadata(f)
    except (FileNotFoundError, OSError, pa.ArrowInvalid):
        return None


def read_part_meta(url: str) -> dict[bytes, bytes] | None:
    """A part's key-value metadata, or None when there is no readable part at `url`."""
    found = _read_footer(url)
    return None if found is None else found.metadata or {}


def is_part(url: str) -> bool:
    """Whether `url` is a readable harvest part (its footer carries a fingerprint)."""
    meta = read_part_meta(url)
    return meta is not None and META_FINGERPRINT in meta


def part_is_complete(url: str, fingerprint: str, version: str = "") -> bool:
    """Whether the part at `url` was made with these settings from this version of its input
    (a version that cannot be told, "", does not redo a part)."""
    meta = read_part_meta(url)
    if meta is None or meta.get(META_FINGERPRINT) != fingerprint.encode():
        return False
    return not version or meta.get(META_INPUT, b"") == version.encode()


def input_version(file_url: str) -> str:
    """A digest of what the store says about a crawl file that changes with its bytes (size
    and mtime, a GCS generation, an ETag), so a file replaced or grown since its part was made
    (a download that finished) is read again; "" when the store says nothing."""
    try:
        fs, path = fsio.filesystem(file_url)
        info = fs.info(path)
    except Exception:  # missing, throttled: the read itself will say
        return ""
    fields = {k: str(info[k]) for k in VERSION_FIELDS if info.get(k) is not None}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16] if fields else ""


def footer(url: str) -> tuple[dict[str, int], list[dict], int]:
    """A part's counts, dead letters and number of candidates, from one read of its footer."""
    found = _read_footer(url)
    kv = None if found is None else found.metadata
    if not kv:
        return {}, [], 0
    return json.loads(kv[META_STATS]), json.loads(kv[META_DEAD]), found.num_rows


def selected_rows(group: tuple[int, Iterable[Sequence[int]]], urls: dict[int, str],
                  config: HarvestConfig) -> Iterator[tuple[int, bytes]]:
    """(shard, the selected rows of one part as Arrow IPC bytes) for each shard they go to:
    their records read back, columnar all the way (no Python object per row), in
    schema.SELECTED's columns but its `queries` (`with_queries` adds them where they are
    written: the names would be a third of the bytes that cross the shuffle)."""
    pid, batches = group
    rows = np.sort(np.concatenate([np.asarray(batch, np.int64) for batch in batches]))
    table = parquet_io.read_table([urls[pid]], schema.CANDIDATES, "part")
    shard = keys.shards_of(table.column("key").take(rows).to_pylist(), config.num_shards, config.seed)
    order = np.argsort(shard, kind="stable")  # the rows by shard, in row order within one
    table, shard = table.take(rows[order]), shard[order]  # one take of the records
    selected = pa.table({"url": table.column("url"), "caption": table.column("text"), "key": table.column("key"),
                         "page_url": table.column("page_url"), "language": table.column("language"),
                         "lang_score": table.column("lang_score"), "query_ids": table.column("query_ids")})
    starts = np.flatnonzero(np.r_[True, shard[1:] != shard[:-1]]) if len(shard) else shard
    for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(shard)]):
        yield int(shard[a]), to_ipc(selected.slice(a, b - a))


def with_queries(table: pa.Table, config: HarvestConfig) -> pa.Table:
    """`table` with a `queries` column: the names of its `query_ids`."""
    ids = table.column("query_ids").combine_chunks()
    names = query_name_array(config.allowlist, config.case_sensitive).take(ids.values)
    return table.append_column("queries", pa.ListArray.from_arrays(ids.offsets, names))


_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")  # 217 -> 53 bytes a selected row, +0.4 us


def to_ipc(table: pa.Table) -> bytes:
    """A table as Arrow IPC bytes, zstd-compressed: the selected records are what crosses the
    last shuffle (to their shard's writer), and a local runner holds several copies of it."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


@functools.lru_cache(maxsize=4)
def _folder(allowlist: str, case_sensitive: bool) -> FolderAllowlist:
    """An allowlist folder, read once per worker process for both its names and languages."""
    from wit_pipeline.text.allowlist_folder import load_folder

    return load_folder(allowlist, case_sensitive)


@functools.lru_cache(maxsize=4)
def query_names(allowlist: str, case_sensitive: bool) -> tuple[str, ...]:
    """The allowlist's queries by id (a folder's: ids unique across its lists), read once per worker process."""
    from wit_pipeline.text.allowlist import load_allowlist
    from wit_pipeline.text.allowlist_folder import is_folder

    if is_folder(allowlist):
        return tuple(_folder(allowlist, case_sensitive).queries)
    return tuple(load_allowlist(allowlist, case_sensitive=case_sensitive, allow_duplicates=True).queries)


@functools.lru_cache(maxsize=4)
def query_name_array(allowlist: str, case_sensitive: bool) -> pa.Array:
    """`query_names` as an Arrow array, made once per worker process: query ids index it."""
    return pa.array(query_names(allowlist, case_sensitive), pa.string())


@functools.lru_cache(maxsize=4)
def query_languages(allowlist: str, case_sensitive: bool) -> tuple[str, ...] | None:
    """The language of every query id of an allowlist folder; None for a single list (its
    queries serve every language)."""
    from wit_pipeline.text.allowlist_folder import is_folder

    if not is_folder(allowlist):
        return None
    return tuple(_folder(allowlist, case_sensitive).languages())
