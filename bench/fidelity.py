"""What reading crawls as browsers and warcio do costs: the per-file pass (`harvest_file`:
read, extract, text rules, language ID, matching) of this checkout against the same checkout
with the fidelity modules (web/archive, extract, page, htmlscan, charset, text/langid) as they
were before that work, in CPU seconds, on the same generated WARC and WAT files.

    python bench/fidelity.py [--base REV] [--pages 3000] [--rounds 3]

`--base` is the revision those modules are taken from (pinned: the last one before them).
Both trees run in a subprocess, interleaved over `--rounds`, one core each; the best round of
each counts. Model loading is outside the timing. Last line: `ratio: <this / base>` for WARC
and WAT input together.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import sys, time
try:  # the harvest package
    from wit_pipeline.stages.harvest import per_file as h
    from wit_pipeline.stages.harvest.config import HarvestConfig
except ImportError:  # the single module of earlier revisions
    from wit_pipeline.stages import harvest as h
    HarvestConfig = h.HarvestConfig
from wit_pipeline.text.langid import LanguageIdentifier
from wit_pipeline.text.matcher import QueryMatcher
config = HarvestConfig()
models = h.Models(LanguageIdentifier(), QueryMatcher.from_file(config.allowlist))
for kind in ("warc", "wat"):
    files = [f for f in sys.argv[1:] if (".wat." in f) == (kind == "wat")]
    t0 = time.process_time()
    rows = sum(h.harvest_file(f, config, models)[0].num_rows for f in files)
    print(kind, time.process_time() - t0, rows)
"""


def make_input(root: Path, pages: int) -> list[str]:
    from PIL import Image

    import wit_pipeline.synthetic.generate as gen

    gen.render = lambda concept, size, s: Image.new("RGB", (8, 8), (s % 251, 0, 0))
    gen.generate_crawl(root, "http://127.0.0.1:8000", seed=0, pages=pages, imgs_per_page=10, files=3)
    warc = sorted((root / "crawl" / "warc").glob("*.warc.gz"))[:-1]  # the last is truncated on purpose
    wat = sorted((root / "crawl" / "wat").glob("*.wat.gz"))[:-1]
    return [str(p) for p in warc + wat]


BASE = "309a4d152688b7d05020c574c12f6d4ed1a6379a"
FIDELITY_FILES = ("wit_pipeline/web/archive.py", "wit_pipeline/web/extract.py", "wit_pipeline/web/page.py",
                  "wit_pipeline/web/htmlscan.py", "wit_pipeline/web/charset.py", "wit_pipeline/text/langid.py")


def export(rev: str, dest: Path) -> None:
    """This checkout's code, with the fidelity modules as they were at `rev`."""
    archive = dest / "this.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), "HEAD", "wit_pipeline", "queries"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    for path in FIDELITY_FILES:
        old = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{path}"], check=True, capture_output=True).stdout
        (dest / path).write_bytes(old)


def run(tree: Path, files: list[str]) -> dict[str, tuple[float, int]]:
    out = subprocess.run([sys.executable, "-c", CHILD, *files], cwd=tree, env={"PYTHONPATH": str(tree)},
                         capture_output=True, text=True, check=True).stdout
    return {kind: (float(sec), int(rows)) for kind, sec, rows in (line.split() for line in out.splitlines())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=BASE)
    ap.add_argument("--pages", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    base = args.base
    with tempfile.TemporaryDirectory(prefix="wit-bench-fidelity-") as tmp:
        root = Path(tmp)
        files = make_input(root / "crawl", args.pages)
        (root / "base").mkdir()
        export(base, root / "base")
        best: dict[str, dict[str, tuple[float, int]]] = {"base": {}, "this": {}}
        for _ in range(args.rounds):
            for name, tree in (("base", root / "base"), ("this", REPO)):
                for kind, (sec, rows) in run(tree, files).items():
                    if kind not in best[name] or sec < best[name][kind][0]:
                        best[name][kind] = (sec, rows)
    print(f"base {base[:10]}; {len(files)} files")
    for kind in ("warc", "wat"):
        (b, brows), (t, trows) = best["base"][kind], best["this"][kind]
        print(f"{kind}: base {b:.2f} s CPU ({brows} candidates), this {t:.2f} s ({trows}), ratio {t / b:.3f}")
    total_base = sum(s for s, _ in best["base"].values())
    total_this = sum(s for s, _ in best["this"].values())
    print(f"ratio: {total_this / total_base:.3f}")


if __name__ == "__main__":
    main()
