"""`wit <stage> ...`: one entrypoint for every stage.

Each stage lives in its own module with a `run(argv) -> int | None` that parses its own
options (Beam jobs take Beam's pipeline options too). Modules are imported only when their
stage runs, so `wit inspect` does not pay for importing torch or Beam.
"""

from __future__ import annotations

import importlib
import os
import sys

# name -> (module, one-line help). Order is the order of the flow.
STAGES: dict[str, tuple[str, str]] = {
    "demo": ("wit_pipeline.demo", "run every stage end to end on a generated crawl served from loopback"),
    "gen-crawl": ("wit_pipeline.synthetic.generate", "generate a seeded small web: WARC + WAT files, images, allowlist"),
    "serve": ("wit_pipeline.synthetic.server", "serve a generated crawl's images over loopback HTTP"),
    "build-queries": ("beam_jobs.build_queries", "Beam: Wikipedia dump + pageviews + WordNet -> query allowlist TSV"),
    "harvest": ("beam_jobs.harvest", "Beam: crawl WAT/WARC -> candidates, query counts, balanced selected pairs"),
    "download": ("beam_jobs.download", "img2dataset over the selected pairs -> raw webdataset shards"),
    "curate": ("beam_jobs.curate", "Beam: pHash, near-dup removal, decontamination, final WebDataset shards"),
    "inspect": ("wit_pipeline.inspect", "summarise and check shards; contact sheets and query histograms"),
    "train": ("train.train", "train CLIP on WebDataset shards (torchrun for several GPUs)"),
    "eval": ("train.evaluate", "zero-shot classification and retrieval recall of a checkpoint"),
    "report": ("wit_pipeline.report", "one self-contained HTML page about a run: funnel, drops, balancing, samples"),
}


TRAIN_EXTRA = ("torch", "tokenizers")  # not needed by the Beam jobs, so not on Dataflow workers


def _usage() -> str:
    width = max(map(len, STAGES))
    lines = ["usage: wit <stage> [options]   (wit <stage> --help for a stage's options)", "", "stages:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in STAGES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # a usage error, as for any command missing what it needs
        print(_usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from wit_pipeline import __version__

        print(__version__)
        return 0
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"wit: unknown stage {stage!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    # albumentations (pulled in by img2dataset) phones home on import unless told not to.
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    try:
        module = importlib.import_module(STAGES[stage][0])
    except ModuleNotFoundError as exc:
        if exc.name in TRAIN_EXTRA:
            print(f"wit {stage}: needs {exc.name}, which comes with the train extra: pip install -e '.[train]' "
                  "(on a GPU machine, the CUDA build of torch 2.13.0 first)", file=sys.stderr)
            return 2
        raise
    from wit_pipeline.core.faults import environment_fault, quiet_environment_faults

    quiet_environment_faults()
    try:
        code = module.run(rest)
    except Exception as exc:  # a full disk or a read-only folder: one line, not a traceback
        fault = environment_fault(exc)
        if fault is None:
            raise
        print(f"wit {stage}: {fault}", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
