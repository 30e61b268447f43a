"""Curate: raw img2dataset shards -> pHash, near-dup removal, decontamination, optional
rebalancing -> final WebDataset shards. The config and the pure rules; `beam_jobs.curate`
is the graph that runs them.

Stages (each counted, in == out + sum(dropped), each feeding the next):
read -> decode -> dedup -> decontaminate -> rebalance -> write; `eval_images` beside them.

Near duplicates at scale: `wit_pipeline.image.neardup.near_duplicates` (the rule) runs on
each of the d+1 band groups of the pHashes (`band_entries`, `band_drops`); a sample's
reports are merged across bands. These decisions run on light records (key, hash, area,
query ids, image digest); the image bytes are shuffled once more, to their shard.

Final shards are a pure function of the kept keys and the seed: samples are ordered by
`order_hash(key, seed)` (hash-prefix buckets, counted, turned into offsets), position p goes
to shard p // samples_per_shard, sorted by key within a shard.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from wit_pipeline import shards
from wit_pipeline.core import fsio, keys, outputs
from wit_pipeline.core.config_flags import option
from wit_pipeline.core.ownership import claim_output
from wit_pipeline.core.stats import Drop, Tally
from wit_pipeline.image import neardup, phash
from wit_pipeline.image.blocklist import BLOCKLISTED, Blocklist
from wit_pipeline.image.decode import MAX_PIXELS, UNDECODABLE
from wit_pipeline.stages.balance import DEFAULT_T
from wit_pipeline.text.allowlist import DEMO

STAGES = ("read", "decode", "dedup", "decontaminate", "rebalance", "write")
CHAINED = tuple(zip(STAGES, STAGES[1:]))
EVAL_STAGE = "eval_images"
SHARD_LIST = outputs.CURATE_SHARD_LIST
DEAD_LETTERS = outputs.DEAD_LETTERS


@dataclass(frozen=True)
class CurateConfig:
    """Everything a curate run depends on; validated once, recorded in stats.json and
    manifest.json (dataclasses.asdict)."""

    input: tuple[str, ...] = option(help="raw tar shards: a glob, or a download's folder (repeat for several)",
                                    action="append")
    output: str = option(help="folder for wit-NNNNNN.tar, manifest.json, stats.json")
    allowlist: str = option(DEMO, "names the query ids of raw shards that carry no query names (the harvest "
                            "carries them); a TSV or a folder of per-language <code>.tsv, local or gs:// ('demo': the bundled demo list)")
    max_distance: int = option(neardup.DEFAULT_MAX_DISTANCE, "pHash Hamming distance that counts as a near duplicate")
    eval_images: str | None = option(None, "folder of images or glob of tar shards to decontaminate against")
    rebalance: bool = option(False, "cap each query at --t pairs again after dedup")
    t: int = option(DEFAULT_T, "per-query cap for --rebalance")
    samples_per_shard: int = option(10_000, "samples in each final shard (the last holds the rest)")
    seed: int = option(0, "seed of the shuffle across shards (and of --rebalance's picks)")
    max_pixels: int = option(MAX_PIXELS, "images whose header declares more pixels are dropped before decoding "
                             "(decompression bombs); training uses the same cap")
    order_bucket_bits: int = option(12, "hash-prefix buckets used to number samples")
    # Harvest's --max-chars default: a harvested caption always fits, a longer one came from
    # elsewhere (a hand-made selection, a hostile raw shard) and is `too_long`. CLIP reads 77
    # tokens (a few hundred characters); the cap bounds each caption's cost in the shards, the
    # tokenizer's training and the loader.
    max_caption_chars: int = option(1000, "captions longer than this are dropped (too_long)")
    blocklist: str | None = option(None, "known-bad images to drop (counted as 'blocklisted', never written): a "
                                   "text file, local or gs://, one 'sha256 <hex>' or 'phash <hex> [distance]' "
                                   "per line (docs/consent.md)")

    def __post_init__(self) -> None:
        if not 0 <= self.max_distance < neardup.BITS:
            raise ValueError(f"--max-distance must be in 0..{neardup.BITS - 1} (bits of a pHash), got {self.max_distance}")
        for name in ("t", "samples_per_shard", "max_pixels", "max_caption_chars"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not 1 <= self.order_bucket_bits <= 24:
            raise ValueError(f"--order-bucket-bits must be in 1..24, got {self.order_bucket_bits}")


# ---------------------------------------------------------------- inputs (run on the launcher)


_RAW_SHARD = re.compile(r"^(\d+)\.tar$")
EVAL_IMAGE_EXTS = (*shards.IMAGE_EXTS, "gif", "bmp", "tif", "tiff")  # eval sets come in any format


def expand_inputs(patterns: Iterable[str]) -> tuple[list[str], list[str]]:
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
            if fsio.isdir(url):
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
        if fsio.isdir(url):  # hidden files (macOS's ._x.jpg) are not images
            urls += [u for u in fsio.find(url) if _is_image_or_tar(u) and not u.rsplit("/", 1)[-1].startswith(".")]
        elif _is_image_or_tar(url):
            urls.append(url)
    return sorted(set(urls))


def _is_image_or_tar(url: str) -> bool:
    ext = url.rsplit(".", 1)[-1].lower()
    return ext == "tar" or ext in EVAL_IMAGE_EXTS


# ---------------------------------------------------------------- per record


def sample_source(sample: dict[str, Any]) -> str:
    """Where a raw sample came from, for its dead letter: tar URL # member key."""
    return f"{sample.get('__url__')}#{sample.get('__key__')}"


