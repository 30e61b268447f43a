"""`wit inspect PATH`: what is in a stage's output, and is it intact?

PATH is a final shards folder (`wit-*.tar` + manifest.json + stats.json), img2dataset raw
shards (`00000.tar` + `00000.parquet` + `00000_stats.json`), a glob or a single tar, a harvest
output folder (stats.json, query_counts.parquet, candidates/, selected/) or any stats.json.
Tars are streamed member by member (never extracted), in one pass that feeds the summary,
the checks and the contact sheet. Kept light on purpose: no torch, no Beam.
"""

from __future__ import annotations

import argparse
import bisect
import json
import statistics
import sys
import tarfile
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wit_pipeline import plots, shards
from wit_pipeline.core import fsio
from wit_pipeline.core.cli_help import HelpFormatter
from wit_pipeline.core.schema import CANDIDATES, QUERY_COUNTS, SAMPLE_JSON_KEYS, SELECTED, SchemaError, validate
from wit_pipeline.core.stats import DictTally
from wit_pipeline.image.decode import MAX_PIXELS, decode_image

STATS = "stats.json"
QUERY_COUNTS_FILE = "query_counts.parquet"
# img2dataset's own json keys that a raw sample must have (our extra columns are optional there).
RAW_JSON_KEYS = ("url", "caption", "key")
KIND_SHARDS, KIND_HARVEST, KIND_STATS = "shards", "harvest", "stats"


# --------------------------------------------------------------------------- locating inputs


@dataclass
class Target:
    """What PATH turned out to be."""

    kind: str
    path: str
    root: str | None = None  # the folder, when PATH is one
    tars: list[str] = field(default_factory=list)
    manifest: str | None = None
    stats: str | None = None
    raw: bool = False  # img2dataset raw shards (their json has img2dataset's keys, not ours)


def _exists(url: str) -> bool:
    fs, path = fsio.filesystem(url)
    return bool(fs.exists(path))


def _isdir(url: str) -> bool:
    fs, path = fsio.filesystem(url)
    return bool(fs.isdir(path))


def _size(url: str) -> int:
    fs, path = fsio.filesystem(url)
    return int(fs.size(path))


def _sibling(url: str, name: str) -> str:
    return fsio.join(url.rsplit("/", 1)[0], name) if "/" in url else name


def _is_raw(tars: Sequence[str]) -> bool:
    """img2dataset writes `NNNNN.parquet` (and `NNNNN_stats.json`) beside each `NNNNN.tar`."""
    for tar in tars[:1]:
        stem = tar.rsplit("/", 1)[-1][: -len(".tar")]
        if _exists(_sibling(tar, f"{stem}.parquet")) or _exists(_sibling(tar, f"{stem}_stats.json")):
            return True
    return False


