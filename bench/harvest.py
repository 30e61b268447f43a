"""Harvest cost against what a user would assemble from the peers, in CPU seconds per MB of WAT.

    pip install -e '.[bench]' && pip install --no-deps -r bench/requirements-cc2dataset.txt
    python bench/harvest.py [--mb 60] [--rounds 3] [--entries 100000] [--baseline DIR]

Input: a crawl made by the project's generator (`wit_pipeline.synthetic`, seeded; images are
not needed, so they are rendered as 8x8 placeholders) whose alt texts are then varied with
English words so that each text occurs about twice per file (as on real crawls; the generator
repeats each ~9x), copied with other hosts (`imgNN.example.com`, same length) until there are
at least `--mb` megabytes of complete WAT files. The allowlist: wordfreq's `--entries` most
frequent English words (a realistic size: most English captions match something, as with
MetaCLIP's 500k list), used by both sides. Sides, one core each:

  (a) cc2dataset 1.5.0 `process_wat(path, "image")`, LAION's extraction (a stub `pyspark`
      package stands in for the Spark it imports and does not use here);
  (p) the assembled peer, what a user would build from the peers to get wit's result: (a),
      then fastText LID per text (the same lid.176 model, through its Python wrapper), then
      MetaCLIP's matching (its `substr_matching` rule: the text spaced around punctuation and
      padded, the entries padded, one pyahocorasick automaton), exact dedup of (URL, text),
      MetaCLIP's balancing (entry counts, then a coin per matched entry of a pair, kept if
      any coin says so) and the selection written to parquet;
  (b) wit's extraction (`extract.iter_pairs`) and wit's per-file pass
      (`stages.harvest.per_file.harvest_file`: extraction, text rules, LID, matching);
  (c) the whole `wit harvest` on Beam's FnApiRunner in this process (parts, dedup,
      balancing, selected pairs, stats.json);
  (d) with `--baseline DIR` (a checkout of an earlier wit, e.g. `git worktree add DIR REV`):
      `wit harvest` from DIR and from this checkout, each in a child process (CPU from the
      children's rusage), so a change's cut in CPU per MB is measured by the same method.

Every side runs once untimed first (imports, model loads, caches). Then `--rounds` interleaved
rounds; in each, a side is timed on all files and on one file, and the difference over the
difference in MB is its marginal cost, so start-up neither hides nor inflates the per-MB rate.
The median round is reported. (a) and (b) must yield the same (page, alt text) pairs; wit's
`title` fallbacks are counted apart. Last lines: `extract ratio: b/a` (extraction only),
`ratio: c/p` (wit's whole harvest against the assembled peer), and with `--baseline`
`cpu cut`: 1 - this checkout's CPU per MB / the baseline's.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gzip
import io
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
import zlib
from pathlib import Path

from wit_pipeline.core.outputs import STATS

HOST = b"img00.example.com"  # a DNS name, as on the web (the demo serves 127.0.0.1:PORT)


def _stub_pyspark() -> None:
    pyspark = types.ModuleType("pyspark")
    pyspark.SparkContext = object
    sql = types.ModuleType("pyspark.sql")
    sql.SparkSession = object
    functions = types.ModuleType("pyspark.sql.functions")
    functions.rand = lambda *a, **k: None
    sys.modules.update({"pyspark": pyspark, "pyspark.sql": sql, "pyspark.sql.functions": functions})


def make_input(root: Path, mb: float, seed: int = 0) -> list[Path]:
    """Complete WAT files of a generated crawl, texts varied to ~2 per file, plus
    host-rewritten copies, >= `mb` MB in all."""
    from PIL import Image

    import wit_pipeline.synthetic.generate as gen

    gen.render = lambda concept, size, s: Image.new("RGB", (8, 8), (s % 251, 0, 0))
    crawl = root / "crawl"
    gen.generate_crawl(crawl, f"http://{HOST.decode()}", seed=seed, pages=3000, imgs_per_page=10, files=3)
    originals = sorted((crawl / "crawl" / "wat").glob("*.wat.gz"))[:-1]  # the last one is truncated on purpose
    words = english_words(20000)
    varied = [_vary_texts(src.read_bytes(), words, seed + i) for i, src in enumerate(originals)]
    wat = root / "wat"
    wat.mkdir()
    files, total, copy = [], 0, 0
    while total < mb * 1e6:
        for src, data in zip(originals, varied):
            dest = wat / src.name.replace(".warc.wat.gz", f"-{copy:02d}.warc.wat.gz")
            dest.write_bytes(_rehost(data, copy))
            files.append(dest)
            total += dest.stat().st_size
        copy += 1
    return files


def english_words(n: int) -> list[str]:
    """wordfreq's n most frequent English words that are one token as wit and MetaCLIP see it."""
    import wordfreq

    from wit_pipeline.text import textnorm

    found, seen = [], set()
    for word in wordfreq.top_n_list("en", int(n * 1.3)):
        if textnorm.tokens(word) == [word] and word not in seen and len(found) < n:
            seen.add(word)
            found.append(word)
    return found


