"""Summaries of what PATH holds, as dicts (for --json) and aligned text tables, and the
query histogram."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wit_pipeline import plots
from wit_pipeline.core import fsio, outputs
from wit_pipeline.core.schema import CANDIDATES, QUERY_COUNTS, SELECTED, SchemaError, validate
from wit_pipeline.inspect.check import _load_stats, _stats_block, check_final_folder, check_manifest, check_query_counts
from wit_pipeline.inspect.consent import format_consent
from wit_pipeline.inspect.locate import KIND_HARVEST, KIND_SHARDS, KIND_STATS, Target
from wit_pipeline.inspect.scan import ShardScan, _name, scan_shards


def _dist(values: Sequence[int | float], mean: bool = False) -> dict[str, Any] | None:
    """min / median (the lower middle value, so it is a real sample's) / max."""
    if not values:
        return None
    out: dict[str, Any] = {"min": min(values), "median": statistics.median_low(values), "max": max(values)}
    if mean:
        out["mean"] = round(statistics.fmean(values), 2)
    return out


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
    problems += check_final_folder(target)
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


def _parquet_rows(folder: str, expected: Any, what: str, problems: list[str],
                  only: set[str] | None = None) -> int | None:
    """Rows over `folder/*.parquet` (those named in `only`, when given) from footers only;
    schema problems are listed."""
    import pyarrow.parquet as pq

    urls = fsio.expand(fsio.join(folder, "*.parquet"))
    if only is not None:
        urls = [u for u in urls if _name(u) in only]
        missing = sorted(only - {_name(u) for u in urls})
        if missing:
            problems.append(f"{what}: {len(missing)} part(s) of {outputs.PARTS_LIST} missing, e.g. {missing[0]}")
    if not urls:
        return None
    rows = 0
    for url in urls:
        try:
            with fsio.open(url) as f:
                pf = pq.ParquetFile(f)
                validate(pf.schema_arrow, expected, f"{what} {_name(url)}")
                rows += pf.metadata.num_rows
        except SchemaError as exc:
            problems.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - a broken footer is a finding, not a crash
            problems.append(f"{what} {_name(url)}: unreadable ({exc})")
    return rows


def _run_parts(root: str, problems: list[str]) -> set[str] | None:
    """The parts this run's counts cover (parts.txt), or None for a folder without the list
    (an older run's): candidates/ may keep parts of files an earlier run read."""
    url = fsio.join(root, outputs.PARTS_LIST)
    if not fsio.exists(url):
        return None
    try:
        return set(fsio.read_text(url).split())
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{outputs.PARTS_LIST}: unreadable ({exc})")
        return None


def _query_rows(root: str, problems: list[str]) -> list[dict[str, Any]]:
    """query_counts.parquet's rows, most matched first ([] and a problem when unreadable)."""
    from wit_pipeline.core import parquet_io

    url = fsio.join(root, outputs.QUERY_COUNTS)
    if not fsio.exists(url):
        problems.append(f"{outputs.QUERY_COUNTS}: missing")
        return []
    try:
        table = parquet_io.read_table(url, QUERY_COUNTS, "query_counts")
    except (SchemaError, OSError, ValueError) as exc:
        problems.append(str(exc))
        return []
    return sorted(table.to_pylist(), key=lambda r: (-r["count"], r["query_id"]))


def summarize_harvest(target: Target, top: int = 30) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """(summary, problems, query rows sorted by matches) for a harvest output folder."""
    assert target.root is not None
    problems: list[str] = []
    stats_problems: list[str] = []
    stats_doc = _load_stats(target.stats, stats_problems) if target.stats else None
    problems += stats_problems
    if stats_doc is None and target.stats is None:
        problems.append("stats.json: missing")
    parts = _run_parts(target.root, problems)
    candidates = _parquet_rows(fsio.join(target.root, outputs.CANDIDATES), CANDIDATES, "candidates", problems, parts)
    selected = _parquet_rows(fsio.join(target.root, outputs.SELECTED), SELECTED, "selected", problems)
    stages = {s.get("name"): s for s in (stats_doc or {}).get("stages", []) if isinstance(s, dict)}
    # candidates/ holds each crawl file's matched pairs (before dedup across files)
    for what, rows, stage in (("candidates", candidates, "match"), ("selected", selected, "balance")):
        if stage in stages and rows is not None and rows != stages[stage].get("out"):
            problems.append(f"{what}: {rows} rows but stats.json {stage}.out={stages[stage].get('out')}")
    config = (stats_doc or {}).get("config") or {}
    t = config.get("t")
    rows = _query_rows(target.root, problems)
    problems += check_query_counts(rows, config.get("balance"), t, (stats_doc or {}).get("t_per_language"))
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
        out += ["", outputs.STATS + (f" ({stats['job']})" if stats.get("job") else "") + ": " + ("adds up" if stats["adds_up"] else "DOES NOT ADD UP")]
        rows = [(s["name"], s["in"], s["out"], ", ".join(f"{k}={v:,}" for k, v in s["dropped"].items()) or "-",
                 "ok" if s["ok"] else "MISMATCH") for s in stats["stages"]]
        out += _table(rows, ("stage", "in", "out", "dropped", "in=out+dropped"), right=(1, 2))
        if stats.get("consent"):
            out += ["", *format_consent(stats["consent"])]
    top = summary.get("queries", {}).get("top")
    if top:
        out.append("")
        if summary["kind"] == KIND_HARVEST:
            out += _table(top, ("query", "matched", "kept", "selected"), right=(1, 2, 3))
        else:
            out += _table(top, ("query", "samples"), right=(1,))
    return "\n".join(out)


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
