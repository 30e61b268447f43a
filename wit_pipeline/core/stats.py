"""Accounting: every record that enters a stage leaves it kept or dropped with a reason.

Pure code counts through a `Tally` (a plain dict here, Beam counters in `beam_jobs`), so
the same functions are tested with exact counter dicts and run unchanged in a pipeline.
stats.json has the shape
    {"stages": [{"name": "extract", "in": 120, "out": 97, "dropped": {"no_alt": 20, "bad_url": 3}}, ...], ...}
and every stage satisfies in == out + sum(dropped).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

IN, OUT, DROPPED = "in", "out", "dropped"


@dataclass(frozen=True)
class Drop:
    """What a stage's pure function returns for a record it does not keep: the reason is a
    counter name (`<stage>:dropped.<reason>`), so keep it short and snake_case."""

    reason: str


ERROR = "error"  # the drop reason of a record whose handling raised: it also gets a dead letter


def error_text(exc: BaseException, limit: int = 2000) -> str:
    """One line naming an exception, capped: a dead letter must stay small whatever raised."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Tally(Protocol):
    """Where pure code reports counts: `inc(stage, "in")`, `kept(stage)`, `dropped(stage, reason)`."""

    def inc(self, stage: str, field: str, n: int = 1) -> None: ...

    def kept(self, stage: str, n: int = 1) -> None: ...

    def dropped(self, stage: str, reason: str, n: int = 1) -> None: ...


class TallyBase:
    """kept() and dropped() in terms of inc(): a Tally implements inc() only."""

    def inc(self, stage: str, field: str, n: int = 1) -> None:
        raise NotImplementedError

    def kept(self, stage: str, n: int = 1) -> None:
        self.inc(stage, OUT, n)

    def dropped(self, stage: str, reason: str, n: int = 1) -> None:
        self.inc(stage, f"{DROPPED}.{reason}", n)


def counter_name(stage: str, field: str) -> str:
    return f"{stage}:{field}"


def parse_counter_name(name: str) -> tuple[str, str]:
    stage, _, field = name.partition(":")
    return stage, field


class DictTally(TallyBase):
    """An in-memory Tally (tests, local tools); `counts` maps counter names to ints."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def inc(self, stage: str, field: str, n: int = 1) -> None:
        self.counts[counter_name(stage, field)] += n

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


def stages_from_counters(counters: Mapping[str, int], order: Iterable[str]) -> list[dict[str, Any]]:
    """Stage entries for stats.json, in pipeline order, from 'stage:field' counters."""
    by_stage: dict[str, dict[str, Any]] = {}
    for name in order:
        by_stage[name] = {"name": name, IN: 0, OUT: 0, DROPPED: {}}
    for cname, value in counters.items():
        stage, field = parse_counter_name(cname)
        if stage not in by_stage:
            by_stage[stage] = {"name": stage, IN: 0, OUT: 0, DROPPED: {}}
        entry = by_stage[stage]
        if field in (IN, OUT):
            entry[field] += int(value)
        elif field.startswith(DROPPED + "."):
            reason = field[len(DROPPED) + 1 :]
            entry[DROPPED][reason] = entry[DROPPED].get(reason, 0) + int(value)
    for entry in by_stage.values():
        entry[DROPPED] = dict(sorted(entry[DROPPED].items()))
    return list(by_stage.values())


def check_stages(stages: list[dict[str, Any]], chained: Iterable[tuple[str, str]] = ()) -> None:
    """Raise ValueError unless in == out + sum(dropped) per stage and each chained pair
    (upstream, downstream) has upstream.out == downstream.in."""
    by_name = {s["name"]: s for s in stages}
    for s in stages:
        lost = s[IN] - s[OUT] - sum(s[DROPPED].values())
        if lost:
            raise ValueError(f"stage {s['name']!r}: in={s[IN]} out={s[OUT]} dropped={s[DROPPED]} leaves {lost} unaccounted")
    for up, down in chained:
        if by_name[up][OUT] != by_name[down][IN]:
            raise ValueError(f"{up}.out={by_name[up][OUT]} but {down}.in={by_name[down][IN]}")


def stats_document(stages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"stages": stages, **extra}

