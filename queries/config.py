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

from queries import dumpset, multistream, wordnet, worldwide
from queries.build import Recipe
from wit_pipeline.core import fsio, outputs
from wit_pipeline.core.config_flags import WitParser, add_config_flags, option, parse_config


def _wordnet_dir(text: str) -> str | None:
    return None if text.lower() == "none" else text


def _language(text: str) -> str:
    return text.strip().replace("-", "_")


@dataclass(frozen=True)
class BuildQueriesConfig:
    """Every setting of `wit build-queries`: its flags are these fields' and the Recipe's."""

    wikipedia: list[str] = option(help="<code>wiki pages-articles dump(s): plain, multistream (split over workers when "
                                  "its -multistream-index file is beside it) or per-part files; .xml/.bz2/.gz, a "
                                  "glob (repeatable)", action="append")
    output: str = option(help="output folder: allowlist.tsv, stats.json, reads.jsonl, dead_letter/")
    pageviews: list[str] = option(default_factory=list, help="hourly pageview files (gz or plain): a glob "
                                  "(repeatable); none -> no title queries", action="append")
    wordnet: str | None = option(wordnet.DEFAULT_DIR, "English: WordNet 3.0 dict directory (Debian's "
                                 "wordnet-base); 'none' -> no WordNet queries", parse=_wordnet_dir)
    range_mb: float = option(16.0, "MB of a multistream dump per unit of work (each read by one worker)")
    count_shards: int = option(512, "n-gram counts are summed in this many tables (by hash): more for bigger dumps")
    recipe: Recipe = field(default_factory=Recipe)
    strict: bool = option(False, "fail (exit 1, no allowlist.tsv) when part of a dump could not be read, instead of "
                          "building from the rest and saying so in stats.json")
    language: str | None = option(None, "Wikipedia language code (en, de, ja, zh, zh_yue, ...): build that "
                                  "language's list (MetaCLIP 2's recipe but for en) as OUTPUT/CODE.tsv, stats in "
                                  "OUTPUT/build/CODE/, so one folder holds a worldwide allowlist", parse=_language,
                                  show="English, into OUTPUT/allowlist.tsv", metavar="CODE")
    omw: str | None = option(None, "Open Multilingual WordNet copy for a language other than English: NLTK's "
                             "omw-1.4 folder (or one language's folder or .tab file), WN-LMF .xml file(s), or the "
                             "wn package's data directory; none -> no WordNet entries (said once)", parse=_wordnet_dir)

    def __post_init__(self) -> None:
        if not self.wikipedia:
            raise ValueError("give at least one --wikipedia dump")
        if not self.output.strip("/"):
            raise ValueError("--output must name a folder")
        if not self.range_mb > 0:
            raise ValueError("--range-mb must be > 0")
        if self.count_shards < 1:
            raise ValueError("--count-shards must be >= 1")
        if self.recipe.language != (self.language or "en"):
            raise ValueError(f"the recipe is for {self.recipe.language}, the job for {self.language or 'en'}")
        if self.recipe.language != "en" and self.wordnet is not None:
            if self.wordnet != wordnet.DEFAULT_DIR:
                raise ValueError(f"--wordnet is English WordNet 3.0; for --language {self.language} give --omw")
            object.__setattr__(self, "wordnet", None)  # English WordNet's default is English's only

    @property
    def range_bytes(self) -> int:
        return max(1, int(self.range_mb * 2**20))

    @property
    def allowlist_url(self) -> str:
        if self.language is None:
            return fsio.join(self.output, outputs.ALLOWLIST)
        return worldwide.allowlist_url(self.output, self.language)

    @property
    def job_dir(self) -> str:
        """Where stats.json, reads.jsonl and the dead letters go."""
        return self.output if self.language is None else worldwide.job_dir(self.output, self.language)


def build_parser() -> argparse.ArgumentParser:
    p = WitParser(
        prog="wit build-queries",
        description="Build the query allowlist the CLIP way, as MetaCLIP v1 did by default: the numbers "
        "0..99, WordNet synset names, Wikipedia words and high-PMI bigrams, article titles above a page-view "
        "volume; one union in that order, capped. Beam pipeline options (--runner, --project, "
        "--direct_num_workers, ...) pass through.",
    )
    add_config_flags(p, BuildQueriesConfig)
    add_config_flags(p, Recipe)
    return p


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> BuildQueriesConfig:
    """The validated config; a value out of range is a usage error (exit 2)."""
    recipe = parse_config(parser, Recipe, args, language="en" if args.language is None else args.language)
    return parse_config(parser, BuildQueriesConfig, args, recipe=recipe, output=args.output.rstrip("/"))


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


def resolve_inputs(cfg: BuildQueriesConfig, dry_run: bool = False) -> Inputs:
    """The files the job reads, or ValueError saying what is wrong with them. A dry run only
    translates the graph: it never looks at the output (a gs:// one needs credentials)."""
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
    if not dry_run:
        worldwide.check_output(cfg.allowlist_url, cfg.job_dir)
    note = worldwide.wordnet_note(cfg.recipe.language, cfg.omw)
    return Inputs(paired, _expand("--pageviews", cfg.pageviews), [note] if note else [])


__all__ = ["BuildQueriesConfig", "Inputs", "build_parser", "config_from_args", "resolve_inputs"]
