"""Reading raw (img2dataset) tar shards and writing the final, byte-reproducible WebDataset shards.

Tars are streamed member by member (fsio, so any fsspec URL) and never extracted to disk: a member is
only ever bytes in memory, so a hostile name (`../x`, `/etc/x`, a symlink) cannot land a file
anywhere; such members are skipped and counted. Final shards are deterministic (sorted by
key, fixed metadata), so the same samples give the same sha256 on any runner.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from wit_pipeline.core import fsio, keys, outputs
from wit_pipeline.core.schema import RAW_KEY_COLUMN, SAMPLE_JSON_KEYS
from wit_pipeline.core.stats import Tally

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
READ_STAGE = "read"
SAMPLE_KEY_FIELD = RAW_KEY_COLUMN  # img2dataset owns "key"
MANIFEST = outputs.MANIFEST
MAX_MEMBER_BYTES = 64 << 20  # a web image above 64 MiB is not a training image; never buffer it
MANIFEST_VERSION = 1


FINAL_SHARD = re.compile(r"wit-\d{6}\.tar")  # the names shard_name gives


def shard_name(i: int) -> str:
    return outputs.FINAL_SHARD.format(i)


def _safe_member_name(member: tarfile.TarInfo) -> str | None:
    """The member's basename if it is a plain file at the tar's top level, else None."""
    name = member.name
    if not member.isreg() or not name or name.startswith("/") or "\\" in name or not is_unicode(name):
        return None  # a name that is not UTF-8 (tarfile gives it surrogates) cannot name a sample
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if len(parts) != 1 or parts[0] == "..":
        return None
    return parts[0]


def iter_tar_samples(
    url: str, tally: Tally | None = None, stage: str = READ_STAGE, max_member_bytes: int = MAX_MEMBER_BYTES
) -> Iterator[dict[str, Any]]:
    """Stream a webdataset tar as samples: {"__key__", "__url__", ext: bytes, ...}.

    Members are grouped by basename up to the first dot, as webdataset does (consecutive
    members of one key form one sample). Unsafe members (path components, `..`, absolute
    names, links, devices, directories) are skipped; each counts as `in` and
    `dropped.bad_member` of `stage` on `tally`; so are members over `max_member_bytes`
    (`dropped.oversized_member`), which are never read into memory.
    """
    with fsio.open(url) as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
        current: dict[str, Any] | None = None
        for member in tar:
            base = _safe_member_name(member)
            if base is None or "." not in base.lstrip("."):
                if tally is not None:
                    tally.inc(stage, "in")
                    tally.dropped(stage, "bad_member")
                continue
            if member.size > max_member_bytes:
                if tally is not None:
                    tally.inc(stage, "in")
                    tally.dropped(stage, "oversized_member")
                continue
            key, ext = base.split(".", 1)
            f = tar.extractfile(member)
            data = f.read() if f is not None else b""
            if current is None or current["__key__"] != key or ext in current:
                if current is not None:
                    yield current
                current = {"__key__": key, "__url__": url}
            current[ext.lower()] = data
        if current is not None:
            yield current


def is_unicode(*texts: str) -> bool:
    """Whether every text is valid Unicode: no lone surrogates (which `json.loads` accepts from
    "\\ud800" and tarfile makes of non-UTF-8 names), so it can be encoded as UTF-8 by any coder
    or writer downstream."""
    try:
        for text in texts:
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _score(value: Any) -> float | None:
    """A finite float, None for a missing or non-finite one (img2dataset's json says NaN for a
    missing float), or ValueError/TypeError for anything else."""
    if value is None:
        return None
    score = float(value)
    return score if math.isfinite(score) else None


def _optional_str(value: Any) -> str:
    """A metadata string; missing (None, or the NaN pandas puts in an empty cell) is ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def image_of(sample: Mapping[str, Any]) -> tuple[str, bytes] | None:
    for ext in IMAGE_EXTS:
        if ext in sample:
            return ("jpg" if ext == "jpeg" else ext), sample[ext]
    return None


