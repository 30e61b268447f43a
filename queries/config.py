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

from queries import dumpset, multistream, pageviews, segment, wordnet, worldwide
from queries.build import BIGRAM_QUOTAS, QUOTA_PRESETS, Recipe, parse_quotas
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
    # --language: None writes allowlist.tsv + stats.json into output (English, as ever); a code
    # writes output/<code>.tsv and output/build/<code>/ (a worldwide allowlist folder).
    language: str | None = None
    omw: str | None = None  # Open Multilingual WordNet copy (languages other than English)

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

    @property
    def allowlist_url(self) -> str:
        if self.language is None:
            return fsio.join(self.output, "allowlist.tsv")
        return worldwide.allowlist_url(self.output, self.language)

    @property
    def job_dir(self) -> str:
        """Where stats.json, reads.jsonl and dead_letter.parquet go."""
        return self.output if self.language is None else worldwide.job_dir(self.output, self.language)


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
    p.add_argument("--language", default=None, metavar="CODE",
                   help="Wikipedia language code (en, de, ja, zh, zh_yue, ...): build that language's list with "
                   "MetaCLIP 2's recipe as OUTPUT/CODE.tsv (stats in OUTPUT/build/CODE/), one folder holding a "
                   "worldwide allowlist; without it, English into OUTPUT/allowlist.tsv")
    p.add_argument("--segmenter", choices=sorted(segment.SEGMENTERS), default=None,
                   help="how a language written without spaces is cut into words (default: icu; zh: jieba, "
                   "ja: mecab, th: pythainlp also; bo, dz: syllable); needs the worldwide extra")
    p.add_argument("--omw", default=None,
                   help="Open Multilingual WordNet copy for a language other than English: NLTK's omw-1.4 folder "
                   "(or one language's folder or .tab file of it), WN-LMF .xml file(s), or the wn package's data "
                   "directory; none -> no WordNet entries (with a message)")
    p.add_argument("--wikipedia", required=True, action="append",
                   help="<code>wiki pages-articles dump(s): plain, multistream (split over workers when its "
                   "-multistream-index file is beside it) or per-part files; .xml/.bz2/.gz, a glob (repeatable)")
    p.add_argument("--pageviews", action="append", default=[],
                   help="hourly pageview files (gz or plain): a glob (repeatable); none -> no title queries")
    p.add_argument("--wordnet", default=None,
                   help=f"English: WordNet 3.0 dict directory (default {wordnet.DEFAULT_DIR}, Debian's wordnet-base); "
                   "'none' -> no WordNet queries")
    p.add_argument("--wordnet-entries", choices=wordnet.MODES, default=d.wordnet_entries,
                   help="synsets: each synset's name (MetaCLIP's); lemmas: every lemma of every synset")
    p.add_argument("--numbers", type=int, default=d.numbers, help="add the strings 0..N-1 first, as MetaCLIP does")
    p.add_argument("--output", required=True, help="output folder: allowlist.tsv, stats.json, reads.jsonl, "
                   "dead_letter.parquet")
    p.add_argument("--min-unigram-count", type=int, default=None,
                   help=f"minimum count of a word over all articles (English: CLIP's {d.min_unigram_count}; "
                   "other languages: 1, the top 10%% by count are taken)")
    p.add_argument("--min-bigram-count", type=int, default=d.min_bigram_count,
                   help="a bigram must occur this often before its PMI counts, as PMI overrates rare pairs")
    p.add_argument("--min-pmi", type=float, default=d.min_pmi,
                   help="minimum PMI as the ratio P(ab)/(P(a)P(b)), not its log (MetaCLIP: 30; see queries/pmi.py)")
    p.add_argument("--min-title-views", type=int, default=None,
                   help=f"minimum page views of a title summed over all --pageviews files (English: {d.min_title_views}; "
                   "other languages: 1, the top 76%% by views are taken)")
    p.add_argument("--title-rule", choices=sorted(pageviews.TITLE_RULES), default=d.title_rule,
                   help="wit: all hours of en and en.m (of xx and xx.m for --language xx), namespaces out; metaclip: "
                   "only en lines with >= 50 views that hour (other languages: every line), titles with ':' out")
    p.add_argument("--max-queries", default=None,
                   help=f"cap on the list's length, or none (English: {d.max_queries}; other languages: none)")
    p.add_argument("--max-chars", type=int, default=None,
                   help="drop entries longer than this many characters (English: no limit; other languages: 256)")
    p.add_argument("--source-quotas", default=None,
                   help=f"per-source caps: {' | '.join(QUOTA_PRESETS)} (MetaCLIP 2's English composition) "
                   "| source=N,... (English: none; other languages: metaclip2, each source also held to its "
                   "share of its own candidates)")
    p.add_argument("--bigram-quota", choices=BIGRAM_QUOTAS, default="code",
                   help="other languages: code (MetaCLIP 2's build_metadata.py: at most 100,646 bigrams) or doc "
                   "(its docs: at most 40%% of the unigram quota)")
    p.add_argument("--range-mb", type=float, default=16.0,
                   help="MB of a multistream dump per unit of work (each read by one worker)")
    p.add_argument("--count-shards", type=int, default=512,
                   help="n-gram counts are summed in this many tables (by hash): more for bigger dumps")
    return p


