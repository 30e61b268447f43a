"""`wit demo`: every stage, end to end, on a generated crawl served from 127.0.0.1.

The same stage entrypoints a user runs by hand (`wit harvest`, `wit download`, ...), called
in order with the options a first run needs; each stage's command line is printed so it can
be re-run on its own.

`--worldwide`: the crawl's clean pairs are captioned in English, Chinese, Japanese, Arabic and
German; a list per language is built from generated dumps (`wit build-queries --language`)
beside the English demo list, and harvest matches every caption against its own language's
list (`--allowlist FOLDER --languages all`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from wit_pipeline.core.cli_help import HelpFormatter
from wit_pipeline.synthetic.server import LoopbackServer, port_number

DEMO_PORT = 8931
MARKER = ".wit-demo"  # left in --out: the folder holds a demo's outputs, which a rerun replaces
# Everything the demo writes under --out; a rerun removes these and nothing else.
OUTPUTS = ("web", "harvest", "raw", "shards", "train", "eval-images", "eval-shards", "colours.txt",
           "contact-sheet.png", "queries.png", "report.html", "allowlists")


def prepare_out(out: Path) -> None:
    """Make `out` ready for a run: a new or empty folder, or an earlier demo's (its marker says
    so), whose named outputs are removed; a user's other files there are left alone. Any other
    non-empty folder is refused (SystemExit): `--out .` must never delete a checkout."""
    if out.exists() and not out.is_dir():
        raise SystemExit(f"wit demo: --out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise SystemExit(f"wit demo: --out {out} is not empty and holds no earlier demo run "
                             f"(no {MARKER}); give a new or empty folder")
        for name in OUTPUTS:
            path = out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by wit demo: a rerun with this --out replaces the demo's outputs here\n")


@contextlib.contextmanager
def _serving(root: Path, port: int) -> Iterator[str]:
    """Serve the generated web on `port`, or on any free port when that one is taken."""
    try:
        server = LoopbackServer(root, port).start()
    except OSError as exc:
        print(f"port {port} is busy ({exc.strerror}); serving on a free port instead: sample keys and "
              "counts will differ from the README's", flush=True)
        server = LoopbackServer(root, 0).start()
    try:
        yield server.base_url
    finally:
        server.stop()


def _stage(name: str, argv: list[str], timings: dict[str, float]) -> None:
    """Run one stage as its own process, exactly as a user would type it.

    A fresh process per stage also keeps Beam's gRPC threads away from img2dataset's
    forked workers (forking after gRPC has started can leave a worker dead and the pool hung).
    """
    print(f"\n=== wit {name} {shlex.join(argv)}", flush=True)
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "wit_pipeline.cli", name, *argv])
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
    if code:
        raise SystemExit(f"wit {name} failed with exit code {code}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wit demo", description=__doc__, formatter_class=HelpFormatter, allow_abbrev=False)
    p.add_argument("--out", default="wit-demo",
                   help="a new or empty folder for everything the demo writes, or an earlier demo's folder (its "
                   "outputs are replaced; nothing else there is touched)")
    p.add_argument("--pages", type=int, default=300, help="pages in the generated crawl (10 images each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--t", type=int, default=20, help="per-query cap for balancing (the paper's is 20000)")
    p.add_argument("--steps", type=int, default=300, help="training steps (0 skips training)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--worldwide", action="store_true",
                   help="captions in English, Chinese, Japanese, Arabic and German, a list per language built by "
                   "wit build-queries from generated dumps, and a harvest that matches each caption against its "
                   "language's list")
    p.add_argument("--port", type=port_number, default=DEMO_PORT,
                   help=f"loopback port for the generated web (default {DEMO_PORT}; 0: any free port). URLs, and so "
                   "sample keys and every number after them, depend on it: the same port and seed give the same run")
    return p


def run(argv: list[str] | None = None) -> int:
    from wit_pipeline.synthetic.concepts import COLOURS
    from wit_pipeline.synthetic.generate import generate_crawl, render_eval_set, write_concept_shards

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.steps > 0 and importlib.util.find_spec("torch") is None:
        parser.error("training needs the train extra: pip install -e '.[train]' (or --steps 0 to stop before it)")
    if args.worldwide:  # a missing segmenter stops the demo now, not after the crawl is made
        from queries import segment
        from wit_pipeline.synthetic.worldwide import LANGUAGES

        for language in LANGUAGES:
            try:
                segment.check(language, segment.default_segmenter(language))
            except ValueError as exc:
                parser.error(str(exc))
    out = Path(args.out).resolve()
    try:
        prepare_out(out)
    except SystemExit as exc:  # a folder that is not the demo's: a usage error, as in every stage
        parser.error(str(exc).removeprefix("wit demo: "))
    web, harvest, raw, shards, run_dir = (out / n for n in ("web", "harvest", "raw", "shards", "train"))
    timings: dict[str, float] = {}
    total = time.perf_counter()

    web.mkdir(parents=True)
    with _serving(web, args.port) as base_url:
        start = time.perf_counter()
        truth = generate_crawl(web, base_url, seed=args.seed, pages=args.pages, worldwide=args.worldwide)
        eval_set = render_eval_set(out / "eval-images")
        eval_shards = write_concept_shards(out / "eval-shards", n_samples=384, seed=args.seed + 1000, shard_size=128)
        timings["gen-crawl"] = time.perf_counter() - start
        print(f"generated {len(truth['links'])} image links on {args.pages} pages at {base_url}; "
              f"{len(eval_set['items'])} held-out eval images", flush=True)

        lists: list[str] = []
        if args.worldwide:
            lists = ["--allowlist", str(worldwide_allowlists(out, web, truth["dumps"], timings)), "--languages", "all"]
        _stage("harvest", ["--input", str(web / "crawl" / "wat" / "*.wat.gz"), "--output", str(harvest),
                           "--balance", "cap", "--t", str(args.t), "--seed", str(args.seed), "--num-shards", "2", *lists],
               timings)
        # The demo's images live on 127.0.0.1: downloading them needs the explicit opt-in.
        _stage("download", ["--input", str(harvest / "selected" / "*.parquet"), "--output", str(raw),
                            "--allow-loopback", "--image-size", "128", "--processes", "1", "--threads", "8"],
               timings)
    _stage("curate", ["--input", str(raw), "--output", str(shards), "--eval-images", str(out / "eval-images" / "images"),
                      "--samples-per-shard", "512", "--seed", str(args.seed), *lists[:2]], timings)
    _stage("inspect", [str(shards), "--check", "--contact-sheet", str(out / "contact-sheet.png"),
                       "--histogram", str(out / "queries.png")], timings)
    if args.steps > 0:
        classes = out / "colours.txt"
        classes.write_text("".join(f"{c}\n" for c in COLOURS))
        _stage("train", ["--shards", str(shards), "--config", "tiny",
                         "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--lr", "1e-3",
                         "--threads", "1", "--out", str(run_dir), "--seed", str(args.seed)], timings)
        _stage("eval", ["--checkpoint", str(run_dir / f"step-{args.steps:08d}.pt"),
                        "--shards", ",".join(map(str, eval_shards)), "--train-shards", str(shards), "--classes", str(classes),
                        "--threads", "1", "--out", str(run_dir / "metrics.json")], timings)

    _stage("report", [str(out), "--out", str(out / "report.html"), "--seed", str(args.seed)], timings)

    print("\n=== demo finished in %.0f s" % (time.perf_counter() - total))
    for name, seconds in timings.items():
        print(f"  {name:<10} {seconds:7.1f} s")
    outputs = [harvest, raw, shards, out / "contact-sheet.png", out / "queries.png", run_dir, run_dir / "metrics.json",
               out / "report.html"]
    print("outputs:", *(f"  {p}" for p in outputs if p.exists()), sep="\n")
    port = base_url.rsplit(":", 1)[1]
    print(f"to re-run a stage by hand, serve the generated web again first: wit serve {web} --port {port}")
    return 0


def worldwide_allowlists(out: Path, web: Path, dumps: dict[str, str], timings: dict[str, float]) -> Path:
    """out/allowlists/<code>.tsv: English's demo list, and a list per language built by
    `wit build-queries --language` from its generated dump."""
    import importlib.resources

    folder = out / "allowlists"
    folder.mkdir()
    (folder / "en.tsv").write_bytes((importlib.resources.files("queries") / "demo_allowlist.tsv").read_bytes())
    for lang, dump in sorted(dumps.items()):  # each writes allowlists/<lang>.tsv (and allowlists/build/<lang>/)
        _stage("build-queries", ["--wikipedia", str(web / dump), "--language", lang, "--output", str(folder)], timings)
    return folder
