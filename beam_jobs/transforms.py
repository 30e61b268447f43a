"""The transforms every wit Beam job builds on: `Counted`, the one way a record-handling DoFn
runs a stage's pure function; `WriteShards`, the sharded writer; `CapPerQuery`, cap balancing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam

from beam_jobs.common import BeamTally
from wit_pipeline.core.stats import ERROR, Drop, error_text

DEAD_LETTER = "dead_letter"  # the tagged output of every Counted DoFn


def dead_letter(stage: str, source: str, error: str) -> dict[str, str]:
    """A row of schema.DEAD_LETTER."""
    return {"stage": stage, "source": source, "error": error}


def _no_source(element: Any) -> str:
    return "?"


class Counted(beam.DoFn):
    """The one way a job runs a stage's pure per-record function (datatrove's BaseFilter
    counting, once for all): `<stage>:in` per element, then `out` for a value, or
    `dropped.<reason>` for a `Drop(reason)`. A record whose handling raises costs only
    itself: `dropped.error` and a dead letter (stage, source(element), error) on the
    DEAD_LETTER output; the bundle, its file and the job go on.

    `fn(element, *side_inputs)` is given directly, or built per worker by `make()` in
    setup (for functions that hold a model loaded through `shared_load`). Side inputs
    given to ParDo reach `fn` after the element.
    """

    def __init__(self, stage: str, fn: Callable[..., Any] | None = None, *,
                 make: Callable[[], Callable[..., Any]] | None = None,
                 source: Callable[[Any], str] = _no_source) -> None:
        if (fn is None) == (make is None):
            raise ValueError("Counted takes exactly one of fn and make")
        self.stage, self._fn, self._make, self._source = stage, fn, make, source

    def setup(self) -> None:
        self.tally = BeamTally()
        if self._make is not None:
            self._fn = self._make()

    def process(self, element: Any, *side) -> Iterator[Any]:  # *side unannotated: else Beam checks side inputs as one tuple
        self.tally.inc(self.stage, "in")
        try:
            result = self._fn(element, *side)
        except Exception as exc:  # one record's failure is its own: see the class docstring
            self.tally.dropped(self.stage, ERROR)
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, dead_letter(self.stage, _safe_source(self._source, element), error_text(exc)))
            return
        if isinstance(result, Drop):
            self.tally.dropped(self.stage, result.reason)
            return
        self.tally.kept(self.stage)
        yield result


def _safe_source(source: Callable[[Any], str], element: Any) -> str:
    try:
        return str(source(element))[:2000]
    except Exception:  # the element may be what is broken
        return "?"


class WriteShards(beam.PTransform):
    """(shard, row) pairs -> one file per shard, TFDS BeamWriter style: every shard in
    `range(num_shards)` is written (empty ones too, when `num_shards` is given) by
    `write(shard, rows) -> dict`, which writes under a temporary name and renames (see
    `fsio.atomic_open`) and sorts its rows, so the bytes depend only on the rows; the
    PCollection out holds what each `write` returned (a manifest entry)."""

    def __init__(self, write: Callable[[int, list[Any]], Any], num_shards: int | None = None) -> None:
        super().__init__()
        self.write, self.num_shards = write, num_shards

    def expand(self, keyed: beam.PCollection) -> beam.PCollection:
        write = self.write
        if self.num_shards is not None:
            empty = keyed.pipeline | "AllShards" >> beam.Create([(i, None) for i in range(self.num_shards)])
            keyed = (keyed, empty) | "WithEmpty" >> beam.Flatten()

        def write_group(group: tuple[int, Iterable[Any]]) -> Any:
            shard, rows = group
            return write(shard, [r for r in rows if r is not None])

        return keyed | "GroupShards" >> beam.GroupByKey() | "Write" >> beam.Map(write_group)


class CapPerQuery(beam.PTransform):
    """Cap balancing (`wit_pipeline.stages.balance`; `select_cap` is the same rule on a list).

    In:  (query_id: int, key: str), with `seed` given: the rank is `cap_rank(key, query_id, seed)`;
         or (query_id: int, (rank: str, key: str)) with that rank precomputed, `seed=None`.
    Out: (key: str, query_id: int) for every pair a query keeps: its `t` smallest (rank, key).
         A key that several queries keep comes once per query; a query with fewer than t
         pairs keeps them all.
    Both sides are typed, so each shuffle uses deterministic coders (varint, utf-8
    strings); ranks are fixed-width hex, never 64-bit ints that Beam would pickle.
    """

    def __init__(self, t: int, seed: int | None = None) -> None:
        super().__init__()
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise ValueError(f"CapPerQuery: t must be a positive int, got {t!r}")
        self.t, self.seed = t, seed

    def expand(self, pairs: beam.PCollection) -> beam.PCollection:
        return (
            pairs
            | "Rank" >> beam.Map(_cap_ranked, self.seed).with_output_types(tuple[int, tuple[str, str]])
            | "SmallestRanks" >> beam.combiners.Top.SmallestPerKey(self.t)
            | "KeptPairs" >> beam.FlatMap(_cap_kept_pairs).with_output_types(tuple[str, int])
        )


def _cap_ranked(pair: tuple[int, Any], seed: int | None) -> tuple[int, tuple[str, str]]:
    from wit_pipeline.stages.balance import cap_order

    query_id, value = pair
    if isinstance(value, str):
        if seed is None:
            raise TypeError("CapPerQuery: (query_id, key) elements need a seed to rank them")
        return int(query_id), cap_order(value, int(query_id), seed)
    rank, key = value
    return int(query_id), (str(rank), str(key))


def _cap_kept_pairs(query_top: tuple[int, list[tuple[str, str]]]) -> Iterator[tuple[str, int]]:
    query_id, top = query_top
    for _, key in top:
        yield key, query_id
