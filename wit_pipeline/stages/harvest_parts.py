"""Reading the per-file parts back: light rows for the global half, selected records for
the writer, each part's counts and dead letters. Pure functions of a part's URL."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator

import pyarrow.parquet as pq

from wit_pipeline.core import fsio, keys
from wit_pipeline.stages import harvest as h


def _read(url: str):
    with fsio.open(url, "rb") as f:
        return pq.read_table(f)


def selected_rows(group: tuple[int, Iterable[list[int]]], urls: dict[int, str],
                  config: h.HarvestConfig) -> Iterator[tuple[int, list[dict]]]:
    """(shard, schema.SELECTED rows) for the chosen rows of one part: its records read back."""
    pid, batches = group
    table = _read(urls[pid]).take(sorted(row for batch in batches for row in batch))
    names = query_names(config.allowlist, config.case_sensitive)
    by_shard: dict[int, list[dict]] = defaultdict(list)
    for r in table.to_pylist():
        by_shard[keys.shard_of(r["key"], config.num_shards, config.seed)].append({
            "url": r["url"], "caption": r["text"], "key": r["key"], "page_url": r["page_url"],
            "language": r["language"], "lang_score": r["lang_score"], "query_ids": r["query_ids"],
            "queries": [names[q] for q in r["query_ids"]]})
    yield from by_shard.items()


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
