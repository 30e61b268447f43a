"""One pass over the final shards and one over the raw (downloaded) shards.

Final shards give the distributions, the contact sheet (the samples of smallest salted key
hash: the same seed picks the same samples whatever the shard order) and every kept pHash.
Raw shards give the records curate dropped: a sample of them (a salted-hash coin, so the
budget holds at any size) is decoded and its pHash compared with the kept ones, which names
the kept image it duplicates; one not near any kept image is compared with the evaluation
images (near_eval) and with the other sampled drops (a duplicate of a duplicate). A kept
partner's image is then read back from its final shard by byte range (its offset was noted
in the pass), so no shard is read twice.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import tarfile
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from wit_pipeline import shards
from wit_pipeline.core import fsio, keys
from wit_pipeline.core.stats import DictTally
from wit_pipeline.image import neardup, phash
from wit_pipeline.image.blocklist import Blocklist
from wit_pipeline.image.decode import MAX_PIXELS
from wit_pipeline.report.examples import never_shown
from wit_pipeline.report.thumbs import thumbnail
from wit_pipeline.stages import curate

SHEET = 24  # contact sheet samples
DECODE_BUDGET = 300  # dropped raw samples decoded to find examples (at any run size)
EXAMPLES = 6  # per drop reason
SALT = "report"
_ARRIVAL = itertools.count()  # ties between equal hashes (copies of one key) go by arrival order


def _u(key: str, seed: int) -> int:
    return keys.salted_hash(key, SALT, seed)


class _Hashing:
    """A read-only file wrapper hashing what passes through (the manifest's sha256, checked in the
    one read of the shard)."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f, self.sha, self.nbytes = f, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.sha.update(data)
        self.nbytes += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


@dataclass
class Final:
    """What the final shards hold, per sample as columns (light enough for 10^6 samples)."""

    keys: list[str] = field(default_factory=list)
    phash: list[int] = field(default_factory=list)
    width: list[int] = field(default_factory=list)
    height: list[int] = field(default_factory=list)
    chars: list[int] = field(default_factory=list)
    languages: Counter[str] = field(default_factory=Counter)
    queries: Counter[str] = field(default_factory=Counter)
    # each sample's image: its shard (an index into `urls`), byte offset and size in that shard
    shard: array = field(default_factory=lambda: array("l"))
    offset: array = field(default_factory=lambda: array("q"))
    size: array = field(default_factory=lambda: array("q"))
    urls: list[str] = field(default_factory=list)
    sheet: list[dict[str, Any]] = field(default_factory=list)
    shards_read: int = 0
    complete: bool = True  # every shard the manifest lists was read to its end


def _member_key(member: tarfile.TarInfo) -> tuple[str, str] | None:
    name = member.name
    if not member.isreg() or "/" in name or "\\" in name or "." not in name.lstrip("."):
        return None
    key, ext = name.split(".", 1)
    return key, ext.lower()


def read_final(folder: str, manifest: dict[str, Any], seed: int, problems: list[str]) -> Final:
    """One pass over the manifest's shards: metadata of every sample, its image's byte range,
    the contact sheet's images; each shard's sha256 and sample count checked against the manifest."""
    out = Final()
    heap: list[tuple[int, str]] = []  # (-hash, key): the SHEET smallest hashes so far
    picks: dict[str, dict[str, Any]] = {}
    for entry in manifest.get("shards", []):
        name = str(entry.get("name"))
        if not shards.FINAL_SHARD.fullmatch(name):  # a name from a file never reaches outside the folder
            problems.append(f"manifest.json lists {name[:80]!r}, which is not a shard name: left out")
            out.complete = False
            continue
        url = fsio.join(folder, name)
        if not fsio.exists(url):
            problems.append(f"{url} is listed in manifest.json but missing: its samples are left out of this report")
            out.complete = False
            continue
        n, image = 0, (-1, 0)
        out.urls.append(url)
        try:
            with fsio.open(url) as raw:
                reader = _Hashing(raw)
                with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                    for member in tar:
                        named = _member_key(member)
                        if named is None:
                            continue
                        key, ext = named
                        if ext in shards.IMAGE_EXTS:
                            image = (member.offset_data, member.size)
                            h = _u(key, seed)
                            if len(heap) < SHEET or -heap[0][0] > h:
                                f = tar.extractfile(member)
                                picks[key] = {"key": key, "image": f.read() if f else b""}
                                if len(heap) >= SHEET:
                                    picks.pop(heapq.heappushpop(heap, (-h, key))[1], None)
                                else:
                                    heapq.heappush(heap, (-h, key))
                        elif ext == "json":
                            f = tar.extractfile(member)
                            doc = json.loads(f.read() if f else b"{}")
                            doc = doc if isinstance(doc, dict) else {}
                            n += 1
                            _add_final(out, key, doc)
                            out.shard.append(len(out.urls) - 1)
                            out.offset.append(image[0])
                            out.size.append(image[1])
                            image = (-1, 0)
                            if key in picks:
                                picks[key].update(text=doc.get("text", ""), url=doc.get("url", ""),
                                                  queries=list(doc.get("queries") or []))
                reader.drain()
        except (OSError, EOFError, tarfile.TarError, ValueError, RecursionError) as exc:
            problems.append(f"{url} cannot be read to the end ({type(exc).__name__}: {exc}): "
                            f"{n} of its samples are in this report")
            out.complete = False
            continue
        out.shards_read += 1
        if n != entry.get("samples"):
            problems.append(f"{url}: {n} samples, manifest.json says {entry.get('samples')}")
        if reader.sha.hexdigest() != entry.get("sha256"):
            problems.append(f"{url}: sha256 {reader.sha.hexdigest()[:16]}… differs from manifest.json's")
    for _, key in sorted(heap, reverse=True):
        p = picks[key]
        out.sheet.append({**p, "thumb": thumbnail(p.pop("image"))})
    return out


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _add_final(out: Final, key: str, doc: dict[str, Any]) -> None:
    out.keys.append(key)
    try:
        out.phash.append(phash.from_hex(str(doc.get("phash"))))
    except ValueError:
        out.phash.append(0)
    out.width.append(_int(doc.get("width")))
    out.height.append(_int(doc.get("height")))
    out.chars.append(len(str(doc.get("text", ""))))
    out.languages[str(doc.get("language") or "?")] += 1
    out.queries.update(str(q) for q in doc.get("queries") or [])


