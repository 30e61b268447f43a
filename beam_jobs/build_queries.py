"""Build the allowlist: Wikipedia dump + pageviews + WordNet -> allowlist.tsv + stats.json.

    python -m beam_jobs.build_queries --wikipedia 'dumps/enwiki-*-pages-articles-multistream.xml.bz2' \
        --pageviews 'pageviews/pageviews-*.gz' --wordnet /usr/share/wordnet --output out/queries
    wit build-queries ... --runner DataflowRunner --project P --region R \
        --temp_location gs://bucket/tmp --setup_file ./setup.py

The counting is what needs a cluster. Each dump file becomes units of work: byte ranges of a
multistream dump (planned from its index, queries.multistream), or the whole file. Workers
read units independently and count n-grams per article; counts are summed per bundle, then
in lifted combiners (CombinePerKey). Bigram PMI joins each bigram with the counts of its two
words (CoGroupByKey), after both sides are pruned by the count floor: a bigram seen n times
has words seen >= n times, so words under the bigram floor never meet a surviving bigram.
The survivors meet in one final step that orders, deduplicates, caps (queries.build) and
writes the TSV. Pure logic lives in `queries/`; every per-record step runs through `Counted`,
and the readers turn a bad page, line or stream into a dead letter themselves.

Outputs: allowlist.tsv; stats.json (stages below, the config, a summary of reads.jsonl);
reads.jsonl (one line per unit read: source, byte range, pages, worker, start, seconds);
dead_letter/part-00000-of-00001.parquet (schema.DEAD_LETTER). allowlist.in == numbers + wordnet.out +
unigrams.out + pmi.out + titles.out. With `--language CODE` (queries.worldwide), the list is
OUTPUT/CODE.tsv and the other files go to OUTPUT/build/CODE/, so one folder holds a worldwide
allowlist; a language written without spaces is segmented (queries.segment) in the workers,
which need the `worldwide` extra.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from beam_jobs import common
from beam_jobs.common import BeamTally
from beam_jobs.transforms import DEAD_LETTER, Counted, dead_letter
from queries import build, config, multistream, pageviews, pmi, wikipedia, worldwide
from wit_pipeline.core import fsio, outputs
from wit_pipeline.core.stats import error_text

STAGES = ("dumps", "inputs", "pages", "articles", "unigram_shards", "unigrams", "bigram_shards", "bigrams",
          "pmi_first", "pmi_second", "pmi", "pageviews", "titles", "wordnet", "allowlist")
CHAINED = (("pages", "articles"), ("bigrams", "pmi"))
BIGRAM, REPORT, READS = "bigram", "report", outputs.READS
FLUSH_KEYS = 1_000_000  # distinct n-grams held per bundle before they are emitted (~150 MB)


class ReadUnits(beam.DoFn):
    """A whole dump file or a DumpRange -> pages; bad pages and streams -> dead letters; one
    report per unit on REPORT (reads.jsonl)."""

    def setup(self) -> None:
        self.tally = BeamTally()

    def process(self, unit: Any) -> Iterator[Any]:
        errors: list[dict[str, str]] = []

        def on_error(source: str, exc: BaseException) -> None:
            logging.warning("dead letter: %s: %s", source, error_text(exc))
            errors.append(dead_letter("read_dump", source, error_text(exc)))

        started, pages = time.time(), 0
        if isinstance(unit, multistream.DumpRange):
            found, url, span = multistream.read_range(unit, self.tally, on_error), unit.url, [unit.streams[0], unit.end]
        else:
            found, url, span = wikipedia.iter_pages(unit, self.tally, on_error), unit, [0, None]
        for page in found:
            pages += 1
            yield page
            while errors:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, errors.pop())
        yield from (beam.pvalue.TaggedOutput(DEAD_LETTER, e) for e in errors)
        yield beam.pvalue.TaggedOutput(REPORT, {
            "source": url, "start": span[0], "end": span[1], "pages": pages,
            "worker": f"{socket.gethostname()}:{os.getpid()}", "started": started,
            "seconds": round(time.time() - started, 3)})


class SumInBundle(beam.DoFn):
    """Per-article (unigram, bigram) Counters -> (shard, {n-gram: count}) tables, summed over the
    bundle and emitted when FLUSH_KEYS distinct n-grams are held and at its end: a worker's
    counts cross the shuffle as a few hundred dicts, not one element per n-gram."""

    def __init__(self, shards: int) -> None:
        self.shards = shards

    def start_bundle(self) -> None:
        self.unigrams: Counter[str] = Counter()
        self.bigrams: Counter[str] = Counter()

    def process(self, counts: tuple[Counter[str], Counter[str]]) -> Iterator[Any]:
        self.unigrams.update(counts[0])
        self.bigrams.update(counts[1])
        if len(self.unigrams) + len(self.bigrams) >= FLUSH_KEYS:
            yield from self._flush(lambda x: x)

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._flush(GlobalWindows.windowed_value)

    def _flush(self, wrap: Any) -> Iterator[Any]:
        yield from (wrap(item) for item in pmi.split_counts(self.unigrams, self.shards).items())
        yield from (beam.pvalue.TaggedOutput(BIGRAM, wrap(item))
                    for item in pmi.split_counts(self.bigrams, self.shards).items())
        self.unigrams, self.bigrams = Counter(), Counter()


class MergeCounts(beam.CombineFn):
    """{n-gram: count} tables of one shard -> their sum (lifted: each worker sums its own first)."""

    def create_accumulator(self) -> Counter[str]:
        return Counter()

    def add_input(self, acc: Counter[str], counts: dict[str, int]) -> Counter[str]:
        acc.update(counts)
        return acc

    def merge_accumulators(self, accs: Iterable[Counter[str]]) -> Counter[str]:
        accs = iter(accs)
        total = next(accs)
        for acc in accs:
            total.update(acc)
        return total

    def extract_output(self, acc: Counter[str]) -> dict[str, int]:
        return dict(acc)


class ReadViews(beam.DoFn):
    """A pageview file -> (title, views); bad lines and unreadable files -> dead letters."""

    def __init__(self, rule: pageviews.TitleRule) -> None:
        self.rule = rule

    def setup(self) -> None:
        self.tally = BeamTally()

    def process(self, url: str) -> Iterator[Any]:
        errors: list[dict[str, str]] = []
        yield from pageviews.iter_views(
            url, self.tally, self.rule, lambda src, exc: errors.append(dead_letter("read_pageviews", src, error_text(exc))))
        yield from (beam.pvalue.TaggedOutput(DEAD_LETTER, e) for e in errors)


def _counted(pcoll: beam.PCollection, stage: str, fn: Any, dead: list, source: Any = str, *args: Any) -> Any:
    """`fn(element, *args)` through Counted; its dead letters join `dead`."""
    bound = (lambda element: fn(element, *args)) if args else fn
    out = pcoll | stage >> beam.ParDo(Counted(stage, bound, source=source)).with_outputs(DEAD_LETTER, main="out")
    dead.append(out[DEAD_LETTER])
    return out.out


def count_ngrams(p: beam.Pipeline, inputs: config.Inputs, cfg: config.BuildQueriesConfig, dead: list) -> Any:
    units = (_counted(p | "Dumps" >> beam.Create(inputs.dumps), "dumps", multistream.units_of, dead, str, cfg.range_bytes)
             | "Units" >> beam.FlatMap(lambda units: units) | "Spread" >> beam.Reshuffle())
    read = units | "ReadUnits" >> beam.ParDo(ReadUnits()).with_outputs(DEAD_LETTER, REPORT, main="pages")
    dead.append(read[DEAD_LETTER])
    counting = cfg.recipe.counting  # None for English; else the language's segmenter and namespaces
    counts = (_counted(read.pages, "articles", wikipedia.article_ngrams, dead, lambda page: page.title,
                       *([counting] if counting else []))
              | "SumInBundle" >> beam.ParDo(SumInBundle(cfg.count_shards)).with_outputs(BIGRAM, main="unigrams"))
    return (counts.unigrams | "SumUnigrams" >> beam.CombinePerKey(MergeCounts()),
            counts[BIGRAM] | "SumBigrams" >> beam.CombinePerKey(MergeCounts()), read[REPORT])


def keep_shard(shard: tuple[int, dict[str, int]], min_count: int, stage: str) -> list[tuple[str, int]]:
    """One shard's summed counts -> those at or above the floor (stage `stage`, counted per n-gram)."""
    return list(pmi.keep_counted(shard[1], min_count, BeamTally(), stage).items())


