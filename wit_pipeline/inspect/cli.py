"""`wit inspect PATH`: the command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from wit_pipeline import plots
from wit_pipeline.core.cli_help import HelpFormatter
from wit_pipeline.inspect.locate import KIND_HARVEST, KIND_SHARDS, KIND_STATS, locate
from wit_pipeline.inspect.report import (
    _save_png,
    format_summary,
    histogram_image,
    summarize_harvest,
    summarize_shards,
    summarize_stats,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wit inspect",
        description="Summarise and check a stage's output: final or raw tar shards (folder, glob or one tar), "
        "a harvest output folder, or a stats.json.",
        formatter_class=HelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("path", help="shards folder, tar glob, harvest folder or stats.json (local, gs://, ...)")
    p.add_argument("--check", action="store_true",
                   help="verify sha256/sizes/counts against manifest.json, members, json keys, duplicate keys, "
                   "image decoding, member names and stats.json; exit 1 listing every problem")
    p.add_argument("--contact-sheet", metavar="PNG", help="write a grid of the first --samples samples in key order")
    p.add_argument("--samples", type=int, default=48, help="samples on the contact sheet (default 48)")
    p.add_argument("--histogram", metavar="PNG", help="write a bar chart of samples per query (top --top)")
    p.add_argument("--top", type=int, default=30, help="queries in the summary and histogram (default 30)")
    p.add_argument("--blocklist", metavar="FILE", help="known-bad images (curate's --blocklist format) never shown "
                   "on the contact sheet: for raw shards, which curate has not filtered yet")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def inspect_path(path: str, check: bool = False, top: int = 30, samples: int = 0,
                 progress: bool | None = None) -> tuple[dict[str, Any], list[str], list[tuple[str, bytes | None, str]]]:
    """(summary, problems, first samples in key order) for any PATH `wit inspect` takes.

    Problems are always collected; `check` adds the expensive ones (full image decodes,
    sha256 of every shard against manifest.json).
    """
    target = locate(path)
    if target.kind == KIND_SHARDS:
        summary, problems, scan = summarize_shards(target, check=check, top=top, first_n=samples, progress=progress)
        return summary, problems, scan.first
    if target.kind == KIND_HARVEST:
        summary, problems, _ = summarize_harvest(target, top=top)
        return summary, problems, []
    summary, problems = summarize_stats(target)
    return summary, problems, []


def blocked_sample(blocked: Any, image: bytes | None) -> bool:
    """Whether a sample's image is on the blocklist (by sha256 of its bytes, or its pHash)."""
    import hashlib

    from wit_pipeline.image import phash

    if image is None:
        return False
    h = phash.phash64_bytes(image)[0]
    return blocked.blocks(hashlib.sha256(image).hexdigest(), None if h is None else phash.to_hex(h))


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.samples < 1 or args.top < 1:
        print("wit inspect: --samples and --top must be positive", file=sys.stderr)
        return 2
    try:
        target_kind = locate(args.path).kind
    except FileNotFoundError as exc:
        print(f"wit inspect: {exc}", file=sys.stderr)
        return 2
    if args.contact_sheet and target_kind != KIND_SHARDS:
        print(f"wit inspect: --contact-sheet needs tar shards, {args.path} is a {target_kind} output", file=sys.stderr)
        return 2
    if args.histogram and target_kind == KIND_STATS:
        print("wit inspect: --histogram needs shards or a harvest folder, not a stats.json", file=sys.stderr)
        return 2
    blocked = None
    if args.blocklist:
        from wit_pipeline.image import blocklist

        try:
            blocked = blocklist.load(args.blocklist)
        except (OSError, ValueError) as exc:
            print(f"wit inspect: --blocklist: {exc}", file=sys.stderr)
            return 2
    summary, problems, first = inspect_path(
        args.path, check=args.check, top=args.top, samples=args.samples if args.contact_sheet else 0,
        progress=False if args.no_progress else None)
    if args.contact_sheet:
        if blocked is not None:
            first = [s for s in first if not blocked_sample(blocked, s[1])]
        _save_png(plots.contact_sheet(first), args.contact_sheet)
    if args.histogram:
        _save_png(histogram_image(summary, args.top), args.histogram)
    if args.json:
        doc = dict(summary)
        if args.check:
            doc["check"] = {"ok": not problems, "problems": problems}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(format_summary(summary))
        if args.check:
            print()
            print(f"check: {len(problems)} problem(s)" if problems else "check: ok")
            for p in problems:
                print(f"  - {p}")
    sys.stdout.flush()
    for what, url in (("contact sheet", args.contact_sheet), ("histogram", args.histogram)):
        if url:
            print(f"wrote {what} {url}", file=sys.stderr)
    return 1 if args.check and problems else 0