# ---------------------------------------------------------------- what curate dropped


def _keep_few(bucket: list[tuple[int, int, dict[str, Any]]], h: int, item: dict[str, Any]) -> None:
    """The EXAMPLES items of smallest hash (first come first on ties), in a max-heap."""
    entry = (-h, -next(_ARRIVAL), item)
    if len(bucket) < EXAMPLES:
        heapq.heappush(bucket, entry)
    elif bucket[0][:2] < entry[:2]:
        heapq.heappushpop(bucket, entry)


def _sorted(bucket: list[tuple[int, int, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item for *_, item in sorted(bucket, key=lambda t: (-t[0], -t[1]))]


def curate_drops(raw_tars: list[str], final: Final, config: dict[str, Any], n_dropped: int, seed: int,
                 show_images: bool, problems: list[str], rebalanced: bool = False,
                 blocked: Blocklist | None = None) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], int]:
    """(stage, reason) -> examples of what curate dropped, from one pass over the raw shards;
    and how many dropped images were decoded to find them. Records are read and decoded by
    curate's own rules (its caption cap, its `blocked` blocklist: blocklisted images are only
    counted). `rebalanced`: curate's rebalance stage dropped some, so a drop near no image is one of those."""
    max_caption_chars = int(config.get("max_caption_chars") or curate.CurateConfig.max_caption_chars)
    d = int(config.get("max_distance", 4))
    max_pixels = int(config.get("max_pixels", MAX_PIXELS))
    p = min(1.0, DECODE_BUDGET / max(1, n_dropped))
    threshold = int(p * float(1 << 64)) if p < 1 else 1 << 64
    kept = set(final.keys)
    seen: set[str] = set()
    buckets: dict[tuple[str, str], list[tuple[int, int, dict[str, Any]]]] = {}
    decoded: list[dict[str, Any]] = []
    n_decoded = 0
    for url in raw_tars:
        tally = DictTally()
        try:
            for sample in shards.iter_tar_samples(url, tally, "read"):
                record = curate.read(sample, max_caption_chars)
                source = curate.sample_source(sample)
                if isinstance(record, curate.Drop):
                    _keep_few(buckets.setdefault(("read", record.reason), []), _u(source, seed), {"source": source})
                    continue
                key = record["key"]
                h = _u(key, seed)
                item = {"key": key, "text": record["text"], "url": record["url"], "queries": record.get("queries") or []}
                if key in kept:
                    if key in seen:
                        _keep_few(buckets.setdefault(("dedup", "duplicate_key"), []), h, item)
                    seen.add(key)
                    continue
                if h >= threshold or len(decoded) >= 2 * DECODE_BUDGET:
                    continue
                n_decoded += 1
                result = curate.decode(record, max_pixels, blocked)
                if isinstance(result, curate.Drop):  # its image is never shown
                    if not never_shown(result.reason):
                        _keep_few(buckets.setdefault(("decode", result.reason), []), h, item)
                    continue
                item.update(h=h, phash=phash.from_hex(result["phash"]),
                            thumb=thumbnail(record["image"], max_pixels=max_pixels) if show_images else None)
                decoded.append(item)
        except (OSError, EOFError, tarfile.TarError) as exc:
            problems.append(f"{url} cannot be read to the end ({type(exc).__name__}: {exc})")
    _attribute(decoded, final, d, config, show_images, problems, rebalanced)
    for item in decoded:
        stage = {"near_eval": "decontaminate", "over_cap": "rebalance", "no_query": "rebalance"}.get(item["reason"], "dedup")
        _keep_few(buckets.setdefault((stage, item.pop("reason")), []), item.pop("h"), item)
    return {k: _sorted(v) for k, v in buckets.items()}, n_decoded


