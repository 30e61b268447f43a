"""What consent costs a download: `wit download` with its checks (robots.txt and tdmrep.json
per origin before fetching, the image response's X-Robots-Tag and tdm-reservation) against the
same download with the per-origin screening replaced by a pass-through, on a loopback site of
many origins (one HTTP server per port, in a separate process so its CPU is not counted).

    python bench/consent.py [--origins 40] [--images 10] [--repeat 2]

Every image is allowed (robots.txt disallows another folder), so both runs fetch and save the
same images. Printed per mode: wall seconds, images/s, CPU seconds per image (this process and
its img2dataset workers), and requests per origin from the servers' logs. The response header
checks cannot be turned off (they are always on); the screening is what the bench switches.
Last line: `ratio: <CPU per image, checks on / off>`.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from wit_pipeline.core import keys, schema  # noqa: E402
from wit_pipeline.stages import consent  # noqa: E402
from wit_pipeline.stages import download as dl  # noqa: E402


def serve(n_origins: int, n_images: int, conn) -> None:
    """The site, in its own process: answers `counts` with each origin's request log."""
    from wit_pipeline.synthetic.concepts import all_concepts
    from wit_pipeline.synthetic.images import encode, render
    from wit_pipeline.synthetic.origins import Origin, Route

    images = [encode(render(c, (128, 128), seed=i)) for i, c in enumerate(all_concepts()[:n_images])]
    with contextlib.ExitStack() as stack:
        origins = []
        for _ in range(n_origins):
            routes = {"/robots.txt": Route(200, b"User-agent: *\nDisallow: /private/\n")}
            routes.update({f"/img/{i}.jpg": Route(200, img, {"Content-Type": "image/jpeg"}) for i, img in enumerate(images)})
            origins.append(stack.enter_context(Origin(routes)))
        conn.send([o.base for o in origins])
        while (msg := conn.recv()) != "stop":
            if msg == "counts":
                conn.send([dict(o.paths()) for o in origins])


def selected(path: Path, bases: list[str], n_images: int) -> int:
    rows = []
    for b in bases:
        for i in range(n_images):
            url, caption = f"{b}/img/{i}.jpg", f"picture {i} at {b}"
            rows.append({"url": url, "caption": caption, "key": keys.sample_key(url, caption), "page_url": b + "/",
                         "language": "en", "lang_score": 0.9, "query_ids": [1], "queries": ["picture"]})
    pq.write_table(pa.Table.from_pylist(rows, schema=schema.SELECTED), path)
    return len(rows)


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def no_screening(tables, key_column, output, settings, proxy_url, shared_cache=None):
    """The baseline: every row fetched, no policy file asked (the consent column still filled)."""
    todo = [t.append_column(consent.CONSENT_COLUMN, pa.array([""] * t.num_rows, pa.string())) for t in tables]
    return consent.Screened(todo, {}, {})


def one_run(selected_path: Path, out: Path, checks: bool, config: dl.DownloadConfig) -> tuple[float, float, int]:
    shutil.rmtree(out, ignore_errors=True)
    real = consent.screen
    if not checks:
        consent.screen = no_screening
    try:
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        doc = dl.download(str(selected_path), str(out), config)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    finally:
        consent.screen = real
    stage = {s["name"]: s for s in doc["stages"]}[dl.STAGE]
    return wall, cpu, stage["out"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--origins", type=int, default=40)
    p.add_argument("--images", type=int, default=10, help="images per origin")
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args(argv)
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    site = ctx.Process(target=serve, args=(args.origins, args.images, there), daemon=True)
    site.start()
    bases = here.recv()
    config = dl.DownloadConfig(allow_loopback=True, threads=16, processes=1, timeout=10,
                               number_sample_per_shard=10_000)
    results: dict[bool, list[tuple[float, float, int]]] = {True: [], False: []}
    requests: dict[bool, Counter] = {}
    with tempfile.TemporaryDirectory() as tmp:
        total = selected(Path(tmp) / "selected.parquet", bases, args.images)
        for r in range(args.repeat):
            for checks in (False, True) if r % 2 == 0 else (True, False):
                here.send("counts")
                before = here.recv()
                results[checks].append(one_run(Path(tmp) / "selected.parquet", Path(tmp) / "out", checks, config))
                here.send("counts")
                after = here.recv()
                per_origin = Counter()
                for b, a in zip(before, after):
                    for path, n in a.items():
                        if not path.startswith("/img/"):
                            per_origin[path] = max(per_origin[path], n - b.get(path, 0))
                requests[checks] = per_origin
    here.send("stop")
    site.join(10)
    print(f"site: {args.origins} origins x {args.images} images = {total} images; best of {args.repeat} runs each")
    cost = {}
    for checks in (False, True):
        wall, cpu, saved = min(results[checks])
        cost[checks] = cpu / max(saved, 1)
        policy = ", ".join(f"{k} {v}" for k, v in sorted(requests[checks].items())) or "none"
        print(f"checks {'on ' if checks else 'off'}: {saved} saved, {wall:.2f} s wall, {saved / wall:.1f} images/s, "
              f"{1000 * cost[checks]:.2f} ms CPU per image; policy requests per origin (max): {policy}")
    print(f"ratio: {cost[True] / cost[False]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
