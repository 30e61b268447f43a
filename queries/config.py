"""`wit build-queries`'s options -> one validated config, and its inputs resolved up front.

The config is a dataclass, checked once when it is made and written whole
(`dataclasses.asdict`) into stats.json. `resolve_inputs` fails before any pipeline starts on
what would otherwise fail (or silently mislead) inside it: a pattern that matches nothing,
the same dump given twice (queries.dumpset), a WordNet folder without a file its reader needs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import NamedTuple

from queries import dumpset, multistream, pageviews, wordnet
from queries.build import QUOTA_PRESETS, Recipe, parse_quotas
from wit_pipeline.core import fsio
from wit_pipeline.core.cli_help import HelpFormatter


@dataclass(frozen=True)
class BuildQueriesConfig:
    wikipedia: list[str]
    output: str
    pageviews: list[str] = field(default_factory=list)
    wordnet: str | None = wordnet.DEFAULT_DIR  # None: no WordNet entries
    range_mb: float = 16.0  # bytes of multistream dump per unit of work
    count_shards: int = 512  # n-gram count tables are summed per shard (a hash of the n-gram)
    recipe: Recipe = field(default_factory=Recipe)
    strict: bool = False  # a dump (or part of one) that could not be read fails the run

    def __post_init__(self) -> None:
        if not self.wikipedia:
            raise ValueError("give at least one --wikipedia dump")
        if not self.output.strip("/"):
            raise ValueError("--output must name a folder")
        if not self.range_mb > 0:
            raise ValueError("--range-mb must be > 0")
        if self.count_shards < 1:
            raise ValueError("--count-shards must be >= 1")

    @property
    def range_bytes(self) -> int:
        return max(1, int(self.range_mb * 2**20))


def build_parser() -> argparse.ArgumentParser:
    d = Recipe()
    p = argparse.ArgumentParser(
        prog="wit build-queries",
        description="Build the query allowlist the CLIP way, as MetaCLIP v1 did by default: the numbers "
        "0..99, WordNet synset names, Wikipedia words and high-PMI bigrams, article titles above a page-view "
        "volume; one union in that order, capped. Beam pipeline options (--runner, --project, "
        "--direct_num_workers, ...) pass through.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--wikipedia", required=True, action="append",
                   help="enwiki pages-articles dump(s): plain, multistream (split over workers when its "
                   "-multistream-index file is beside it) or per-part files; .xml/.bz2/.gz, a glob (repeatable)")
    p.add_argument("--pageviews", action="append", default=[],
                   help="hourly pageview files (gz or plain): a glob (repeatable); none -> no title queries")
    p.add_argument("--wordnet", default=wordnet.DEFAULT_DIR,
                   help=f"WordNet 3.0 dict directory (default {wordnet.DEFAULT_DIR}, Debian's wordnet-base); "
                   "'none' -> no WordNet queries")
    p.add_argument("--wordnet-entries", choices=wordnet.MODES, default=d.wordnet_entries,
                   help="synsets: each synset's name (MetaCLIP's); lemmas: every lemma of every synset")
    p.add_argument("--numbers", type=int, default=d.numbers, help="add the strings 0..N-1 first, as MetaCLIP does")
    p.add_argument("--output", required=True, help="output folder: allowlist.tsv, stats.json, reads.jsonl, "
                   "dead_letter.parquet")
    p.add_argument("--min-unigram-count", type=int, default=d.min_unigram_count,
                   help="minimum count of a word over all articles (CLIP's 100)")
    p.add_argument("--min-bigram-count", type=int, default=d.min_bigram_count,
                   help="a bigram must occur this often before its PMI counts, as PMI overrates rare pairs")
    p.add_argument("--min-pmi", type=float, default=d.min_pmi,
                   help="minimum PMI as the ratio P(ab)/(P(a)P(b)), not its log (MetaCLIP: 30; see queries/pmi.py)")
    p.add_argument("--min-title-views", type=int, default=d.min_title_views,
                   help="minimum page views of a title summed over all --pageviews files")
    p.add_argument("--title-rule", choices=sorted(pageviews.TITLE_RULES), default=d.title_rule,
                   help="wit: all hours of en and en.m, namespaces out; metaclip: only en lines with >= 50 views "
                   "that hour, titles with ':' out")
    p.add_argument("--max-queries", type=int, default=d.max_queries, help="cap on the list's length")
    p.add_argument("--source-quotas", default="none",
                   help=f"per-source caps: {' | '.join(QUOTA_PRESETS)} (MetaCLIP 2's English composition) "
                   "| source=N,...")
    p.add_argument("--range-mb", type=float, default=16.0,
                   help="MB of a multistream dump per unit of work (each read by one worker)")
    p.add_argument("--count-shards", type=int, default=512,
                   help="n-gram counts are summed in this many tables (by hash): more for bigger dumps")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 1, no allowlist.tsv) when part of a dump could not be read, instead of "
                   "building from the rest and saying so in stats.json")
    return p


def config_from_args(args: argparse.Namespace) -> BuildQueriesConfig:
    """The validated config, or ValueError naming the bad option."""
    try:
        quotas = parse_quotas(args.source_quotas)
    except ValueError as exc:
        raise ValueError(f"--source-quotas: {exc}") from None
    recipe = Recipe(min_unigram_count=args.min_unigram_count, min_bigram_count=args.min_bigram_count,
                    min_pmi=args.min_pmi, min_title_views=args.min_title_views, title_rule=args.title_rule,
                    wordnet_entries=args.wordnet_entries, numbers=args.numbers, max_queries=args.max_queries,
                    quotas=quotas)
    wn = None if args.wordnet.lower() == "none" else args.wordnet
    return BuildQueriesConfig(wikipedia=list(args.wikipedia), output=args.output.rstrip("/"),
                              pageviews=list(args.pageviews), wordnet=wn, range_mb=args.range_mb,
                              count_shards=args.count_shards, recipe=recipe, strict=args.strict)


class Inputs(NamedTuple):
    dumps: list[tuple[str, str | None]]  # (dump URL, its multistream index URL or None)
    pageviews: list[str]


def _expand(flag: str, patterns: list[str]) -> list[str]:
    files: list[str] = []
    for pattern in patterns:
        found = fsio.expand(pattern)
        if not found:
            raise ValueError(f"{flag} {pattern!r} matches no file")
        files += found
    return files


def resolve_inputs(cfg: BuildQueriesConfig) -> Inputs:
    """The files the job reads, or ValueError saying what is wrong with them."""
    dumps = dumpset.dump_files(_expand("--wikipedia", cfg.wikipedia))
    if not dumps:
        raise ValueError("--wikipedia matches only multistream index files, no dump")
    if cfg.wordnet is not None:
        missing = wordnet.missing_files(cfg.wordnet, cfg.recipe.wordnet_entries)
        if missing:
            raise ValueError(f"--wordnet {cfg.wordnet!r} lacks {', '.join(missing)} (a WordNet 3.0 dict directory; "
                             "Debian: apt-get install wordnet-base), or pass --wordnet none")
    paired = []
    for url in dumps:
        index = multistream.index_of(url)
        paired.append((url, index if index and fsio.exists(index) else None))
    return Inputs(paired, _expand("--pageviews", cfg.pageviews))


__all__ = ["BuildQueriesConfig", "Inputs", "build_parser", "config_from_args", "resolve_inputs"]
