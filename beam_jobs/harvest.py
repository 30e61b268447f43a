"""Harvest: crawl WAT/WARC files -> per-file candidates, per-query counts, balanced selection.

    python -m beam_jobs.harvest --input 'crawl/wat/*.wat.gz' --output out/harvest
    python -m beam_jobs.harvest --input-list https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-22/wat.paths.gz \
        --output gs://bucket/harvest --runner DataflowRunner --project P --region R \
        --temp_location gs://bucket/tmp --setup_file ./setup.py

Two halves. Per file (`wit_pipeline.stages.harvest.per_file`: read -> extract -> filter
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

from beam_jobs import harvest_global
from beam_jobs.common import is_dry_run, make_pipeline, print_stages, reject_unknown_flags, say_dry_run, shared_load
from wit_pipeline.core import fsio
from wit_pipeline.core import outputs as core_outputs
from wit_pipeline.core.config_flags import WitParser, add_config_flags, parse_config
from wit_pipeline.core.lock import hold_output_lock, output_run
from wit_pipeline.stages.harvest import outputs, per_file
from wit_pipeline.stages.harvest.config import HarvestConfig, with_digests
from wit_pipeline.stages.harvest.inputs import COMMON_CRAWL_PREFIX, check_sources, source_files
from wit_pipeline.stages.harvest.progress import Progress


def build_parser() -> argparse.ArgumentParser:
    p = WitParser(
        prog="wit harvest",
        description="Extract (image URL, alt text) pairs from WAT/WARC files, keep English pairs whose "
        "text contains an allowlist query, and balance them per query. Resumable: a rerun of the same "
        "command skips crawl files already done. Beam pipeline options (--runner, --project, "
        "--direct_num_workers, ...) pass through.",
    )
    p.add_argument("--input", action="append", default=[],
                   help="WAT or WARC files: a glob, local, gs://, s3:// or https:// (repeat for several)")
    p.add_argument("--input-list", action="append", default=[],
                   help="a file listing crawl files, one path per line, plain or .gz: Common Crawl's "
                   "wat.paths.gz or warc.paths.gz (repeatable)")
    p.add_argument("--input-prefix", default=COMMON_CRAWL_PREFIX,
                   help="joined to the relative paths of --input-list (s3://commoncrawl/ from AWS); absolute "
                   "paths and URLs are taken as they are")
    p.add_argument("--max-files", type=int, default=0,
                   help="read only the first N files (sorted) of each --input and --input-list, for a trial run (0: all)")
    p.add_argument("--output", required=True, help="output folder (local or gs://)")
    add_config_flags(p, HarvestConfig)
    p.add_argument("--no-progress", action="store_true", help="no progress line while files finish (local runs)")
    return p


class HarvestFiles(beam.DoFn):
    """Crawl file -> its part URL (`per_file.make_part`), with the models built once per worker,
    when a file first needs them: a rerun whose parts are all complete builds none."""

    def __init__(self, config: HarvestConfig, parts: str, fingerprint: str) -> None:
        self.config, self.parts, self.fingerprint = config, parts, fingerprint
        self._lid_handle, self._matcher_handle = beam.utils.shared.Shared(), beam.utils.shared.Shared()

    def setup(self) -> None:
        self.models: per_file.Models | None = None

    def load_models(self) -> per_file.Models:
        if self.models is None:
            config = self.config
            self.models = per_file.Models(
                shared_load(self._lid_handle, f"lid:{config.lid_model}", lambda: per_file.load_lid(config)),
                shared_load(self._matcher_handle,
                            f"matcher:{config.allowlist}:{config.case_sensitive}:{','.join(config.languages)}",
                            lambda: per_file.load_matcher(config)))
        return self.models

    def process(self, file_url: str) -> Any:
        yield per_file.make_part(file_url, self.parts, self.config, self.fingerprint, self.load_models)


def build(p: beam.Pipeline, config: HarvestConfig, output: str, sources: list[tuple[str, str]],
          prefix: str = COMMON_CRAWL_PREFIX, max_files: int = 0) -> None:
    """The harvest graph: files -> parts (per file) -> dedup -> balance -> outputs."""
    parts = (
        p
        | "Sources" >> beam.Create(sources)
        | "Files" >> beam.FlatMap(lambda source: source_files(*source, prefix, max_files))
        | "DistinctFiles" >> beam.Distinct()
        | "SpreadFiles" >> beam.Reshuffle()  # one worker per file, not one worker for all
        | "HarvestFiles" >> beam.ParDo(HarvestFiles(config, fsio.join(output, core_outputs.CANDIDATES), config.fingerprint()))
    )
    harvest_global.build_global(parts, config, output)


@output_run("harvest")
def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, pipeline_args = parser.parse_known_args(argv)
    if not args.input and not args.input_list:
        parser.error("give crawl files with --input and/or --input-list")
    if args.max_files < 0:
        parser.error(f"--max-files must be >= 0 (0: all), got {args.max_files}")
    reject_unknown_flags(parser, pipeline_args)
    config = parse_config(parser, HarvestConfig, args)
    dry_run = is_dry_run(pipeline_args)
    try:
        config = with_digests(config)
        sources = [("glob", u) for u in args.input] + [("list", u) for u in args.input_list]
        # a dry run checks what it can offline: local sources, not buckets nor the output
        check_sources([s for s in sources if fsio.is_local(s[1])] if dry_run else sources, args.input_prefix)
        if not dry_run:
            hold_output_lock(args.output, "harvest")
            outputs.check_output(args.output)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"wit harvest: {exc}") from exc
    output = args.output.rstrip("/")
    print(f"harvest: {len(sources)} input source(s) -> {output}", flush=True)
    p = make_pipeline(pipeline_args)  # bad options fail here: the earlier run's outputs untouched
    build(p, config, output, sources, args.input_prefix, args.max_files)
    if dry_run:
        p.run().wait_until_finish()
        say_dry_run("harvest", output)
        return 0
    stats_url = fsio.join(output, core_outputs.STATS)
    if fsio.exists(stats_url):  # an earlier run's: this run rewrites what it describes
        fsio.rm(stats_url)
    started = time.time()
    with Progress(sources, output, args.input_prefix, args.max_files, config.fingerprint(),
                  enabled=not args.no_progress):
        result = p.run()
        result.wait_until_finish()
    outputs.tidy(output, config.num_shards, started)
    doc = fsio.read_json(stats_url)
    print_stages(doc)
    print(f"wrote {output}/{{candidates,selected}}/*.parquet, query_counts.parquet, stats.json")
    return 0


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    run()
