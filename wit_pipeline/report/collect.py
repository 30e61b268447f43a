"""What a run folder holds, read once through fsspec: every stage's stats.json, the harvest's
query counts, the manifest, the training log and metrics. Nothing here raises on bad input:
a file that cannot be read becomes a line in `Run.problems` and its section is left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from wit_pipeline import shards
from wit_pipeline.core import fsio, outputs, parquet_io
from wit_pipeline.core.schema import QUERY_COUNTS, SchemaError, validate
from wit_pipeline.stages import curate
from wit_pipeline.stages.harvest import outputs as harvest_outputs

LOG = "log.jsonl"
METRICS = "metrics.json"
FLOW = ("build-queries", "harvest", "download", "curate")  # the order jobs feed each other
# Stages of one job whose out feeds the next stage's in (a job's other stages, such as
# harvest's `read` of crawl records into pages, or curate's `eval_images`, stand beside the chain).
CHAINS: dict[str, tuple[tuple[str, str], ...]] = {"harvest": tuple(harvest_outputs.CHAINED), "curate": tuple(curate.CHAINED)}
# Between jobs: (upstream job, its last stage) feeds (downstream job, its first stage).
JOB_LINKS = ((("harvest", "balance"), ("download", "download")), (("download", "download"), ("curate", "read")))


@dataclass
class Job:
    """One stage folder with a stats.json (harvest, download, curate, ...)."""

    kind: str
    folder: str
    doc: dict[str, Any] | None = None  # stats.json, when it parsed and has the expected shape

    @property
    def stages(self) -> list[dict[str, Any]]:
        return list(self.doc["stages"]) if self.doc else []

    def stage(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.stages if s["name"] == name), None)

    @property
    def config(self) -> dict[str, Any]:
        cfg = (self.doc or {}).get("config")
        return cfg if isinstance(cfg, dict) else {}


@dataclass
class Run:
    root: str
    problems: list[str] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)  # kind -> job, in FLOW order
    train: str | None = None  # the folder with log.jsonl / metrics.json
    query_counts: pa.Table | None = None
    manifest: dict[str, Any] | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None


def _short(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _job_kind(doc: Any, names: list[str]) -> str | None:
    """Which job wrote a stats.json (its `job` field; a download's has one stage, `download`),
    or, when the file does not parse, which job's files lie beside it."""
    if isinstance(doc, dict):
        if isinstance(doc.get("job"), str):
            return doc["job"]
        stages = doc.get("stages")
        if isinstance(stages, list) and any(isinstance(s, dict) and s.get("name") == "download" for s in stages):
            return "download"
    if outputs.MANIFEST in names:
        return "curate"
    if outputs.QUERY_COUNTS in names or outputs.CANDIDATES in names:
        return "harvest"
    if any(n.endswith("_stats.json") for n in names):
        return "download"
    return None


def _valid_stats(doc: Any) -> str | None:
    """Why a parsed stats.json is not the documented shape, or None."""
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), list):
        return "has no list of stages"
    for s in doc["stages"]:
        if not (isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("in"), int)
                and isinstance(s.get("out"), int) and isinstance(s.get("dropped"), dict)
                and all(isinstance(v, int) for v in s["dropped"].values())):
            return f"stage entry {str(s)[:80]!r} is not {{name, in, out, dropped}}"
    return None


def _folders(root: str) -> list[str]:
    """The run folder itself and its subfolders (a demo's harvest/, raw/, shards/, train/)."""
    subs = [u for u in fsio.ls(root) if fsio.isdir(u)]
    return [root, *subs]