def _max_queries(text: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    if not text.strip().isdigit():
        raise ValueError(f"--max-queries {text!r}: expected a number >= 0 or none")
    return int(text)


def config_from_args(args: argparse.Namespace) -> BuildQueriesConfig:
    """The validated config, or ValueError naming the bad option. A language's segmenter is
    checked here: a missing library is a one-line error before any work."""
    language = args.language.replace("-", "_") if args.language else None
    code = language or "en"
    if code != "en" and args.wordnet is not None and args.wordnet.lower() != "none":
        raise ValueError(f"--wordnet is English WordNet 3.0; for --language {code} give --omw")
    given: dict = {}
    if args.source_quotas is not None:
        try:
            given["quotas"] = parse_quotas(args.source_quotas)
        except ValueError as exc:
            raise ValueError(f"--source-quotas: {exc}") from None
        if code != "en":
            given["shares"] = {} if args.source_quotas.strip().lower() == "none" else None
    for name in ("min_unigram_count", "min_title_views", "max_chars"):
        if getattr(args, name) is not None:
            given[name] = getattr(args, name)
    if args.max_queries is not None:
        given["max_queries"] = _max_queries(args.max_queries)
    given = {k: v for k, v in given.items() if v is not None}
    recipe = worldwide.worldwide_recipe(
        code, min_bigram_count=args.min_bigram_count, min_pmi=args.min_pmi, title_rule=args.title_rule,
        wordnet_entries=args.wordnet_entries, numbers=args.numbers, segmenter=args.segmenter,
        bigram_quota=args.bigram_quota, **given)
    wn_arg = args.wordnet if args.wordnet is not None else (wordnet.DEFAULT_DIR if code == "en" else "none")
    wn = None if wn_arg.lower() == "none" else wn_arg
    omw = None if args.omw is None or args.omw.lower() == "none" else args.omw
    return BuildQueriesConfig(wikipedia=list(args.wikipedia), output=args.output.rstrip("/"),
                              pageviews=list(args.pageviews), wordnet=wn, range_mb=args.range_mb,
                              count_shards=args.count_shards, recipe=recipe, language=language, omw=omw)


class Inputs(NamedTuple):
    dumps: list[tuple[str, str | None]]  # (dump URL, its multistream index URL or None)
    pageviews: list[str]
    notes: list[str] = []  # what the build will leave out, said once before it starts


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
    for url in dumps:
        wiki = dumpset.wiki_language(url)
        if wiki is not None and wiki != cfg.recipe.language:
            raise ValueError(f"{url} is the {wiki} Wikipedia but the list is for {cfg.recipe.language}: "
                             f"give --language {wiki}")
    if cfg.wordnet is not None:
        missing = wordnet.missing_files(cfg.wordnet, cfg.recipe.wordnet_entries)
        if missing:
            raise ValueError(f"--wordnet {cfg.wordnet!r} lacks {', '.join(missing)} (a WordNet 3.0 dict directory; "
                             "Debian: apt-get install wordnet-base), or pass --wordnet none")
    paired = []
    for url in dumps:
        index = multistream.index_of(url)
        paired.append((url, index if index and fsio.exists(index) else None))
    if cfg.omw is not None and not fsio.exists(cfg.omw):
        raise ValueError(f"--omw {cfg.omw!r} does not exist")
    note = worldwide.wordnet_note(cfg.recipe.language, cfg.omw)
    return Inputs(paired, _expand("--pageviews", cfg.pageviews), [note] if note else [])


__all__ = ["BuildQueriesConfig", "Inputs", "build_parser", "config_from_args", "resolve_inputs"]
