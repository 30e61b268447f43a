"""`wit inspect PATH`: what is in a stage's output, and is it intact?

PATH is a final shards folder (`wit-*.tar` + manifest.json + stats.json), img2dataset raw
shards (`00000.tar` + `00000.parquet` + `00000_stats.json`), a glob or a single tar, a harvest
output folder (stats.json, query_counts.parquet, candidates/, selected/) or any stats.json.
Tars are streamed member by member (never extracted), in one pass that feeds the summary,
the checks and the contact sheet. Kept light on purpose: no torch, no Beam.

locate (what PATH is) -> scan (one pass over the tars) -> check (--check's problems) ->
report (summaries, tables, histogram) -> cli.
"""

from wit_pipeline.inspect.check import check_final_folder, check_manifest, check_stats, stage_rows
from wit_pipeline.inspect.cli import build_parser, inspect_path, run
from wit_pipeline.inspect.locate import Target, locate
from wit_pipeline.inspect.report import format_summary, histogram_image, summarize_harvest, summarize_shards, summarize_stats
from wit_pipeline.inspect.scan import ShardScan, scan_shards

__all__ = [
    "ShardScan",
    "Target",
    "build_parser",
    "check_final_folder",
    "check_manifest",
    "check_stats",
    "format_summary",
    "histogram_image",
    "inspect_path",
    "locate",
    "run",
    "scan_shards",
    "stage_rows",
    "summarize_harvest",
    "summarize_shards",
    "summarize_stats",
]
