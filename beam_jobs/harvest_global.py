"""Harvest, the global half: the parts of every crawl file -> dedup -> balance -> outputs.

What crosses a shuffle is light: an 8-byte key, the part and row a candidate sits at, and
its query ids. The records themselves are read back from the parts, once, to be written
into the selected-pairs shards. Counts are data, merged from the parts' own counts and this
half's, so stats.json does not depend on which files a (resumed) run computed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam

from beam_jobs.common import CapPerQuery, WriteShards
from wit_pipeline.core import fsio, parquet_io, schema
from wit_pipeline.core.stats import check_stages, stages_from_counters, stats_document
from wit_pipeline.stages import harvest as h
from wit_pipeline.stages import harvest_parts as parts_io
from wit_pipeline.stages.balance import keeping_queries

STAGES = ("read", "extract", "filter", "match", "dedup", "balance")
CHAINED = (("extract", "filter"), ("filter", "match"), ("match", "dedup"), ("dedup", "balance"))


class Light(NamedTuple):
    """A deduplicated candidate as the global half sees it."""

    key: str
    part: int
    row: int
    query_ids: tuple[int, ...]


def first_of(group: tuple[bytes, Iterable[tuple[int, int, int, tuple[int, ...]]]]) -> tuple[Light, int]:
    """Dedup: the occurrence of lowest (page URL hash, part, row), and how many there were."""
    key, seen = group
    seen = list(seen)
    _, part, row, query_ids = min(seen)
    return Light(key.hex(), part, row, query_ids), len(seen)


def keep_by_probability(light: Light, counts: dict[int, int], t: int, seed: int) -> Iterator[tuple[Light, list[int]]]:
    kept_by = keeping_queries(light.key, light.query_ids, counts, t, seed)
    if kept_by:
        yield light, kept_by


def keep_if_chosen(joined: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[Light, list[int]]]:
    _, groups = joined
    chosen = sorted(groups["chosen"])
    for light in groups["light"]:
        if chosen:
            yield light, chosen


class Balance(beam.PTransform):
    """Deduplicated candidates -> (candidate, the queries that kept it) for the selected ones.

    prob (MetaCLIP): each matched query keeps a candidate with probability min(1, t/count).
    cap: each query keeps its t candidates of lowest (cap_rank, key). Either way a candidate
    survives if any of its queries keeps it.
    """

    def __init__(self, mode: str, t: int, seed: int, query_counts: beam.PCollection) -> None:
        super().__init__()
        self.mode, self.t, self.seed, self.query_counts = mode, t, seed, query_counts

    def expand(self, lights: beam.PCollection) -> beam.PCollection:
        if self.mode == "prob":
            return lights | "KeepByProbability" >> beam.FlatMap(
                keep_by_probability, counts=beam.pvalue.AsDict(self.query_counts), t=self.t, seed=self.seed)
        chosen = (lights
                  | "QueryKeys" >> beam.FlatMap(lambda light: [(q, light.key) for q in light.query_ids])
                  | "CapPerQuery" >> CapPerQuery(self.t, self.seed))
        return ({"light": lights | "ByKey" >> beam.Map(lambda light: (light.key, light)), "chosen": chosen}
                | "JoinChosen" >> beam.CoGroupByKey()
                | "KeepIfChosen" >> beam.FlatMap(keep_if_chosen))


def _count_pairs(pcoll: beam.PCollection, label: str, field: Any) -> beam.PCollection:
    return (pcoll | f"{label}Ids" >> beam.FlatMap(field)
            | f"{label}Count" >> beam.combiners.Count.PerElement())


def _sum(label: str, pcoll: beam.PCollection) -> beam.PCollection:
    return pcoll | label >> beam.CombineGlobally(sum).without_defaults()


def build_global(parts: beam.PCollection, config: h.HarvestConfig, output: str) -> None:
    """Everything after the per-file stage, given the PCollection of part URLs."""
    deduped = (parts
               | "ReadKeys" >> beam.FlatMap(parts_io.light_rows)
               | "GroupByKey" >> beam.GroupByKey()
               | "FirstOfKey" >> beam.Map(first_of))
    lights = deduped | "Lights" >> beam.Map(lambda pair: pair[0])
    query_counts = _count_pairs(lights, "Matched", lambda light: light.query_ids)
    selected = lights | "Balance" >> Balance(config.balance, config.t, config.seed, query_counts)
    selected_counts = _count_pairs(selected, "Selected", lambda s: s[0].query_ids)
    kept_counts = _count_pairs(selected, "Kept", lambda s: s[1])

    part_urls = parts | "PartIds" >> beam.Map(lambda url: (parts_io.part_id(url), url))
    _ = (selected
         | "ByPart" >> beam.Map(lambda s: (s[0].part, s[0].row))
         | "GroupByPart" >> beam.GroupByKey()
         | "ReadSelected" >> beam.FlatMap(parts_io.selected_rows, urls=beam.pvalue.AsDict(part_urls),
                                          config=config)
         | "WriteSelected" >> WriteShards(functools.partial(write_selected, output, config.num_shards), config.num_shards))
    _ = (parts
         | "DeadLetters" >> beam.FlatMap(lambda url: [(0, d) for d in parts_io.dead_letters(url)])
         | "WriteDeadLetters" >> WriteShards(functools.partial(write_dead_letters, output), 1))

    file_counts = parts | "FileCounts" >> beam.Map(parts_io.counts) | "MergeFileCounts" >> beam.CombineGlobally(merge_counts)
    dedup_in = _sum("DedupIn", deduped | "GroupSizes" >> beam.Map(lambda pair: pair[1]))
    dedup_out = _sum("DedupOut", lights | "OneEach" >> beam.Map(lambda _: 1))
    selected_n = _sum("SelectedN", selected | "OneSelected" >> beam.Map(lambda _: 1))
    _ = (parts.pipeline
         | "Finish" >> beam.Create([None])
         | "WriteQueryCounts" >> beam.Map(
             write_query_counts, output, config, counts=beam.pvalue.AsDict(query_counts),
             selected=beam.pvalue.AsDict(selected_counts), kept=beam.pvalue.AsDict(kept_counts))
         | "WriteStats" >> beam.Map(
             write_stats, output, config, files=beam.pvalue.AsSingleton(file_counts, default_value={}),
             dedup_in=beam.pvalue.AsSingleton(dedup_in, default_value=0),
             dedup_out=beam.pvalue.AsSingleton(dedup_out, default_value=0),
             selected=beam.pvalue.AsSingleton(selected_n, default_value=0)))


def merge_counts(dicts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in dicts:
        for name, n in d.items():
            total[name] = total.get(name, 0) + n
    return total


def write_selected(output: str, num_shards: int, shard: int, rows: list[dict]) -> str:
    url = fsio.join(output, "selected", f"part-{shard:05d}-of-{num_shards:05d}.parquet")
    parquet_io.write_rows(url, rows, schema.SELECTED, "key")
    return url


def write_dead_letters(output: str, shard: int, rows: list[dict]) -> str:
    url = fsio.join(output, "dead_letter", "part-00000-of-00001.parquet")
    rows = sorted(rows, key=lambda r: (r["source"], r["stage"], r["error"]))
    parquet_io.write_rows(url, rows, schema.DEAD_LETTER, "source")
    return url


def write_query_counts(_: Any, output: str, config: h.HarvestConfig, counts: dict[int, int],
                       selected: dict[int, int], kept: dict[int, int]) -> None:
    """query_counts.parquet: every query with at least one match, sorted by id."""
    names = parts_io.query_names(config.allowlist, config.case_sensitive)
    rows = [{"query_id": q, "query": names[q], "count": int(n), "selected": int(selected.get(q, 0)),
             "kept": int(kept.get(q, 0))} for q, n in counts.items()]
    parquet_io.write_rows(fsio.join(output, "query_counts.parquet"), rows, schema.QUERY_COUNTS, "query_id")


def write_stats(_: Any, output: str, config: h.HarvestConfig, files: dict[str, int], dedup_in: int,
                dedup_out: int, selected: int) -> None:
    """stats.json from counts that are all data; raises (after writing it) if they do not add up."""
    from dataclasses import asdict

    reason = "over_cap" if config.balance == "cap" else "balanced_out"
    counts = {**files, "dedup:in": dedup_in, "dedup:out": dedup_out, "dedup:dropped.duplicate": dedup_in - dedup_out,
              "balance:in": dedup_out, "balance:out": selected, f"balance:dropped.{reason}": dedup_out - selected}
    stages = stages_from_counters({k: v for k, v in counts.items() if v}, STAGES)
    doc = stats_document(stages, job="harvest", config=asdict(config))
    try:
        check_stages(stages, CHAINED)
    except ValueError as exc:
        doc["error"] = str(exc)
        raise
    finally:
        fsio.write_json(fsio.join(output, "stats.json"), doc)


def tidy(output: str, num_shards: int) -> None:
    """After a run: delete what wit wrote and no longer stands for anything, selected-pairs
    files of an earlier run with another --num-shards and the temporary parts of a killed one."""
    stale = [u for u in fsio.expand(fsio.join(output, "selected", "part-*-of-*.parquet"))
             if not u.endswith(f"-of-{num_shards:05d}.parquet")]
    stale += fsio.expand(fsio.join(output, "candidates", "*.parquet.tmp-*"))
    for url in stale:
        fsio.rm(url)
