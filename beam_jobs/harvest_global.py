"""Harvest, the global half: the parts of every crawl file -> dedup -> balance -> outputs.

What crosses a shuffle is light and batched: per (part, key bucket), columns of 64-bit keys,
page hashes, part ids, rows and query ids (`wit_pipeline.stages.harvest_global.Lights`). The
records themselves are read back from the parts, once, by the writer of the selected pairs.
Counts are data, merged from the parts' own counts and the buckets' reports, so stats.json
does not depend on which files a (resumed) run computed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

import apache_beam as beam

from beam_jobs.transforms import CapPerQuery, WriteShards
from wit_pipeline.core import fsio, parquet_io, schema
from wit_pipeline.core.stats import check_stages, stages_from_counters, stats_document
from wit_pipeline.stages import harvest as h
from wit_pipeline.stages import harvest_global as hg
from wit_pipeline.stages import harvest_parts as parts_io

STAGES = ("read", "extract", "filter", "match", "dedup", "balance")
CHAINED = (("extract", "filter"), ("filter", "match"), ("match", "dedup"), ("dedup", "balance"))

Bucket = tuple[hg.Lights, int]  # a bucket's deduplicated candidates and how many came in


def _dedup(group: tuple[int, Iterable[hg.Lights]]) -> tuple[int, Bucket]:
    bucket, blocks = group
    return bucket, hg.dedup(blocks)


def _by_probability(item: tuple[int, Bucket], counts: dict[int, int], t: int, seed: int) -> tuple[Bucket, list]:
    _, (lights, total) = item
    return (lights, total), hg.keep_by_probability(lights, counts, t, seed)


def _by_choice(joined: tuple[int, dict[str, list[Any]]]) -> Iterator[tuple[Bucket, list]]:
    _, groups = joined
    for lights, total in groups["bucket"]:
        yield (lights, total), hg.keep_chosen(lights, groups["chosen"])


class Balance(beam.PTransform):
    """(bucket, (deduplicated Lights, n in)) -> ((Lights, n in), kept: per query-id entry,
    whether that query keeps the candidate).

    prob (MetaCLIP): each matched query keeps a candidate with probability min(1, t/count).
    cap: each query keeps its t candidates of lowest (cap_rank, key) (`CapPerQuery`, fed
    only each bucket's own t smallest per query). Either way a candidate survives if any
    of its queries keeps it.
    """

    def __init__(self, mode: str, t: int, seed: int, matched: beam.PCollection) -> None:
        super().__init__()
        self.mode, self.t, self.seed, self.matched = mode, t, seed, matched

    def expand(self, buckets: beam.PCollection) -> beam.PCollection:
        if self.mode == "prob":
            return buckets | "KeepByProbability" >> beam.Map(
                _by_probability, counts=beam.pvalue.AsSingleton(self.matched, default_value={}), t=self.t, seed=self.seed)
        chosen = (buckets
                  | "LocalCap" >> beam.FlatMap(lambda item, t, seed: hg.local_cap(item[1][0], t, seed), self.t, self.seed)
                  | "CapPerQuery" >> CapPerQuery(self.t)
                  | "ToBucket" >> beam.Map(lambda kq: (hg.bucket_of(kq[0]), kq)))
        return ({"bucket": buckets, "chosen": chosen}
                | "JoinChosen" >> beam.CoGroupByKey()
                | "KeepChosen" >> beam.FlatMap(_by_choice))


def build_global(parts: beam.PCollection, config: h.HarvestConfig, output: str) -> None:
    """Everything after the per-file stage, given the PCollection of part URLs."""
    buckets = (parts
               | "ReadLights" >> beam.FlatMap(lambda url: hg.by_bucket(hg.read_lights(url)))
               | "GroupBuckets" >> beam.GroupByKey()
               | "Dedup" >> beam.Map(_dedup))
    matched = (buckets
               | "MatchedPerBucket" >> beam.Map(lambda item: {"matched_by_query": hg.query_counts(item[1][0])})
               | "MatchedCounts" >> beam.CombineGlobally(hg.merge_reports)
               | "MatchedDict" >> beam.Map(lambda report: report["matched_by_query"]))
    balanced = buckets | "Balance" >> Balance(config.balance, config.t, config.seed, matched)
    report = (balanced
              | "Report" >> beam.Map(lambda b: hg.selection_report(b[0][0], b[1], b[0][1]))
              | "MergeReports" >> beam.CombineGlobally(hg.merge_reports))

    part_urls = beam.pvalue.AsDict(parts | "PartIds" >> beam.Map(lambda url: (hg.part_id(url), url)))
    selected = (balanced
                | "SelectedRows" >> beam.FlatMap(lambda b: hg.selected_rows_by_part(b[0][0], b[1]))
                | "GroupByPart" >> beam.GroupByKey()
                | "ReadSelected" >> beam.FlatMap(parts_io.selected_rows, urls=part_urls, config=config)
                | "WriteSelected" >> WriteShards(functools.partial(write_selected, output, config.num_shards), config.num_shards))
    footers = parts | "PartFooters" >> beam.Map(parts_io.counts_and_dead_letters)
    dead_letters = (footers
                    | "DeadLetters" >> beam.FlatMap(lambda footer: [(0, d) for d in footer[1]])
                    | "WriteDeadLetters" >> WriteShards(functools.partial(write_dead_letters, output), 1))
    file_counts = (footers | "FileCounts" >> beam.Map(lambda footer: footer[0])
                   | "MergeFileCounts" >> beam.CombineGlobally(merge_counts))
    written = (selected, dead_letters) | "Written" >> beam.Flatten()
    _ = (parts.pipeline
         | "Finish" >> beam.Create([None])
         | "WriteOutputs" >> beam.Map(write_summary, output, config,
                                      report=beam.pvalue.AsSingleton(report, default_value=hg.merge_reports([])),
                                      files=beam.pvalue.AsSingleton(file_counts, default_value={}),
                                      written=beam.pvalue.AsList(written), parts=beam.pvalue.AsList(parts)))


def merge_counts(dicts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in dicts:
        for name, n in d.items():
            total[name] = total.get(name, 0) + n
    return total


def write_selected(output: str, num_shards: int, shard: int, batches: list[bytes]) -> str:
    url = fsio.join(output, "selected", f"part-{shard:05d}-of-{num_shards:05d}.parquet")
    parquet_io.write_tables(url, map(parts_io.from_ipc, batches), schema.SELECTED, "key")
    return url


def write_dead_letters(output: str, shard: int, rows: list[dict]) -> str:
    url = fsio.join(output, "dead_letter", "part-00000-of-00001.parquet")
    rows = sorted(rows, key=lambda r: (r["source"], r["stage"], r["error"]))
    parquet_io.write_rows(url, rows, schema.DEAD_LETTER, "source")
    return url


def write_summary(_: Any, output: str, config: h.HarvestConfig, report: dict[str, Any], files: dict[str, int],
                  written: Iterable[str] = (), parts: Iterable[str] = ()) -> None:
    """query_counts.parquet, parts.txt and stats.json; raises (after writing it) if the counts
    do not add up. `written`, the selected and dead-letter files, is a side input only so that
    stats.json is written last: a run killed before has none (the launcher removed the earlier
    run's). candidates/ may also hold parts of files an earlier run read and this one did not
    (kept for a later run over them): parts.txt says which parts this run's counts cover."""
    part_names = sorted({url.rsplit("/", 1)[-1] for url in parts})
    fsio.write_bytes(fsio.join(output, schema.PARTS_FILE), "".join(f"{name}\n" for name in part_names).encode())
    names = parts_io.query_names(config.allowlist, config.case_sensitive)
    selected, kept = report["selected_by_query"], report["kept_by_query"]
    rows = [{"query_id": q, "query": names[q], "count": int(n), "selected": int(selected.get(q, 0)),
             "kept": int(kept.get(q, 0))} for q, n in report["matched_by_query"].items()]
    parquet_io.write_rows(fsio.join(output, schema.QUERY_COUNTS_FILE), rows, schema.QUERY_COUNTS, "query_id")

    reason = "over_cap" if config.balance == "cap" else "balanced_out"
    d_in, d_out, sel = report["dedup_in"], report["dedup_out"], report["selected"]
    counts = {**files, "dedup:in": d_in, "dedup:out": d_out, "dedup:dropped.duplicate": d_in - d_out,
              "balance:in": d_out, "balance:out": sel, f"balance:dropped.{reason}": d_out - sel}
    stages = stages_from_counters({k: v for k, v in counts.items() if v}, STAGES)
    # pairs whose URL a lazy-loading attribute, srcset or <picture> gave (WARC input only)
    url_from = {k.split("url_from.", 1)[1]: v for k, v in sorted(files.items()) if k.startswith("extract:url_from.")}
    doc = stats_document(stages, job="harvest", config=asdict(config), url_from=url_from, parts=len(part_names))
    try:
        check_stages(stages, CHAINED)
    except ValueError as exc:
        doc["error"] = str(exc)
        raise
    finally:
        fsio.write_json(fsio.join(output, "stats.json"), doc)


def tidy(output: str, num_shards: int, started: float) -> None:
    """After a run: delete what wit wrote and no longer stands for anything, selected-pairs
    files of an earlier run with another --num-shards and the temporary parts a killed run
    left (those older than this run: a concurrent run's are its own)."""
    stale = [u for u in fsio.expand(fsio.join(output, "selected", "part-*-of-*.parquet"))
             if not u.endswith(f"-of-{num_shards:05d}.parquet")]
    fs, _ = fsio.filesystem(output)
    stale += [u for u in fsio.expand(fsio.join(output, "candidates", "*.parquet.tmp-*"))
              if fs.modified(fsio.filesystem(u)[1]).timestamp() < started]
    for url in stale:
        fsio.rm(url)
