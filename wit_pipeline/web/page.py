"""One web page's images as (image URL, text) pairs: HTML decoding and `<img>` extraction
(the WARC path), and the per-image rules both paths share (text choice and cleaning, URL
resolution), counted under the `extract` stage: `in` = images seen, `out` = pairs, dropped
`no_text` and the URL reasons of `urls` (`empty_src`, `data_url`, `javascript_url`,
`not_http`, `bad_url`, `url_too_long`, `bad_host`). A pair whose URL came from somewhere
other than `src` (lazy loading, srcset, picture) is also counted as `extract:url_from.<attr>`
(not an in/out field, so stats.json's shape is unchanged).
"""

from __future__ import annotations

from collections.abc import Iterable

from wit_pipeline.core.stats import Tally
from wit_pipeline.text.textfilter import clean_text
from wit_pipeline.web.charset import decode_html
from wit_pipeline.web.htmlscan import Image, scan_images
from wit_pipeline.web.urls import PageUrls

__all__ = ["EXTRACT", "NO_TEXT", "Image", "decode_html", "html_images", "pairs_from_images"]

EXTRACT = "extract"
NO_TEXT = "no_text"


def html_images(body: bytes | str, content_type: str | None = None) -> tuple[str | None, list[Image]]:
    """(`<base href>` or None, every `<img>` as (url, alt, title, from)) of an HTML payload,
    decoded as browsers do (bytes; text is taken as decoded); time linear in its size."""
    return scan_images(decode_html(body, content_type) if isinstance(body, bytes) else body)


def pairs_from_images(page_url: str, base_href: str | None, images: Iterable[tuple], tally: Tally,
                      decode_entities: bool = True) -> list[dict]:
    """Pairs for one page's images (Image tuples; a 3-tuple's URL is from `src`): alt text,
    else title, cleaned; the URL resolved against the page's base, computed once.

    `decode_entities`: whether the values are raw HTML ("Tom &amp; Jerry"). Neither crawl path
    passes raw values: the WARC path's scan decodes them, and Common Crawl's WAT extractor
    wrote them decoded (an alt of `&amp;amp;` in the HTML is `&amp;` in the WAT and stays so);
    decoding again would turn it into "&" and give the image another text, so another key.
    """
    resolve = PageUrls(page_url, base_href).resolve
    drops: dict[str, int] = {}
    pairs = []
    n = 0
    for image in images:
        n += 1
        alt = image[1]
        if alt and (text := clean_text(alt, decode_entities)):
            source = "alt"
        elif (title := image[2]) and (text := clean_text(title, decode_entities)):
            source = "title"
        else:
            drops[NO_TEXT] = drops.get(NO_TEXT, 0) + 1
            continue
        url, reason = resolve(image[0])
        if url is None:
            drops[reason] = drops.get(reason, 0) + 1  # type: ignore[index]
            continue
        if len(image) > 3 and image[3] != "src":
            tally.inc(EXTRACT, f"url_from.{image[3]}")
        pairs.append({"url": url, "text": text, "page_url": page_url, "text_source": source})
    if n:
        tally.inc(EXTRACT, "in", n)
        tally.kept(EXTRACT, len(pairs))
    for reason, count in drops.items():
        tally.dropped(EXTRACT, reason, count)
    return pairs
