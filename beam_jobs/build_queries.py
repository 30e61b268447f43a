"""Build the allowlist: Wikipedia dump + pageviews + WordNet -> allowlist.tsv + stats.json.

    python -m beam_jobs.build_queries --wikipedia 'dumps/enwiki-*-pages-articles*.xml*.bz2' \
        --pageviews 'pageviews/pageviews-*.gz' --wordnet /usr/share/wordnet --output out/queries
    wit build-queries ... --runner DataflowRunner --project P --region R \
        --temp_location gs://bucket/tmp --setup_file ./setup.py

The counting is the part that needs a cluster: articles -> unigram and bigram counts
(CombinePerKey(sum)), pageview lines -> views per title. Bigram PMI joins each bigram with
the counts of its two words (CoGroupByKey), so no worker holds the whole vocabulary. The
survivors of the thresholds (a few hundred thousand per source) meet in one final step that
ranks, deduplicates, caps (queries.build) and writes the TSV. Pure logic lives in `queries/`.

Stages in stats.json: articles (pages read), unigrams and bigrams (distinct n-grams),
pageviews (lines), titles (distinct titles), wordnet (index lines), allowlist (candidates
from the four sources). allowlist.in == unigrams.out + bigrams.out + titles.out + wordnet.out.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio

from beam_jobs.common import BeamTally, make_pipeline, print_stages, reject_unknown_flags, write_stats
from queries import build, pageviews, pmi, wikipedia, wordnet
from wit_pipeline.core import fsio
from wit_pipeline.core.cli_help import HelpFormatter

STAGES = ("articles", "unigrams", "bigrams", "pageviews", "titles", "wordnet", "allowlist")
BIGRAM = "bigram"
# Articles whose n-gram counts are summed in the worker before they are emitted: fewer,
# larger elements for the shuffle (a full dump file holds ~100k articles).
FLUSH_EVERY = 1000


def build_parser() -> argparse.ArgumentParser:
    d = build.Thresholds()
    p = argparse.ArgumentParser(
        prog="wit build-queries",
        description="Build the query allowlist the CLIP way (MetaCLIP's thresholds by default): Wikipedia "
        "words and high-PMI bigrams, article titles above a page-view volume, WordNet lemmas; capped. "
        "Beam pipeline options (--runner, --project, --direct_num_workers, ...) pass through.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--wikipedia", required=True, action="append",
                   help="enwiki pages-articles XML dump(s), .xml/.xml.bz2/.xml.gz: a glob, local or gs:// (repeatable)")
    p.add_argument("--pageviews", action="append", default=[],
                   help="hourly pageview files (gz or plain): a glob (repeatable); none -> no title queries")
    p.add_argument("--wordnet", default=wordnet.DEFAULT_DIR,
                   help=f"WordNet 3.0 dict directory with index.noun/verb/adj/adv (default {wordnet.DEFAULT_DIR}, "
                   "Debian's wordnet-base); 'none' -> no WordNet queries")
    p.add_argument("--output", required=True, help="output folder: allowlist.tsv, stats.json")
    p.add_argument("--min-unigram-count", type=int, default=d.min_unigram_count,
                   help=f"minimum count of a word over all articles (default {d.min_unigram_count}, CLIP's)")
    p.add_argument("--min-bigram-count", type=int, default=d.min_bigram_count,
                   help=f"a bigram must occur this often before its PMI counts, as PMI overrates rare pairs "
                   f"(default {d.min_bigram_count}, the unigram bar)")
    p.add_argument("--min-pmi", type=float, default=d.min_pmi,
                   help="minimum PMI as the ratio P(ab)/(P(a)P(b)), not its log (MetaCLIP: 30; see queries/pmi.py)")
    p.add_argument("--min-title-views", type=int, default=d.min_title_views,
                   help="minimum page views of a title summed over all --pageviews files")
    p.add_argument("--max-queries", type=int, default=d.max_queries,
                   help=f"cap on the list's length (default {d.max_queries}); priority: see queries/build.py")
    p.add_argument("--source-quotas", default="metaclip",
                   help="per-source caps: 'metaclip' (unigram=251465,bigram=100646,title=61235; WordNet fills "
                   "the rest), 'none' (strict priority unigram > bigram > title > wordnet), or source=N,...")
    return p


class CountNgrams(beam.DoFn):
    """One dump file -> (unigram, count) on the main output, (bigram, count) on BIGRAM."""

    def __init__(self, flush_every: int = FLUSH_EVERY) -> None:
        self._flush_every = flush_every

    def setup(self) -> None:
        self.tally = BeamTally()

    def process(self, url: str) -> Iterator[Any]:
        unigrams: Counter[str] = Counter()
        bigrams: Counter[str] = Counter()
        pending = 0
        try:
            for _, text in wikipedia.iter_articles(url, self.tally):
                u, b = wikipedia.count_ngrams(text)
                unigrams.update(u)
                bigrams.update(b)
                pending += 1
                if pending >= self._flush_every:
                    yield from _flush(unigrams, bigrams)
                    pending = 0
        except Exception as exc:  # name the file: a corrupt dump part must be findable
            raise RuntimeError(f"reading Wikipedia dump {url}: {type(exc).__name__}: {exc}") from exc
        yield from _flush(unigrams, bigrams)


def _flush(unigrams: Counter[str], bigrams: Counter[str]) -> Iterator[Any]:
    yield from unigrams.items()
    for item in bigrams.items():
        yield beam.pvalue.TaggedOutput(BIGRAM, item)
    unigrams.clear()
    bigrams.clear()


def keep_unigram(word_count: tuple[str, int], min_count: int) -> Iterator[tuple[str, int]]:
    tally = BeamTally()
    tally.inc(pmi.UNIGRAM_STAGE, "in")
    reason = pmi.count_drop_reason(word_count[1], min_count)
    if reason:
        tally.inc(pmi.UNIGRAM_STAGE, f"dropped.{reason}")
        return
    tally.inc(pmi.UNIGRAM_STAGE, "out")
    yield word_count


def gate_bigram(bigram_count: tuple[str, int], min_count: int) -> Iterator[tuple[str, tuple[str, int]]]:
    """Counts every distinct bigram in; drops rare ones before the joins; keys by first word."""
    tally = BeamTally()
    tally.inc(pmi.BIGRAM_STAGE, "in")
    bigram, count = bigram_count
    reason = pmi.count_drop_reason(count, min_count)
    if reason:
        tally.inc(pmi.BIGRAM_STAGE, f"dropped.{reason}")
        return
    yield bigram.split(" ")[0], (bigram, count)


def with_first_count(joined: tuple[str, dict[str, list]]) -> Iterator[tuple[str, tuple[str, int, int]]]:
    """(a, {bigrams: [(a b, c_ab)], counts: [c_a]}) -> (b, (a b, c_ab, c_a))."""
    _, groups = joined
    bigrams = list(groups["bigrams"])
    if not bigrams:
        return
    (c_a,) = groups["counts"]
    for bigram, c_ab in bigrams:
        yield bigram.split(" ")[1], (bigram, c_ab, c_a)


def with_pmi(joined: tuple[str, dict[str, list]], n_unigrams: int, n_bigrams: int, min_count: int,
             min_pmi: float) -> Iterator[tuple[str, tuple[float, int]]]:
    """(b, {bigrams: [(a b, c_ab, c_a)], counts: [c_b]}) -> (a b, (PMI, c_ab)) above min_pmi."""
    _, groups = joined
    bigrams = list(groups["bigrams"])
    if not bigrams:
        return
    (c_b,) = groups["counts"]
    tally = BeamTally()
    for bigram, c_ab, c_a in bigrams:
        ratio = pmi.pmi(c_ab, c_a, c_b, n_unigrams, n_bigrams)
        reason = pmi.bigram_drop_reason(c_ab, ratio, min_count, min_pmi)
        if reason:
            tally.inc(pmi.BIGRAM_STAGE, f"dropped.{reason}")
            continue
        tally.inc(pmi.BIGRAM_STAGE, "out")
        yield bigram, (ratio, c_ab)


class ReadViews(beam.DoFn):
    def setup(self) -> None:
        self.tally = BeamTally()

    def process(self, url: str) -> Iterator[tuple[str, int]]:
        yield from pageviews.iter_views(url, self.tally)


def keep_title(title_views: tuple[str, int], min_views: int) -> Iterator[tuple[str, int]]:
    tally = BeamTally()
    tally.inc(pageviews.TITLE_STAGE, "in")
    reason = pageviews.title_drop_reason(title_views[0], title_views[1], min_views)
    if reason:
        tally.inc(pageviews.TITLE_STAGE, f"dropped.{reason}")
        return
    tally.inc(pageviews.TITLE_STAGE, "out")
    yield title_views


def read_wordnet(directory: str) -> Iterator[tuple[str, int]]:
    yield from wordnet.read_lemmas(directory, BeamTally()).items()


def assemble_and_write(_: Any, output: str, max_queries: int, quotas: dict[str, int],
                       unigrams: Iterable[tuple[str, int]], bigrams: Iterable[tuple[str, tuple[float, int]]],
                       titles: Iterable[tuple[str, int]], lemmas: Iterable[tuple[str, int]]) -> int:
    """The final step: rank, dedup, cap (queries.build) and write allowlist.tsv."""
    from queries.allowlist import write_allowlist

    candidates = build.ranked_candidates(dict(unigrams), dict(bigrams), dict(titles), dict(lemmas))
    rows = build.assemble(candidates, max_queries, quotas, BeamTally())
    return write_allowlist(fsio.join(output, "allowlist.tsv"), rows)


def _files(p: beam.Pipeline, name: str, patterns: list[str]) -> beam.PCollection:
    return (
        p
        | f"{name}Patterns" >> beam.Create(patterns)
        | f"{name}Match" >> fileio.MatchAll()
        | f"{name}Paths" >> beam.Map(lambda metadata: metadata.path)
        | f"{name}Spread" >> beam.Reshuffle()  # one worker per file
    )


def build_graph(p: beam.Pipeline, args: argparse.Namespace, output: str, quotas: dict[str, int]) -> None:
    counted = (_files(p, "Wikipedia", args.wikipedia)
               | "CountNgrams" >> beam.ParDo(CountNgrams()).with_outputs(BIGRAM, main="unigrams"))
    unigram_counts = counted.unigrams | "SumUnigrams" >> beam.CombinePerKey(sum)
    bigram_counts = counted[BIGRAM] | "SumBigrams" >> beam.CombinePerKey(sum)
    n_unigrams = unigram_counts | "UnigramCounts" >> beam.Values() | "TotalUnigrams" >> beam.CombineGlobally(sum)
    n_bigrams = bigram_counts | "BigramCounts" >> beam.Values() | "TotalBigrams" >> beam.CombineGlobally(sum)

    kept_unigrams = unigram_counts | "KeepUnigrams" >> beam.FlatMap(keep_unigram, min_count=args.min_unigram_count)
    by_first = bigram_counts | "GateBigrams" >> beam.FlatMap(gate_bigram, min_count=args.min_bigram_count)
    by_second = (
        {"bigrams": by_first, "counts": unigram_counts}
        | "JoinFirstWord" >> beam.CoGroupByKey()
        | "WithFirstCount" >> beam.FlatMap(with_first_count)
    )
    kept_bigrams = (
        {"bigrams": by_second, "counts": unigram_counts}
        | "JoinSecondWord" >> beam.CoGroupByKey()
        | "WithPmi" >> beam.FlatMap(with_pmi, n_unigrams=beam.pvalue.AsSingleton(n_unigrams),
                                    n_bigrams=beam.pvalue.AsSingleton(n_bigrams),
                                    min_count=args.min_bigram_count, min_pmi=args.min_pmi)
    )

    if args.pageviews:
        title_views = (_files(p, "Pageviews", args.pageviews)
                       | "ReadViews" >> beam.ParDo(ReadViews())
                       | "SumViews" >> beam.CombinePerKey(sum))
    else:
        title_views = p | "NoPageviews" >> beam.Create([])
    kept_titles = title_views | "KeepTitles" >> beam.FlatMap(keep_title, min_views=args.min_title_views)

    wordnet_dirs = [] if args.wordnet.lower() == "none" else [args.wordnet]
    lemmas = p | "WordnetDir" >> beam.Create(wordnet_dirs) | "ReadWordnet" >> beam.FlatMap(read_wordnet)

    _ = (
        p
        | "AssembleTrigger" >> beam.Create([None])
        | "AssembleAndWrite" >> beam.Map(
            assemble_and_write, output=output, max_queries=args.max_queries, quotas=quotas,
            unigrams=beam.pvalue.AsList(kept_unigrams), bigrams=beam.pvalue.AsList(kept_bigrams),
            titles=beam.pvalue.AsList(kept_titles), lemmas=beam.pvalue.AsList(lemmas))
    )


def check_sources(doc: dict) -> None:
    """allowlist.in must be exactly what the four sources kept."""
    by_name = {s["name"]: s for s in doc["stages"]}
    sources = sum(by_name[name]["out"] for name in ("unigrams", "bigrams", "titles", "wordnet"))
    if by_name["allowlist"]["in"] != sources:
        raise ValueError(f"allowlist.in={by_name['allowlist']['in']} but the sources kept {sources}")


def _check_inputs(args: argparse.Namespace) -> None:
    """Fail before the pipeline starts on a pattern that matches nothing (a typo would
    otherwise build a list without that source)."""
    for flag, patterns in (("--wikipedia", args.wikipedia), ("--pageviews", args.pageviews)):
        for pattern in patterns:
            if not fsio.expand(pattern):
                raise SystemExit(f"{flag} {pattern!r} matches no file")
    if args.wordnet.lower() != "none":
        index = fsio.join(args.wordnet, wordnet.INDEX_FILES[0])
        if not fsio.expand(index):
            raise SystemExit(f"--wordnet {args.wordnet!r}: no {wordnet.INDEX_FILES[0]} there (a WordNet 3.0 dict "
                             "directory; Debian: apt-get install wordnet-base), or pass --wordnet none")


def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, pipeline_args = parser.parse_known_args(argv)
    reject_unknown_flags(parser, pipeline_args)
    for name in ("min_unigram_count", "min_bigram_count", "min_title_views", "max_queries"):
        if getattr(args, name) < 0:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 0")
    if args.min_bigram_count < 1:
        raise SystemExit("--min-bigram-count must be >= 1")
    try:
        quotas = build.parse_quotas(args.source_quotas)
    except ValueError as exc:
        raise SystemExit(f"--source-quotas: {exc}") from None
    _check_inputs(args)
    if not args.pageviews:
        logging.warning("no --pageviews: the allowlist will have no title queries")
    output = args.output.rstrip("/")
    p = make_pipeline(pipeline_args)
    build_graph(p, args, output, quotas)
    result = p.run()
    result.wait_until_finish()
    doc = write_stats(result, output, STAGES, job="build-queries",
                      config={**vars(args), "source_quotas": quotas})
    check_sources(doc)
    print_stages(doc)
    print(f"wrote {fsio.join(output, 'allowlist.tsv')} ({doc['stages'][-1]['out']} queries) and stats.json")
    return 0


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    run()
