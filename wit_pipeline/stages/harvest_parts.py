"""Reading the per-file parts back: light rows for the global half, selected records for
the writer, each part's counts and dead letters. Pure functions of a part's URL."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator

import pyarrow.parquet as pq

from wit_pipeline.core import fsio, keys
from wit_pipeline.stages import harvest as h


def part_id(url: str) -> int:
    """A 63-bit id of a part (from its name): what crosses a shuffle instead of its URL."""
    return _hash63(url.rsplit("/", 1)[-1])


def _read(url: str, columns: list[str] | None = None):
    with fsio.open(url, "rb") as f:
        return pq.read_table(f, columns=columns)


def _hash63(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") >> 1


def light_rows(url: str) -> Iterator[tuple[bytes, tuple[int, int, int, tuple[int, ...]]]]:
    """(8-byte key, (page URL hash, part id, row, query ids)) per candidate of a part.

    Dedup keeps the occurrence of lowest page URL hash: a property of the record, not of
    where its crawl file was read from, so a copy of the crawl elsewhere selects the same."""
    table = _read(url, ["key", "page_url", "query_ids"])
    pid = part_id(url)
    columns = (table.column(c).to_pylist() for c in ("key", "page_url", "query_ids"))
    for row, (key, page_url, query_ids) in enumerate(zip(*columns)):
        yield bytes.fromhex(key), (_hash63(page_url), pid, row, tuple(query_ids))


def selected_rows(group: tuple[int, Iterable[int]], urls: dict[int, str],
                  config: h.HarvestConfig) -> Iterator[tuple[int, dict]]:
    """(shard, schema.SELECTED row) for the chosen rows of one part."""
    pid, rows = group
    table = _read(urls[pid]).take(sorted(rows))
    names = query_names(config.allowlist, config.case_sensitive)
    for r in table.to_pylist():
        yield keys.shard_of(r["key"], config.num_shards, config.seed), {
            "url": r["url"], "caption": r["text"], "key": r["key"], "page_url": r["page_url"],
            "language": r["language"], "lang_score": r["lang_score"], "query_ids": r["query_ids"],
            "queries": [names[q] for q in r["query_ids"]]}


def counts(url: str) -> dict[str, int]:
    meta = h.read_part_meta(url) or {}
    return h.part_counts(meta)[0] if meta else {}


def dead_letters(url: str) -> list[dict]:
    meta = h.read_part_meta(url) or {}
    return h.part_counts(meta)[1] if meta else []


@functools.lru_cache(maxsize=4)
def query_names(allowlist: str, case_sensitive: bool) -> tuple[str, ...]:
    """The allowlist's queries by id, read once per worker process."""
    from queries.allowlist import load_allowlist

    return tuple(load_allowlist(allowlist, case_sensitive=case_sensitive, allow_duplicates=True).queries)