def collect(root: str) -> Run:
    """Read what `root` holds; problems are recorded, never raised (except a missing root)."""
    root = root.rstrip("/") or root
    if not fsio.isdir(root):
        raise FileNotFoundError(f"{root}: no such folder")
    run = Run(root=root)
    for folder in _folders(root):
        names = fsio.names(folder)
        if LOG in names or METRICS in names:
            run.train = run.train or folder
        if outputs.STATS not in names:
            continue
        url = fsio.join(folder, outputs.STATS)
        try:
            doc: Any = fsio.read_json(url)
        except (OSError, ValueError) as exc:
            doc, why = None, f"cannot be read ({_short(exc)})"
        else:
            why = _valid_stats(doc)
        kind = _job_kind(doc, names) or "unknown"
        if why is not None:
            run.problems.append(f"{url} {why}: the {kind} stages are left out of the funnel")
            doc = None
        elif isinstance(doc.get("error"), str):  # the job wrote its counts although they do not add up
            run.problems.append(f"{url} records an error: {doc['error'][:300]}")
        if kind in run.jobs:
            run.problems.append(f"{url}: a second {kind} folder in the run; only {run.jobs[kind].folder} is shown")
            continue
        run.jobs[kind] = Job(kind, folder, doc)
    run.jobs = dict(sorted(run.jobs.items(), key=lambda kv: FLOW.index(kv[0]) if kv[0] in FLOW else len(FLOW)))
    if not run.jobs and run.train is None:
        run.problems.append(f"{root}: no stats.json, manifest.json or training log here or in its subfolders")
    harvest = run.jobs.get("harvest")
    if harvest is not None:
        run.query_counts = _read_query_counts(fsio.join(harvest.folder, outputs.QUERY_COUNTS), run.problems)
    final = run.jobs.get("curate")
    if final is not None:
        try:
            run.manifest = shards.read_manifest(final.folder)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            run.problems.append(f"{fsio.join(final.folder, outputs.MANIFEST)} cannot be read ({_short(exc)})")
    if run.train is not None:
        run.log = _read_log(fsio.join(run.train, LOG), run.problems)
        murl = fsio.join(run.train, METRICS)
        if fsio.exists(murl):
            try:
                run.metrics = fsio.read_json(murl)
            except (OSError, ValueError) as exc:
                run.problems.append(f"{murl} cannot be read ({_short(exc)})")
    return run


def _read_query_counts(url: str, problems: list[str]) -> pa.Table | None:
    if not fsio.exists(url):
        return None
    try:
        table = parquet_io.read_parquet(url)
        validate(table, QUERY_COUNTS, url)
        return table
    except (OSError, ValueError, SchemaError, pa.ArrowException) as exc:
        problems.append(f"{url} cannot be read ({_short(exc)}): no balancing section")
        return None


def _read_log(url: str, problems: list[str]) -> list[dict[str, Any]]:
    """The training log's steps; a line that does not parse (a run killed mid-write) is skipped
    and counted as a problem."""
    if not fsio.exists(url):
        return []
    rows, bad = [], 0
    try:
        text = fsio.read_text(url)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{url} cannot be read ({_short(exc)})")
        return []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
        else:
            bad += 1
    if bad:
        problems.append(f"{url}: {bad} line(s) are not a step's JSON and are left out")
    return rows


# ---------------------------------------------------------------- the funnel


def funnel(run: Run) -> dict[str, Any]:
    """Every job's stages in flow order with each drop reason's count and share, and the
    checks: in == out + sum(dropped) per stage, out == in along each chain and between jobs."""
    rows, checks = [], []
    for job in run.jobs.values():
        chained = {b for _, b in CHAINS.get(job.kind, ())} | {a for a, _ in CHAINS.get(job.kind, ())}
        for i, s in enumerate(job.stages):
            dropped = sorted(s["dropped"].items(), key=lambda kv: (-kv[1], kv[0]))
            lost = s["in"] - s["out"] - sum(s["dropped"].values())
            rows.append({
                "job": job.kind, "stage": s["name"], "in": s["in"], "out": s["out"],
                "dropped": [{"reason": r, "count": n, "share": n / s["in"] if s["in"] else 0.0} for r, n in dropped],
                "balanced": lost == 0, "lost": lost,
                # beside the chain, e.g. curate's eval_images; a job's first stage (harvest's read of
                # crawl records into pages) starts the funnel in its own unit
                "side": bool(CHAINS.get(job.kind)) and s["name"] not in chained and i > 0,
                "unit_change": bool(CHAINS.get(job.kind)) and s["name"] not in chained and i == 0,
            })
            checks.append({"what": f"{job.kind} · {s['name']}: in = out + dropped",
                           "detail": f"{s['in']:,} = {s['out']:,} + {sum(s['dropped'].values()):,}", "ok": lost == 0})
        for a, b in CHAINS.get(job.kind, ()):
            sa, sb = job.stage(a), job.stage(b)
            if sa and sb:
                checks.append({"what": f"{job.kind}: {a}.out = {b}.in", "detail": f"{sa['out']:,} vs {sb['in']:,}",
                               "ok": sa["out"] == sb["in"]})
    for (ja, sa_name), (jb, sb_name) in JOB_LINKS:
        if ja in run.jobs and jb in run.jobs:
            sa, sb = run.jobs[ja].stage(sa_name), run.jobs[jb].stage(sb_name)
            if sa and sb:
                checks.append({"what": f"{ja}.{sa_name}.out = {jb}.{sb_name}.in", "detail": f"{sa['out']:,} vs {sb['in']:,}",
                               "ok": sa["out"] == sb["in"]})
    failed = [c for c in checks if not c["ok"]]
    for c in failed:
        run.problems.append(f"the counts do not add up: {c['what']} ({c['detail']})")
    return {"rows": rows, "checks": checks, "ok": not failed}
