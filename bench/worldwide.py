"""Worldwide harvest cost: CPU seconds per compressed MB against an English-only harvest of the same files.

    python bench/worldwide.py [--mb 20] [--rounds 3] [--entries 100000] [--mix half|equal]

Input: a crawl from the project's generator (`generate_crawl(languages=...)`: its clean pairs
captioned in turn in English, Chinese, Japanese, Arabic and German; images rendered as 8x8
placeholders, since only the WAT files are read), copied with other hosts until there are
`--mb` MB of WAT. `--mix half` (default): half the clean pairs are English, as in Common
Crawl, where about 45% of pages are English; `--mix equal`: a fifth each. A worldwide harvest
keeps every language's pairs where an English-only one drops 4 in 5 of them (equal) or half
(half) at language ID, so the later stages (keys, dedup, balancing, writing) carry more pairs.
Lists: the English one and one per other language, each padded to `--entries` entries
(words of its own script, so a Chinese or Japanese list builds a large automaton), in a folder.

Interleaved over `--rounds`, one core each:
  (a) English only: `--allowlist en.tsv --languages en` (today's harvest);
  (b) worldwide: `--allowlist FOLDER --languages all`: more captions pass language ID and are
      matched, each only against its own language's matcher.
each as the per-file pass (`per_file.harvest_file` over every file, models loaded before the
clock starts) and as the whole `wit harvest` on Beam's FnApiRunner in this process, timed on
every file and on one file (the difference over the difference in MB is the marginal cost per
MB: start-up and list loading excluded). Best of the rounds. Last lines: `per-file ratio: b/a`
and `ratio: b/a`, the whole job's (the target is at most 1.3).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harvest import HOST, _rehost  # noqa: E402  (the English bench's host rewriting)

from wit_pipeline.core.outputs import STATS  # noqa: E402

_SCRIPTS = {"zh": (0x4E00, 0x9FFF), "ja": (0x30A0, 0x30FF), "ar": (0x0627, 0x064A), "de": (0x61, 0x7A), "en": (0x61, 0x7A)}


MIXES = {"half": ("en", "zh", "en", "ja", "en", "ar", "en", "de"), "equal": ("en", "zh", "ja", "ar", "de")}


def make_input(root: Path, mb: float, mix: str = "half", seed: int = 0) -> list[Path]:
    from PIL import Image

    import wit_pipeline.synthetic.generate as gen

    gen.render = lambda concept, size, s: Image.new("RGB", (8, 8), (s % 251, 0, 0))
    crawl = root / "crawl"
    gen.generate_crawl(crawl, f"http://{HOST.decode()}", seed=seed, pages=1500, imgs_per_page=10, files=3,
                       languages=MIXES[mix])
    originals = sorted((crawl / "crawl" / "wat").glob("*.wat.gz"))[:-1]  # the last one is truncated on purpose
    wat = root / "wat"
    wat.mkdir()
    files, total, copy = [], 0, 0
    while total < mb * 1e6:
        for src in originals:
            dest = wat / src.name.replace(".warc.wat.gz", f"-{copy:02d}.warc.wat.gz")
            dest.write_bytes(_rehost(src.read_bytes(), copy))
            files.append(dest)
            total += dest.stat().st_size
        copy += 1
    return files


def make_lists(root: Path, entries: int, seed: int = 0) -> tuple[Path, Path]:
    """(en.tsv alone, a folder of every language's list), each list padded to `entries` entries."""
    from wit_pipeline.synthetic import worldwide
    from wit_pipeline.text import textnorm
    from wit_pipeline.text.allowlist import load_allowlist, write_allowlist

    folder = root / "lists"
    folder.mkdir()
    rng = random.Random(seed)
    for lang in ("en", *worldwide.LANGUAGES):
        rows = [tuple(r) for r in (load_allowlist("demo").rows() if lang == "en" else worldwide.concept_rows(lang))]
        seen = {textnorm.normalize(r[0]) for r in rows}
        lo, hi = _SCRIPTS[lang]
        while len(rows) < entries:
            word = "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(2, 7)))
            if (norm := textnorm.normalize(word)) and norm not in seen:
                seen.add(norm)
                rows.append((word, "unigram", 1))
        write_allowlist(str(folder / f"{lang}.tsv"), rows)
    english = root / "en.tsv"
    shutil.copyfile(folder / "en.tsv", english)
    return english, folder


def harvest(files: list[Path], allowlist: Path, languages: str) -> dict:
    from beam_jobs import harvest as job

    out = tempfile.mkdtemp(prefix="wit-bench-worldwide-")
    try:
        args = [a for f in files for a in ("--input", str(f))]
        with contextlib.redirect_stdout(io.StringIO()):
            job.run([*args, "--output", out, "--allowlist", str(allowlist), "--languages", languages,
                     "--num-shards", "2", "--no-progress"])
        return json.loads(Path(out, STATS).read_text())
    finally:
        shutil.rmtree(out)


def per_file_pass(files: list[Path], models: dict, name: str) -> int:
    from wit_pipeline.stages.harvest import per_file

    config, loaded = models[name]
    return sum(per_file.harvest_file(str(f), config, loaded)[0].num_rows for f in files)


def load_models(english: Path, folder: Path) -> dict:
    from wit_pipeline.stages.harvest import per_file
    from wit_pipeline.stages.harvest.config import HarvestConfig

    out = {}
    for name, config in (("english", HarvestConfig(allowlist=str(english))),
                         ("worldwide", HarvestConfig(allowlist=str(folder), languages=("all",)))):
        out[name] = (config, per_file.Models(per_file.load_lid(config), per_file.load_matcher(config)))
    return out


def cpu(fn, *args) -> tuple[float, object]:
    start = time.process_time()
    result = fn(*args)
    return time.process_time() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--mix", choices=sorted(MIXES), default="half")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wit-bench-") as tmp:
        root = Path(tmp)
        files = make_input(root, args.mb, args.mix)
        english, folder = make_lists(root, args.entries)
        models = load_models(english, folder)
        mb_all = sum(f.stat().st_size for f in files) / 1e6
        mb_one = files[0].stat().st_size / 1e6
        print(f"input: {len(files)} WAT files, {mb_all:.1f} MB, mix {args.mix} {MIXES[args.mix]}; "
              f"lists: {args.entries:,} entries per language")
        runs = {"english": (english, "en"), "worldwide": (folder, "all")}
        best: dict[str, float] = {}
        for r in range(args.rounds):
            for name, (allowlist, languages) in runs.items():
                seconds, rows = cpu(per_file_pass, files, models, name)
                best[f"per-file {name}"] = min(best.get(f"per-file {name}", float("inf")), seconds / mb_all)
                full, stats = cpu(harvest, files, allowlist, languages)
                one, _ = cpu(harvest, files[:1], allowlist, languages)
                per_mb = (full - one) / (mb_all - mb_one)
                best[name] = min(best.get(name, float("inf")), per_mb)
                stages = {s["name"]: s for s in stats["stages"]}
                print(f"round {r}: {name:<9} per-file pass {seconds / mb_all:6.3f} CPU s/MB ({rows:,} candidates); "
                      f"whole job {per_mb:6.3f} CPU s/MB (matched {stages['match']['in']:,} pairs, "
                      f"selected {stages['balance']['out']:,})", flush=True)
        for what in ("per-file ", ""):
            print(f"{what or 'whole job '}english: {best[what + 'english']:.3f} CPU s/MB, "
                  f"worldwide: {best[what + 'worldwide']:.3f} CPU s/MB")
        print(f"per-file ratio: {best['per-file worldwide'] / best['per-file english']:.2f}")
        print(f"ratio: {best['worldwide'] / best['english']:.2f}")


if __name__ == "__main__":
    main()
