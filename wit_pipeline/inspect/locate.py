"""What PATH is: final or raw tar shards, a harvest output folder, or a stats.json."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from wit_pipeline import shards
from wit_pipeline.core import fsio, outputs

STATS = outputs.STATS
KIND_SHARDS, KIND_HARVEST, KIND_STATS = "shards", "harvest", "stats"


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


def _sibling(url: str, name: str) -> str:
    return fsio.join(url.rsplit("/", 1)[0], name) if "/" in url else name


def _is_raw(tars: Sequence[str]) -> bool:
    """img2dataset writes `NNNNN.parquet` (and `NNNNN_stats.json`) beside each `NNNNN.tar`."""
    for tar in tars[:1]:
        stem = tar.rsplit("/", 1)[-1][: -len(".tar")]
        if fsio.exists(_sibling(tar, f"{stem}.parquet")) or fsio.exists(_sibling(tar, f"{stem}_stats.json")):
            return True
    return False


def locate(path: str) -> Target:
    """Classify PATH; raise FileNotFoundError when there is nothing to inspect there."""
    path = path.rstrip("/") or path
    if "://" not in path:  # local globs list absolute paths: the folder's own must match them
        path = os.path.abspath(path)
    if any(c in path for c in "*?["):
        tars = [u for u in fsio.expand(path) if u.endswith(".tar")]
        if not tars:
            raise FileNotFoundError(f"no .tar files match {path!r}")
        return Target(KIND_SHARDS, path, tars=tars, raw=_is_raw(tars))
    if not fsio.exists(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    if not fsio.isdir(path):
        if path.endswith(".tar"):
            return Target(KIND_SHARDS, path, tars=[path], raw=_is_raw([path]))
        if path.endswith(".json"):
            return Target(KIND_STATS, path, stats=path)
        raise FileNotFoundError(f"{path}: not a folder, a .tar or a stats .json")
    stats = fsio.join(path, STATS)
    stats = stats if fsio.exists(stats) else None
    manifest = fsio.join(path, shards.MANIFEST)
    tars = fsio.expand(fsio.join(path, "*.tar"))
    if fsio.exists(manifest):
        return Target(KIND_SHARDS, path, root=path, tars=tars, manifest=manifest, stats=stats)
    if tars:
        return Target(KIND_SHARDS, path, root=path, tars=tars, stats=stats, raw=_is_raw(tars))
    if fsio.exists(fsio.join(path, outputs.QUERY_COUNTS)) or fsio.isdir(fsio.join(path, outputs.CANDIDATES)):
        return Target(KIND_HARVEST, path, root=path, stats=stats)
    if stats:
        return Target(KIND_STATS, path, root=path, stats=stats)
    raise FileNotFoundError(f"{path}: no tar shards, manifest.json, harvest output or stats.json")
