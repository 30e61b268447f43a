"""Allowlist building: the counting path's rate per core, and the job on 1 vs 2 workers.

1. Counting, one process: a seeded sample dump (queries.sample_dump: wikitext with infoboxes,
   tables, links, refs, headings around Zipf-distributed words) is read, stripped, tokenised
   and counted exactly as a worker does (wikipedia.iter_pages + article_ngrams). The peer in
   the same run is the same loop tokenising each phrase with textnorm.tokens (what the batch
   normaliser replaced); both must give the same counts.
2. The Beam job (FnApiRunner, multi_processing) on the same pages as a multistream dump with
   its index, with --direct_num_workers 1 and 2; both must write the same allowlist. Printed:
   each job's wall time (which includes FnApiRunner's fixed cost per stage, ~20 s here, that
   does not grow with the dump) and its reading phase (first range started to last range done,
   from reads.jsonl: reading, parsing, counting and the per-bundle sums, the part that grows
   with the dump). The reading phase's speed-up is printed last as `ratio:`, after what two
   pure-CPU processes gain on the machine at that moment (2.0 only when both cores are free).

    python bench/build_queries.py [--pages 12000] [--range-mb 1] [--seed 0] [--rounds 2]
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path

from queries import sample_dump, wikipedia
from wit_pipeline.core.stats import DictTally, Drop
from wit_pipeline.text import textnorm


def count(dump: str, per_phrase: bool) -> tuple[Counter[str], Counter[str], float]:
    """Unigram and bigram counts of a dump, and the seconds they took."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    started = time.perf_counter()
    for page in wikipedia.iter_pages(dump, DictTally(), wikipedia.raise_error):
        article = wikipedia.article_text(page)
        if isinstance(article, Drop):
            continue
        if per_phrase:  # the peer: one textnorm call per phrase
            for span in wikipedia.PHRASE_BREAK.split(article[1]):
                toks = textnorm.tokens(span)
                unigrams.update(toks)
                bigrams.update(f"{a} {b}" for a, b in zip(toks, toks[1:]))
        else:
            u, b = wikipedia.count_ngrams(article[1])
            unigrams.update(u)
            bigrams.update(b)
    return unigrams, bigrams, time.perf_counter() - started


def _spin(_: int) -> float:
    started, x = time.perf_counter(), 0
    for i in range(10_000_000):
        x += i
    return time.perf_counter() - started


def machine_speedup() -> float:
    """What 2 processes get on this machine now: 2 units of pure-CPU work on 2 processes vs 1
    unit on 1 (2.0 on 2 idle cores; ~1.0 when other work holds a core)."""
    one = _spin(0)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        two = max(pool.map(_spin, [0, 1]))
    return 2 * one / two


def run_job(dump: str, out: Path, workers: int, range_mb: float) -> float:
    from beam_jobs.build_queries import run

    started = time.perf_counter()
    run(["--wikipedia", dump, "--output", str(out), "--wordnet", "none", "--numbers", "0", "--range-mb", str(range_mb),
         "--direct_num_workers", str(workers), "--direct_running_mode", "multi_processing"])
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=12000)
    ap.add_argument("--range-mb", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2, help="runs of each measurement (interleaved; the best is kept)")
    args = ap.parse_args()
    print(f"{datetime.date.today()} {platform.machine()} x {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="wit-bench-queries-") as tmp:
        bench(args, Path(tmp))


def bench(args: argparse.Namespace, tmp: Path) -> None:
    pages = sample_dump.sample_pages(args.pages, args.seed, vocab_size=30000)
    plain = tmp / "enwiki-20240501-pages-articles.xml.bz2"
    multi = tmp / "multi" / "enwiki-20240501-pages-articles-multistream.xml.bz2"
    multi.parent.mkdir()
    sample_dump.write_plain(pages, str(plain))
    streams = sample_dump.write_multistream(
        pages, str(multi), str(multi.parent / "enwiki-20240501-pages-articles-multistream-index.txt.bz2"))
    xml_mb, bz2_mb = sum(map(len, pages)) / 1e6, multi.stat().st_size / 1e6
    print(f"sample dump: {args.pages} pages, {xml_mb:.1f} MB XML, {bz2_mb:.1f} MB bz2, {streams} streams")

    secs = secs_peer = float("inf")
    for _ in range(args.rounds):  # interleaved, best of each
        uni, bi, t = count(str(plain), per_phrase=False)
        uni_peer, bi_peer, t_peer = count(str(plain), per_phrase=True)
        assert (uni, bi) == (uni_peer, bi_peer), "the two counting paths disagree"
        secs, secs_peer = min(secs, t), min(secs_peer, t_peer)
    tokens = sum(uni.values())
    print(f"counting, 1 core: {tokens:,} tokens in {secs:.1f} s = {tokens / secs:,.0f} tokens/s, "
          f"{xml_mb / secs:.2f} MB XML/s, {bz2_mb / secs:.2f} MB bz2/s ({len(uni):,} words, {len(bi):,} bigrams)")
    print(f"peer (textnorm.tokens per phrase): {tokens / secs_peer:,.0f} tokens/s; ratio {secs_peer / secs:.2f}")

    times: dict[int, float] = {}
    phase: dict[int, float] = {}
    for round_ in range(args.rounds):  # interleaved, best of each: the machine is shared
        for w in (1, 2):
            out = tmp / f"out{w}-{round_}"
            t = run_job(str(multi), out, w, args.range_mb)
            reads = [json.loads(line) for line in (out / "reads.jsonl").read_text().splitlines()]
            p = max(r["started"] + r["seconds"] for r in reads) - min(r["started"] for r in reads)
            print(f"job, {w} worker(s): {t:.1f} s in all; reading phase {p:.1f} s, {len(reads)} ranges on "
                  f"{len({r['worker'] for r in reads})} worker process(es)")
            times[w], phase[w] = min(times.get(w, t), t), min(phase.get(w, p), p)
            same = (out / "allowlist.tsv").read_bytes() == (tmp / "out1-0" / "allowlist.tsv").read_bytes()
            assert same, "1 and 2 workers wrote different allowlists"
    print(f"best of {args.rounds}: whole job speed-up {times[1] / times[2]:.2f}; the machine's own for 2 pure-CPU "
          f"processes right after: {machine_speedup():.2f}")
    print(f"ratio: {phase[1] / phase[2]:.2f}")


if __name__ == "__main__":
    main()
