"""What every wit Beam job shares: the default runner, flags, counters as a Tally, heavy
objects once per worker, stats.json. The shared transforms are in `beam_jobs.transforms`."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, TypeVar

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions
from apache_beam.utils import shared

from wit_pipeline.core import outputs
from wit_pipeline.core.stats import TallyBase, counter_name, stages_from_counters

NAMESPACE = "wit"
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


def is_dry_run(pipeline_args: list[str]) -> bool:
    """Whether `--dry_run=True` (Beam's TestOptions) asks only to translate the graph: the
    runner builds the job and submits nothing, so the launcher must neither touch the output
    (gs:// without credentials) nor read the stats.json a run would have written."""
    from apache_beam.options.pipeline_options import TestOptions

    return bool(PipelineOptions(pipeline_args).view_as(TestOptions).dry_run)


def say_dry_run(job: str, output: str) -> None:
    print(f"wit {job}: dry run: the graph was translated, nothing ran and nothing was written to {output}")


def reject_unknown_flags(parser: argparse.ArgumentParser, pipeline_args: list[str]) -> None:
    """Exit with a one-line usage error for anything left over that Beam would not parse: Beam
    only logs "Discarding unparseable args", so a misspelt --balanse, a single-dash `-t 5` or a
    stray value would run with the defaults."""
    try:
        known, unknown = _beam_parser().parse_known_args(pipeline_args)
    except _BadBeamOption as exc:
        parser.error(str(exc))
    if unknown:
        parser.error(f"unrecognised arguments: {' '.join(unknown)}")
    if known.runner is not None and (problem := runner_problem(known.runner)):
        parser.error(problem)


def runner_problem(name: str) -> str | None:
    """None when Beam can make a runner of `name` (as `create_runner` resolves it: a known
    name, case-insensitive, `Runner` optional, or a dotted class path), else why not: Beam
    itself would fail only when the pipeline runs, with a traceback."""
    import importlib.util

    from apache_beam.runners.runner import _RUNNER_MAP

    path = _RUNNER_MAP.get(name.lower(), _RUNNER_MAP.get(name.lower() + "runner", name))
    if "." not in path:
        known = sorted(p.rsplit(".", 1)[-1] for p in _RUNNER_MAP.values() if "experimental" not in p)
        return f"--runner {name!r} is not a Beam runner (one of: {', '.join(known)}, or a module.Class path)"
    module = path.rsplit(".", 1)[0]
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        extra = " (Dataflow needs the gcp extra: pip install -e '.[gcp]')" if "dataflow" in path.lower() else ""
        return f"--runner {name!r}: module {module} is not installed{extra}"
    return None


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


class BeamTally(TallyBase):
    """A `wit_pipeline.core.stats.Tally` backed by Beam counters; create it inside a DoFn."""

    def __init__(self) -> None:
        self._counters: dict[str, Any] = {}

    def inc(self, stage: str, field: str, n: int = 1) -> None:
        name = counter_name(stage, field)
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(NAMESPACE, name)
        counter.inc(n)


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
    """stats.json of the job's counters (`outputs.write_stats`: checked, written, raising
    after writing if something was lost)."""
    return outputs.write_stats(output, stages_from_counters(counters_of(result), order), chained, **extra)


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
