"""Matching throughput: QueryMatcher.match_many vs a per-caption pyahocorasick loop.

The allowlist is 500k entries like CLIP's: English words from wordfreq plus bigrams of them;
the captions are seeded mixes of frequent and rare words, names, numbers, punctuation and
case, 3-30 words. Both matchers must give the same ids for every caption.

    /work/venv/bin/python bench/match.py [--captions 100000] [--entries 500000] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import resource
import time

import ahocorasick

from wit_pipeline.text import textnorm
from wit_pipeline.text.matcher import QueryMatcher

NAMES = ["Alice", "Bob", "María", "José", "Zoë", "O'Brien", "Nakamura", "Müller", "Smith", "Nguyen",
         "London", "Paris", "New York", "São Paulo", "Tokyo", "Berlin", "McDonald's", "iPhone"]
PUNCT = [",", ".", "!", "?", ":", ";", " -", " |", " /", "(", ")", "\"", "'", "&", "#", "…", " —"]


def make_entries(n: int, seed: int) -> list[str]:
    """n unique allowlist entries: the top wordfreq words, then seeded bigrams of them."""
    import wordfreq

    words: list[str] = []
    seen: set[str] = set()
    for w in wordfreq.iter_wordlist("en"):
        norm = textnorm.normalize(w)
        if norm and norm not in seen:
            seen.add(norm)
            words.append(w)
        if len(words) >= min(n, 300_000):
            break
    entries = list(words)
    rng = random.Random(seed)
    head = words[:20_000]
    while len(entries) < n:
        bigram = f"{rng.choice(head)} {rng.choice(head)}"
        norm = textnorm.normalize(bigram)
        if norm not in seen:
            seen.add(norm)
            entries.append(bigram)
    return entries[:n]


def make_captions(n: int, seed: int) -> list[str]:
    import wordfreq

    rng = random.Random(seed)
    common = wordfreq.top_n_list("en", 5000)
    rare = wordfreq.top_n_list("en", 100_000)[50_000:]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(3, 30)):
            r = rng.random()
            if r < 0.70:
                w = rng.choice(common)
            elif r < 0.82:
                w = rng.choice(rare)
            elif r < 0.90:
                w = rng.choice(NAMES)
            elif r < 0.95:
                w = str(rng.randint(0, 3000)) if rng.random() < 0.7 else f"{rng.randint(1, 99)}x{rng.randint(1, 99)}"
            else:
                w = rng.choice(["IMG_0042.jpg", "e-mail", "U.S.", "co-op", "DSC-1234", "#tbt", "4K"])
            c = rng.random()
            if c < 0.15:
                w = w.capitalize()
            elif c < 0.18:
                w = w.upper()
            parts.append(w)
            if rng.random() < 0.12:
                parts[-1] += rng.choice(PUNCT)
        out.append(" ".join(parts))
    return out


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def compare(entries: list[str], captions: list[str], matcher: QueryMatcher, batch: int,
            chunk_size: int) -> tuple[list[list[int]], list[list[int]], float, float]:
    """(baseline's ids, QueryMatcher's ids, baseline CPU s, QueryMatcher CPU s) on the same captions."""
    # Baseline: the plain loop, one automaton iteration per padded caption.
    rss0 = rss_mib()
    t0 = time.perf_counter()
    base = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for qid, q in enumerate(entries):
        base.add_word(f" {textnorm.normalize(q)} ", qid)
    base.make_automaton()
    print(f"baseline build: {time.perf_counter() - t0:.2f} s, RSS +{rss_mib() - rss0:.0f} MiB")

    def baseline(chunk: list[str]) -> list[list[int]]:
        out = []
        for c in chunk:
            norm = textnorm.normalize(c)
            out.append(sorted({v for _, v in base.iter(" " + norm + " ")}))
        return out

    def fast(chunk: list[str]) -> list[list[int]]:
        out: list[list[int]] = []
        for i in range(0, len(chunk), batch):
            out.extend(matcher.match_many(chunk[i:i + batch]))
        return out

    # The machine is shared: alternate the two on chunks so both see the same load, and
    # count this process's CPU time rather than wall time.
    expected: list[list[int]] = []
    got: list[list[int]] = []
    t_base = t_fast = 0.0
    for i in range(0, len(captions), chunk_size):
        chunk = captions[i:i + chunk_size]
        t0 = time.process_time()
        expected.extend(baseline(chunk))
        t1 = time.process_time()
        got.extend(fast(chunk))
        t_fast += time.process_time() - t1
        t_base += t1 - t0

    return expected, got, t_base, t_fast


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captions", type=int, default=100_000)
    ap.add_argument("--entries", type=int, default=500_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1000, help="captions per match_many call")
    ap.add_argument("--chunk", type=int, default=5000, help="captions per alternation of the two")
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()} "
          f"python={platform.python_version()}")
    print(f"date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")

    t0 = time.perf_counter()
    entries = make_entries(args.entries, args.seed)
    captions = make_captions(args.captions, args.seed)
    print(f"data: {len(entries)} entries, {len(captions)} captions "
          f"({sum(len(c.split()) for c in captions) / len(captions):.1f} words avg), {time.perf_counter() - t0:.1f} s")

    rss0 = rss_mib()
    t0 = time.perf_counter()
    matcher = QueryMatcher.from_queries(entries)
    build = time.perf_counter() - t0
    print(f"QueryMatcher build: {build:.2f} s, RSS +{rss_mib() - rss0:.0f} MiB")

    expected, got, t_base, t_fast = compare(entries, captions, matcher, args.batch, args.chunk)

    mismatches = sum(g != e for g, e in zip(got, expected))
    n_matches = sum(map(len, expected))
    print(f"matches: {n_matches} ({n_matches / len(captions):.1f}/caption), "
          f"captions with no match: {sum(not e for e in expected)}, mismatches: {mismatches}")
    assert len(got) == len(expected) and mismatches == 0, "match_many disagrees with the baseline"
    print(f"baseline per-caption pyahocorasick loop: {len(captions) / t_base:,.0f} captions/s ({t_base:.2f} s CPU)")
    print(f"QueryMatcher.match_many (batch {args.batch}): {len(captions) / t_fast:,.0f} captions/s ({t_fast:.2f} s CPU)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"ratio: {t_base / t_fast:.2f}")


if __name__ == "__main__":
    main()
