"""The report's data, gathered section by section, and the page: one Jinja2 template
(templates/report.html.j2) with inline CSS and SVG, images as data: URIs, and a
Content-Security-Policy that lets the page load nothing at all."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jinja2
import numpy as np

from wit_pipeline import __version__
from wit_pipeline.core import fsio, outputs
from wit_pipeline.image import blocklist
from wit_pipeline.image.blocklist import BLOCKLISTED, Blocklist
from wit_pipeline.report import charts, examples, shardscan
from wit_pipeline.report.balancing import MAX_LANGUAGES, balancing
from wit_pipeline.report.collect import Job, Run, collect, funnel
from wit_pipeline.report.examples import never_shown
from wit_pipeline.stages import curate

TRAIN_SERIES = (("loss", "loss"), ("lr", "learning rate"), ("temperature", "temperature"), ("samples_per_s", "samples/s"))
MAX_LOG_POINTS = 400
MAX_SHARD_ROWS = 2000
MAX_INPUTS = 200  # input files listed per job (a crawl has ~90k WAT files)
TOP_LANGUAGES = 15
# Stages whose drops leave no record behind (counted only).
COUNTS_ONLY = {"harvest": {"read", "extract", "filter", "match"}}


def _note(job: str, stage: str, reason: str, decoded: int | None) -> str:
    """Why a drop reason has no examples on the page."""
    if never_shown(reason):
        return "never shown: a site opted out or is blocklisted, so its records are only counted"
    if stage in COUNTS_ONLY.get(job, set()):
        return f"{job} keeps no record of these, only their count"
    if job == "curate" and decoded is not None and stage not in ("read",):
        return f"none among the {decoded:,} dropped samples the report decoded"
    return "no record of these found in the folder"


def _examples(run: Run, seed: int, final: shardscan.Final | None,
              notes: list[str]) -> tuple[dict[str, examples.Examples], int | None]:
    """(job -> (stage, reason) -> example records, how many of curate's drops were decoded);
    what the examples leave out and why goes to `notes`."""
    out: dict[str, examples.Examples] = {}
    names = run.query_counts.column("query").to_pylist() if run.query_counts is not None else []
    decoded = None
    for kind, job in run.jobs.items():
        found: examples.Examples = {}
        if kind == "harvest":
            found.update(examples.harvest_examples(job.folder, names, seed, run.problems))
        elif kind == "download":
            found.update(examples.download_examples(job.folder, seed, run.problems))
        elif kind == "curate" and final is not None and not final.complete:
            run.problems.append("curate's drops are not shown: telling them apart needs every final shard")
        elif kind == "curate" and final is not None:
            raw = _raw_tars(run)
            read, write = job.stage("read"), job.stage("write")
            n_dropped = (read["in"] - write["out"]) if read and write else len(final.keys)
            show, blocked = _curate_blocklist(job, notes)
            rebalance = job.stage("rebalance")
            drops, decoded = shardscan.curate_drops(raw, final, job.config, n_dropped, seed, show, run.problems,
                                                    rebalanced=bool(rebalance and rebalance["dropped"]), blocked=blocked)
            found.update(drops)
        for key, rows in examples.dead_letters(job.folder, run.problems).items():
            found.setdefault(key, rows)
        out[kind] = found
    return out, decoded


def _curate_blocklist(job: Job, notes: list[str]) -> tuple[bool, Blocklist | None]:
    """(whether curate's dropped images may be shown, its blocklist). Where curate dropped
    blocklisted (or opted-out) images, the report finds them again with curate's own blocklist;
    without it, it cannot tell them from the other drops, and shows none of curate's dropped images."""
    if not any(never_shown(r) for s in job.stages for r in s["dropped"]):
        return True, None
    url = job.config.get("blocklist")
    if isinstance(url, str) and not any(never_shown(r) and r != BLOCKLISTED for s in job.stages for r in s["dropped"]):
        try:
            return True, blocklist.load(url)
        except (OSError, ValueError) as exc:
            notes.append(f"Curate's blocklist {url} cannot be read ({exc}).")
    notes.append("Curate dropped blocklisted or opted-out images, which the report cannot tell apart from its other "
                 "drops here: none of curate's dropped images is shown.")
    return False, None


def _raw_tars(run: Run) -> list[str]:
    """The raw shards curate read (complete ones, as curate lists them): the download folder of
    this run, else curate's --input."""
    sources = [[run.jobs["download"].folder]] if "download" in run.jobs else []
    sources.append([str(i) for i in run.jobs["curate"].config.get("input") or []])
    for patterns in sources:
        try:
            tars = curate.expand_inputs(patterns)[0]
        except (OSError, ValueError) as exc:
            run.problems.append(f"raw shards {patterns} cannot be listed ({exc})")
            continue
        if tars:
            return tars
    run.problems.append("curate's raw shards (its --input) are not here: its drops have no examples")
    return []


def _stride(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    if len(rows) <= n:
        return rows
    idx = np.unique(np.linspace(0, len(rows) - 1, n).round().astype(int))
    return [rows[i] for i in idx]


def _training(run: Run) -> dict[str, Any] | None:
    if run.train is None:
        return None
    log = _stride(sorted(run.log, key=lambda r: r["step"]), MAX_LOG_POINTS)
    plots = []
    for field, label in TRAIN_SERIES:
        pts = [(r["step"], float(r[field])) for r in log if isinstance(r.get(field), (int, float)) and np.isfinite(r[field])]
        if pts:
            plots.append({"title": label, "chart": charts.line_chart([(label, pts)], xlabel="step", ylabel=label, height=220)})
    decon = run.jobs["curate"].stage("decontaminate") if "curate" in run.jobs else None
    return {"folder": run.train, "plots": plots, "steps": len(run.log), "metrics": run.metrics,
            "near_eval": decon["dropped"].get("near_eval", 0) if decon else None,
            "max_distance": run.jobs["curate"].config.get("max_distance") if decon else None}


def _provenance(run: Run) -> list[dict[str, Any]]:
    out = []
    for kind, job in run.jobs.items():
        doc = job.doc or {}
        cfg = job.config
        inputs = doc.get("inputs") if isinstance(doc.get("inputs"), list) else cfg.get("input")
        if kind == "harvest":
            parts = fsio.join(job.folder, outputs.PARTS_LIST)
            if fsio.exists(parts):
                inputs = [line for line in fsio.read_text(parts).splitlines() if line.strip()]
        inputs = [str(i) for i in inputs] if isinstance(inputs, (list, tuple)) else ([str(inputs)] if inputs else [])
        out.append({"job": kind, "folder": job.folder, "seed": doc.get("seed", cfg.get("seed")),
                    "inputs": inputs[:MAX_INPUTS], "more_inputs": max(0, len(inputs) - MAX_INPUTS),
                    "config": json.dumps(cfg, indent=2, sort_keys=True, default=str) if cfg else None})
    return out


def _guarded(what: str, problems: list[str], fn: Callable[..., Any], *args: Any, default: Any = None) -> Any:
    """fn(*args), or `default` with the error at the top of the page: input nobody foresaw costs
    one section, never the page."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - a report shows what it could read
        problems.append(f"the {what} could not be built from this folder ({type(exc).__name__}: {str(exc)[:300]})")
        return default


def _drop_groups(fun: dict[str, Any], found: dict[str, examples.Examples], decoded: int | None) -> list[dict[str, Any]]:
    """Per stage: the reasons with examples, the others grouped by why they have none, dead letters."""
    drops = []
    for r in fun["rows"]:
        group: dict[str, Any] = {"job": r["job"], "stage": r["stage"], "shown": [], "quiet": {}}
        for d in r["dropped"]:
            rows = [] if never_shown(d["reason"]) else found.get(r["job"], {}).get((r["stage"], d["reason"]), [])
            if rows:
                group["shown"].append({**d, "examples": rows})
            else:
                group["quiet"].setdefault(_note(r["job"], r["stage"], d["reason"], decoded), []).append(d)
        group["quiet"] = sorted(group["quiet"].items())
        group["dead"] = found.get(r["job"], {}).get((r["stage"], "dead letters"), [])
        if group["shown"] or group["quiet"] or group["dead"]:
            drops.append(group)
    return drops


def _balancing(run: Run) -> dict[str, Any]:
    harvest = run.jobs["harvest"]
    doc = harvest.doc or {}
    t = harvest.config.get("t")
    assert run.query_counts is not None
    bal = balancing(run.query_counts, t if isinstance(t, int) else None,
                    doc.get("t_per_language") if isinstance(doc.get("t_per_language"), dict) else None,
                    doc.get("p") if isinstance(doc.get("p"), (int, float)) else None)
    series = [("before balancing", bal["before"]), ("after: selected pairs holding it", bal["after"]),
              ("after: kept by the entry itself", bal["kept"])]
    hl = (f"t = {bal['t']:,}", bal["t"]) if bal["t"] else None
    bal["chart"] = charts.line_chart(series, xlabel="query rank", ylabel="matches", xlog=True, ylog=True, hline=hl)
    if len(bal["languages"]) > 1:
        langs = bal["languages"][:MAX_LANGUAGES]
        bal["lang_charts"] = [
            {"title": title, "chart": charts.line_chart([(lang["language"], lang[which]) for lang in langs],
                                                        xlabel="query rank", ylabel="matches", xlog=True, ylog=True)}
            for which, title in (("before", "before balancing"), ("after", "after balancing"))]
    return bal


def _distributions(final: shardscan.Final) -> dict[str, Any]:
    langs = final.languages.most_common()
    top = langs[:TOP_LANGUAGES] + ([("other", sum(n for _, n in langs[TOP_LANGUAGES:]))] if len(langs) > TOP_LANGUAGES else [])
    return {
        "samples": len(final.keys),
        "languages": charts.hbars(top),
        "chars": charts.histogram(final.chars, xlabel="caption length (characters)"),
        "width": charts.histogram(final.width, xlabel="image width (pixels)"),
        "height": charts.histogram(final.height, xlabel="image height (pixels)"),
    }


def build(root: str, seed: int = 0) -> dict[str, Any]:
    """Everything the template shows, for the run folder `root`."""
    run = collect(root)
    fun = funnel(run)
    final = None
    curate_job = run.jobs.get("curate")
    if curate_job is not None and run.manifest is not None:
        final = _guarded("final shards' section", run.problems, shardscan.read_final, curate_job.folder, run.manifest,
                         seed, run.problems)
    notes: list[str] = []
    found, decoded = _guarded("examples", run.problems, _examples, run, seed, final, notes, default=({}, None))
    ctx: dict[str, Any] = {"root": run.root, "version": __version__, "seed": seed, "funnel": fun,
                           "funnel_chart": charts.funnel_chart(fun["rows"]) if fun["rows"] else None,
                           "drops": _drop_groups(fun, found, decoded), "decoded": decoded, "drop_notes": notes}
    if run.query_counts is not None:
        bal = _guarded("balancing section", run.problems, _balancing, run)
        if bal is not None:
            ctx["balancing"] = bal
    if final is not None and final.keys:
        ctx["distributions"] = _guarded("distributions", run.problems, _distributions, final)
        ctx["sheet"] = final.sheet
    ctx["training"] = _guarded("training section", run.problems, _training, run)
    ctx["provenance"] = _guarded("provenance section", run.problems, _provenance, run, default=[])
    if run.manifest is not None:
        entries = run.manifest.get("shards", [])
        ctx["manifest"] = {"shards": entries[:MAX_SHARD_ROWS], "more": max(0, len(entries) - MAX_SHARD_ROWS),
                           "totals": run.manifest.get("totals", {})}
    ctx["problems"] = run.problems
    return ctx


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("wit_pipeline.report", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    filters: dict[str, Callable[[Any], str]] = {
        "num": lambda v: "" if v is None else f"{v:,}",
        "pct": lambda v: "" if v is None else f"{v:.1%}",
        "fixed": lambda v: "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)),
    }
    env.filters.update(filters)
    return env


def render(ctx: dict[str, Any]) -> str:
    return _environment().get_template("report.html.j2").render(**ctx)


def write_report(root: str, out: str, seed: int = 0) -> dict[str, Any]:
    """Render the report of `root` into `out` (temp name + rename); returns the context."""
    ctx = build(root, seed)
    fsio.write_bytes(out, render(ctx).encode("utf-8"))
    return ctx