def write_allowlist(path: Path, entries: int) -> list[str]:
    """The allowlist both sides use: the `entries` most frequent English words."""
    import wordfreq

    from wit_pipeline.text.allowlist import write_allowlist as write

    words = english_words(entries)
    write(str(path), ((w, "unigram", int(wordfreq.word_frequency(w, "en") * 1e9)) for w in words))
    return words


def _vary_texts(data: bytes, words: list[str], seed: int) -> bytes:
    """The WAT with each image link's alt text given a word of its own every second time it
    occurs: each text then repeats about twice per file, not ~9 times."""
    import orjson

    rng = random.Random(seed)
    seen: collections.Counter = collections.Counter()
    suffix: dict[tuple[str, int], str] = {}
    out, rest = io.BytesIO(), data
    while rest:
        inflater = zlib.decompressobj(31)
        record = inflater.decompress(rest)
        rest = inflater.unused_data
        head, sep, body = record.partition(b"\r\n\r\n")
        if b"WARC-Type: metadata" in head and body.strip():
            doc = orjson.loads(body)
            links = (doc.get("Envelope", {}).get("Payload-Metadata", {}).get("HTTP-Response-Metadata", {})
                     .get("HTML-Metadata", {}).get("Links", []))
            for link in links:
                alt = link.get("alt")
                if link.get("path", "").startswith("IMG") and alt:
                    n = seen[alt]
                    seen[alt] += 1
                    word = suffix.setdefault((alt, n // 2), rng.choice(words))
                    link["alt"] = f"{alt} {word}"
            payload = orjson.dumps(doc) + b"\r\n\r\n"
            head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % (len(payload) - 4), head)
            record = head + sep + payload
        out.write(gzip.compress(record, compresslevel=6, mtime=0))
    return out.getvalue()


def _rehost(data: bytes, copy: int) -> bytes:
    """Every gzip member again, with the host's third byte set to `copy` (same length)."""
    if copy == 0:
        return data
    new = f"img{copy:02d}.example.com".encode()
    assert len(new) == len(HOST) and copy < 100
    out, rest = io.BytesIO(), data
    while rest:
        inflater = zlib.decompressobj(31)
        record = inflater.decompress(rest)
        out.write(gzip.compress(record.replace(HOST, new), compresslevel=6, mtime=0))
        rest = inflater.unused_data
    return out.getvalue()


def cc2dataset_pairs(files: list[Path]) -> list[tuple]:
    from cc2dataset.main import process_wat

    return [row for f in files for row in process_wat(str(f), "image")]


def wit_pairs(files: list[Path]) -> list[dict]:
    from wit_pipeline.core.stats import DictTally
    from wit_pipeline.web.extract import iter_pairs

    tally = DictTally()
    return [p for f in files for p in iter_pairs(str(f), tally, lambda *_: None)]


class Peer:
    """What a user would assemble from the peers for wit's result (side (p)); its models are
    built once, as a job would per worker."""

    def __init__(self, entries: list[str], t: int, seed: int, min_score: float = 0.3) -> None:
        import ahocorasick
        import fasttext

        from wit_pipeline.text.langid import default_model_path

        self.lid = fasttext.load_model(default_model_path())
        self.automaton = ahocorasick.Automaton()
        for i, entry in enumerate(entries):  # MetaCLIP: an entry padded where it begins or ends a word
            self.automaton.add_word(_metaclip_padded(entry), i)
        self.automaton.make_automaton()
        self.t, self.seed, self.min_score = t, seed, min_score

    def __call__(self, files: list[Path]) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        matched, seen = [], set()
        for _, url, alt, _, page in cc2dataset_pairs(files):  # (uid, url, alt, cc_filename, page_url)
            if not alt:
                continue
            labels, probs = self.lid.predict(alt.replace("\n", " "), k=1)
            if labels[0] != "__label__en" or probs[0] < self.min_score:
                continue
            ids = {i for _, i in self.automaton.iter(_metaclip_spaced(alt))}
            if ids and (url, alt) not in seen:
                seen.add((url, alt))
                matched.append((url, alt, page, sorted(ids)))
        counts = collections.Counter(i for *_, ids in matched for i in ids)
        rng = random.Random(self.seed)
        keep = [row for row in matched if any(rng.random() < self.t / counts[i] for i in row[3])]
        out = Path(tempfile.mkdtemp(prefix="wit-bench-peer-"))
        try:
            columns = list(zip(*keep)) or [[], [], [], []]
            table = pa.table({"url": list(columns[0]), "caption": list(columns[1]), "page_url": list(columns[2]),
                              "entry_ids": pa.array(list(columns[3]), pa.list_(pa.int32()))})
            pq.write_table(table, out / "selected.parquet")
        finally:
            shutil.rmtree(out)
        return len(keep)


def _metaclip_padded(entry: str) -> str:
    """MetaCLIP's spaced entry: a space before and after unless that end is CJK-like or
    punctuation (the allowlist here is English words: both ends padded)."""
    return f" {entry} "


_WRAP = str.maketrans({c: f" {c} " for c in ",.;:?!`"} | {c: " " for c in "\t\n\r"})


def _metaclip_spaced(text: str) -> str:
    """MetaCLIP's spaced text: padded, the listed punctuation set apart, tabs and newlines as spaces."""
    return f" {text.translate(_WRAP)} "


def wit_per_file(files: list[Path], allowlist: str) -> int:
    from wit_pipeline.core.gc_pause import paused_gc
    from wit_pipeline.stages.harvest import per_file
    from wit_pipeline.stages.harvest.config import HarvestConfig
    from wit_pipeline.text.langid import LanguageIdentifier
    from wit_pipeline.text.matcher import QueryMatcher

    config = HarvestConfig(allowlist=allowlist)
    models = _MODELS.get(allowlist) or _MODELS.setdefault(
        allowlist, per_file.Models(LanguageIdentifier(), QueryMatcher.from_file(allowlist)))
    with paused_gc():  # as make_part runs it
        return sum(per_file.harvest_file(str(f), config, models)[0].num_rows for f in files)


_MODELS: dict = {}


def wit_harvest(files: list[Path], allowlist: str) -> int:
    from beam_jobs import harvest

    out = tempfile.mkdtemp(prefix="wit-bench-harvest-")
    try:
        args = [a for f in files for a in ("--input", str(f))]
        with contextlib.redirect_stdout(io.StringIO()):  # its stage counts, once per round
            harvest.run([*args, "--output", out, "--allowlist", allowlist, "--num-shards", "4", "--no-progress"])
        return json.loads(Path(out, STATS).read_text())["stages"][-1]["out"]
    finally:
        shutil.rmtree(out)


class HarvestIn:
    """`wit harvest` from a checkout `tree`, in a child process: its CPU (user + system, from
    the children's rusage) is the measure; returns the number of selected pairs."""

    def __init__(self, tree: Path, allowlist: str) -> None:
        self.tree, self.allowlist = tree.resolve(), allowlist

    def __call__(self, files: list[Path]) -> int:
        out = tempfile.mkdtemp(prefix="wit-bench-harvest-")
        try:
            args = [a for f in files for a in ("--input", str(f))]
            env = {**os.environ, "PYTHONPATH": str(self.tree), "PYTHONWARNINGS": "ignore"}
            subprocess.run([sys.executable, "-m", "beam_jobs.harvest", *args, "--output", out, "--allowlist",
                            self.allowlist, "--num-shards", "4", "--no-progress"],
                           cwd=self.tree, env=env, check=True, capture_output=True)
            return json.loads(Path(out, STATS).read_text())["stages"][-1]["out"]
        finally:
            shutil.rmtree(out)


def cpu(fn, files: list[Path]) -> tuple[float, object]:
    if isinstance(fn, HarvestIn):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = fn(files)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), result
    start = time.process_time()
    result = fn(files)
    return time.process_time() - start, result


