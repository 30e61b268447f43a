"""Extraction speed on a generated crawl: per link, and per HTML page.

Links: `page.pairs_from_images` on the IMG links of the WAT files, against the plainest
stdlib loop over the same links (alt or title unescaped and whitespace-collapsed,
`urllib.parse.urljoin` against the page): what the pair rule costs beyond the minimum.
Pages: `page.html_images` (decoding + the linear <img> scan) on the WARC response bodies,
against lexbor (selectolax) building the DOM and selecting `img`, as the extractor did before.
Prints rates and ratios; checks both sides found the same number of pairs / images.

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

from selectolax.lexbor import LexborHTMLParser
from warcio.archiveiterator import ArchiveIterator

from wit_pipeline.core.stats import DictTally
from wit_pipeline.synthetic.generate import generate_crawl
from wit_pipeline.web.page import html_images, pairs_from_images


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


def warc_bodies(path: Path) -> list[tuple[bytes, str]]:
    """(body, Content-Type) of every HTML response in a WARC file."""
    bodies = []
    with open(path, "rb") as fh:
        try:
            for record in ArchiveIterator(fh):
                if record.rec_type == "response":
                    bodies.append((record.content_stream().read(), record.http_headers.get_header("Content-Type")))
        except Exception:  # the generator truncates the last record of the last file
            pass
    return bodies


def lexbor_images(bodies) -> int:
    return sum(len(LexborHTMLParser(body.decode("utf-8", "replace")).css("img")) for body, _ in bodies)


def scan_images(bodies) -> int:
    return sum(len(html_images(body, ctype)[1]) for body, ctype in bodies)


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
        bodies = [b for warc in truth["warc_files"] for b in warc_bodies(Path(tmp) / warc)]
    links = sum(len(images) for _, _, images in pages)
    mb = sum(len(body) for body, _ in bodies) / 1e6
    lex_rate, lex_n = rate(lexbor_images, bodies, 1, args.repeat)
    scan_rate, scan_n = rate(scan_images, bodies, 1, args.repeat)
    assert lex_n == scan_n, (lex_n, scan_n)
    print(f"{len(bodies)} HTML pages, {mb:.2f} MB, {scan_n} <img>")
    print(f"peer (lexbor DOM + css('img')): {lex_rate * mb:8.1f} MB/s")
    print(f"html_images (decode + scan):    {scan_rate * mb:8.1f} MB/s")
    print(f"ratio ours/peer: {scan_rate / lex_rate:.2f}")
    peer_rate, peer_n = rate(peer, pages, links, args.repeat)
    our_rate, our_n = rate(ours, pages, links, args.repeat)
    assert peer_n == our_n, (peer_n, our_n)
    print(f"{len(pages)} pages, {links} IMG links from generated WAT files")
    print(f"peer (urljoin + unescape): {peer_rate:10,.0f} links/s  ({peer_n} pairs)")
    print(f"pairs_from_images:         {our_rate:10,.0f} links/s  ({our_n} pairs)")
    print(f"ratio ours/peer: {our_rate / peer_rate:.2f}")


if __name__ == "__main__":
    main()
