"""--check: stats.json adds up (through core.stats.check_stages, the one accounting rule),
manifest.json matches the files, and a final-shards folder has its manifest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wit_pipeline import shards
from wit_pipeline.core import fsio
from wit_pipeline.core.stats import check_stages
from wit_pipeline.inspect.consent import consent_block
from wit_pipeline.inspect.locate import STATS, Target
from wit_pipeline.inspect.scan import ShardScan, _name
from wit_pipeline.stages.balance import cap_kept


def stage_problem(stage: Any) -> str | None:
    """Why one stats.json stage entry is wrong (check_stages' words), or None."""
    try:
        check_stages([stage])
    except ValueError as exc:
        return str(exc)
    except (KeyError, TypeError, AttributeError):
        name = stage.get("name", "?") if isinstance(stage, dict) else "?"
        return f"stage {name!r} lacks integer in/out/dropped"
    return None


def check_stats(doc: Any, what: str = STATS) -> list[str]:
    """Every problem with a stats document: its shape, a recorded job error, and each stage
    that does not add up (all of them, not just the first)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), list):
        return [f"{what}: no 'stages' list"]
    problems = [f"{what}: the job recorded an error: {doc['error']}"] if doc.get("error") else []
    problems += [f"{what}: {p}" for p in map(stage_problem, doc["stages"]) if p]
    return problems


def stage_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The stage table with an `ok` flag per stage (in == out + sum(dropped))."""
    return [{"name": s.get("name"), "in": s.get("in"), "out": s.get("out"), "dropped": dict(s.get("dropped") or {}),
             "ok": stage_problem(s) is None} for s in doc.get("stages", [])]


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
    block = {"job": doc.get("job"), "stages": stage_rows(doc), "adds_up": not problems}
    if consent := consent_block(doc):
        block["consent"] = consent
    return block


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
        if not fsio.exists(url):
            problems.append(f"{entry['name']}: listed in manifest.json but missing")
            continue
        size = fsio.size(url)
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
    if counts and target.stats and fsio.exists(target.stats):
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


def check_final_folder(target: Target) -> list[str]:
    """A folder of final shards (wit-NNNNNN.tar) without manifest.json is a curate that was
    killed or is still running: curate writes the manifest last, once every shard is in."""
    if target.root is None or target.raw or target.manifest is not None:
        return []
    if not any(shards.FINAL_SHARD.fullmatch(_name(url)) for url in target.tars):
        return []
    return [f"manifest.json: missing beside {len(target.tars)} final shard(s): an unfinished wit curate (rerun it)"]


def check_query_counts(rows: Sequence[Mapping[str, Any]], balance: str | None, t: Any,
                       t_per_language: Mapping[str, int] | None = None) -> list[str]:
    """query_counts.parquet against the balancing rule: nothing selected beyond its matches,
    and under `--balance cap` each query keeps exactly balance.cap_kept(count, t), t being its
    language's when the harvest balanced per language (stats.json: t_per_language)."""
    problems = []
    default_t = t
    for r in rows:
        t = (t_per_language or {}).get(r.get("language"), default_t)
        if r["selected"] > r["count"]:
            problems.append(f"query {r['query']!r}: selected {r['selected']} > matched {r['count']}")
        if r["kept"] > r["selected"]:
            problems.append(f"query {r['query']!r}: kept {r['kept']} > selected {r['selected']}")
        if balance == "cap" and isinstance(t, int) and r["kept"] != cap_kept(r["count"], t):
            problems.append(f"query {r['query']!r}: --balance cap kept {r['kept']}, expected min({r['count']}, {t})")
    return problems
