"""`wit curate`: raw img2dataset shards -> pHash, near-dup removal, decontamination,
optional rebalancing -> final WebDataset shards + manifest.json + stats.json.

Stages (each counted, in == out + sum(dropped), each feeding the next):
read -> decode -> dedup -> decontaminate -> rebalance -> write.

Near duplicates at scale: every sample is emitted under each of its d+1 pHash bands
(pigeonhole: two hashes within distance d share a band); a band group finds, in rank order
(rank = (-(w*h), key)), the members that a better-ranked member within d drops, and reports
each at most once, so a dense cluster costs its size, not its pairs. That is exactly
`wit_pipeline.image.neardup.near_duplicates`. These decisions run on light records (key, hash,
size, query ids, image digest); the image bytes are shuffled once more, to their shard.

Final shards are a pure function of the kept keys and the seed: samples are ordered by
`salted_hash(key, "order", seed)` (hash-prefix buckets, counted, turned into offsets), position
p goes to shard p // samples_per_shard, sorted by key within a shard.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import tarfile
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.utils import shared

from beam_jobs.common import BeamTally, make_pipeline, print_stages, reject_unknown_flags, shared_load, write_stats
from queries.allowlist import DEMO, load_allowlist
from wit_pipeline import shards
from wit_pipeline.core import fsio, keys
from wit_pipeline.core.cli_help import HelpFormatter
from wit_pipeline.image import neardup, phash
from wit_pipeline.stages.balance import cap_rank

STAGES = ("read", "decode", "dedup", "decontaminate", "rebalance", "write")
CHAINED = tuple(zip(STAGES, STAGES[1:]))
DEFAULT_MAX_PIXELS = phash.MAX_PIXELS
SHARD_LIST = "_curate_shards.json"
EVAL_STAGE = "eval_images"


# ---------------------------------------------------------------- inputs


_RAW_SHARD = re.compile(r"^(\d+)\.tar$")
EVAL_IMAGE_EXTS = (*shards.IMAGE_EXTS, "gif", "bmp", "tif", "tiff")  # eval sets come in any format


def expand_inputs(patterns: list[str]) -> tuple[list[str], list[str]]:
    """(tar URLs to read, incomplete raw shards skipped) from globs of tars or folders of tars
    (one per --input); sorted, unique.

    A folder's own tars are read, or, where it has none, those one level down: the layout
    `wit download --engine beam` writes (one subfolder per selected-pairs file). An
    img2dataset shard `NNNNN.tar` counts only once the download counts it complete
    (`wit_pipeline.stages.download.complete_shards`): a download that is still running or was killed
    leaves tars that a rerun of the download deletes and fetches again, so curating them would
    keep samples twice.
    """
    from wit_pipeline.stages.download import complete_shards

    found: set[str] = set()
    for pattern in patterns:
        for url in fsio.expand(pattern):
            fs, path = fsio.filesystem(url)
            if fs.isdir(path):
                tars = fsio.expand(fsio.join(url, "*.tar")) or fsio.expand(fsio.join(url, "*", "*.tar"))
                found.update(tars)
            elif url.endswith(".tar"):
                found.add(url)
    complete, skipped = [], []
    done: dict[str, set[str]] = {}  # folder -> its complete raw shards
    for url in sorted(found):
        parent, _, name = url.rpartition("/")
        m = _RAW_SHARD.match(name)
        if m and parent not in done:
            done[parent] = set(complete_shards(parent))
        (skipped if m and m.group(1) not in done[parent] else complete).append(url)
    return complete, skipped


def expand_eval(pattern: str) -> list[str]:
    """Eval sources: image files of a folder and its subfolders (a class per folder, as
    ImageNet's val set), or tars/images matching a glob."""
    urls: list[str] = []
    for url in fsio.expand(pattern):
        fs, path = fsio.filesystem(url)
        if fs.isdir(path):  # hidden files (macOS's ._x.jpg) are not images
            urls += [fs.unstrip_protocol(p) if "://" in url else p
                     for p in fs.find(path) if _is_image_or_tar(p) and not p.rsplit("/", 1)[-1].startswith(".")]
        elif _is_image_or_tar(url):
            urls.append(url)
    return sorted(set(urls))


def _is_image_or_tar(url: str) -> bool:
    ext = url.rsplit(".", 1)[-1].lower()
    return ext == "tar" or ext in EVAL_IMAGE_EXTS


# ---------------------------------------------------------------- DoFns


class ReadTars(beam.DoFn):
    """Tar URL -> raw records; unsafe members and incomplete samples are counted drops."""

    def process(self, url: str) -> Iterator[dict[str, Any]]:
        tally = BeamTally()
        try:
            for sample in shards.iter_tar_samples(url, tally, "read"):
                tally.inc("read", "in")
                record, reason = shards.raw_record(sample, key_of=keys.sample_key)
                if record is None:
                    tally.dropped("read", reason or "unknown")
                else:
                    tally.kept("read")
                    yield record
        except (OSError, EOFError, tarfile.TarError) as exc:  # a truncated or corrupt tar: count it, keep going
            logging.warning("curate: unreadable tar %s: %s", url, exc)
            tally.inc("read", "in")
            tally.dropped("read", "bad_tar")


class Decode(beam.DoFn):
    """pHash each image at bounded pixel count; undecodable and oversized images are drops."""

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels

    def process(self, record: dict[str, Any]) -> Iterator[dict[str, Any]]:
        tally = BeamTally()
        tally.inc("decode", "in")
        h, width, height, reason = phash.phash64_bytes(record["image"], max_pixels=self.max_pixels)
        if h is None:
            tally.dropped("decode", reason or "undecodable")
            return
        tally.kept("decode")
        yield {
            **record,
            "phash": phash.to_hex(h),
            "width": int(width),
            "height": int(height),
            "digest": hashlib.sha256(record["image"]).hexdigest(),
        }


def light(record: dict[str, Any]) -> dict[str, Any]:
    """What dedup, decontamination, rebalancing and ordering need: no image bytes, so the
    images cross the shuffle only once more (to their shard), not at every decision."""
    return {
        "key": record["key"],
        "phash": record["phash"],
        "area": record["width"] * record["height"],
        "query_ids": record["query_ids"],
        "digest": record["digest"],
    }


def emit_bands(item: tuple[str, str, int], d: int) -> Iterator[tuple[tuple[int, int], tuple[str, str, int]]]:
    """(key, phash hex, area) under each of its d+1 bands. Hashes travel as hex: Beam's
    integer coder stops at 2**63."""
    key, hex_hash, area = item
    for band in neardup.band_keys(phash.from_hex(hex_hash), d):
        yield (int(band[0]), int(band[1])), (key, hex_hash, area)


def band_pairs(group: tuple[tuple[int, int], Iterable[tuple[str, str, int]]], d: int) -> Iterator[tuple[str, int]]:
    """(dropped key, 0 for an exact copy / 1 for a near duplicate) for each member of this band
    group that a better-ranked member within d drops; at most one per member.

    Copies of one hash are collapsed first: all but the best-ranked copy are exact
    duplicates, reported from band 0 (identical hashes agree on every band). Distinct hashes
    are then judged through their best-ranked copy, in rank order: a member is dropped iff an
    earlier one is within d (neardup.earliest_neighbour, which never lists the quadratically
    many pairs of a dense cluster). Every pair within d shares some band, so the groups
    together find every drop; CombinePerKey(min) merges a member's reports across bands.
    """
    (band_index, _), members = group
    by_hash: dict[int, list[tuple[tuple[int, str], str]]] = {}
    for key, hex_hash, area in members:
        by_hash.setdefault(phash.from_hex(hex_hash), []).append(((-int(area), key), key))
    reps = []
    for h, copies in sorted(by_hash.items()):
        copies.sort()
        best_key = copies[0][1]
        if band_index == 0:
            for _, key in copies[1:]:
                if key != best_key:  # one key twice is the same sample, settled by resolve_dedup
                    yield key, 0
        reps.append((copies[0][0], h))
    reps.sort()  # best rank first
    # One key under two hashes (fetched twice, changed in between) is one sample, which
    # resolve_dedup settles: judge it by its best-ranked copy only, never against itself.
    keys_seen: set[str] = set()
    reps = [r for r in reps if not (r[0][1] in keys_seen or keys_seen.add(r[0][1]))]
    if len(reps) < 2:
        return
    earlier = neardup.earliest_neighbour(np.array([h for _, h in reps], dtype=np.uint64), d)
    for (rank, _), first in zip(reps, earlier.tolist()):
        if first >= 0:
            yield rank[1], 1


class NearDuplicateDrops(beam.PTransform):
    """(key, phash hex, area) -> (dropped key, 0 if an exact copy of a better-ranked sample else 1)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.d = d

    def expand(self, items: beam.PCollection) -> beam.PCollection:
        return (
            items
            | "Bands" >> beam.FlatMap(emit_bands, self.d)
            | "GroupBands" >> beam.GroupByKey()
            | "BandPairs" >> beam.FlatMap(band_pairs, self.d)
            | "MinDistance" >> beam.CombinePerKey(min)
        )


def resolve_dedup(joined: tuple[str, dict[str, list[Any]]]) -> Iterator[dict[str, Any]]:
    """Keep a sample unless a better-ranked one is within d; copies of one key keep one
    (the lowest image digest, whatever order the copies arrive in)."""
    _, parts = joined
    records, dists = parts["rec"], parts["drop"]
    tally = BeamTally()
    tally.inc("dedup", "in", len(records))
    if not records:
        return
    if dists:
        reason = "exact_duplicate" if min(dists) == 0 else "near_duplicate"
        tally.dropped("dedup", reason, len(records))
        return
    ordered = sorted(records, key=lambda r: r["digest"])
    if len(ordered) > 1:
        tally.dropped("dedup", "duplicate_key", len(ordered) - 1)
    tally.kept("dedup")
    yield ordered[0]


class Decontaminate(beam.DoFn):
    """Drop samples within d of any eval image; the eval index is built once per worker."""

    def __init__(self, d: int, handle: shared.Shared) -> None:
        self.d = d
        self._handle = handle
        self._index: Any = None

    def process(self, record: dict[str, Any], eval_hashes: list[str]) -> Iterator[dict[str, Any]]:
        tally = BeamTally()
        tally.inc("decontaminate", "in")
        if eval_hashes:
            if self._index is None:
                hashes = sorted({phash.from_hex(h) for h in eval_hashes})
                tag = "eval-" + hashlib.sha256(repr((self.d, hashes)).encode()).hexdigest()
                self._index = shared_load(
                    self._handle, tag, lambda: neardup.EvalIndex(np.array(hashes, dtype=np.uint64), self.d)
                )
            if self._index.contains_near(phash.from_hex(record["phash"])):
                tally.dropped("decontaminate", "near_eval")
                return
        tally.kept("decontaminate")
        yield record


def eval_hashes_of(url: str, max_pixels: int) -> Iterator[str]:
    """pHashes (hex) of one eval source (an image file, or every image of a tar)."""
    tally = BeamTally()
    if url.endswith(".tar"):
        blobs = (img[1] for s in shards.iter_tar_samples(url, tally, EVAL_STAGE) if (img := shards.image_of(s)))
    else:
        with fsio.filesystem(url)[0].open(fsio.filesystem(url)[1], "rb") as f:
            blobs = iter([f.read()])
    for data in blobs:
        tally.inc(EVAL_STAGE, "in")
        h, _, _, reason = phash.phash64_bytes(data, max_pixels=max_pixels)
        if h is None:
            tally.dropped(EVAL_STAGE, reason or "undecodable")
        else:
            tally.kept(EVAL_STAGE)
            yield phash.to_hex(h)


def query_ranks(record: dict[str, Any], seed: int) -> Iterator[tuple[int, tuple[str, str]]]:
    """(query id, (cap rank as fixed-width hex, key)): hex because Beam's int coder stops at 2**63."""
    for qid in record["query_ids"]:
        yield qid, (f"{cap_rank(record['key'], qid, seed):016x}", record["key"])


def resolve_rebalance(joined: tuple[str, dict[str, list[Any]]]) -> Iterator[dict[str, Any]]:
    _, parts = joined
    tally = BeamTally()
    for record in parts["rec"]:
        tally.inc("rebalance", "in")
        if parts["keep"]:
            tally.kept("rebalance")
            yield record
        elif not record["query_ids"]:
            tally.dropped("rebalance", "no_query")
        else:
            tally.dropped("rebalance", "over_cap")


def count_through(record: dict[str, Any], stage: str) -> dict[str, Any]:
    tally = BeamTally()
    tally.inc(stage, "in")
    tally.kept(stage)
    return record


def order_hash(key: str, seed: int) -> str:
    """The sample's place in the global order, as fixed-width hex (sorts like the integer)."""
    return f"{keys.salted_hash(key, 'order', seed):016x}"


def bucket_of(order: str, bits: int) -> int:
    return int(order, 16) >> (64 - bits)


def bucket_offsets(counts: list[tuple[int, int]]) -> dict[int, int]:
    """Bucket -> number of samples in all lower buckets."""
    offsets, total = {}, 0
    for bucket, n in sorted(counts):
        offsets[bucket] = total
        total += n
    return offsets


def assign_shards(
    group: tuple[int, Iterable[tuple[str, str, str]]], offsets: dict[int, int], samples_per_shard: int
) -> Iterator[tuple[str, tuple[int, str]]]:
    """(order hex, key, digest) of one bucket -> (key, (shard index, digest))."""
    bucket, members = group
    start = offsets[bucket]
    for i, (_, key, digest) in enumerate(sorted(members)):
        yield key, ((start + i) // samples_per_shard, digest)


def to_shard(joined: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The decoded record a shard slot was assigned to (matched by digest among copies of a key);
    keys without a slot were dropped, and counted, by an earlier stage."""
    key, parts = joined
    slots = parts["slot"]
    if not slots:
        return
    if len(slots) != 1:
        raise RuntimeError(f"curate: key {key} was given {len(slots)} shard slots")
    shard, digest = slots[0]
    for record in parts["rec"]:
        if record["digest"] == digest:
            yield shard, record
            return
    raise RuntimeError(f"curate: no decoded record of key {key} has digest {digest}")


def query_strings(allowlist: str) -> list[str]:
    """Query strings by id; duplicates after normalisation are fine here (we only name ids)."""
    return load_allowlist(allowlist, allow_duplicates=True).queries


class WriteShard(beam.DoFn):
    """(shard index, records) -> a final tar under a temp name, renamed; yields its manifest entry."""

    def __init__(self, output: str, allowlist: str, handle: shared.Shared) -> None:
        self.output = output
        self.allowlist = allowlist
        self._handle = handle
        self._queries: list[str] | None = None

    def setup(self) -> None:
        url = self.allowlist
        self._queries = shared_load(self._handle, "allowlist:" + url, lambda: query_strings(url))

    def process(self, group: tuple[int, Iterable[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
        index, records = group
        records = list(records)
        tally = BeamTally()
        tally.inc("write", "in", len(records))
        samples = [
            {
                "key": r["key"],
                "image": r["image"],
                "ext": r["ext"],
                "text": r["text"],
                "json": shards.sample_json(r, self._queries),
            }
            for r in records
        ]
        name = shards.shard_name(index)
        count, nbytes, sha = shards.write_shard(fsio.join(self.output, name), samples)
        tally.kept("write", count)
        yield {"name": name, "samples": count, "bytes": nbytes, "sha256": sha}


def write_shard_list(entries: list[dict[str, Any]], output: str) -> None:
    """Hand the shard entries to the driver, which turns them into manifest.json."""
    fsio.write_json(fsio.join(output, SHARD_LIST), sorted(entries, key=lambda e: e["name"]))


# ---------------------------------------------------------------- pipeline


def _by_key(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return record["key"], record


def build(p: beam.Pipeline, args: argparse.Namespace, inputs: list[str], eval_sources: list[str]) -> None:
    d, seed, sps = args.max_distance, args.seed, args.samples_per_shard
    records = (
        p
        | "InputFiles" >> beam.Create(inputs)
        | "ReshuffleFiles" >> beam.Reshuffle()
        | "Read" >> beam.ParDo(ReadTars())
    )
    decoded = records | "Decode" >> beam.ParDo(Decode(args.max_pixels))

    # Decisions run on light records; images meet their shard slot in one join at the end.
    lights = decoded | "Light" >> beam.Map(light)
    drops = (
        lights
        | "HashArea" >> beam.Map(lambda r: (r["key"], r["phash"], r["area"]))
        | "NearDup" >> NearDuplicateDrops(d)
    )
    deduped = (
        {"rec": lights | "KeyLight" >> beam.Map(_by_key), "drop": drops}
        | "JoinDedup" >> beam.CoGroupByKey()
        | "ResolveDedup" >> beam.FlatMap(resolve_dedup)
    )

    eval_hashes = (
        p
        | "EvalFiles" >> beam.Create(eval_sources)
        | "EvalHashes" >> beam.FlatMap(eval_hashes_of, args.max_pixels)
    )
    clean = deduped | "Decontaminate" >> beam.ParDo(
        Decontaminate(d, shared.Shared()), beam.pvalue.AsList(eval_hashes)
    )

    if args.rebalance:
        kept_keys = (
            clean
            | "QueryRanks" >> beam.FlatMap(query_ranks, seed)
            | "CapPerQuery" >> beam.combiners.Top.SmallestPerKey(args.t)
            | "CapKeys" >> beam.FlatMap(lambda kv: [(key, True) for _, key in kv[1]])
            | "DistinctKeys" >> beam.Distinct()
        )
        balanced = (
            {"rec": clean | "KeyClean" >> beam.Map(_by_key), "keep": kept_keys}
            | "JoinRebalance" >> beam.CoGroupByKey()
            | "ResolveRebalance" >> beam.FlatMap(resolve_rebalance)
        )
    else:
        balanced = clean | "Rebalance" >> beam.Map(count_through, "rebalance")

    bits = args.order_bucket_bits
    ordered = balanced | "OrderHash" >> beam.Map(lambda r: (order_hash(r["key"], seed), r["key"], r["digest"]))
    offsets = (
        ordered
        | "BucketOnes" >> beam.Map(lambda hk: (bucket_of(hk[0], bits), 1))
        | "CountBuckets" >> beam.CombinePerKey(sum)
        | "BucketList" >> beam.combiners.ToList()
        | "Offsets" >> beam.Map(bucket_offsets)
    )
    slots = (
        ordered
        | "ByBucket" >> beam.Map(lambda hk: (bucket_of(hk[0], bits), hk))
        | "GroupBuckets" >> beam.GroupByKey()
        | "AssignShards" >> beam.FlatMap(assign_shards, beam.pvalue.AsSingleton(offsets), sps)
    )
    written = (
        {"rec": decoded | "KeyDecoded" >> beam.Map(_by_key), "slot": slots}
        | "JoinShards" >> beam.CoGroupByKey()
        | "ToShard" >> beam.FlatMap(to_shard)
        | "GroupShards" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(WriteShard(args.output, args.allowlist, shared.Shared()))
    )
    output = args.output
    _ = (
        written
        | "ShardList" >> beam.combiners.ToList()
        | "WriteShardList" >> beam.Map(write_shard_list, output)
    )


def _cleanup(output: str, keep: set[str]) -> None:
    """Remove shards of an earlier run that this run did not write, and stray temp files."""
    fs, path = fsio.filesystem(output)
    for p in fs.ls(path, detail=False):
        name = p.rstrip("/").rsplit("/", 1)[-1]
        stale_shard = name.startswith("wit-") and name.endswith(".tar") and name not in keep
        if stale_shard or ".tmp-" in name:
            fs.rm(p)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="wit curate", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--input", required=True, action="append",
                        help="raw tar shards: a glob, or a download's folder (repeat for several)")
    parser.add_argument("--output", required=True, help="folder for wit-NNNNNN.tar, manifest.json, stats.json")
    parser.add_argument("--allowlist", default=DEMO,
                        help="names the query ids of raw shards that carry no query names (the harvest "
                        "carries them); local or gs:// (default 'demo', the bundled demo list)")
    parser.add_argument("--max-distance", type=int, default=4, help="pHash Hamming distance that counts as a near duplicate")
    parser.add_argument("--eval-images", default=None, help="folder of images or glob of tar shards to decontaminate against")
    parser.add_argument("--rebalance", action="store_true", help="cap each query at --t pairs again after dedup")
    parser.add_argument("--t", type=int, default=20_000, help="per-query cap for --rebalance")
    parser.add_argument("--samples-per-shard", type=int, default=10_000, help="samples in each final shard (the last holds the rest)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle across shards (and of --rebalance's picks)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="larger images are dropped (decompression bombs)")
    parser.add_argument("--order-bucket-bits", type=int, default=12, help="hash-prefix buckets used to number samples")
    args, beam_args = parser.parse_known_args(argv)
    reject_unknown_flags(parser, beam_args)
    if args.samples_per_shard <= 0 or args.t <= 0:
        parser.error("--samples-per-shard and --t must be positive")
    if not 0 <= args.max_distance < neardup.BITS:
        parser.error(f"--max-distance is a pHash Hamming distance in 0..{neardup.BITS - 1}, got {args.max_distance}")
    if not 1 <= args.order_bucket_bits <= 24:
        parser.error("--order-bucket-bits must be in 1..24")
    return args, beam_args


def run(argv: list[str] | None = None) -> int:
    args, beam_args = parse_args(argv)
    inputs, incomplete = expand_inputs(args.input)
    for url in incomplete:
        logging.warning("curate: skipping %s: its download has not finished (no _stats.json beside it)", url)
    if not inputs:
        raise SystemExit(f"wit curate: no complete tar shards match {args.input!r}"
                         + (f" ({len(incomplete)} unfinished: rerun the download)" if incomplete else ""))
    eval_sources = expand_eval(args.eval_images) if args.eval_images else []
    if args.eval_images and not eval_sources:
        raise SystemExit(f"wit curate: no eval images match {args.eval_images!r}")
    query_strings(args.allowlist)  # fail now, not on a worker, if the allowlist is missing or malformed
    fsio.makedirs(args.output)
    p = make_pipeline(beam_args)
    build(p, args, inputs, eval_sources)
    result = p.run()
    result.wait_until_finish()

    doc = write_stats(result, args.output, STAGES, CHAINED, job="curate", seed=args.seed,
                      inputs=len(inputs), skipped_unfinished=incomplete)
    list_url = fsio.join(args.output, SHARD_LIST)
    entries = fsio.read_json(list_url)
    config = {
        "input": args.input,
        "allowlist": args.allowlist,
        "max_distance": args.max_distance,
        "eval_images": args.eval_images,
        "rebalance": args.rebalance,
        "t": args.t if args.rebalance else None,
        "samples_per_shard": args.samples_per_shard,
        "max_pixels": args.max_pixels,
    }
    counts = {s["name"]: {"in": s["in"], "out": s["out"], "dropped": s["dropped"]} for s in doc["stages"]}
    shards.write_manifest(args.output, entries, counts, config, args.seed)
    fs, path = fsio.filesystem(list_url)
    fs.rm(path)
    _cleanup(args.output, {e["name"] for e in entries})
    print_stages(doc)
    print(f"wrote {sum(e['samples'] for e in entries)} samples in {len(entries)} shards to {args.output} "
          "(manifest.json, stats.json)")
    return 0


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    raise SystemExit(run())
