"""`wit report RUN_DIR [--out report.html]`: one self-contained HTML page about a run.

The funnel from crawl records to final samples, examples of every drop reason, balancing's
head and tail, the final samples' languages, caption lengths and image sizes, a contact
sheet, training curves and evaluation, and provenance, for whatever stage outputs RUN_DIR
holds (a demo folder holds them all; one harvest, download or curate folder works too; any
fsspec URL). Problems with the inputs are listed at the top of the page, never raised.
"""

from __future__ import annotations

import argparse
import sys

from wit_pipeline.core.cli_help import HelpFormatter

DEFAULT_NAME = "report.html"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wit report", description=__doc__, formatter_class=HelpFormatter, allow_abbrev=False)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (the demo's --out) or one stage's output folder")
    p.add_argument("--out", default=None, help=f"the HTML file to write (default: RUN_DIR/{DEFAULT_NAME})")
    p.add_argument("--seed", type=int, default=0, help="picks the examples and the contact sheet's samples")
    return p


def run(argv: list[str] | None = None) -> int:
    from wit_pipeline.core import fsio
    from wit_pipeline.report.render import write_report

    args = build_parser().parse_args(argv)
    root = args.run_dir.rstrip("/") or args.run_dir
    out = args.out or fsio.join(root, DEFAULT_NAME)
    try:
        if not fsio.isdir(root):
            raise FileNotFoundError(f"{root}: no such folder")
        ctx = write_report(root, out, args.seed)
    except (FileNotFoundError, NotADirectoryError) as exc:
        print(f"wit report: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"wit report: cannot write {out}: {exc}", file=sys.stderr)
        return 1
    problems = ctx["problems"]
    print(f"wrote {out}" + (f" ({len(problems)} problem(s) listed at the top)" if problems else ""))
    return 0
