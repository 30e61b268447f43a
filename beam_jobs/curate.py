"""`wit curate`: raw img2dataset shards -> pHash, near-dup removal, decontamination,
optional rebalancing -> final WebDataset shards + manifest.json + stats.json.

The graph only: the rules, the stages and the config are `wit_pipeline.stages.curate`.
Every record-handling step runs through `Counted` (a record that raises costs only itself: a
`dropped.error` and a row in dead_letter/*.parquet); the final tars through `WriteShards`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import sys
import tarfile
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.utils import shared

from beam_jobs.common import (
    BeamTally,
    is_dry_run,
    make_pipeline,
    print_stages,
    reject_unknown_flags,
    say_dry_run,
    shared_load,
    write_stats,
)
from beam_jobs.transforms import DEAD_LETTER, CapPerQuery, Counted, WriteShards, dead_letter
from wit_pipeline import shards
from wit_pipeline.core import fsio
from wit_pipeline.core.config_flags import WitParser, add_config_flags, parse_config
from wit_pipeline.core.lock import hold_output_lock, output_run
from wit_pipeline.core.stats import ERROR, error_text
from wit_pipeline.image import blocklist
from wit_pipeline.stages import curate as stage
from wit_pipeline.stages.curate import CHAINED, EVAL_STAGE, STAGES, CurateConfig, expand_eval, expand_inputs
from wit_pipeline.stages.download import ShardUnreadable

# ---------------------------------------------------------------- file-level reading


class ReadFiles(beam.DoFn):
    """File URL -> what `read(url, tally, stage)` yields. Members `read` refuses are its
    counted drops; a file that cannot be read on is `unreadable` (one `in`, one drop);
    anything else a dead letter naming the file. What came before the failure is kept."""

    def __init__(self, stage_name: str, read: Callable[..., Iterator[Any]], unreadable: str) -> None:
        self.stage, self.read, self.unreadable = stage_name, read, unreadable

    def process(self, url: str) -> Iterator[Any]:
        tally = BeamTally()
        try:
            yield from self.read(url, tally, self.stage)
        except (OSError, EOFError, tarfile.TarError) as exc:  # truncated or corrupt: count it, keep going
            logging.warning("curate: unreadable %s: %s", url, exc)
            tally.inc(self.stage, "in")
            tally.dropped(self.stage, self.unreadable)
        except Exception as exc:  # noqa: BLE001 - one file's failure is its own
            tally.inc(self.stage, "in")
            tally.dropped(self.stage, ERROR)
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, dead_letter(self.stage, url, error_text(exc)))


class Decode:
    """stage.decode with the blocklist (if any) loaded once per worker."""

    def __init__(self, max_pixels: int, blocklist_url: str | None, handle: shared.Shared) -> None:
        self.max_pixels = max_pixels
        self.blocked = None if blocklist_url is None else shared_load(
            handle, "blocklist:" + blocklist_url, lambda: blocklist.load(blocklist_url))

    def __call__(self, record: dict[str, Any]) -> Any:
        if self.blocked is None:
            return stage.decode(record, self.max_pixels)
        return stage.decode(record, self.max_pixels, blocked=self.blocked)


class NearEval:
    """stage.decontaminate with the eval index built once per worker (from the side input)."""

    def __init__(self, d: int, handle: shared.Shared) -> None:
        self.d, self._handle = d, handle
        self._index: Any = None

    def __call__(self, record: dict[str, Any], eval_hashes: list[str]) -> Any:
        if eval_hashes and self._index is None:
            self._index = shared_load(self._handle, stage.eval_tag(eval_hashes, self.d),
                                      lambda: stage.eval_index(eval_hashes, self.d))
        return stage.decontaminate(record, self._index)


class WriteFinal:
    """(shard index, records) -> a final tar (temp name, renamed) and its manifest entry."""

    def __init__(self, output: str, allowlist: str, handle: shared.Shared) -> None:
        self.output, self.allowlist, self._handle = output, allowlist, handle

    def __call__(self, index: int, records: list[dict[str, Any]]) -> dict[str, Any]:
        url = self.allowlist
        queries = shared_load(self._handle, "allowlist:" + url, lambda: query_strings(url))
        tally = BeamTally()
        tally.inc("write", "in", len(records))
        name = shards.shard_name(index)
        count, nbytes, sha = shards.write_shard(fsio.join(self.output, name),
                                                [stage.final_sample(r, queries) for r in records])
        tally.kept("write", count)
        return {"name": name, "samples": count, "bytes": nbytes, "sha256": sha}


def query_strings(allowlist: str) -> list[str]:
    """Query strings by id, as the harvest numbered them (a folder's ids unique across its lists)."""
    from wit_pipeline.stages.harvest import parts

    return list(parts.query_names(allowlist, False))


# ---------------------------------------------------------------- pipeline


class NearDuplicates(beam.PTransform):
    """(key, phash hex, area) -> (dropped key, neardup.EXACT or NEAR): the dedup rule run on
    every band group, a key's reports merged across bands."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.d = d

    def expand(self, items: beam.PCollection) -> beam.PCollection:
        return (items | "Bands" >> beam.FlatMap(stage.band_entries, self.d) | "GroupBands" >> beam.GroupByKey()
                | "BandDrops" >> beam.FlatMap(stage.band_drops, self.d) | "MinReason" >> beam.CombinePerKey(min))


def _by_key(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return record["key"], record


class _Graph:
    """Applies file readers and Counted steps, keeping their dead letters for one parquet file."""

    def __init__(self) -> None:
        self.dead: list[beam.PCollection] = []

    def read(self, files: beam.PCollection, label: str, name: str, read: Callable[..., Iterator[Any]],
             unreadable: str) -> beam.PCollection:
        out = files | label >> beam.ParDo(ReadFiles(name, read, unreadable)).with_outputs(DEAD_LETTER, main="out")
        self.dead.append(out[DEAD_LETTER])
        return out.out

    def counted(self, pcoll: beam.PCollection, label: str, name: str, *side: Any, **kw: Any) -> beam.PCollection:
        out = pcoll | label >> beam.ParDo(Counted(name, **kw), *side).with_outputs(DEAD_LETTER, main="out")
        self.dead.append(out[DEAD_LETTER])
        return out.out


def build(p: beam.Pipeline, config: CurateConfig, inputs: list[str], eval_sources: list[str]) -> None:
    d, g = config.max_distance, _Graph()
    files = p | "InputFiles" >> beam.Create(inputs) | "ReshuffleFiles" >> beam.Reshuffle()
    samples = g.read(files, "ReadTars", "read", shards.iter_tar_samples, "bad_tar")
    records = g.counted(samples, "Read", "read", fn=functools.partial(stage.read, max_caption_chars=config.max_caption_chars),
                        source=stage.sample_source)
    decoded = g.counted(records, "Decode", "decode", source=stage.record_source,
                        make=functools.partial(Decode, config.max_pixels, config.blocklist, shared.Shared()))

    # Decisions run on light records; images meet their shard slot in one join at the end.
    lights = decoded | "Light" >> beam.Map(stage.light)
    drops = lights | "HashArea" >> beam.Map(lambda r: (r["key"], r["phash"], r["area"])) | "NearDup" >> NearDuplicates(d)
    judged = {"rec": lights | "KeyLight" >> beam.Map(_by_key), "drop": drops} | "JoinDedup" >> beam.CoGroupByKey()
    deduped = g.counted(judged | "DedupVerdicts" >> beam.FlatMap(stage.dedup_verdicts), "Dedup", "dedup",
                        fn=stage.judged, source=stage.verdict_source)

    eval_files = p | "EvalFiles" >> beam.Create(eval_sources)
    eval_images = g.read(eval_files, "EvalImages", EVAL_STAGE, stage.eval_images, "unreadable")
    eval_hashes = g.counted(eval_images, "EvalHashes", EVAL_STAGE,
                            fn=functools.partial(stage.eval_hash, max_pixels=config.max_pixels),
                            source=lambda image: image[0])
    clean = g.counted(deduped, "Decontaminate", "decontaminate", beam.pvalue.AsList(eval_hashes),
                      make=functools.partial(NearEval, d, shared.Shared()), source=stage.record_source)
    balanced = rebalanced(clean, config, g)

    output = config.output
    _ = (
        {"rec": decoded | "KeyDecoded" >> beam.Map(_by_key), "slot": shard_slots(balanced, config)}
        | "JoinShards" >> beam.CoGroupByKey()
        | "ToShard" >> beam.FlatMap(stage.to_shard)
        | "WriteShards" >> WriteShards(WriteFinal(output, config.allowlist, shared.Shared()))
        | "ShardList" >> beam.combiners.ToList()
        | "WriteShardList" >> beam.Map(stage.write_shard_list, output)
    )
    _ = (g.dead | "AllDeadLetters" >> beam.Flatten() | "OneFile" >> beam.Map(lambda row: (0, row))
         | "WriteDeadLetters" >> WriteShards(lambda _, rows: stage.write_dead_letters(output, rows), num_shards=1))


def rebalanced(clean: beam.PCollection, config: CurateConfig, g: _Graph) -> beam.PCollection:
    """--rebalance: a record stays when any of its queries keeps it (CapPerQuery); else all stay."""
    if not config.rebalance:
        return g.counted(clean, "Rebalance", "rebalance", fn=stage.keep, source=stage.record_source)
    kept = clean | "QueryPairs" >> beam.FlatMap(stage.query_pairs) | "CapPerQuery" >> CapPerQuery(config.t, seed=config.seed)
    joined = {"rec": clean | "KeyClean" >> beam.Map(_by_key), "keep": kept} | "JoinRebalance" >> beam.CoGroupByKey()
    return g.counted(joined | "RebalanceVerdicts" >> beam.FlatMap(stage.rebalance_verdicts), "Rebalance", "rebalance",
                     fn=stage.judged, source=stage.verdict_source)


def shard_slots(balanced: beam.PCollection, config: CurateConfig) -> beam.PCollection:
    """(key, (shard index, digest)) for every kept record: its place in the global order."""
    bits, seed = config.order_bucket_bits, config.seed
    ordered = balanced | "OrderHash" >> beam.Map(lambda r: (stage.order_hash(r["key"], seed), r["key"], r["digest"]))
    offsets = (
        ordered
        | "BucketOnes" >> beam.Map(lambda hk: (stage.bucket_of(hk[0], bits), 1))
        | "CountBuckets" >> beam.CombinePerKey(sum)
        | "BucketList" >> beam.combiners.ToList()
        | "Offsets" >> beam.Map(stage.bucket_offsets)
    )
    return (
        ordered
        | "ByBucket" >> beam.Map(lambda hk: (stage.bucket_of(hk[0], bits), hk))
        | "GroupBuckets" >> beam.GroupByKey()
        | "AssignShards" >> beam.FlatMap(stage.assign_shards, beam.pvalue.AsSingleton(offsets), config.samples_per_shard)
    )


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = WitParser(prog="wit curate", description=__doc__.split("\n\n")[0])
    add_config_flags(parser, CurateConfig)
    args, beam_args = parser.parse_known_args(argv)
    reject_unknown_flags(parser, beam_args)
    # validated once, here: a usage error before anything runs
    args.config = parse_config(parser, CurateConfig, args, input=tuple(args.input))
    return args, beam_args



@output_run("curate")
def run(argv: list[str] | None = None) -> int:
    args, beam_args = parse_args(argv)
    config: CurateConfig = args.config
    try:
        inputs, incomplete = expand_inputs(config.input)
    except ShardUnreadable as exc:  # a raw shard's store failed to answer: nothing to judge yet
        raise SystemExit(f"wit curate: {exc}") from None
    for url in incomplete:
        logging.warning("curate: skipping %s: its download has not finished (no _stats.json beside it)", url)
    if not inputs:
        raise SystemExit(f"wit curate: no complete tar shards match {config.input!r}"
                         + (f" ({len(incomplete)} unfinished: rerun the download)" if incomplete else ""))
    eval_sources = expand_eval(config.eval_images) if config.eval_images else []
    if config.eval_images and not eval_sources:
        raise SystemExit(f"wit curate: no eval images match {config.eval_images!r}")
    query_strings(config.allowlist)  # fail now, not on a worker, if the allowlist is missing or malformed
    dry_run = is_dry_run(beam_args)
    if config.blocklist:
        try:
            blocked = blocklist.load(config.blocklist)
        except (OSError, ValueError) as exc:
            print(f"wit curate: --blocklist: {exc}", file=sys.stderr)  # the user's file: a usage error
            return 2
        logging.info("curate: %d blocklist entries from %s", len(blocked), config.blocklist)
    try:
        if not dry_run:
            hold_output_lock(config.output, "curate")
            stage.check_output(config.output)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"wit curate: {exc}") from None
    if not dry_run:
        fsio.makedirs(config.output)
    p = make_pipeline(beam_args)
    build(p, config, inputs, eval_sources)
    result = p.run()
    result.wait_until_finish()
    if dry_run:
        say_dry_run("curate", config.output)
        return 0

    recorded = dataclasses.asdict(config)
    doc = write_stats(result, config.output, STAGES, CHAINED, job="curate", seed=config.seed,
                      inputs=len(inputs), skipped_unfinished=incomplete, config=recorded)
    list_url = fsio.join(config.output, stage.SHARD_LIST)
    entries = fsio.read_json(list_url)
    counts = {s["name"]: {"in": s["in"], "out": s["out"], "dropped": s["dropped"]} for s in doc["stages"]}
    shards.write_manifest(config.output, entries, counts, recorded, config.seed)
    fsio.rm(list_url)
    stage.remove_stale_shards(config.output, {e["name"] for e in entries})
    print_stages(doc)
    print(f"wrote {sum(e['samples'] for e in entries)} samples in {len(entries)} shards to {config.output} "
          "(manifest.json, stats.json, dead_letter/)")
    return 0


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    raise SystemExit(run())