def select_bigrams(unigrams: Any, bigrams: Any, recipe: build.Recipe, dead: list) -> Any:
    """Shards of summed counts -> (a b, (PMI, count)) of the bigrams that pass both floors."""
    floor_words = unigrams | "FloorWords" >> beam.FlatMap(
        lambda shard, n: [(w, c) for w, c in shard[1].items() if c >= n], recipe.min_bigram_count)
    totals = [shards | f"{name}Sums" >> beam.Map(lambda shard: sum(shard[1].values()))
              | f"Total{name}" >> beam.CombineGlobally(sum) for name, shards in (("U", unigrams), ("B", bigrams))]
    joined = (_counted(bigrams, "bigram_shards", keep_shard, dead, lambda s: s[0], recipe.min_bigram_count,
                       pmi.BIGRAM_STAGE) | "ByFirstWord" >> beam.FlatMap(lambda kept: pmi.by_first_word(dict(kept))))
    for position, name in enumerate(("pmi_first", "pmi_second")):
        groups = {"bigrams": joined, "counts": floor_words} | f"Join{name}" >> beam.CoGroupByKey()
        joined = _counted(groups, name, pmi.join_word, dead, lambda g: g[0], position) | f"Flat{name}" >> beam.FlatMap(
            lambda rows: rows)
    pair = totals[0] | "PairTotals" >> beam.Map(lambda u, b: (u, b), beam.pvalue.AsSingleton(totals[1]))
    with_totals = joined | "WithTotals" >> beam.Map(lambda kv, t: (kv, t), beam.pvalue.AsSingleton(pair))
    return _counted(with_totals, "pmi", pmi.with_pmi, dead, lambda e: e[0][0], recipe.min_pmi)