def record_source(record: dict[str, Any]) -> str:
    return str(record["key"])


def verdict_source(item: tuple[dict[str, Any], str | None]) -> str:
    return record_source(item[0])


def read(sample: dict[str, Any], max_caption_chars: int = CurateConfig.max_caption_chars) -> dict[str, Any] | Drop:
    """A raw tar sample -> a record: its key checked (it will name tar members), its strings
    valid Unicode (`bad_text`: a lone surrogate would fail Beam's coder, outside any count), its
    caption at most `max_caption_chars` long (`too_long`)."""
    record, reason = shards.raw_record(sample)
    if record is None:
        return Drop(reason or "unknown")
    if len(record["text"]) > max_caption_chars:
        return Drop("too_long")
    return record


def decode(record: dict[str, Any], max_pixels: int, blocked: Blocklist | None = None) -> dict[str, Any] | Drop:
    """pHash the image at bounded pixel count; add its stored size and a digest of its bytes.
    An image on the blocklist (its sha256, or a pHash near one listed) is `blocklisted`."""
    h, width, height, reason = phash.phash64_bytes(record["image"], max_pixels=max_pixels)
    digest = hashlib.sha256(record["image"]).hexdigest()
    if blocked is not None and blocked.blocks(digest, None if h is None else phash.to_hex(h), record.get("source_sha256")):
        return Drop(BLOCKLISTED)
    if h is None:
        return Drop(reason or UNDECODABLE)
    return {
        **record,
        "phash": phash.to_hex(h),
        "width": int(width),
        "height": int(height),
        "digest": digest,
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


def eval_images(url: str, tally: Tally, stage: str = EVAL_STAGE) -> Iterator[tuple[str, bytes]]:
    """(source, bytes) of every image of one eval source: an image file, or each image of a
    tar (its refused members counted on `tally`)."""
    if not url.endswith(".tar"):
        with fsio.open(url) as f:
            yield url, f.read()
        return
    for sample in shards.iter_tar_samples(url, tally, stage):
        image = shards.image_of(sample)
        if image is not None:
            yield sample_source(sample), image[1]


def eval_hash(image: tuple[str, bytes], max_pixels: int) -> str | Drop:
    """(source, bytes) of an eval image -> its pHash as hex."""
    h, _, _, reason = phash.phash64_bytes(image[1], max_pixels=max_pixels)
    return Drop(reason or UNDECODABLE) if h is None else phash.to_hex(h)


def eval_tag(eval_hashes: Iterable[str], max_distance: int) -> str:
    """Names an eval set and distance, so a worker builds its index once (shared_load)."""
    return "eval-" + hashlib.sha256(repr((max_distance, sorted(set(eval_hashes)))).encode()).hexdigest()


def eval_index(eval_hashes: Iterable[str], max_distance: int) -> neardup.EvalIndex:
    hashes = sorted({phash.from_hex(h) for h in eval_hashes})
    return neardup.EvalIndex(np.array(hashes, dtype=np.uint64), max_distance)


def decontaminate(record: dict[str, Any], index: neardup.EvalIndex | None) -> dict[str, Any] | Drop:
    if index is not None and index.contains_near(phash.from_hex(record["phash"])):
        return Drop("near_eval")
    return record


def keep(record: dict[str, Any]) -> dict[str, Any]:
    """A stage that keeps everything (rebalance when it is off): still counted."""
    return record


def query_pairs(record: dict[str, Any]) -> Iterator[tuple[int, str]]:
    """(query id, key) for each matched query: what cap balancing ranks."""
    for qid in record["query_ids"]:
        yield qid, record["key"]


# ---------------------------------------------------------------- dedup


def band_entries(item: tuple[str, str, int], d: int) -> Iterator[tuple[tuple[int, int], tuple[str, str, int]]]:
    """(key, phash hex, area) under each of its d+1 bands. Hashes travel as hex: Beam's
    integer coder stops at 2**63."""
    key, hex_hash, area = item
    for band in neardup.band_keys(phash.from_hex(hex_hash), d):
        yield (int(band[0]), int(band[1])), (key, hex_hash, area)


def band_drops(group: tuple[tuple[int, int], Iterable[tuple[str, str, int]]], d: int) -> Iterator[tuple[str, int]]:
    """(dropped key, EXACT or NEAR) from one band group: `near_duplicates` on its members,
    copies of one hash reported from band 0 only (they meet in every band)."""
    (band_index, _), members = group
    decoded = ((key, phash.from_hex(hex_hash), area) for key, hex_hash, area in members)
    yield from neardup.near_duplicates(decoded, d, exact=band_index == 0).items()


def dedup_verdicts(joined: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[dict[str, Any], str | None]]:
    """The records of one key with their fate (a drop reason, or None to keep): dropped if
    a better-ranked sample is within d; copies of one key keep one (the lowest image digest,
    whatever order the copies arrive in), the others are `duplicate_key`."""
    _, parts = joined
    records, drops = parts["rec"], parts["drop"]
    if drops:
        reason = "exact_duplicate" if min(drops) == neardup.EXACT else "near_duplicate"
        for record in records:
            yield record, reason
        return
    for i, record in enumerate(sorted(records, key=lambda r: r["digest"])):
        yield record, None if i == 0 else "duplicate_key"


def judged(item: tuple[dict[str, Any], str | None]) -> dict[str, Any] | Drop:
    """A record with its fate (dedup_verdicts, rebalance_verdicts) -> itself or its Drop."""
    record, reason = item
    return record if reason is None else Drop(reason)


def rebalance_verdicts(joined: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[dict[str, Any], str | None]]:
    """A record is kept when any of its queries keeps it (CapPerQuery)."""
    _, parts = joined
    for record in parts["rec"]:
        if parts["keep"]:
            yield record, None
        else:
            yield record, "over_cap" if record["query_ids"] else "no_query"


# ---------------------------------------------------------------- order and shards


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


def final_sample(record: dict[str, Any], queries: list[str] | None) -> dict[str, Any]:
    """A decoded record as a final shard's sample (shards.write_shard's input)."""
    return {"key": record["key"], "image": record["image"], "ext": record["ext"], "text": record["text"],
            "json": shards.sample_json(record, queries)}


# ---------------------------------------------------------------- outputs


def write_shard_list(entries: list[dict[str, Any]], output: str) -> None:
    """Hand the shard entries to the driver, which turns them into manifest.json."""
    fsio.write_json(fsio.join(output, SHARD_LIST), sorted(entries, key=lambda e: e["name"]))


def write_dead_letters(output: str, rows: list[dict[str, str]]) -> int:
    """dead_letter/part-00000-of-00001.parquet (written even when empty: a rerun replaces it)."""
    return outputs.write_dead_letters(fsio.join(output, DEAD_LETTERS), rows)


_OURS = re.compile(r"wit-\d{6}\.tar|" + "|".join(map(re.escape, (outputs.MANIFEST, outputs.STATS, outputs.DEAD_LETTER, SHARD_LIST)))
                   + r"|.*\.tmp-.*")


def check_output(output: str) -> None:
    """Refuse (ValueError) an --output that is not new, empty or a curate's own. A rerun
    rewrites stats.json and removes the shards it did not write, which must never happen to
    another stage's folder (curate's own input, a download's folder)."""
    claim_output(output, "curate", lambda doc: doc.get("job") == "curate",
                     lambda names: all(_OURS.fullmatch(name) for name in names))


def remove_stale_shards(output: str, keep: set[str]) -> None:
    """Remove shards of an earlier run that this run did not write, and stray temp files."""
    for url in fsio.ls(output):
        name = url.rsplit("/", 1)[-1]
        if (name.startswith("wit-") and name.endswith(".tar") and name not in keep) or ".tmp-" in name:
            fsio.rm(url)