def locate(path: str) -> Target:
    """Classify PATH; raise FileNotFoundError when there is nothing to inspect there."""
    path = path.rstrip("/") or path
    if any(c in path for c in "*?["):
        tars = [u for u in fsio.expand(path) if u.endswith(".tar")]
        if not tars:
            raise FileNotFoundError(f"no .tar files match {path!r}")
        return Target(KIND_SHARDS, path, tars=tars, raw=_is_raw(tars))
    if not _exists(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    if not _isdir(path):
        if path.endswith(".tar"):
            return Target(KIND_SHARDS, path, tars=[path], raw=_is_raw([path]))
        if path.endswith(".json"):
            return Target(KIND_STATS, path, stats=path)
        raise FileNotFoundError(f"{path}: not a folder, a .tar or a stats .json")
    stats = fsio.join(path, STATS)
    stats = stats if _exists(stats) else None
    manifest = fsio.join(path, shards.MANIFEST)
    tars = fsio.expand(fsio.join(path, "*.tar"))
    if _exists(manifest):
        return Target(KIND_SHARDS, path, root=path, tars=tars, manifest=manifest, stats=stats)
    if tars:
        return Target(KIND_SHARDS, path, root=path, tars=tars, stats=stats, raw=_is_raw(tars))
    if _exists(fsio.join(path, QUERY_COUNTS_FILE)) or _isdir(fsio.join(path, "candidates")):
        return Target(KIND_HARVEST, path, root=path, stats=stats)
    if stats:
        return Target(KIND_STATS, path, root=path, stats=stats)
    raise FileNotFoundError(f"{path}: no tar shards, manifest.json, harvest output or stats.json")


# --------------------------------------------------------------------------- stats.json


def check_stats(doc: Any, what: str = STATS) -> list[str]:
    """Every problem with a stats document: its shape, a recorded job error, and each stage
    where in != out + sum(dropped) (all of them, not just the first)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), list):
        return [f"{what}: no 'stages' list"]
    problems = []
    if doc.get("error"):
        problems.append(f"{what}: the job recorded an error: {doc['error']}")
    for i, s in enumerate(doc["stages"]):
        name = s.get("name", f"#{i}") if isinstance(s, dict) else f"#{i}"
        try:
            dropped = s["dropped"]
            lost = int(s["in"]) - int(s["out"]) - sum(int(v) for v in dropped.values())
        except (KeyError, TypeError, ValueError, AttributeError):
            problems.append(f"{what}: stage {name!r} lacks integer in/out/dropped")
            continue
        if lost:
            problems.append(
                f"{what}: stage {name!r} does not add up: in={s['in']} out={s['out']} "
                f"dropped={sum(int(v) for v in dropped.values())} ({lost:+d} unaccounted)"
            )
    return problems


def stage_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The stage table with an `ok` flag per stage (in == out + sum(dropped))."""
    rows = []
    for s in doc.get("stages", []):
        try:
            ok = int(s["in"]) == int(s["out"]) + sum(int(v) for v in s["dropped"].values())
        except (KeyError, TypeError, ValueError, AttributeError):
            ok = False
        rows.append({"name": s.get("name"), "in": s.get("in"), "out": s.get("out"),
                     "dropped": dict(s.get("dropped") or {}), "ok": ok})
    return rows


def _load_stats(url: str, problems: list[str]) -> dict[str, Any] | None:
    try:
        doc = fsio.read_json(url)
    except (OSError, ValueError) as exc:
        problems.append(f"{url}: unreadable: {exc}")
        return None
    problems.extend(check_stats(doc, url.rsplit("/", 1)[-1]))
    return doc if isinstance(doc, dict) else None


def _stats_block(doc: Mapping[str, Any] | None, problems: Sequence[str]) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {"job": doc.get("job"), "stages": stage_rows(doc), "adds_up": not problems}


# --------------------------------------------------------------------------- shards


def _dist(values: Sequence[int | float], mean: bool = False) -> dict[str, Any] | None:
    """min / median (the lower middle value, so it is a real sample's) / max."""
    if not values:
        return None
    out: dict[str, Any] = {"min": min(values), "median": statistics.median_low(values), "max": max(values)}
    if mean:
        out["mean"] = round(statistics.fmean(values), 2)
    return out


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
) -> ShardScan:
    """Stream every tar once: counts and distributions for the summary, problems for --check
    (missing members, json keys, duplicate keys across shards, unsafe or oversized members,
    undecodable images) and the `first_n` samples in key order for the contact sheet.

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
            scan.bytes[url] = _size(url)
            for sample in shards.iter_tar_samples(url, tally):
                n += 1
                key = sample["__key__"]
                if key in seen:
                    where = "twice in " + name if seen[key] == name else f"in {seen[key]} and {name}"
                    scan.problems.append(f"duplicate key {key} ({where})")
                else:
                    seen[key] = name
                image = shards.image_of(sample)
                missing = [m for m, ok in (("image", image is not None), ("txt", "txt" in sample),
                                           ("json", "json" in sample)) if not ok]
                if missing:
                    scan.problems.append(f"{name}: sample {key} lacks {', '.join(missing)}")
                meta: dict[str, Any] = {}
                if "json" in sample:
                    try:
                        meta = json.loads(sample["json"])
                        if not isinstance(meta, dict):
                            raise ValueError("not an object")
                    except (ValueError, UnicodeDecodeError) as exc:
                        scan.problems.append(f"{name}: sample {key} has unreadable json ({exc})")
                        meta = {}
                    else:
                        lacking = [k for k in required if k not in meta]
                        if lacking:
                            scan.problems.append(f"{name}: sample {key} json lacks {', '.join(lacking)}")
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
                if first_n and (len(scan.first) < first_n or key < scan.first[-1][0]):
                    bisect.insort(scan.first, (key, data, caption), key=lambda s: s[0])
                    del scan.first[first_n:]
        except (tarfile.TarError, OSError, EOFError) as exc:
            scan.problems.append(f"{name}: unreadable tar after {n} samples ({type(exc).__name__}: {exc})")
        scan.counts[url] = n
        dropped = tally.as_dict()
        for reason, what in (("bad_member", "unsafe member name(s) or non-file member(s)"),
                             ("oversized_member", "member(s) over the size cap")):
            if dropped.get(f"{shards.READ_STAGE}:dropped.{reason}"):
                scan.problems.append(f"{name}: {dropped[f'{shards.READ_STAGE}:dropped.{reason}']} {what}")
    return scan


def check_manifest(target: Target, scan: ShardScan | None) -> list[str]:
    """manifest.json against the files: each shard's size, sha256 and sample count, the totals,
    and tars in the folder that the manifest does not list."""
    assert target.manifest is not None and target.root is not None
    try:
        doc = shards.read_manifest(target.manifest)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"manifest.json: {exc}"]
    problems = []
    listed = set()
    for entry in doc["shards"]:
        url = fsio.join(target.root, entry["name"])
        listed.add(url)
        if not _exists(url):
            problems.append(f"{entry['name']}: listed in manifest.json but missing")
            continue
        size = _size(url)
        if size != entry["bytes"]:
            problems.append(f"{entry['name']}: {size} bytes, manifest.json says {entry['bytes']}")
        sha = shards.sha256_of(url)
        if sha != entry["sha256"]:
            problems.append(f"{entry['name']}: sha256 {sha[:16]}…, manifest.json says {entry['sha256'][:16]}…")
        if scan is not None and url in scan.counts and scan.counts[url] != entry["samples"]:
            problems.append(f"{entry['name']}: {scan.counts[url]} samples, manifest.json says {entry['samples']}")
    totals = doc["totals"]
    if totals.get("shards") != len(doc["shards"]):
        problems.append(f"manifest.json: totals.shards={totals.get('shards')} but {len(doc['shards'])} shards listed")
    if totals.get("bytes") != sum(s["bytes"] for s in doc["shards"]):
        problems.append("manifest.json: shard byte counts do not add up to totals.bytes")
    counts = doc.get("counts") or {}
    if counts and target.stats and _exists(target.stats):
        try:
            stages = {s["name"]: {"in": s["in"], "out": s["out"], "dropped": s["dropped"]}
                      for s in fsio.read_json(target.stats).get("stages", [])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            stages = None  # stats.json's own problems are reported by check_stats
        if stages is not None and stages != counts:
            problems.append("manifest.json: counts disagree with stats.json stages")
    for url in target.tars:
        if url not in listed:
            problems.append(f"{_name(url)}: in the folder but not in manifest.json")
    return problems


def _img2dataset_stats(target: Target) -> dict[str, int] | None:
    """Sums over img2dataset's per-shard `NNNNN_stats.json` (successes, failures, ...)."""
    if not target.raw or target.root is None:
        return None
    totals: Counter[str] = Counter()
    for url in fsio.expand(fsio.join(target.root, "*_stats.json")):
        doc = fsio.read_json(url)
        for k in ("count", "successes", "failed_to_download", "failed_to_resize"):
            if isinstance(doc.get(k), int):
                totals[k] += doc[k]
    return dict(totals) or None