def assemble_and_write(_: Any, cfg: config.BuildQueriesConfig, unigrams: Iterable, bigrams: Iterable,
                       titles: Iterable, entries: Iterable) -> int:
    """The final step: order, dedup, cap (queries.build) and write the list's TSV."""
    from wit_pipeline.text.allowlist import write_allowlist

    rows = build.finish(dict(unigrams), dict(bigrams), dict(titles), dict(entries), cfg.recipe, BeamTally())
    return write_allowlist(cfg.allowlist_url, rows)


def write_reads(rows: list[dict], output: str) -> None:
    lines = sorted(json.dumps(r, sort_keys=True) for r in rows)
    fsio.write_bytes(fsio.join(output, READS), "".join(f"{line}\n" for line in lines).encode())


def write_dead(rows: list[dict], output: str) -> None:
    outputs.write_dead_letters(fsio.join(output, outputs.DEAD_LETTERS), rows)


def build_graph(p: beam.Pipeline, cfg: config.BuildQueriesConfig, inputs: config.Inputs) -> None:
    r, dead = cfg.recipe, []
    unigrams, bigrams, reports = count_ngrams(p, inputs, cfg, dead)
    kept_unigrams = (_counted(unigrams, "unigram_shards", keep_shard, dead, lambda s: s[0], r.min_unigram_count,
                              pmi.UNIGRAM_STAGE) | "KeptUnigrams" >> beam.FlatMap(lambda kept: kept))
    kept_bigrams = select_bigrams(unigrams, bigrams, r, dead)
    views = (p | "Pageviews" >> beam.Create(inputs.pageviews) | "SpreadViews" >> beam.Reshuffle()
             | "ReadViews" >> beam.ParDo(ReadViews(r.titles)).with_outputs(DEAD_LETTER, main="views"))
    dead.append(views[DEAD_LETTER])
    kept_titles = _counted(views.views | "SumViews" >> beam.CombinePerKey(sum), "titles", pageviews.keep_title, dead,
                           str, r.min_title_views, r.titles)
    source = cfg.wordnet if r.language == "en" else cfg.omw  # English WordNet, or the language's OMW
    entries = (p | "WordnetDir" >> beam.Create([source] if source else [])
               | "ReadWordnet" >> beam.FlatMap(lambda d: build.read_wordnet(r, d, d, BeamTally()).items()))
    _ = (p | "Assemble" >> beam.Create([None]) | "AssembleAndWrite" >> beam.Map(
        assemble_and_write, cfg, beam.pvalue.AsList(kept_unigrams), beam.pvalue.AsList(kept_bigrams),
        beam.pvalue.AsList(kept_titles), beam.pvalue.AsList(entries)))
    for name, pcoll, write in (("Reads", reports, write_reads),
                               ("DeadLetters", tuple(dead) | "AllDead" >> beam.Flatten(), write_dead)):
        _ = pcoll | f"Collect{name}" >> beam.combiners.ToList() | f"Write{name}" >> beam.Map(write, cfg.job_dir)


