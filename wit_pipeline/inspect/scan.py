"""One streaming pass over tar shards: counts and distributions for the summary, problems
for --check, and the first samples in key order for the contact sheet."""

from __future__ import annotations

import bisect
import json
import sys
import tarfile
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wit_pipeline import shards
from wit_pipeline.core import fsio
from wit_pipeline.core.schema import SAMPLE_JSON_KEYS
from wit_pipeline.core.stats import DictTally
from wit_pipeline.image.decode import MAX_PIXELS, decode_image

# img2dataset's own json keys that a raw sample must have (our extra columns are optional there).
RAW_JSON_KEYS = ("url", "caption", "key")


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the image header only (nothing decoded); None if unreadable."""
    import io

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                return img.size
    except Exception:  # noqa: BLE001 - the summary counts it; --check says why
        return None


@dataclass
class ShardScan:
    """What one pass over the tars found."""

    counts: dict[str, int] = field(default_factory=dict)  # shard url -> samples
    bytes: dict[str, int] = field(default_factory=dict)
    widths: list[int] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    caption_chars: list[int] = field(default_factory=list)
    caption_words: list[int] = field(default_factory=list)
    languages: Counter[str] = field(default_factory=Counter)
    queries: Counter[str] = field(default_factory=Counter)
    bad_images: Counter[str] = field(default_factory=Counter)
    first: list[tuple[str, bytes | None, str]] = field(default_factory=list)  # smallest keys, sorted
    problems: list[str] = field(default_factory=list)


def _name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _caption(sample: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    if "txt" in sample:
        return sample["txt"].decode("utf-8", "replace")
    text = meta.get("text", meta.get("caption"))
    return text if isinstance(text, str) else ""


def _queries(meta: Mapping[str, Any]) -> list[str]:
    names = meta.get("queries")
    if isinstance(names, list) and names:
        return [str(q) for q in names]
    ids = meta.get("query_ids")
    return [f"#{q}" for q in ids] if isinstance(ids, list) else []


def scan_shards(
    tars: Sequence[str],
    check: bool = False,
    raw: bool = False,
    first_n: int = 0,
    progress: bool | None = None,
    max_pixels: int = MAX_PIXELS,
    blocked: Any = None,
) -> ShardScan:
    """Stream every tar once: counts and distributions for the summary, problems for --check
    (missing members, json keys, duplicate keys across shards, unsafe or oversized members,
    undecodable images) and the `first_n` samples in key order for the contact sheet, none of
    them on the `blocked` blocklist (image.blocklist.Blocklist).

    Without `check`, image sizes come from headers only; with it, every image is decoded
    (under the pixel cap) and failures are problems.
    """
    from tqdm import tqdm

    scan = ShardScan()
    required = RAW_JSON_KEYS if raw else SAMPLE_JSON_KEYS
    seen: dict[str, str] = {}
    disable = (len(tars) < 2) if progress is None else not progress
    for url in tqdm(tars, desc="inspect", unit="shard", disable=disable or None, file=sys.stderr):
        name = _name(url)
        tally = DictTally()
        n = 0
        try:
            scan.bytes[url] = fsio.size(url)
            for sample in shards.iter_tar_samples(url, tally):
                n += 1
                key = sample["__key__"]
                if key in seen:
                    where = "twice in " + name if seen[key] == name else f"in {seen[key]} and {name}"
                    scan.problems.append(f"duplicate key {key} ({where})")
                else:
                    seen[key] = name
                _scan_sample(scan, sample, name, required, check, max_pixels, first_n, blocked)
        except (tarfile.TarError, OSError, EOFError) as exc:
            scan.problems.append(f"{name}: unreadable tar after {n} samples ({type(exc).__name__}: {exc})")
        scan.counts[url] = n
        dropped = tally.as_dict()
        for reason, what in (("bad_member", "unsafe member name(s) or non-file member(s)"),
                             ("oversized_member", "member(s) over the size cap")):
            if dropped.get(f"{shards.READ_STAGE}:dropped.{reason}"):
                scan.problems.append(f"{name}: {dropped[f'{shards.READ_STAGE}:dropped.{reason}']} {what}")
    return scan


def _scan_sample(scan: ShardScan, sample: dict[str, Any], name: str, required: Sequence[str], check: bool,
                 max_pixels: int, first_n: int, blocked: Any = None) -> None:
    key = sample["__key__"]
    image = shards.image_of(sample)
    missing = [m for m, ok in (("image", image is not None), ("txt", "txt" in sample), ("json", "json" in sample)) if not ok]
    if missing:
        scan.problems.append(f"{name}: sample {key} lacks {', '.join(missing)}")
    meta = _meta(sample, f"{name}: sample {key}", required, scan.problems)
    caption = _caption(sample, meta)
    scan.caption_chars.append(len(caption))
    scan.caption_words.append(len(caption.split()))
    scan.languages[str(meta.get("language") or "unknown")] += 1
    scan.queries.update(_queries(meta))
    data = image[1] if image is not None else None
    if data is not None:
        if check:
            img, reason = decode_image(data, max_pixels)
            size = img.size if img is not None else None
            if reason:
                scan.bad_images[reason] += 1
                scan.problems.append(f"{name}: sample {key} image does not decode ({reason})")
        else:
            size = _header_size(data)
            if size is None:
                scan.bad_images["unreadable_header"] += 1
        if size is not None:
            scan.widths.append(size[0])
            scan.heights.append(size[1])
    if first_n and (len(scan.first) < first_n or key < scan.first[-1][0]) and not _blocked(blocked, data, meta):
        bisect.insort(scan.first, (key, data, caption), key=lambda s: s[0])
        del scan.first[first_n:]


def _blocked(blocked: Any, image: bytes | None, meta: Mapping[str, Any]) -> bool:
    """Whether a sample's image is on the blocklist: the sha256 of its stored bytes or of the
    bytes as fetched (img2dataset's `sha256`, before a resize re-encoded them), or its pHash."""
    if blocked is None or image is None:
        return False
    import hashlib

    from wit_pipeline.image import phash

    h = phash.phash64_bytes(image)[0]
    source = meta.get("sha256")
    return blocked.blocks(hashlib.sha256(image).hexdigest(), None if h is None else phash.to_hex(h),
                          source if isinstance(source, str) else None)


def _meta(sample: Mapping[str, Any], what: str, required: Sequence[str], problems: list[str]) -> dict[str, Any]:
    """The sample's json as a dict ({} when it has none or it is unreadable: a problem)."""
    if "json" not in sample:
        return {}
    try:
        meta = json.loads(sample["json"])
        if not isinstance(meta, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{what} has unreadable json ({exc})")
        return {}
    lacking = [k for k in required if k not in meta]
    if lacking:
        problems.append(f"{what} json lacks {', '.join(lacking)}")
    return meta