def summarize_shards(target: Target, check: bool = False, top: int = 30, first_n: int = 0,
                     progress: bool | None = None) -> tuple[dict[str, Any], list[str], ShardScan]:
    """(summary, problems, scan) for a shards target."""
    scan = scan_shards(target.tars, check=check, raw=target.raw, first_n=first_n, progress=progress)
    problems = list(scan.problems)
    stats_problems: list[str] = []
    stats_doc = _load_stats(target.stats, stats_problems) if target.stats else None
    problems += stats_problems
    if target.manifest is not None and check:
        problems += check_manifest(target, scan)
    samples = sum(scan.counts.values())
    if stats_doc is not None and stats_doc.get("job") == "curate" and target.manifest is not None:
        write = next((s for s in stats_doc.get("stages", []) if s.get("name") == "write"), None)
        if write is not None and write.get("out") != samples:
            problems.append(f"stats.json: stage 'write' out={write.get('out')} but the tars hold {samples} samples")
    per_shard = list(scan.counts.values())
    summary: dict[str, Any] = {
        "kind": KIND_SHARDS,
        "path": target.path,
        "format": "img2dataset" if target.raw else ("wit" if target.manifest else "webdataset"),
        "shards": len(target.tars),
        "samples": samples,
        "bytes": sum(scan.bytes.values()),
        "samples_per_shard": {"min": min(per_shard), "max": max(per_shard)} if per_shard else None,
        "image_width": _dist(scan.widths),
        "image_height": _dist(scan.heights),
        "bad_images": dict(sorted(scan.bad_images.items())),
        "caption_chars": _dist(scan.caption_chars, mean=True),
        "caption_words": _dist(scan.caption_words, mean=True),
        "languages": dict(sorted(scan.languages.items(), key=lambda kv: (-kv[1], kv[0]))),
        "queries": {"distinct": len(scan.queries), "top": _top(scan.queries, top)},
    }
    if stats_doc is not None:
        summary["stats"] = _stats_block(stats_doc, stats_problems)
    download = _img2dataset_stats(target)
    if download:
        summary["download"] = download
    return summary, problems, scan


