"""Chart geometry for the template's SVG macros: scales, ticks, bars and polylines, as plain
data. Pure functions of their inputs (the same numbers give the same SVG), aggregated before
they get here, so a chart has at most a few hundred elements whatever the run's size."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

DASHES = ("", "7 4", "2 3", "9 3 2 3")  # a series told apart without colour too
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
KEPT = "#59a14f"
WIDTH, HEIGHT = 640, 300
MARGIN = {"left": 64, "right": 16, "top": 16, "bottom": 44}


def compact(v: float) -> str:
    """1200 -> 1.2k, 3e6 -> 3M, 0.0005 -> 5e-4: tick labels."""
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:g}G"
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    if a == 0 or a >= 0.01:
        return f"{v:.4g}"
    return f"{v:.0e}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round ticks (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, v = [], start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(v, 12))
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten covering [lo, hi] (lo > 0)."""
    a, b = math.floor(math.log10(max(lo, 1e-300))), math.ceil(math.log10(max(hi, lo * 10)))
    return [10.0 ** k for k in range(a, max(b, a + 1) + 1)]


class _Scale:
    def __init__(self, lo: float, hi: float, a: float, b: float, log: bool) -> None:
        self.log = log
        self.lo, self.hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        self.a, self.b = a, b

    def __call__(self, v: float) -> float:
        t = (math.log10(v) if self.log else v) - self.lo
        span = (self.hi - self.lo) or 1.0
        return round(self.a + (self.b - self.a) * t / span, 1)


def line_chart(series: Sequence[tuple[str, Sequence[tuple[float, float]]]], *, xlabel: str, ylabel: str,
               xlog: bool = False, ylog: bool = False, hline: tuple[str, float] | None = None,
               width: int = WIDTH, height: int = HEIGHT) -> dict[str, Any]:
    """Polylines for (name, [(x, y), ...]) series; `hline` (label, y) marks a level such as t."""
    pts = [(x, y) for _, s in series for x, y in s if (not xlog or x > 0) and (not ylog or y > 0)]
    if hline is not None and (not ylog or hline[1] > 0):
        pts.append((pts[0][0] if pts else 1, hline[1]))
    if not pts:
        return {"empty": True, "width": width, "height": height}
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    xt = log_ticks(min(xs), max(xs)) if xlog else nice_ticks(min(xs), max(xs))
    yt = log_ticks(min(ys), max(ys)) if ylog else nice_ticks(min(0.0, min(ys)), max(ys))
    x0, x1 = MARGIN["left"], width - MARGIN["right"]
    y0, y1 = height - MARGIN["bottom"], MARGIN["top"]
    sx, sy = _Scale(xt[0], xt[-1], x0, x1, xlog), _Scale(yt[0], yt[-1], y0, y1, ylog)
    lines = []
    for i, (name, s) in enumerate(series):
        kept = [(x, y) for x, y in s if (not xlog or x > 0) and (not ylog or y > 0)]
        lines.append({"name": name, "colour": PALETTE[i % len(PALETTE)], "dash": DASHES[i % len(DASHES)],
                      "points": " ".join(f"{sx(x)},{sy(y)}" for x, y in kept),
                      "dot": len(kept) == 1 and {"x": sx(kept[0][0]), "y": sy(kept[0][1])}})
    out = {"empty": False, "width": width, "height": height, "box": {"x0": x0, "x1": x1, "y0": y0, "y1": y1},
           "xticks": [{"at": sx(v), "label": compact(v)} for v in xt],
           "yticks": [{"at": sy(v), "label": compact(v)} for v in yt],
           "xlabel": xlabel, "ylabel": ylabel, "lines": lines, "hline": None}
    if hline is not None and (not ylog or hline[1] > 0):
        out["hline"] = {"label": hline[0], "y": sy(hline[1])}
    return out