def peak_rss_mib(files: list[Path], allowlist: str) -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent (this
    # process, hundreds of MiB by now), so the child would report the parent's peak.
    code = ("import sys; from beam_jobs import harvest; harvest.run(sys.argv[1:]); "
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))")
    out = tempfile.mkdtemp(prefix="wit-bench-rss-")
    try:
        args = [a for f in files for a in ("--input", str(f))]
        done = subprocess.run([sys.executable, "-c", code, *args, "--output", out, "--allowlist", allowlist,
                               "--no-progress"],
                              capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        return int(done.stdout.strip().splitlines()[-1]) / 1024
    finally:
        shutil.rmtree(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--entries", type=int, default=100_000, help="allowlist size (wordfreq's most frequent words)")
    ap.add_argument("--baseline", type=Path, help="a checkout of an earlier wit: its harvest's CPU against this one's")
    args = ap.parse_args()
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    _stub_pyspark()
    import functools
    import logging

    from loguru import logger

    from wit_pipeline.stages.harvest.config import HarvestConfig

    logger.remove()  # cc2dataset logs a line per file
    logging.disable(logging.INFO)
    root = Path(tempfile.mkdtemp(prefix="wit-bench-"))
    try:
        files = make_input(root, args.mb)
        allowlist = str(root / "allowlist.tsv")
        entries = write_allowlist(Path(allowlist), args.entries)
        mb = sum(f.stat().st_size for f in files) / 1e6
        one_mb = files[0].stat().st_size / 1e6
        print(f"input: {len(files)} WAT files, {mb:.1f} MB compressed (one file: {one_mb:.1f} MB); "
              f"allowlist: {len(entries):,} entries")
        compare_pairs(files)
        config = HarvestConfig()
        sides = {"(a) cc2dataset process_wat": cc2dataset_pairs,
                 "(p) assembled peer": Peer(entries, config.t, config.seed, config.min_lang_score),
                 "(b) wit extraction": wit_pairs,
                 "(b) wit per-file pass": functools.partial(wit_per_file, allowlist=allowlist),
                 "(c) wit harvest (FnApiRunner)": functools.partial(wit_harvest, allowlist=allowlist)}
        if args.baseline:
            sides["(d) wit harvest, child process"] = HarvestIn(Path(__file__).resolve().parent.parent, allowlist)
            sides["(d) baseline harvest, child"] = HarvestIn(args.baseline, allowlist)
        for fn in sides.values():  # warm: imports, models, caches
            fn(files[:1])
        marginal = {name: [] for name in sides}
        items = {}
        for r in range(args.rounds):
            for name, fn in sides.items():
                small, _ = cpu(fn, files[:1])
                big, result = cpu(fn, files)
                items[name] = result if isinstance(result, int) else len(result)
                marginal[name].append((big - small) / (mb - one_mb))
                print(f"round {r + 1}: {name}: {big:.1f} s CPU on all, {small:.1f} s on one file", flush=True)
        rate = {name: 1.0 / statistics.median(v) for name, v in marginal.items()}
        for name in sides:
            per_s = items[name] / (mb / rate[name])
            print(f"{name:32s} {rate[name]:6.1f} MB/s {1000 / rate[name]:6.1f} ms/MB {per_s:9,.0f} items/s "
                  f"({items[name]:,} items)")
        small_rss, big_rss = peak_rss_mib(files[:1], allowlist), peak_rss_mib(files[:10], allowlist)
        print(f"peak RSS of wit harvest: {small_rss:.0f} MiB on 1 file, {big_rss:.0f} MiB on 10 files")
        print(f"memory growth: {big_rss / small_rss:.2f}")
        extraction = rate["(a) cc2dataset process_wat"]
        print(f"whole job / peer extraction alone: {rate['(c) wit harvest (FnApiRunner)'] / extraction:.2f}")
        print(f"extract ratio: {rate['(b) wit extraction'] / extraction:.2f}")
        if args.baseline:
            cut = 1 - rate["(d) baseline harvest, child"] / rate["(d) wit harvest, child process"]
            print(f"cpu cut against {args.baseline}: {100 * cut:.0f}%")
        print(f"ratio: {rate['(c) wit harvest (FnApiRunner)'] / rate['(p) assembled peer']:.2f}")
    finally:
        shutil.rmtree(root)


def compare_pairs(files: list[Path]) -> None:
    """(a) and (b) must find the same (page, alt text) pairs; title fallbacks are wit's own."""
    from wit_pipeline.text.textfilter import clean_text

    theirs = collections.Counter((row[4], clean_text(row[2])) for row in cc2dataset_pairs(files[:2]))
    theirs = collections.Counter({k: v for k, v in theirs.items() if k[1]})
    pairs = wit_pairs(files[:2])
    ours = collections.Counter((p["page_url"], p["text"]) for p in pairs if p["text_source"] == "alt")
    titles = sum(1 for p in pairs if p["text_source"] == "title")
    same = sum((theirs & ours).values())
    print(f"pairs on 2 files: cc2dataset {sum(theirs.values()):,}, wit {sum(ours.values()):,} from alt "
          f"(+{titles:,} from title), {same:,} the same")
    if theirs != ours:
        raise SystemExit(f"the extractors disagree: only cc2dataset {list((theirs - ours).items())[:3]}, "
                         f"only wit {list((ours - theirs).items())[:3]}")


if __name__ == "__main__":
    main()
