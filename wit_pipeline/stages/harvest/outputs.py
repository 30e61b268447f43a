"""What a harvest leaves in its --output besides the parts: the selected pairs, the dead
letters, query_counts.parquet, parts.txt and stats.json; the check that an --output is
harvest's own, and the removal of what an earlier run left that stands for nothing now."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import pyarrow as pa

from wit_pipeline.core import fsio, outputs, parquet_io, schema
from wit_pipeline.core.ownership import claim_output
from wit_pipeline.core.stats import stages_from_counters
from wit_pipeline.stages.harvest.config import HarvestConfig
from wit_pipeline.stages.harvest.parts import from_ipc, is_part, query_languages, query_name_array, with_queries
from wit_pipeline.stages.harvest.select import ByQuery

STAGES = ("read", "extract", "filter", "match", "dedup", "balance")
CHAINED = (("extract", "filter"), ("filter", "match"), ("match", "dedup"), ("dedup", "balance"))

# what a harvest writes in its --output (and the temporary names of a killed write)
_NAMES = (outputs.CANDIDATES, outputs.SELECTED, outputs.DEAD_LETTER, outputs.QUERY_COUNTS, outputs.PARTS_LIST, outputs.STATS)
_OURS = re.compile(f"({'|'.join(map(re.escape, _NAMES))})" + r"(\.tmp-[0-9a-f]+)?")


def write_selected(output: str, config: HarvestConfig, shard: int, batches: list[bytes]) -> str:
    """One shard of the selected pairs, from `parts.selected_rows`' batches."""
    url = fsio.join(output, outputs.sharded(outputs.SELECTED, shard, config.num_shards))
    parquet_io.write_tables(url, (with_queries(from_ipc(batch), config) for batch in batches), schema.SELECTED, "key")
    return url


def write_dead_letters(output: str, shard: int, rows: list[dict]) -> str:
    url = fsio.join(output, outputs.DEAD_LETTERS)
    outputs.write_dead_letters(url, rows)
    return url


def write_summary(_: Any, output: str, config: HarvestConfig, report: dict[str, Any], matched: ByQuery,
                  files: dict[str, int], written: Iterable[str] = (), parts: Iterable[str] = (),
                  limits: dict[str, Any] | None = None) -> None:
    """query_counts.parquet, parts.txt and stats.json; raises (after writing it) if the counts
    do not add up. `matched` counts the candidates per query; `report` sums the selection
    (`select.merge_reports`). `written`, the selected and dead-letter files, is a side input
    only so that stats.json is written last: a run killed before has none (the launcher
    removed the earlier run's). candidates/ may also hold parts of files an earlier run read
    and this one did not (kept for a later run over them): parts.txt says which parts this
    run's counts cover.
    `limits` (`language_t.thresholds`, an allowlist folder's run) gives stats.json its `p` and
    `t_per_language`, and query_counts.parquet each query's language."""
    part_names = sorted({url.rsplit("/", 1)[-1] for url in parts})
    fsio.write_bytes(fsio.join(output, outputs.PARTS_LIST), "".join(f"{name}\n" for name in part_names).encode())
    names = query_name_array(config.allowlist, config.case_sensitive)
    languages = query_languages(config.allowlist, config.case_sensitive)  # None: one list for every language
    ids = pa.array(matched.ids)  # a column per field: a crawl's list has 500k queries or more
    table = pa.table({"query_id": ids.cast(pa.int32()), "query": names.take(ids), "count": matched.values,
                      "selected": report["selected_by_query"].lookup(matched.ids, 0),
                      "kept": report["kept_by_query"].lookup(matched.ids, 0),
                      "language": (pa.array(languages, pa.string()).take(ids) if languages
                                   else pa.nulls(len(ids), pa.string()))}, schema=schema.QUERY_COUNTS)
    parquet_io.write_tables(fsio.join(output, outputs.QUERY_COUNTS), [table], schema.QUERY_COUNTS, "query_id")

    reason = "over_cap" if config.balance == "cap" else "balanced_out"
    d_in, d_out, sel = report["dedup_in"], report["dedup_out"], report["selected"]
    counts = {**files, "dedup:in": d_in, "dedup:out": d_out, "dedup:dropped.duplicate": d_in - d_out,
              "balance:in": d_out, "balance:out": sel, f"balance:dropped.{reason}": d_out - sel}
    stages = stages_from_counters({k: v for k, v in counts.items() if v}, STAGES)
    # pairs whose URL a lazy-loading attribute, srcset or <picture> gave (WARC input only)
    url_from = {k.split("url_from.", 1)[1]: v for k, v in sorted(files.items()) if k.startswith("extract:url_from.")}
    limits = limits or {"p": None, "t_per_language": {}}
    outputs.write_stats(output, stages, CHAINED, job="harvest", config=asdict(config), url_from=url_from,
                        parts=len(part_names), p=limits["p"], t_per_language=limits["t_per_language"])


def tidy(output: str, num_shards: int, started: float) -> None:
    """After a run: delete what wit wrote and no longer stands for anything, selected-pairs
    files of an earlier run with another --num-shards and the temporary parts a killed run
    left (those older than this run: a concurrent run's are its own)."""
    current = set(fsio.expand(fsio.join(output, outputs.sharded_glob(outputs.SELECTED, num_shards))))
    stale = [u for u in fsio.expand(fsio.join(output, outputs.sharded_glob(outputs.SELECTED))) if u not in current]
    fs, _ = fsio.filesystem(output)
    stale += [u for u in fsio.expand(fsio.join(output, outputs.CANDIDATES, "*.parquet.tmp-*"))
              if fs.modified(fsio.filesystem(u)[1]).timestamp() < started]
    for url in stale:
        fsio.rm(url)


def check_output(url: str) -> None:
    """Refuse an --output that is an existing file or another command's folder (a rerun
    rewrites stats.json and removes stale selected/ files), before any work is done."""
    if fsio.exists(url) and not fsio.isdir(url):
        raise ValueError(f"--output {url!r} is a file, not a folder")
    claim_output(url, "harvest", lambda doc: doc.get("job") == "harvest",
                     lambda names: all(_OURS.fullmatch(name) for name in names) or _holds_parts(url, names))


def _holds_parts(url: str, names: list[str]) -> bool:
    """Whether candidates/ holds a harvest part (a rerun killed after removing stats.json,
    beside a file the user put there while stats.json said the folder was harvest's)."""
    found = fsio.expand(fsio.join(url, outputs.CANDIDATES, "*.parquet")) if outputs.CANDIDATES in names else []
    return bool(found) and is_part(found[0])
