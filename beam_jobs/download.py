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

    wit download --input 'out/selected/*.parquet' --output out/raw --allow-private-hosts
    python -m beam_jobs.download --input ... --output ... --engine beam --runner DataflowRunner ...
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from beam_jobs.common import BeamTally, make_pipeline, reject_unknown_flags, write_stats
from wit_pipeline.core import fsio
from wit_pipeline.core.cli_help import HelpFormatter
from wit_pipeline.stages import download as dl


def part_name(path: str) -> str:
    """The output subfolder of one input file under the Beam engine: the file's stem."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name[: -len(".parquet")] if name.endswith(".parquet") else name


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "image_size": args.image_size,
        "resize_mode": args.resize_mode,
        "min_image_size": args.min_image_size,
        "max_aspect_ratio": args.max_aspect_ratio,
        "max_image_area": args.max_image_area,
        "retries": args.retries,
        "processes": args.processes,
        "threads": args.threads,
        "allow_private_hosts": args.allow_private_hosts,
        "egress_guard": not args.no_egress_guard,
        "timeout": args.timeout,
        "number_sample_per_shard": args.number_sample_per_shard,
    }


class DownloadFileFn(beam.DoFn):
    """Download one selected-pairs file into its own subfolder; counts become Beam counters."""

    def __init__(self, output: str, options: dict[str, Any]) -> None:
        self.output = output
        self.options = options

    def process(self, path: str) -> Iterator[str]:
        sub = fsio.join(self.output, part_name(path))
        doc = dl.download(path, sub, **self.options)
        tally = BeamTally()
        for stage in doc["stages"]:
            tally.inc(stage["name"], "in", stage["in"])
            tally.inc(stage["name"], "out", stage["out"])
            for reason, n in stage["dropped"].items():
                tally.dropped(stage["name"], reason, n)
        yield sub


def _run_beam(inputs: list[str], output: str, options: dict[str, Any], pipeline_args: list[str]) -> dict[str, Any]:
    names = [part_name(p) for p in inputs]
    if len(set(names)) != len(names):
        raise ValueError(f"--engine beam needs input files with distinct names (one subfolder each): {inputs}")
    if any(n.startswith("_") for n in names):
        raise ValueError(f"input file names must not start with '_' (reserved for img2dataset/wit): {inputs}")
    fsio.makedirs(output)
    pipeline = make_pipeline(pipeline_args)
    _ = (
        pipeline
        | "Files" >> beam.Create(inputs)
        | "Spread" >> beam.Reshuffle()
        | "Download" >> beam.ParDo(DownloadFileFn(output, options))
    )
    result = pipeline.run()
    result.wait_until_finish()
    return write_stats(result, output, [dl.STAGE], engine="beam", inputs=inputs, parts=sorted(names))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wit download",
        description="Download the harvest's selected pairs with img2dataset into raw webdataset shards "
        "(NNNNN.tar + .parquet + _stats.json), refusing unsafe hosts; rerun the same command to resume. "
        "--engine beam runs one img2dataset per selected-pairs file on Beam workers (Dataflow).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--input", required=True, nargs="+", help="selected-pairs parquet file(s), glob(s), or a harvest output folder")
    p.add_argument("--output", required=True, help="output folder (local, gs://, s3://); rerun to resume")
    p.add_argument("--engine", choices=("local", "beam"), default="local",
                   help="local: img2dataset's own processes; beam: one img2dataset per input file on Beam workers")
    p.add_argument("--image-size", type=int, default=256, help="resize target in pixels")
    p.add_argument("--resize-mode", default="keep_ratio",
                   choices=("no", "keep_ratio", "center_crop", "border", "keep_ratio_largest"),
                   help="img2dataset's resize mode (keep_ratio: the smaller side becomes --image-size)")
    p.add_argument("--min-image-size", type=int, default=64, help="drop images whose smaller side is below this")
    p.add_argument("--max-aspect-ratio", type=float, default=3.0, help="drop images more elongated than this")
    p.add_argument("--max-image-area", type=float, default=dl.DEFAULT_MAX_IMAGE_AREA,
                   help="pixel cap (decompression bombs)")
    p.add_argument("--retries", type=int, default=1, help="retries of a failed fetch")
    p.add_argument("--processes", type=int, default=1, help="img2dataset processes (per worker with --engine beam)")
    p.add_argument("--threads", type=int, default=32, help="fetching threads per process")
    p.add_argument("--timeout", type=int, default=10, help="seconds to connect and between bytes")
    p.add_argument("--number-sample-per-shard", type=int, default=10_000, help="samples per raw shard")
    p.add_argument(
        "--allow-private-hosts",
        action="store_true",
        help="also fetch from loopback addresses (the demo's and tests' servers; never on a crawl)",
    )
    p.add_argument(
        "--no-egress-guard",
        action="store_true",
        help="let img2dataset connect directly instead of through wit's loopback egress proxy, which "
        "checks the address of every fetch and redirect hop; only for workers that already sit behind "
        "an egress firewall blocking private, loopback and link-local destinations (the proxy also "
        "replaces any http(s)_proxy you configured)",
    )
    return p


def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, pipeline_args = parser.parse_known_args(argv)
    if args.engine == "local" and pipeline_args:
        parser.error(f"unrecognized arguments: {' '.join(pipeline_args)} (Beam options need --engine beam)")
    reject_unknown_flags(parser, pipeline_args)
    logging.getLogger().setLevel(logging.INFO)
    options = options_from_args(args)
    try:
        if args.engine == "local":
            doc = dl.download(args.input, args.output, **options)
        else:
            doc = _run_beam(dl.input_files(args.input), args.output, options, pipeline_args)
    except (OSError, ValueError) as exc:  # a wrong path or a file that is not selected pairs
        raise SystemExit(f"wit download: {type(exc).__name__}: {exc}") from exc
    stage = doc["stages"][0]
    print(f"download: {stage['in']} pairs in, {stage['out']} images saved, dropped {stage['dropped']}")
    print(f"output: {args.output} (webdataset shards; stats in {fsio.join(args.output, dl.STATS_FILE)})")
    if stage["in"] and not stage["out"]:
        print(f"wit download: no image was saved. {_hint(stage['dropped'])}")
        return 1
    return 0


def _hint(dropped: dict[str, int]) -> str:
    """What most likely went wrong when nothing was saved."""
    top = max(dropped, key=dropped.get, default="")
    if top in ("unsafe_host.loopback", "unsafe_host.localhost"):
        return "The images are on this machine: a demo or test server needs --allow-private-hosts."
    if top.startswith("failed_to_download.connection_refused"):
        return ("Nothing answered: is the server up? (the demo's generated web: "
                "wit serve <demo out>/web --port 8931)")
    return f"Most pairs ended as {top!r}: see stats.json and _dead_letter/."


if __name__ == "__main__":
    raise SystemExit(run())
