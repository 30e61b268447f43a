"""Per-link extraction speed: `page.pairs_from_images` on the IMG links of generated WAT files.

The peer is the plainest stdlib loop over the same links (alt or title unescaped and
whitespace-collapsed, `urllib.parse.urljoin` against the page): what the pair rule costs
beyond the minimum. Prints links/s for both and the ratio; checks both saw the same links.

    PYTHONPATH=. python bench/pairs.py [--pages 300] [--repeat 10]
"""

from __future__ import annotations

import argparse
import html
import json
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

from warcio.archiveiterator import ArchiveIterator

from wit_pipeline.core.stats import DictTally
from wit_pipeline.synthetic.generate import generate_crawl
from wit_pipeline.web.page import pairs_from_images


def wat_pages(path: Path) -> list[tuple[str, str | None, list[tuple]]]:
    """(page URL, base href, IMG links as (src, alt, title)) of every WAT response."""
    pages = []
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type != "metadata":
                continue
            try:
                env = json.loads(record.content_stream().read())["Envelope"]
            except ValueError:  # the generator truncates the last record of the last file
                break
            meta = env.get("Payload-Metadata", {}).get("HTTP-Response-Metadata", {}).get("HTML-Metadata")
            if not meta:
                continue
            images = [(x.get("url"), x.get("alt"), x.get("title"))
                      for x in meta.get("Links", []) if x.get("path") == "IMG@/src"]
            pages.append((env["WARC-Header-Metadata"]["WARC-Target-URI"], meta.get("Head", {}).get("Base"), images))
    return pages


def peer(pages) -> int:
    n = 0
    for page_url, base, images in pages:
        for src, alt, title in images:
            text = " ".join(html.unescape(alt or title or "").split())
            if text and src and not src.startswith(("data:", "javascript:")):
                urljoin(base or page_url, src.strip())
                n += 1
    return n


def ours(pages) -> int:
    tally = DictTally()
    n = 0
    for page_url, base, images in pages:
        n += sum(1 for _ in pairs_from_images(page_url, base, images, tally, True))
    return n


def rate(fn, pages, links: int, repeat: int) -> tuple[float, int]:
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeat):
            out = fn(pages)
        best = min(best, time.perf_counter() - t)
    return links * repeat / best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        truth = generate_crawl(tmp, "http://127.0.0.1:8000", seed=0, pages=args.pages)
        pages = [p for wat in truth["wat_files"] for p in wat_pages(Path(tmp) / wat)]
    links = sum(len(images) for _, _, images in pages)
    peer_rate, peer_n = rate(peer, pages, links, args.repeat)
    our_rate, our_n = rate(ours, pages, links, args.repeat)
    print(f"{len(pages)} pages, {links} IMG links from generated WAT files")
    print(f"peer (urljoin + unescape): {peer_rate:10,.0f} links/s  ({peer_n} pairs)")
    print(f"pairs_from_images:         {our_rate:10,.0f} links/s  ({our_n} pairs)")
    print(f"ratio ours/peer: {our_rate / peer_rate:.2f}")


if __name__ == "__main__":
    main()