def raw_record(sample: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """An img2dataset sample -> (record, None) or (None, drop reason).

    img2dataset owns the json's `key` (its running number), so our key travels as
    `sample_key` (wit_pipeline.stages.download.KEY_COLUMN); without it, the key is recomputed
    as keys.sample_key(url, caption). A carried key that is not the project's key format is
    `bad_key`: it will name tar members, so `../../x` must never get through.
    """
    image = image_of(sample)
    if image is None:
        return None, "missing_image"
    if "json" not in sample:
        return None, "missing_json"
    try:
        meta = json.loads(sample["json"])
        if not isinstance(meta, dict):
            raise ValueError("json is not an object")
    except (ValueError, UnicodeDecodeError):
        return None, "bad_json"
    url = meta.get("url")
    text = meta.get("caption")
    if text is None and "txt" in sample:
        text = sample["txt"].decode("utf-8", "replace")
    if not isinstance(url, str) or not url or not isinstance(text, str):
        return None, "missing_url_or_text"
    qids = meta.get("query_ids") or []
    names = meta.get("queries")
    try:
        query_ids = sorted({int(q) for q in qids})
        lang_score = _score(meta.get("lang_score"))
    except (TypeError, ValueError, OverflowError):
        return None, "bad_json"
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        return None, "bad_json"
    page_url, language = _optional_str(meta.get("page_url")), _optional_str(meta.get("language"))
    if not is_unicode(url, text, page_url, language, *(names or ())):
        return None, "bad_text"
    key = meta.get(SAMPLE_KEY_FIELD)
    if key is None:
        key = keys.sample_key(url, text)
    elif not keys.is_key(key):
        return None, "bad_key"
    ext, data = image
    return {
        "key": key,
        "url": url,
        "page_url": page_url,
        "text": text,
        "language": language,
        "lang_score": lang_score,
        "query_ids": query_ids,
        **({"queries": names} if names is not None else {}),
        **({"consent": meta["consent"]} if isinstance(meta.get("consent"), str) and is_unicode(meta["consent"]) else {}),
        "ext": ext,
        "image": data,
    }, None


def sample_json(record: Mapping[str, Any], queries: list[str] | None = None) -> dict[str, Any]:
    """The final `{key}.json` (keys: schema.SAMPLE_JSON_KEYS, plus query_ids). Query names
    come with the record since the harvest carries them; `queries` (an allowlist's) names the
    ids of records that have none."""
    qids = list(record.get("query_ids") or [])
    names = record.get("queries")
    if names is None:
        names = [queries[q] for q in qids if queries is not None and 0 <= q < len(queries)]
    doc = {
        "key": record["key"],
        "url": record["url"],
        "page_url": record["page_url"],
        "text": record["text"],
        "queries": names,
        "query_ids": qids,
        "phash": record["phash"],
        "width": int(record["width"]),
        "height": int(record["height"]),
        "language": record["language"],
        "lang_score": _score(record.get("lang_score")),
    }
    if record.get("consent"):  # the checks its download passed (stages.consent), kept for audits
        doc["consent"] = record["consent"]
    missing = set(SAMPLE_JSON_KEYS) - doc.keys()
    assert not missing, missing
    return doc


class _HashingWriter:
    """A write-only file wrapper that counts bytes and hashes them on the way through."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.sha = hashlib.sha256()
        self.nbytes = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.nbytes += len(data)
        return self._f.write(data)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def _members(sample: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """A final sample {"key", "image", "ext", "text", "json": dict} as tar members."""
    key = sample["key"]
    # allow_nan=False: NaN is not JSON, and strict readers (browsers, orjson, jq) refuse it
    doc = json.dumps(sample["json"], sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return [
        (f"{key}.{sample.get('ext', 'jpg')}", sample["image"]),
        (f"{key}.json", doc.encode("utf-8")),
        (f"{key}.txt", sample["text"].encode("utf-8")),
    ]


def write_shard(url: str, samples: Iterable[Mapping[str, Any]]) -> tuple[int, int, str]:
    """Write samples sorted by key as a deterministic tar (temp name + rename).

    Each sample is {"key", "image" (bytes), "ext", "text", "json" (dict)}. Returns
    (count, bytes, sha256 hex).
    """
    ordered = sorted(samples, key=lambda s: s["key"])
    keys = [s["key"] for s in ordered]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate sample keys in shard {url}")
    with fsio.atomic_open(url, "wb") as f:
        out = _HashingWriter(f)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tar:  # type: ignore[call-overload]
            for sample in ordered:
                for name, data in _members(sample):
                    _add(tar, name, data)
    return len(ordered), out.nbytes, out.sha.hexdigest()


def write_manifest(
    output: str,
    shards: Iterable[Mapping[str, Any]],
    counts: Mapping[str, Any],
    config: Mapping[str, Any],
    seed: int,
) -> dict[str, Any]:
    """Write `manifest.json`: every shard (name, samples, bytes, sha256), totals, config, seed."""
    entries = sorted(
        ({"name": s["name"], "samples": int(s["samples"]), "bytes": int(s["bytes"]), "sha256": s["sha256"]} for s in shards),
        key=lambda s: s["name"],
    )
    doc = {
        "format": "wit-webdataset",
        "version": MANIFEST_VERSION,
        "shards": entries,
        "totals": {
            "shards": len(entries),
            "samples": sum(s["samples"] for s in entries),
            "bytes": sum(s["bytes"] for s in entries),
        },
        "counts": dict(counts),
        "config": dict(config),
        "seed": seed,
    }
    fsio.write_json(fsio.join(output, MANIFEST), doc)
    return doc


def read_manifest(output: str) -> dict[str, Any]:
    """Read and sanity-check `manifest.json` of an output folder (or the file itself)."""
    url = output if output.endswith(".json") else fsio.join(output, MANIFEST)
    doc = fsio.read_json(url)
    if not isinstance(doc, dict) or "shards" not in doc or "totals" not in doc:
        raise ValueError(f"{url}: not a wit manifest")
    if sum(s["samples"] for s in doc["shards"]) != doc["totals"]["samples"]:
        raise ValueError(f"{url}: shard sample counts do not add up to totals.samples")
    return doc


def shard_urls(output: str) -> list[str]:
    """The shard URLs a manifest lists, in order."""
    return [fsio.join(output, s["name"]) for s in read_manifest(output)["shards"]]


def sha256_of(url: str) -> str:
    h = hashlib.sha256()
    with fsio.open(url) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


__all__ = [
    "IMAGE_EXTS",
    "MANIFEST",
    "image_of",
    "iter_tar_samples",
    "raw_record",
    "read_manifest",
    "sample_json",
    "shard_name",
    "shard_urls",
    "sha256_of",
    "write_manifest",
    "write_shard",
]
