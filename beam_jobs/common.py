"""What every wit Beam job shares: the default runner, flags, counters as a Tally, the
counting adapter every record-handling DoFn goes through, the sharded writer, stats.json."""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn, TypeVar

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions
from apache_beam.utils import shared

from wit_pipeline.core import fsio
from wit_pipeline.core.stats import (
    ERROR,
    Drop,
    check_stages,
    counter_name,
    error_text,
    stages_from_counters,
    stats_document,
)

NAMESPACE = "wit"
DEAD_LETTER = "dead_letter"  # the tagged output of every Counted DoFn
T = TypeVar("T")


def make_pipeline(pipeline_args: list[str]) -> beam.Pipeline:
    """A Pipeline on FnApiRunner unless --runner says otherwise.

    Beam's default DirectRunner first tries to download a Prism binary; pinning FnApiRunner
    keeps local runs offline. `--direct_num_workers=N --direct_running_mode=multi_processing`
    still work and catch pickling mistakes that Dataflow would hit.
    """
    options = PipelineOptions(pipeline_args)
    # Workers unpickle DoFns that reference module-level names; keep the main session small.
    options.view_as(SetupOptions).save_main_session = False
    runner = options.view_as(StandardOptions).runner
    if runner is None:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return beam.Pipeline(runner=FnApiRunner(), options=options)
    return beam.Pipeline(options=options)


def reject_unknown_flags(parser: argparse.ArgumentParser, pipeline_args: list[str]) -> None:
    """Exit with a one-line usage error for anything left over that Beam would not parse: Beam
    only logs "Discarding unparseable args", so a misspelt --balanse, a single-dash `-t 5` or a
    stray value would run with the defaults."""
    try:
        _, unknown = _beam_parser().parse_known_args(pipeline_args)
    except _BadBeamOption as exc:
        parser.error(str(exc))
    if unknown:
        parser.error(f"unrecognised arguments: {' '.join(unknown)}")


class _BadBeamOption(Exception):
    pass


@functools.lru_cache(maxsize=1)
def _beam_parser() -> argparse.ArgumentParser:
    """A parser of every Beam pipeline option, built as PipelineOptions builds its own (no
    abbreviations), whose errors raise instead of printing Beam's usage and exiting."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    class Parser(_BeamArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise _BadBeamOption(message)

    parser = Parser(allow_abbrev=False, add_help=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)  # noqa: SLF001 - Beam's own hook for exactly this
    return parser


class BeamTally:
    """A `wit_pipeline.core.stats.Tally` backed by Beam counters; create it inside a DoFn."""

    def __init__(self) -> None:
        self._counters: dict[str, Any] = {}

    def inc(self, stage: str, field: str, n: int = 1) -> None:
        name = counter_name(stage, field)
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(NAMESPACE, name)
        counter.inc(n)

    def kept(self, stage: str, n: int = 1) -> None:
        self.inc(stage, "out", n)

    def dropped(self, stage: str, reason: str, n: int = 1) -> None:
        self.inc(stage, f"dropped.{reason}", n)


def counters_of(result: Any) -> dict[str, int]:
    """The wit counters of a finished pipeline (committed where the runner has them)."""
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    counters: dict[str, int] = {}
    for c in found:
        value = c.committed if c.committed is not None else c.attempted
        counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + int(value or 0)
    return counters


def write_stats(
    result: Any,
    output: str,
    order: Iterable[str],
    chained: Iterable[tuple[str, str]] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Build stats.json from the job's counters, check that nothing was lost, write it."""
    stages = stages_from_counters(counters_of(result), order)
    doc = stats_document(stages, **extra)
    try:
        check_stages(stages, chained)
    except ValueError as exc:  # still write what we have: it is the evidence
        doc["error"] = str(exc)
        fsio.write_json(fsio.join(output, "stats.json"), doc)
        raise
    fsio.write_json(fsio.join(output, "stats.json"), doc)
    logging.info("wrote %s", fsio.join(output, "stats.json"))
    return doc


def print_stages(doc: dict[str, Any]) -> None:
    """stats.json's stages, one line each: what a job prints when it is done."""
    width = max((len(s["name"]) for s in doc["stages"]), default=0)
    for stage in doc["stages"]:
        dropped = ", ".join(f"{k}={v}" for k, v in stage["dropped"].items()) or "-"
        print(f"{stage['name']:>{width}}: in={stage['in']:<8} out={stage['out']:<8} dropped: {dropped}")


class _Holder:
    """Weak-referenceable box: Shared keeps objects only while someone holds them."""

    def __init__(self, value: Any) -> None:
        self.value = value


# Shared holds its objects by weak reference (plus the one acquired last, process-wide), so
# a DoFn that kept only `.value` let the holder die and the next setup() build it again.
_HELD: dict[tuple[int, str], _Holder] = {}


def shared_load(handle: shared.Shared, tag: str, load: Callable[[], T]) -> T:
    """Build a heavy object (matcher, fastText model) once per worker process, however many
    DoFn instances and harness threads ask for it; it lives as long as the process."""
    holder = handle.acquire(lambda: _Holder(load()), tag=tag)
    _HELD[(id(handle), tag)] = holder
    return holder.value


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