def histogram(values: Sequence[float] | np.ndarray, *, xlabel: str, bins: int = 30, width: int = WIDTH,
              height: int = 240) -> dict[str, Any]:
    """Bars of a histogram of `values` (numpy's bin edges)."""
    v = np.asarray(values, np.float64)
    if not len(v):
        return {"empty": True, "width": width, "height": height}
    lo, hi = float(v.min()), float(v.max())
    counts, edges = np.histogram(v, bins=bins if hi > lo else 1, range=(lo, hi if hi > lo else lo + 1))
    xt = nice_ticks(lo, hi if hi > lo else lo + 1)
    yt = nice_ticks(0, float(counts.max()))
    x0, x1 = MARGIN["left"], width - MARGIN["right"]
    y0, y1 = height - MARGIN["bottom"], MARGIN["top"]
    sx, sy = _Scale(min(xt[0], edges[0]), max(xt[-1], edges[-1]), x0, x1, False), _Scale(0, yt[-1], y0, y1, False)
    bars = [{"x": sx(edges[i]), "w": max(0.5, round(sx(edges[i + 1]) - sx(edges[i]) - 1, 1)), "y": sy(c),
             "h": round(y0 - sy(c), 1), "title": f"{edges[i]:.4g}–{edges[i + 1]:.4g}: {int(c):,}"}
            for i, c in enumerate(counts) if c]
    return {"empty": False, "width": width, "height": height, "box": {"x0": x0, "x1": x1, "y0": y0, "y1": y1},
            "xticks": [{"at": sx(t), "label": compact(t)} for t in xt if sx.lo <= t <= sx.hi],
            "yticks": [{"at": sy(t), "label": compact(t)} for t in yt], "xlabel": xlabel, "ylabel": "samples",
            "bars": bars, "colour": PALETTE[0]}


def hbars(items: Sequence[tuple[str, int]], *, width: int = WIDTH, row: int = 20) -> dict[str, Any]:
    """One horizontal bar per (label, value), longest first as given."""
    label_w = 140
    vmax = max([v for _, v in items] + [1])
    bar_w = width - label_w - 80
    rows = [{"label": label, "value": v, "y": i * row, "w": round(bar_w * v / vmax, 1)} for i, (label, v) in enumerate(items)]
    return {"width": width, "height": max(row, len(items) * row), "label_w": label_w, "row": row, "rows": rows,
            "colour": PALETTE[0]}


def funnel_chart(rows: Sequence[dict[str, Any]], *, width: int = 900, row: int = 26) -> dict[str, Any]:
    """A bar per stage: its length the records in (linear, or log when counts span more than two
    orders of magnitude), split into kept and each drop reason by their share."""
    rows = [r for r in rows if not r["side"]]
    ends = [f"{r['in']:,} → {r['out']:,}" + (" pages" if r.get("unit_change") else "") for r in rows]
    label_w, right = 190, int(min(320, 16 + 6.6 * max(map(len, ends), default=0)))
    ins = [r["in"] for r in rows if r["in"] > 0]
    log = bool(ins) and max(ins) / min(ins) > 100
    vmax = max(ins + [1])
    bar_w = width - label_w - right
    drop_colours = PALETTE[:4] + PALETTE[5:]  # all but the kept green; a row's reasons in order of count
    out_rows = []
    for i, (r, end) in enumerate(zip(rows, ends)):
        n = r["in"]
        length = 0.0 if n <= 0 else bar_w * ((math.log10(n) + 1) / (math.log10(vmax) + 1) if log else n / vmax)
        x = float(label_w)
        segs = []
        parts = [("kept", r["out"], KEPT)] + [(d["reason"], d["count"], drop_colours[j % len(drop_colours)])
                                              for j, d in enumerate(r["dropped"])]
        for name, value, col in parts:
            w = length * value / n if n else 0.0
            if w > 0:
                segs.append({"x": round(x, 1), "w": round(w, 1), "colour": col,
                             "title": f"{r['job']} · {r['stage']} · {name}: {value:,} ({value / n:.1%} of {n:,})"})
            x += w
        out_rows.append({"label": f"{r['job']} · {r['stage']}", "y": i * row, "unit_change": r.get("unit_change", False),
                         "segs": segs, "end": round(label_w + length, 1), "end_label": end})
    return {"width": width, "height": max(row, len(rows) * row) + 4, "row": row, "rows": out_rows, "log": log, "kept": KEPT}
