"""Every file a wit job writes is named here, and written by the writers here when it is
common to several jobs: stats.json (`write_stats`) and the dead letters (`write_dead_letters`).

A job's folder (its --output):

    harvest        candidates/<part_name>.parquet, selected/part-SSSSS-of-NNNNN.parquet,
                   dead_letter/part-00000-of-00001.parquet, query_counts.parquet, parts.txt, stats.json
    download       NNNNN.tar + NNNNN.parquet + NNNNN_stats.json (img2dataset's), _dead_letter/, _consent/,
                   stats.json
    curate         wit-NNNNNN.tar, manifest.json, dead_letter/part-00000-of-00001.parquet, stats.json
    build-queries  allowlist.tsv, reads.jsonl, dead_letter/part-00000-of-00001.parquet, stats.json

Sharded files follow one template (TFDS's ShardedFileTemplate): `sharded(folder, i, n)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from wit_pipeline.core import fsio, parquet_io, schema
from wit_pipeline.core.stats import check_stages, stats_document

STATS = "stats.json"  # every job's accounting: core.stats' shape, plus the job's config
MANIFEST = "manifest.json"  # curate: the final shards, their counts and the config

# harvest
CANDIDATES = "candidates"  # one part per crawl file (stages.harvest.parts.part_name)
SELECTED = "selected"  # img2dataset's input
DEAD_LETTER = "dead_letter"
QUERY_COUNTS = "query_counts.parquet"
PARTS_LIST = "parts.txt"  # the candidates/ parts a run's counts cover, one name per line

# curate
FINAL_SHARD = "wit-{:06d}.tar"
CURATE_SHARD_LIST = "_curate_shards.json"  # the workers' shard entries, for the launcher's manifest.json

# download (img2dataset owns the folder; names starting with "_" are wit's)
DOWNLOAD_DEAD_LETTERS = "_dead_letter/download.parquet"
DOWNLOAD_FILES_DEAD_LETTERS = "_dead_letter/download_files.parquet"
DOWNLOAD_CONSENT = "_consent/origins.parquet"  # each origin's robots.txt and tdmrep.json answers (stages.consent)

# build-queries
ALLOWLIST = "allowlist.tsv"
READS = "reads.jsonl"


def sharded(folder: str, shard: int, num_shards: int, suffix: str = ".parquet") -> str:
    """The name of shard `shard` of `num_shards` in `folder`: folder/part-SSSSS-of-NNNNN.parquet."""
    return f"{folder}/part-{shard:05d}-of-{num_shards:05d}{suffix}"


def sharded_glob(folder: str, num_shards: int | None = None, suffix: str = ".parquet") -> str:
    """A glob of `sharded` names: every shard count, or one."""
    of = "*" if num_shards is None else f"{num_shards:05d}"
    return f"{folder}/part-*-of-{of}{suffix}"


DEAD_LETTERS = sharded(DEAD_LETTER, 0, 1)  # the dead letters of harvest, curate and build-queries: one file


def write_dead_letters(url: str, rows: Iterable[Mapping[str, str]], *, skip_empty: bool = False) -> int:
    """The one dead-letter writer: rows of schema.DEAD_LETTER (stage, source, error), sorted by
    (source, stage, error) so the bytes depend only on the rows, written atomically (an empty
    file too, so a rerun replaces an earlier run's, unless `skip_empty`); returns the count."""
    rows = sorted(rows, key=lambda r: (r["source"], r["stage"], r["error"]))
    if not rows and skip_empty:
        return 0
    return parquet_io.write_rows(url, rows, schema.DEAD_LETTER, "source")


def write_stats(output: str, stages: list[dict[str, Any]], chained: Iterable[tuple[str, str]] = (),
                **extra: Any) -> dict[str, Any]:
    """The one stats.json writer: the stages (in == out + sum(dropped) each, and each chained
    pair's out == in) and `extra` (job, config, ...). Written even when the counts do not add
    up, with the error in it (it is the evidence), then ValueError."""
    doc = stats_document(stages, **extra)
    try:
        check_stages(stages, chained)
    except ValueError as exc:
        doc["error"] = str(exc)
        raise
    finally:
        fsio.write_json(fsio.join(output, STATS), doc)
    return doc