def _attribute(decoded: list[dict[str, Any]], final: Final, d: int, config: dict[str, Any], show_images: bool,
               problems: list[str], rebalanced: bool) -> None:
    """Name each decoded drop's reason and the image it is near: a kept sample, else an
    evaluation image, else (when curate rebalanced) none: over_cap, else another drop (curate
    drops the whole of a chain A~B~C but A)."""
    if not decoded:
        return
    finals = np.array(final.phash, np.uint64)
    order = np.argsort(finals, kind="stable")
    index = neardup.EvalIndex(finals, d) if len(finals) else None
    wanted: list[tuple[dict[str, Any], int]] = []
    for item in decoded:
        near = index.nearest(item["phash"]) if index is not None else None
        if near is None:
            continue
        i = int(order[np.searchsorted(finals[order], np.uint64(near))])
        distance = phash.hamming(near, item["phash"])
        item["reason"] = "exact_duplicate" if distance == 0 else "near_duplicate"
        item["partner"] = {"what": "kept sample", "key": final.keys[i], "distance": distance}
        wanted.append((item, i))
    if show_images:
        _read_partners(wanted, final, problems)
    rest = [item for item in decoded if "reason" not in item]
    if rest and config.get("eval_images"):
        _near_eval(rest, str(config["eval_images"]), d, show_images, problems)
    for item in decoded:
        if "reason" in item:
            continue
        if rebalanced:
            item["reason"] = "over_cap" if item["queries"] else "no_query"
            continue
        others = [o for o in decoded if o is not item]
        dist = [phash.hamming(o["phash"], item["phash"]) for o in others]
        best = min(range(len(others)), key=lambda j: (dist[j], others[j]["key"]), default=None)
        item["reason"] = "near_duplicate"
        if best is not None and dist[best] <= d:
            o = others[best]
            item["partner"] = {"what": "dropped sample", "key": o["key"], "distance": dist[best], "thumb": o.get("thumb"),
                               "text": o["text"], "url": o["url"]}
        else:
            item["partner"] = {"what": "a sample that was itself dropped (not among the decoded sample)", "key": None}
    for item in decoded:
        item.pop("phash", None)


def _read_partners(wanted: list[tuple[dict[str, Any], int]], final: Final, problems: list[str]) -> None:
    """A kept partner's image, read back from its final shard by byte range."""
    by_shard: dict[int, list[tuple[dict[str, Any], int]]] = {}
    for item, i in wanted:
        if final.offset[i] >= 0:
            by_shard.setdefault(final.shard[i], []).append((item, i))
    for shard, items in sorted(by_shard.items()):
        url = final.urls[shard]
        try:
            with fsio.open(url) as f:
                for item, i in sorted(items, key=lambda x: final.offset[x[1]]):
                    f.seek(final.offset[i])
                    item["partner"]["thumb"] = thumbnail(f.read(final.size[i]))
        except OSError as exc:
            problems.append(f"{url}: cannot read a kept image back ({exc})")


def _near_eval(items: list[dict[str, Any]], pattern: str, d: int, show_images: bool, problems: list[str]) -> None:
    index = neardup.EvalIndex(np.array([i["phash"] for i in items], np.uint64), d)
    by_hash: dict[int, list[dict[str, Any]]] = {}
    for item in items:
        by_hash.setdefault(item["phash"], []).append(item)
    try:
        sources = curate.expand_eval(pattern)
    except OSError as exc:
        problems.append(f"evaluation images {pattern} cannot be listed ({exc}): near_eval drops are not told apart")
        return
    tally = DictTally()
    for url in sources:
        try:
            for source, data in curate.eval_images(url, tally):
                h, _, _, _ = phash.phash64_bytes(data)
                near = index.nearest(h) if h is not None else None
                for item in by_hash.get(near, []) if near is not None else []:
                    if "reason" not in item:
                        item["reason"] = "near_eval"
                        item["partner"] = {"what": "evaluation image", "key": None, "url": source,
                                           "distance": phash.hamming(h, near),
                                           "thumb": thumbnail(data) if show_images else None}
        except (OSError, EOFError, tarfile.TarError) as exc:
            problems.append(f"evaluation source {url} cannot be read ({exc})")
