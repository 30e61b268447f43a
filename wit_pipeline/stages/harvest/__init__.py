"""Harvest: crawl WAT/WARC files -> matched candidates -> a balanced selection of pairs.

config    HarvestConfig: every setting, validated once; which settings a part depends on
inputs    which crawl files a run reads (globs, path lists)
per_file  one crawl file -> its candidates, counts and dead letters (read, extract, filter, match)
parts     the per-file part: its name, its footer (counts, dead letters, fingerprint), reading it back
select    the global half over columns: dedup across files, per-query counts, balancing
outputs   what a run leaves in its --output: selected/, dead_letter/, query_counts, parts.txt, stats.json
progress  the progress line of a local run

The Beam graphs that wire these together are `beam_jobs.harvest` and `beam_jobs.harvest_global`.
"""