def run(argv: list[str] | None = None) -> int:
    parser = config.build_parser()
    args, pipeline_args = parser.parse_known_args(argv)
    common.reject_unknown_flags(parser, pipeline_args)
    cfg = config.config_from_args(parser, args)
    try:
        inputs = config.resolve_inputs(cfg, dry_run=common.is_dry_run(pipeline_args))
        cfg = dataclasses.replace(cfg, recipe=worldwide.with_site(cfg.recipe, [url for url, _ in inputs.dumps]))
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if not inputs.pageviews:
        logging.warning("no --pageviews: the allowlist will have no title queries")
    for note in inputs.notes:
        print(note)
    p = common.make_pipeline(pipeline_args)
    build_graph(p, cfg, inputs)
    result = p.run()
    result.wait_until_finish()
    if common.is_dry_run(pipeline_args):
        common.say_dry_run("build-queries", cfg.output)
        return 0
    reads = [json.loads(line) for line in fsio.read_text(fsio.join(cfg.job_dir, READS)).splitlines()]
    doc = common.write_stats(result, cfg.job_dir, STAGES, CHAINED, job="build-queries", config=asdict(cfg),
                      reads=multistream.read_summary(reads))
    build.check_sources(doc["stages"], cfg.recipe.numbers)
    common.print_stages(doc)
    allowlist = cfg.allowlist_url
    try:
        build.check_articles(doc["stages"])
    except ValueError as exc:
        fsio.rm(allowlist)  # written by this run moments ago (check_output: ours), from nothing
        raise SystemExit(f"wit build-queries: {exc}: no allowlist written") from None
    unread = build.unread_dumps(doc["stages"])
    if unread is not None:  # the counts, and so the list, come from part of the dump: never quietly
        what = (f"{unread['units']} of {unread['units_read']} dump reading unit(s) stopped early"
                + (f" and {unread['dump_files']} dump file(s) could not be planned" if unread["dump_files"] else "")
                + " (dead_letter.parquet names them)")
        doc["incomplete"] = {**unread, "strict": cfg.strict}
        fsio.write_json(fsio.join(cfg.job_dir, outputs.STATS), doc)
        if cfg.strict:
            fsio.rm(allowlist)  # written by this run moments ago, from part of the dump
            raise SystemExit(f"wit build-queries: --strict: {what}; no allowlist written")
        print(f"wit build-queries: WARNING: INCOMPLETE: {what}: {allowlist} was built from the rest "
              "(stats.json: incomplete; --strict fails instead)", file=sys.stderr)
    stats = outputs.STATS if cfg.language is None else fsio.join(cfg.job_dir, outputs.STATS)
    print(f"wrote {allowlist} ({doc['stages'][-1]['out']} queries) and {stats}"
          + (" (INCOMPLETE: part of the dump was not read)" if unread is not None else ""))
    return 0


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    run()