def _top(counts: Counter[str], n: int) -> list[list[Any]]:
    """The n largest, ties broken by name so the order is the same on every run."""
    return [[q, c] for q, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


# --------------------------------------------------------------------------- harvest


def _parquet_rows(folder: str, expected: Any, what: str, problems: list[str]) -> int | None:
    """Rows over `folder/*.parquet` from footers only; schema problems are listed."""
    import fsspec
    import pyarrow.parquet as pq

    urls = fsio.expand(fsio.join(folder, "*.parquet"))
    if not urls:
        return None
    rows = 0
    for url in urls:
        try:
            with fsspec.open(url, "rb") as f:
                pf = pq.ParquetFile(f)
                validate(pf.schema_arrow, expected, f"{what} {_name(url)}")
                rows += pf.metadata.num_rows
        except SchemaError as exc:
            problems.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - a broken footer is a finding, not a crash
            problems.append(f"{what} {_name(url)}: unreadable ({exc})")
    return rows


def summarize_harvest(target: Target, top: int = 30) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """(summary, problems, query rows sorted by matches) for a harvest output folder."""
    from wit_pipeline.core import parquet_io

    assert target.root is not None
    problems: list[str] = []
    stats_problems: list[str] = []
    stats_doc = _load_stats(target.stats, stats_problems) if target.stats else None
    problems += stats_problems
    if stats_doc is None and target.stats is None:
        problems.append("stats.json: missing")
    candidates = _parquet_rows(fsio.join(target.root, "candidates"), CANDIDATES, "candidates", problems)
    selected = _parquet_rows(fsio.join(target.root, "selected"), SELECTED, "selected", problems)
    stages = {s.get("name"): s for s in (stats_doc or {}).get("stages", []) if isinstance(s, dict)}
    if "balance" in stages:
        for what, rows, side in (("candidates", candidates, "in"), ("selected", selected, "out")):
            if rows is not None and rows != stages["balance"].get(side):
                problems.append(f"{what}: {rows} rows but stats.json balance.{side}={stages['balance'].get(side)}")
    config = (stats_doc or {}).get("config") or {}
    t = config.get("t")
    rows: list[dict[str, Any]] = []
    qc_url = fsio.join(target.root, QUERY_COUNTS_FILE)
    if _exists(qc_url):
        try:
            table = parquet_io.read_table(qc_url, QUERY_COUNTS, "query_counts")
            rows = sorted(table.to_pylist(), key=lambda r: (-r["count"], r["query_id"]))
        except (SchemaError, OSError, ValueError) as exc:
            problems.append(str(exc))
    else:
        problems.append(f"{QUERY_COUNTS_FILE}: missing")
    balance = config.get("balance")
    for r in rows:
        if r["selected"] > r["count"]:
            problems.append(f"query {r['query']!r}: selected {r['selected']} > matched {r['count']}")
        if r["kept"] > r["selected"]:
            problems.append(f"query {r['query']!r}: kept {r['kept']} > selected {r['selected']}")
        if balance == "cap" and isinstance(t, int) and r["kept"] != min(r["count"], t):
            problems.append(f"query {r['query']!r}: --balance cap kept {r['kept']}, expected min({r['count']}, {t})")
    counts = [r["count"] for r in rows]
    kept = [r["selected"] for r in rows]
    before: dict[str, Any] = {"total": sum(counts), "max": max(counts, default=0)}
    after: dict[str, Any] = {"total": sum(kept), "max": max(kept, default=0),
                             "none_kept": sum(1 for k in kept if k == 0)}
    if isinstance(t, int):
        before["over_t"] = sum(1 for c in counts if c > t)  # queries balancing had to thin
        after["at_t"] = sum(1 for k in kept if k >= t)  # queries that reached the target
        after["over_t"] = sum(1 for k in kept if k > t)  # possible with --balance prob
    summary: dict[str, Any] = {
        "kind": KIND_HARVEST,
        "path": target.path,
        "candidates": candidates,
        "selected": selected,
        "t": t,
        "queries": {
            "matched": len(rows),
            "before": before,
            "after": after,
            "top": [[r["query"], r["count"], r["kept"], r["selected"]] for r in rows[:top]],
        },
    }
    if stats_doc is not None:
        summary["stats"] = _stats_block(stats_doc, stats_problems)
    return summary, problems, rows


def summarize_stats(target: Target) -> tuple[dict[str, Any], list[str]]:
    assert target.stats is not None
    problems: list[str] = []
    doc = _load_stats(target.stats, problems)
    summary = {"kind": KIND_STATS, "path": target.stats, "stats": _stats_block(doc, problems)}
    return summary, problems


# --------------------------------------------------------------------------- printing


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str], right: Iterable[int] = ()) -> list[str]:
    cells = [[str(c) for c in header]] + [[f"{c:,}" if isinstance(c, int) and not isinstance(c, bool) else str(c)
                                           for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    right = set(right)
    lines = []
    for j, r in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _fmt_dist(d: Mapping[str, Any] | None) -> str:
    if not d:
        return "-"
    s = f"{d['min']:,} / {d['median']:,} / {d['max']:,}"
    return s + (f"  (mean {d['mean']:,})" if "mean" in d else "")


def format_summary(summary: Mapping[str, Any]) -> str:
    """The summary as aligned text tables (what `wit inspect` prints without --json)."""
    out: list[str] = [f"{summary['kind']}: {summary['path']}", ""]
    fields: list[tuple[str, Any]] = []
    if summary["kind"] == KIND_SHARDS:
        sps = summary["samples_per_shard"]
        fields = [
            ("format", summary["format"]),
            ("shards", summary["shards"]),
            ("samples", summary["samples"]),
            ("bytes", summary["bytes"]),
            ("samples/shard min/max", f"{sps['min']:,} / {sps['max']:,}" if sps else "-"),
            ("image width min/median/max", _fmt_dist(summary["image_width"])),
            ("image height min/median/max", _fmt_dist(summary["image_height"])),
            ("caption chars min/median/max", _fmt_dist(summary["caption_chars"])),
            ("caption words min/median/max", _fmt_dist(summary["caption_words"])),
            ("languages", ", ".join(f"{k}={v:,}" for k, v in summary["languages"].items()) or "-"),
            ("distinct queries", summary["queries"]["distinct"]),
        ]
        if summary["bad_images"]:
            fields.append(("bad images", ", ".join(f"{k}={v}" for k, v in summary["bad_images"].items())))
        for k, v in (summary.get("download") or {}).items():
            fields.append((f"img2dataset {k}", v))
    elif summary["kind"] == KIND_HARVEST:
        q = summary["queries"]
        fields = [("candidates", summary["candidates"]), ("selected", summary["selected"]),
                  ("t (per-query target)", summary["t"]), ("queries matched", q["matched"])]
        fields += [(f"before balancing: {k}", v) for k, v in q["before"].items()]
        fields += [(f"after balancing: {k}", v) for k, v in q["after"].items()]
    out += _table([(k, "-" if v is None else v) for k, v in fields], ("", ""))[2:]
    stats = summary.get("stats")
    if stats:
        out += ["", "stats.json" + (f" ({stats['job']})" if stats.get("job") else "") + ": " + ("adds up" if stats["adds_up"] else "DOES NOT ADD UP")]
        rows = [(s["name"], s["in"], s["out"], ", ".join(f"{k}={v:,}" for k, v in s["dropped"].items()) or "-",
                 "ok" if s["ok"] else "MISMATCH") for s in stats["stages"]]
        out += _table(rows, ("stage", "in", "out", "dropped", "in=out+dropped"), right=(1, 2))
    top = summary.get("queries", {}).get("top")
    if top:
        out.append("")
        if summary["kind"] == KIND_HARVEST:
            out += _table(top, ("query", "matched", "kept", "selected"), right=(1, 2, 3))
        else:
            out += _table(top, ("query", "samples"), right=(1,))
    return "\n".join(out)


# --------------------------------------------------------------------------- PNGs


def _save_png(img: Any, url: str) -> None:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    fsio.write_bytes(url, buf.getvalue())


def histogram_image(summary: Mapping[str, Any], top: int) -> Any:
    """Samples per query (shards) or matched vs selected per query (harvest), top N."""
    rows = summary["queries"]["top"][:top]
    labels = [r[0] for r in rows]
    if summary["kind"] == KIND_HARVEST:
        t = summary.get("t")
        title = f"Top {len(rows)} queries: matches before vs after balancing" + (f" (t={t:,})" if t else "")
        series = [("matched (before)", [r[1] for r in rows], plots.BEFORE),
                  ("selected (after)", [r[3] for r in rows], plots.AFTER)]
    else:
        title = f"Top {len(rows)} of {summary['queries']['distinct']:,} queries by samples ({summary['samples']:,} samples)"
        series = [("samples", [r[1] for r in rows], plots.BEFORE)]
    marker = (f"t={summary['t']:,}", summary["t"]) if summary["kind"] == KIND_HARVEST and summary.get("t") else None
    return plots.bar_chart(title, labels, series, marker=marker)


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wit inspect",
        description="Summarise and check a stage's output: final or raw tar shards (folder, glob or one tar), "
        "a harvest output folder, or a stats.json.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("path", help="shards folder, tar glob, harvest folder or stats.json (local, gs://, ...)")
    p.add_argument("--check", action="store_true",
                   help="verify sha256/sizes/counts against manifest.json, members, json keys, duplicate keys, "
                   "image decoding, member names and stats.json; exit 1 listing every problem")
    p.add_argument("--contact-sheet", metavar="PNG", help="write a grid of the first --samples samples in key order")
    p.add_argument("--samples", type=int, default=48, help="samples on the contact sheet (default 48)")
    p.add_argument("--histogram", metavar="PNG", help="write a bar chart of samples per query (top --top)")
    p.add_argument("--top", type=int, default=30, help="queries in the summary and histogram (default 30)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def inspect_path(path: str, check: bool = False, top: int = 30, samples: int = 0,
                 progress: bool | None = None) -> tuple[dict[str, Any], list[str], list[tuple[str, bytes | None, str]]]:
    """(summary, problems, first samples in key order) for any PATH `wit inspect` takes.

    Problems are always collected; `check` adds the expensive ones (full image decodes,
    sha256 of every shard against manifest.json).
    """
    target = locate(path)
    if target.kind == KIND_SHARDS:
        summary, problems, scan = summarize_shards(target, check=check, top=top, first_n=samples, progress=progress)
        return summary, problems, scan.first
    if target.kind == KIND_HARVEST:
        summary, problems, _ = summarize_harvest(target, top=top)
        return summary, problems, []
    summary, problems = summarize_stats(target)
    return summary, problems, []


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.samples < 1 or args.top < 1:
        print("wit inspect: --samples and --top must be positive", file=sys.stderr)
        return 2
    try:
        target_kind = locate(args.path).kind
    except FileNotFoundError as exc:
        print(f"wit inspect: {exc}", file=sys.stderr)
        return 2
    if args.contact_sheet and target_kind != KIND_SHARDS:
        print(f"wit inspect: --contact-sheet needs tar shards, {args.path} is a {target_kind} output", file=sys.stderr)
        return 2
    if args.histogram and target_kind == KIND_STATS:
        print("wit inspect: --histogram needs shards or a harvest folder, not a stats.json", file=sys.stderr)
        return 2
    summary, problems, first = inspect_path(
        args.path, check=args.check, top=args.top, samples=args.samples if args.contact_sheet else 0,
        progress=False if args.no_progress else None)
    if args.contact_sheet:
        _save_png(plots.contact_sheet(first), args.contact_sheet)
    if args.histogram:
        _save_png(histogram_image(summary, args.top), args.histogram)
    if args.json:
        doc = dict(summary)
        if args.check:
            doc["check"] = {"ok": not problems, "problems": problems}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(format_summary(summary))
        if args.check:
            print()
            print(f"check: {len(problems)} problem(s)" if problems else "check: ok")
            for p in problems:
                print(f"  - {p}")
    sys.stdout.flush()
    for what, url in (("contact sheet", args.contact_sheet), ("histogram", args.histogram)):
        if url:
            print(f"wrote {what} {url}", file=sys.stderr)
    return 1 if args.check and problems else 0


if __name__ == "__main__":
    sys.exit(run())
