"""Harvest, the global half: the parts of every crawl file -> dedup -> balance -> outputs.

What crosses a shuffle is light and batched: per (part, key bucket), columns of 64-bit keys,
page hashes, part ids, rows and query ids (`wit_pipeline.stages.harvest.select.Lights`). The
records themselves are read back from the parts, once, by the writer of the selected pairs.
Counts are data, merged from the parts' own counts and the buckets' reports, so stats.json
does not depend on which files a (resumed) run computed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from beam_jobs.transforms import CapPerQuery, WriteShards
from wit_pipeline.stages import language_t
from wit_pipeline.stages.harvest import outputs, parts
from wit_pipeline.stages.harvest import select as hg
from wit_pipeline.stages.harvest.config import HarvestConfig
from wit_pipeline.text.allowlist_folder import is_folder

Bucket = tuple[hg.Lights, int]  # a bucket's deduplicated candidates and how many came in


def _dedup(group: tuple[int, Iterable[hg.Lights]]) -> tuple[int, Bucket]:
    bucket, blocks = group
    return bucket, hg.dedup(blocks)


def _by_probability(item: tuple[int, Bucket], counts: hg.ByQuery, t: int, seed: int,
                    limits: dict[str, Any] | None = None) -> tuple[Bucket, Any]:
    _, (lights, total) = item
    by_query = limits and limits["t_of_query"]
    return (lights, total), hg.keep_by_probability(lights, counts, t if by_query is None else by_query, seed)


def _thresholds(matched: hg.ByQuery, config: HarvestConfig) -> dict[str, Any]:
    """`language_t.thresholds`, plus its t per query as numpy columns (`t_of_query`) for the buckets."""
    limits = language_t.thresholds(matched.as_dict(), parts.query_languages(config.allowlist, config.case_sensitive),
                                   config.t)
    by_query = limits["t_by_query"]
    return {**limits, "t_of_query": None if by_query is None else hg.ByQuery.of(by_query)}


def _by_pick(joined: tuple[int, dict[str, list[Any]]]) -> Iterator[tuple[Bucket, Any]]:
    _, groups = joined
    for lights, total in groups["bucket"]:
        yield (lights, total), hg.keep_picked(lights, groups["picks"])


class Balance(beam.PTransform):
    """(bucket, (deduplicated Lights, n in)) -> ((Lights, n in), kept: per query-id entry,
    whether that query keeps the candidate).

    prob (MetaCLIP): each matched query keeps a candidate with probability min(1, t/count).
    cap: each query keeps its t candidates of lowest (cap_rank, key) (`CapPerQuery`, fed
    only each bucket's own t smallest per query). Either way a candidate survives if any
    of its queries keeps it. With `limits` (a singleton of `language_t.thresholds`, for an
    allowlist folder) each query uses its language's t.
    """

    def __init__(self, mode: str, t: int, seed: int, matched: beam.PCollection,
                 limits: beam.PCollection | None = None, bits: beam.PCollection | None = None) -> None:
        super().__init__()
        self.mode, self.t, self.seed, self.matched, self.limits, self.bits = mode, t, seed, matched, limits, bits

    def expand(self, buckets: beam.PCollection) -> beam.PCollection:
        limits = None if self.limits is None else beam.pvalue.AsSingleton(self.limits)
        if self.mode == "prob":
            return buckets | "KeepByProbability" >> beam.Map(
                _by_probability, counts=beam.pvalue.AsSingleton(self.matched, default_value=hg.add_counts([])), t=self.t,
                seed=self.seed, limits=limits)
        if limits is None:
            picks = (buckets
                     | "LocalCap" >> beam.FlatMap(lambda item, t, seed: hg.local_cap(item[1][0], t, seed), self.t, self.seed)
                     | "CapPerQuery" >> CapPerQuery(self.t))
        else:  # a t per query: each bucket's t_q smallest, then each query's t_q smallest of those
            picks = (buckets
                     | "LocalCap" >> beam.FlatMap(lambda item, limits, seed: hg.local_cap(item[1][0], limits["t_of_query"], seed),
                                                  limits, self.seed)
                     | "GroupByQuery" >> beam.GroupByKey()
                     | "CapPerQuery" >> beam.FlatMap(lambda top, limits: language_t.smallest_per_query(
                         top, limits["t_by_query"]), limits))
        bits = hg.BUCKET_BITS if self.bits is None else beam.pvalue.AsSingleton(self.bits)
        picks = picks | "ToBucket" >> beam.Map(lambda kq, bits: (hg.bucket_of(kq[0], bits), kq), bits)
        return ({"bucket": buckets, "picks": picks}
                | "JoinPicks" >> beam.CoGroupByKey()
                | "KeepPicked" >> beam.FlatMap(_by_pick))


def build_global(part_urls: beam.PCollection, config: HarvestConfig, output: str) -> None:
    """Everything after the per-file stage, given the PCollection of part URLs."""
    footers = part_urls | "PartFooters" >> beam.Map(parts.footer)
    # as many key buckets as the run's candidates need (`hg.bucket_bits`): few parts, few buckets
    bits = (footers
            | "Candidates" >> beam.Map(lambda footer: footer[2])
            | "AllCandidates" >> beam.CombineGlobally(sum)
            | "BucketBits" >> beam.Map(hg.bucket_bits))
    buckets = (part_urls
               | "ReadLights" >> beam.FlatMap(lambda url, bits: hg.by_bucket(hg.read_lights(url), bits),
                                              beam.pvalue.AsSingleton(bits))
               | "GroupBuckets" >> beam.GroupByKey()
               | "Dedup" >> beam.Map(_dedup))
    matched = (buckets
               | "MatchedPerBucket" >> beam.Map(lambda item: hg.query_counts(item[1][0]))
               | "MatchedCounts" >> beam.CombineGlobally(hg.add_counts))
    # with an allowlist folder, each language's t from English's (MetaCLIP 2); else one t
    limits = matched | "Thresholds" >> beam.Map(_thresholds, config) if is_folder(config.allowlist) else None
    balanced = buckets | "Balance" >> Balance(config.balance, config.t, config.seed, matched, limits, bits)
    report = (balanced
              | "Report" >> beam.Map(lambda b: hg.selection_report(b[0][0], b[1], b[0][1]))
              | "MergeReports" >> beam.CombineGlobally(hg.merge_reports))

    by_id = beam.pvalue.AsDict(part_urls | "PartIds" >> beam.Map(lambda url: (parts.part_id(url), url)))
    selected = (balanced
                | "SelectedRows" >> beam.FlatMap(lambda b: hg.selected_rows_by_part(b[0][0], b[1]))
                | "GroupByPart" >> beam.GroupByKey()
                | "ReadSelected" >> beam.FlatMap(parts.selected_rows, urls=by_id, config=config)
                | "WriteSelected" >> WriteShards(functools.partial(outputs.write_selected, output, config),
                                                 config.num_shards))
    dead_letters = (footers
                    | "DeadLetters" >> beam.FlatMap(lambda footer: [(0, d) for d in footer[1]])
                    | "WriteDeadLetters" >> WriteShards(functools.partial(outputs.write_dead_letters, output), 1))
    file_counts = (footers | "FileCounts" >> beam.Map(lambda footer: footer[0])
                   | "MergeFileCounts" >> beam.CombineGlobally(hg.merge_counts))
    written = (selected, dead_letters) | "Written" >> beam.Flatten()
    _ = (part_urls.pipeline
         | "Finish" >> beam.Create([None])
         | "WriteOutputs" >> beam.Map(outputs.write_summary, output, config,
                                      report=beam.pvalue.AsSingleton(report, default_value=hg.merge_reports([])),
                                      matched=beam.pvalue.AsSingleton(matched, default_value=hg.add_counts([])),
                                      files=beam.pvalue.AsSingleton(file_counts, default_value={}),
                                      written=beam.pvalue.AsList(written), parts=beam.pvalue.AsList(part_urls),
                                      limits=(beam.pvalue.AsSingleton(limits) if limits is not None else None)))
