"""Matches per query before and after balancing (MetaCLIP's head/tail picture), aggregated so
a 500k-entry allowlist gives a few hundred points: the rank-frequency curves are sampled at
log-spaced ranks, which is all a log-log plot can show anyway."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

CURVE_POINTS = 240
TOP_QUERIES = 20
MAX_LANGUAGES = 8  # curves per chart; the rest are listed in the table


def rank_curve(counts: np.ndarray, points: int = CURVE_POINTS) -> list[tuple[int, int]]:
    """(rank, count) of the counts sorted in decreasing order, at up to `points` log-spaced ranks
    (the first and last kept); zero counts are left out (a log axis has no 0)."""
    values = np.sort(np.asarray(counts, np.int64))[::-1]
    values = values[values > 0]
    if not len(values):
        return []
    ranks = np.unique(np.round(np.geomspace(1, len(values), min(points, len(values)))).astype(np.int64))
    return [(int(r), int(values[r - 1])) for r in ranks]


def tail(count: np.ndarray, selected: np.ndarray, t: int) -> dict[str, Any]:
    """The tail: entries with fewer than t matches, which balancing keeps whole. Their share of
    entries, and of matches before (MetaCLIP's p) and after balancing."""
    in_tail = count < t
    total, total_after = int(count.sum()), int(selected.sum())
    return {
        "t": t,
        "entries": int(len(count)),
        "matched_entries": int((count > 0).sum()),
        "tail_entries": int((in_tail & (count > 0)).sum()),
        "matches": total,
        "selected": total_after,
        "share_before": float(count[in_tail].sum() / total) if total else 0.0,
        "share_after": float(selected[in_tail].sum() / total_after) if total_after else 0.0,
    }


def balancing(table: pa.Table, t: int | None, t_per_language: dict[str, int] | None = None,
              p: float | None = None) -> dict[str, Any]:
    """Curves, top queries and tail shares; per language when query_counts names each query's
    language (an allowlist folder's run), each with its own t (stats.json's `t_per_language`)
    and MetaCLIP 2's p, the tail share every language's t was chosen to match."""
    count = table.column("count").to_numpy().astype(np.int64)
    selected = table.column("selected").to_numpy().astype(np.int64)
    kept = table.column("kept").to_numpy().astype(np.int64)
    names = table.column("query").to_pylist()
    languages = table.column("language").to_pylist() if "language" in table.column_names else None
    if languages is not None and all(x is None for x in languages):
        languages = None  # one allowlist for every language
    t = int(t or 0)
    t_per_language = t_per_language or {}
    top = np.lexsort((np.arange(len(count)), -count))[:TOP_QUERIES]
    out: dict[str, Any] = {
        "t": t,
        "p": p,
        "before": rank_curve(count),
        "after": rank_curve(selected),
        "kept": rank_curve(kept),
        "tail": tail(count, selected, t) if t else None,
        "top": [{"query": names[i], "language": languages[i] if languages else None, "count": int(count[i]),
                 "selected": int(selected[i]), "kept": int(kept[i])} for i in top],
        "languages": [],
    }
    if languages is not None:
        langs = np.array(["?" if x is None else str(x) for x in languages])
        per = []
        for lang in sorted(set(langs.tolist())):
            mask = langs == lang
            lt = int(t_per_language.get(lang, t))
            per.append({"language": lang, "t": lt, "before": rank_curve(count[mask]), "after": rank_curve(selected[mask]),
                        **tail(count[mask], selected[mask], lt)})
        per.sort(key=lambda d: (-d["matches"], d["language"]))
        out["languages"] = per
    return out
