"""`wit download`: selected pairs -> raw webdataset shards through img2dataset.

Two engines:
- `--engine local` (default) runs img2dataset once over all input files with its own
  multiprocessing distributor (`--processes` x `--threads`) into `--output`.
- `--engine beam` runs a Beam pipeline in which each element is one selected-pairs file;
  a worker runs img2dataset (the same `wit_pipeline.stages.download.download`, resumable) over it
  into its own subfolder `--output/<file stem>/`, and reports its counts as Beam counters;
  stats.json in `--output` sums them.

Why one file per worker rather than a Beam port of img2dataset's distributors: its pyspark
and ray distributors re-shard the whole input on the driver (feather files on a shared
filesystem) and map its Downloader over shards. Mapping over input files instead (what
img2dataset's author suggested for a "pure mapper", rom1504/img2dataset#20) needs no driver
pass and no shared scratch, keeps every subfolder independently resumable by the same rule,
and a retried bundle just resumes its folder. Parallelism is the number of input files:
have the harvest write at least as many selected files as workers. Keys are deduplicated
within a file; the harvest writes each key once, so there are none across files.

    wit download --input 'out/selected/*.parquet' --output out/raw --allow-loopback
    python -m beam_jobs.download --input ... --output ... --engine beam --runner DataflowRunner ...
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import asdict
from typing import Any

import apache_beam as beam

from beam_jobs.common import BeamTally, is_dry_run, make_pipeline, reject_unknown_flags, say_dry_run, write_stats
from beam_jobs.consent import AskOrigins
from beam_jobs.consent import summary as consent_summary
from beam_jobs.transforms import DEAD_LETTER, Counted
from wit_pipeline.core import config_flags, fsio, outputs
from wit_pipeline.core.faults import environment_fault
from wit_pipeline.core.lock import OutputLocked, output_lock
from wit_pipeline.stages import download as dl
from wit_pipeline.stages.consent import CACHE_FILE

FILES_STAGE = "download_files"  # one record per selected-pairs file; its pairs count in "download"
FILES_DEAD_LETTER = outputs.DOWNLOAD_FILES_DEAD_LETTERS


def part_name(path: str) -> str:
    """The output subfolder of one input file under the Beam engine: the file's stem."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name[: -len(".parquet")] if name.endswith(".parquet") else name


class DownloadFile:
    """Download one selected-pairs file into its own subfolder; its pair counts become Beam
    counters of the `download` stage. Run through Counted: a file whose download raises (a
    file that is not selected pairs, a full disk) is that file's dead letter, not the job's end."""

    def __init__(self, output: str, config: dl.DownloadConfig) -> None:
        self.output = output
        self.config = config

    def __call__(self, path: str, shared_consent: str | None = None) -> str:
        sub = fsio.join(self.output, part_name(path))
        doc = dl.download(path, sub, self.config, lock=False, shared_consent=shared_consent)  # the launcher holds the lock
        tally = BeamTally()
        for stage in doc["stages"]:
            tally.inc(stage["name"], "in", stage["in"])
            tally.kept(stage["name"], stage["out"])
            for reason, n in stage["dropped"].items():
                tally.dropped(stage["name"], reason, n)
        return sub


def write_dead_letters(rows: list[dict[str, str]], output: str) -> None:
    """The files whose download raised, one parquet (none when there are none)."""
    outputs.write_dead_letters(fsio.join(output, FILES_DEAD_LETTER), rows, skip_empty=True)


def _run_beam(inputs: list[str], output: str, config: dl.DownloadConfig, pipeline_args: list[str]) -> dict[str, Any] | None:
    names = [part_name(p) for p in inputs]
    if len(set(names)) != len(names):
        raise ValueError(f"--engine beam needs input files with distinct names (one subfolder each): {inputs}")
    if any(n.startswith("_") for n in names):
        raise ValueError(f"input file names must not start with '_' (reserved for img2dataset/wit): {inputs}")
    dry_run = is_dry_run(pipeline_args)
    if dry_run:
        return _run_pipeline(inputs, names, output, config, pipeline_args, dry_run)
    dl.check_output(output)
    with output_lock(output, dl.STAGE):
        dl.claim_output(output)
        return _run_pipeline(inputs, names, output, config, pipeline_args, dry_run)


