"""One web page's images as (image URL, text) pairs: HTML decoding and `<img>` extraction
(the WARC path), and the per-image rules both paths share (text choice and cleaning, URL
resolution), counted under the `extract` stage: `in` = images seen, `out` = pairs, dropped
`no_text` and the URL reasons of `urls.resolve_image_url`.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator

from selectolax.lexbor import LexborHTMLParser

from wit_pipeline.core.stats import Tally
from wit_pipeline.text.textfilter import clean_text
from wit_pipeline.web.urls import resolve_image_url

EXTRACT = "extract"
NO_TEXT = "no_text"

_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:\-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:\-]+)", re.IGNORECASE)
_SNIFF_BYTES = 4096

# An image found on a page: (src, alt, title), any of which may be missing.
Image = tuple[str | None, str | None, str | None]


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_html(body: bytes, content_type: str | None) -> str:
    """Text of an HTML payload: charset from the HTTP header, else <meta>, else UTF-8.

    Undecodable bytes become U+FFFD rather than failing the page: one bad byte should not
    cost every image on it.
    """
    charset = None
    if content_type:
        m = _CHARSET.search(content_type)
        charset = _codec(m.group(1)) if m else None
    if charset is None:
        m = _META_CHARSET.search(body[:_SNIFF_BYTES])
        charset = _codec(m.group(1).decode("ascii")) if m else None
    return body.decode(charset or "utf-8", errors="replace")


def html_images(html: str) -> tuple[str | None, list[Image]]:
    """(`<base href>` or None, every `<img>` as (src, alt, title)) in document order."""
    tree = LexborHTMLParser(html)
    base = tree.css_first("base[href]")
    base_href = base.attributes.get("href") if base is not None else None
    images = []
    for node in tree.css("img"):
        attrs = node.attributes
        images.append((attrs.get("src"), attrs.get("alt"), attrs.get("title")))
    return base_href, images


def pairs_from_images(page_url: str, base_href: str | None, images: Iterable[Image], tally: Tally,
                      decode_entities: bool = True) -> Iterator[dict]:
    """Pairs for one page's images: alt text, else title; URLs resolved and normalised.

    `decode_entities`: WAT attribute values are raw HTML ("Tom &amp; Jerry"); the WARC path's
    parser has decoded them already, and decoding twice would turn "&amp;amp;" into "&".
    """
    for src, alt, title in images:
        tally.inc(EXTRACT, "in")
        text = clean_text(alt, decode_entities) if alt else ""
        source = "alt"
        if not text:
            text = clean_text(title, decode_entities) if title else ""
            source = "title"
        if not text:
            tally.inc(EXTRACT, f"dropped.{NO_TEXT}")
            continue
        url, reason = resolve_image_url(page_url, src, base_href)
        if url is None:
            tally.inc(EXTRACT, f"dropped.{reason}")
            continue
        tally.inc(EXTRACT, "out")
        yield {"url": url, "text": text, "page_url": page_url, "text_source": source}
