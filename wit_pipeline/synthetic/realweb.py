"""Real-web pages for `wit gen-crawl --real-web`: what a browser handles and a naive extractor
gets wrong. Three kinds, each image a fresh concept image with a matching caption:

- `encoding`: one page per encoding label family (windows-1252 under its latin-1 and ASCII
  labels and undeclared, a BOM over a wrong header, UTF-16, GBK under gb2312 / x-gbk, Big5,
  Shift_JIS, EUC-KR, KOI8-R, windows-1251 undeclared, a `<meta charset="base64">`), its alt
  text mixing the caption with characters only the right decoder gets back;
- `lazy`: lazy-loading markup (`data-src`, `data-lazy-src`, `data-original`, `srcset`,
  `data-srcset`, `<picture>`) whose real URL is not in `src`;
- `normalisation`: captions whose query words hide behind ™, №, apostrophe variants,
  combining marks and a dotted capital I.

The truth lists, per image, what a browser shows (absolute URL, text) and what the WAT records
(Common Crawl's extractor keeps `src` only, and reads text labelled iso-8859-1 as true latin-1:
its C1 characters stand for windows-1252 ones).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from wit_pipeline.synthetic.concepts import caption_for
from wit_pipeline.synthetic.warc_writer import Page


@dataclass(frozen=True)
class Encoded:
    family: str
    content_type: str
    meta: str  # a <meta> element in the head, or ""
    codec: str  # the Python codec that writes the bytes
    bom: bytes
    native: str  # text only the right decoder gets back
    wat_codec: str | None = None  # how the WAT's extractor read it, when not right


ENCODINGS = (
    Encoded("windows-1252 as iso-8859-1", "text/html; charset=iso-8859-1", "", "cp1252", b"",
            "Don\u2019t miss the \u201ccaf\u00e9\u201d edition \u2014 781\u2014451", wat_codec="latin-1"),
    Encoded("windows-1252 as latin1 meta", "text/html", '<meta charset="latin1">', "cp1252", b"",
            "cr\u00e8me br\u00fbl\u00e9e \u2022 na\u00efve fa\u00e7ade"),
    Encoded("windows-1252 as us-ascii", "text/html; charset=us-ascii", "", "cp1252", b"",
            "\u201cquoted\u201d and \u2018single\u2019 \u2026"),
    Encoded("windows-1252 undeclared", "text/html", "", "cp1252", b"",
            "Caf\u00e9 cr\u00e8me, \u00e0 la carte, d\u00e9j\u00e0 vu, voil\u00e0 la fen\u00eatre"),
    Encoded("utf-8 bom over iso-8859-1", "text/html; charset=iso-8859-1", "", "utf-8", b"\xef\xbb\xbf",
            "Caf\u00e9 cr\u00e8me \u2014 na\u00efve"),
    Encoded("utf-16le bom", "text/html", "", "utf-16-le", b"\xff\xfe", "\u00dcn\u00efc\u00f6d\u00e9 \u2713 \u4e2d\u6587"),
    Encoded("gbk as gb2312", "text/html; charset=gb2312", "", "gb18030", b"", "\u8acb\u4f7f\u7528\u4e2d\u6587\u8aaa\u660e"),
    Encoded("gbk as x-gbk meta", "text/html", '<meta charset="x-gbk">', "gb18030", b"", "\u4e2d\u6587\u00b7\u7c21\u4ecb"),
    Encoded("big5 http-equiv", "text/html",
            '<meta http-equiv="Content-Type" content="text/html; charset=big5">', "big5", b"", "\u4e2d\u6587\u8aaa\u660e"),
    Encoded("shift_jis", "text/html; charset=Shift_JIS", "", "cp932", b"", "\u65e5\u672c\u8a9e\u306e\u8aac\u660e"),
    Encoded("euc-kr meta", "text/html", '<meta charset="euc-kr">', "cp949", b"", "\ud55c\uad6d\uc5b4 \uc124\uba85"),
    Encoded("koi8-r", "text/html; charset=koi8-r", "", "koi8-r", b"", "\u041e\u043f\u0438\u0441\u0430\u043d\u0438\u0435"),
    Encoded("windows-1251 undeclared", "text/html", "", "cp1251", b"",
            "\u041e\u043f\u0438\u0441\u0430\u043d\u0438\u0435 \u043d\u0430 \u0440\u0443\u0441\u0441\u043a\u043e\u043c "
            "\u044f\u0437\u044b\u043a\u0435, \u043a\u0440\u0430\u0441\u0438\u0432\u0430\u044f \u043a\u0430\u0440\u0442\u0438\u043d\u043a\u0430"),
    Encoded("meta base64, not a text encoding", "text/html", '<meta charset="base64">', "utf-8", b"", "Caf\u00e9 cr\u00e8me"),
)

LAZY = ("data-src", "data-lazy-src", "data-original", "srcset", "data-srcset", "picture")
_PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
_SPACER = "/static/spacer.gif"

# Captions whose query words a normaliser must find ({c} colour, {s} shape).
NORMALISATION = (
    "{C}\u2122 {s} collection",  # ™ must not fold into the word
    "{c} {s} \u21165",  # №5
    "don\u2018t miss this {c} {s}",
    "Washington\u00b4s {c} {s}",
    "a {c} {s} with a cafe\u0301 stripe",  # a combining accent
    "\u0130stanbul {c} {s}",  # İ lower-cases to i
)


def _lazy_img(kind: str, url: str, alt: str) -> tuple[str, str | None]:
    """(markup, the `src` a WAT records or None) for one lazy-loaded image."""
    small = url.rsplit(".", 1)[0] + "-small.jpg"
    a = f'alt="{html.escape(alt)}"'
    if kind == "data-src":
        return f'<img src="{_PLACEHOLDER}" data-src="{url}" {a} class="lazyload">', _PLACEHOLDER
    if kind == "data-lazy-src":
        return f'<img src="{_SPACER}" data-lazy-src="{url}" {a}>', _SPACER
    if kind == "data-original":
        return f'<img data-original="{url}" {a}>', None
    if kind == "srcset":
        return f'<img src="{_PLACEHOLDER}" srcset="{small} 1x, {url} 2x" {a}>', _PLACEHOLDER
    if kind == "data-srcset":
        return f'<img data-srcset="{small} 480w, {url} 1200w" data-sizes="auto" {a}>', None
    return f'<picture><source srcset="{small} 1x, {url} 2x" type="image/jpeg"><img {a}></picture>', None


def _document(title: str, meta: str, paragraphs: list[str], imgs: list[str]) -> str:
    head = f"<head>\n{meta}\n<title>{html.escape(title)}</title>\n</head>" if meta else f"<head><title>{html.escape(title)}</title></head>"
    body = "\n".join([f"<p>{html.escape(p)}</p>" for p in paragraphs] + [f"<figure>{i}</figure>" for i in imgs])
    return f"<!DOCTYPE html>\n<html>\n{head}\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"


def _image(crawl: Any) -> tuple[Any, str, str]:
    """(concept, root-relative URL, absolute URL) of a fresh concept image."""
    concept = crawl._next_concept()
    path, *_ = crawl._good_image(concept)
    return concept, f"{crawl.base_path}/{path}", f"{crawl.base_url}/{path}"


def _link(page: str, kind: str, family: str, url: str, text: str, origin: str, wat_src: str | None,
          wat_text: str, queries: list[str]) -> dict[str, Any]:
    return {"page": page, "kind": kind, "family": family, "url": url, "text": text, "url_source": origin,
            "wat_src": wat_src, "wat_text": wat_text, "queries": queries}


def encoded_page(crawl: Any, n: int, spec: Encoded) -> tuple[str, Page, list[dict[str, Any]]]:
    concept, src, url = _image(crawl)
    text = f"{caption_for(concept, crawl.rng)}: {spec.native}"
    wat_text = text.encode(spec.codec).decode(spec.wat_codec) if spec.wat_codec else text
    path = f"realweb/encoding-{n:02d}.html"
    page_url = f"{crawl.base_url}/{path}"
    doc = _document(f"Shapes, {spec.family}", spec.meta, [spec.native] * 3, [f'<img src="{src}" alt="{html.escape(text)}">'])
    page = Page(url=page_url, html=doc, title=f"Shapes, {spec.family}", body=spec.bom + doc.encode(spec.codec),
                content_type=spec.content_type, links=[{"path": "IMG@/src", "url": src, "alt": wat_text}])
    return path, page, [_link(page_url, "encoding", spec.family, url, text, "src", src, wat_text,
                              [concept.colour, concept.shape])]


def lazy_page(crawl: Any) -> tuple[str, Page, list[dict[str, Any]]]:
    path = "realweb/lazy.html"
    page_url = f"{crawl.base_url}/{path}"
    imgs, wat_links, links = [], [], []
    for kind in LAZY:
        concept, src, url = _image(crawl)
        text = caption_for(concept, crawl.rng)
        markup, wat_src = _lazy_img(kind, src, text)
        imgs.append(markup)
        if wat_src is not None:
            wat_links.append({"path": "IMG@/src", "url": wat_src, "alt": text})
        links.append(_link(page_url, "lazy", kind, url, text, kind, wat_src, text, [concept.colour, concept.shape]))
    doc = _document("Shapes, loaded lazily", '<meta charset="utf-8">', ["Scroll down."], imgs)
    return path, Page(url=page_url, html=doc, title="Shapes, loaded lazily", links=wat_links), links


def normalisation_page(crawl: Any) -> tuple[str, Page, list[dict[str, Any]]]:
    path = "realweb/normalisation.html"
    page_url = f"{crawl.base_url}/{path}"
    imgs, wat_links, links = [], [], []
    for template in NORMALISATION:
        concept, src, url = _image(crawl)
        c, s = concept.colour, concept.shape
        text = template.format(C=c.capitalize(), c=c, s=s)
        imgs.append(f'<img src="{src}" alt="{html.escape(text)}">')
        wat_links.append({"path": "IMG@/src", "url": src, "alt": text})
        links.append(_link(page_url, "normalisation", template, url, text, "src", src, text, [c, s]))
    doc = _document("Shapes, spelled many ways", '<meta charset="utf-8">', ["Names as shops write them."], imgs)
    return path, Page(url=page_url, html=doc, title="Shapes, spelled many ways", links=wat_links), links


def real_web_pages(crawl: Any) -> tuple[list[tuple[str, Page]], list[dict[str, Any]]]:
    """([(path, Page)], link truths) of every planted real-web page, drawn from crawl's rng."""
    pages, links = [], []
    for n, spec in enumerate(ENCODINGS):
        path, page, page_links = encoded_page(crawl, n, spec)
        pages.append((path, page))
        links += page_links
    for make in (lazy_page, normalisation_page):
        path, page, page_links = make(crawl)
        pages.append((path, page))
        links += page_links
    return pages, links