def _run_pipeline(inputs: list[str], names: list[str], output: str, config: dl.DownloadConfig,
                  pipeline_args: list[str], dry_run: bool) -> dict[str, Any] | None:
    pipeline = make_pipeline(pipeline_args)
    files = pipeline | "Files" >> beam.Create(inputs)
    now = time.time()
    answers = files | "Consent" >> AskOrigins(output, config, now)  # each origin asked once, by one worker
    done = (
        files
        | "Spread" >> beam.Reshuffle()
        | "Download" >> beam.ParDo(Counted(FILES_STAGE, DownloadFile(output, config), source=str),
                                   beam.pvalue.AsSingleton(answers)).with_outputs(DEAD_LETTER, main="done")
    )
    _ = done[DEAD_LETTER] | "DeadLetters" >> beam.combiners.ToList() | "WriteDeadLetters" >> beam.Map(
        write_dead_letters, output)
    result = pipeline.run()
    result.wait_until_finish()
    if dry_run:
        return None
    return write_stats(result, output, [FILES_STAGE, dl.STAGE], engine="beam", inputs=inputs, parts=sorted(names),
                       config=asdict(config), consent=consent_summary(fsio.join(output, CACHE_FILE), config, now))


def build_parser() -> argparse.ArgumentParser:
    p = config_flags.WitParser(
        prog="wit download",
        description="Download the harvest's selected pairs with img2dataset into raw webdataset shards "
        "(NNNNN.tar + .parquet + _stats.json), refusing unsafe hosts; rerun the same command to resume. "
        "--engine beam runs one img2dataset per selected-pairs file on Beam workers (Dataflow).",
    )
    p.add_argument("--input", required=True, action="append",
                   help="selected-pairs parquet files: a file, a glob, or a harvest output folder (repeat for several)")
    p.add_argument("--output", required=True,
                   help="output folder (local, gs://, s3://): new, empty, or an earlier download's; rerun to resume")
    p.add_argument("--engine", choices=("local", "beam"), default="local",
                   help="local: img2dataset's own processes; beam: one img2dataset per input file on Beam workers")
    config_flags.add_config_flags(p, dl.DownloadConfig)
    return p


def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, pipeline_args = parser.parse_known_args(argv)
    if args.engine == "local" and pipeline_args:
        first = pipeline_args[0]
        hint = ("Beam options need --engine beam" if first.startswith("--")
                else "" if first.startswith("-") else "repeat --input for each input")
        parser.error(f"unrecognised arguments: {' '.join(pipeline_args)}" + (f" ({hint})" if hint else ""))
    reject_unknown_flags(parser, pipeline_args)
    try:
        config = config_flags.config_from_args(dl.DownloadConfig, args)
    except ValueError as exc:
        parser.error(str(exc))
    logging.getLogger().setLevel(logging.INFO)
    try:
        if args.engine == "local":
            doc = dl.download(args.input, args.output, config)
        else:
            doc = _run_beam(dl.input_files(args.input), args.output, config, pipeline_args)
    except (OutputLocked, dl.ShardUnreadable) as exc:  # another run is writing there; a shard's store failed
        print(f"wit download: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # a wrong path, a file that is not selected pairs, someone else's folder
        if line := environment_fault(exc, args.output):  # a full disk, a read-only filesystem, a denied permission
            print(f"wit download: {line}", file=sys.stderr)
            return 1
        print(f"wit download: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if doc is None:
        say_dry_run("download", args.output)
        return 0
    stage = {s["name"]: s for s in doc["stages"]}[dl.STAGE]
    print(f"download: {stage['in']} pairs in, {stage['out']} images saved, dropped {stage['dropped']}")
    failed_files = {s["name"]: s for s in doc["stages"]}.get(FILES_STAGE, {}).get("dropped", {})
    if failed_files:
        print(f"wit download: {sum(failed_files.values())} input file(s) failed: see {fsio.join(args.output, FILES_DEAD_LETTER)}")
    print(f"output: {args.output} (webdataset shards; stats in {fsio.join(args.output, dl.STATS_FILE)})")
    if stage["in"] and not stage["out"]:
        print(f"wit download: no image was saved. {_hint(stage['dropped'])}")
        return 1
    return 0


def _hint(dropped: dict[str, int]) -> str:
    """What most likely went wrong when nothing was saved."""
    top = max(dropped, key=dropped.get, default="")
    if top in ("unsafe_host.loopback", "unsafe_host.localhost"):
        return "The images are on this machine: a demo or test server needs --allow-loopback."
    if top.startswith("failed_to_download.connection_refused"):
        return ("Nothing answered: is the server up? (the demo's generated web: "
                "wit serve <demo out>/web --port 8931)")
    return f"Most pairs ended as {top!r}: see stats.json and _dead_letter/."


if __name__ == "__main__":
    raise SystemExit(run())
