"""English Wikipedia dumps -> pages -> article plain text -> unigram and bigram counts.

Reads `pages-articles` XML dumps (.xml, .xml.bz2 or .xml.gz; local or gs:// through fsspec)
with expat's pull parser, one <page> at a time, whatever the export schema's namespace URI.
A reading unit is a whole file, or one bz2 stream of a multistream dump (queries.multistream):
a unit that stops parsing (corrupt bz2, broken XML) costs only the rest of itself, and a page
whose fields do not parse (a non-numeric <ns>) costs only itself; both are reported through
`on_error(source, exc)`. XML entity expansion is bounded by expat's own billion-laughs
protection (expat >= 2.4).

Accounting: stage `inputs` (units read: out, or dropped.error), stage `pages` (every <page>
element: out, or dropped.error) and stage `articles` (every page: kept when it is an article,
namespace 0 and not a redirect, else dropped as `redirect` or `non_article`).

Tokens are exactly `wit_pipeline.text.textnorm.tokens` (the allowlist's and the matcher's rule,
computed with the matcher's batch normaliser), so a word is counted in the form that a caption
will be matched in. Bigrams are adjacent tokens within one phrase: text is cut at line breaks
and clause punctuation (PHRASE_BREAK) first, so "Paris. London" gives no bigram
"paris london" (MetaCLIP also resets at punctuation).
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Protocol

import fsspec

from queries.wikitext import HIDDEN_NAMESPACES, wikitext_to_text
from wit_pipeline.core.stats import Drop, Tally
from wit_pipeline.text.matcher import normalize_batch

INPUT_STAGE = "inputs"
PAGE_STAGE = "pages"
STAGE = "articles"
_SEP = "\x00"  # what normalize_batch joins its texts with
READ_BYTES = 1 << 20

# Bigrams never span these: line breaks and clause/sentence punctuation.
PHRASE_BREAK = re.compile(r"[\n.!?,;:()\[\]{}<>\"“”«»|…–—=*#]+")

OnError = Callable[[str, BaseException], None]


class Segmenter(Protocol):
    """What counting needs of queries.segment.Segmenter."""

    def phrases(self, text: str) -> Iterator[list[str]]: ...


@dataclass(frozen=True)
class Counting:
    """How one language's articles are counted: its segmenter (None: words are separated by
    spaces) and the lower-case namespace names whose links show no text (the English ones and
    the wiki's own, from its dump's siteinfo)."""

    segmenter: Segmenter | None = None
    hidden: frozenset[str] = HIDDEN_NAMESPACES


@dataclass(frozen=True)
class Page:
    title: str
    ns: int
    redirect: bool
    text: str


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def page_of(elem: ET.Element) -> Page:
    """A <page> element's fields; raises ValueError on a non-numeric <ns>."""
    title = _child_text(elem, "title") or ""
    ns_text = _child_text(elem, "ns")
    ns = int(ns_text) if ns_text not in (None, "") else 0  # very old dumps carry no <ns>
    redirect = any(_local(c.tag) == "redirect" for c in elem)
    text = ""
    for child in elem:
        if _local(child.tag) == "revision":
            text = _child_text(child, "text") or ""  # the dump has one (the latest) revision
    return Page(title, ns, redirect, text)


def _page_elements(chunks: Iterable[bytes]) -> Iterator[ET.Element]:
    """<page> elements of an XML byte stream, each cleared once used: memory stays flat."""
    parser = ET.XMLPullParser(events=("start", "end"))
    root = None
    for chunk in itertools.chain(chunks, [None]):
        if chunk is None:
            parser.close()
        else:
            parser.feed(chunk)
        for event, elem in parser.read_events():
            if event == "start":
                root = elem if root is None else root
            elif _local(elem.tag) == "page":
                yield elem
                elem.clear()
                if root is not None:
                    root.clear()


def _file_chunks(f: IO[bytes]) -> Iterator[bytes]:
    return iter(lambda: f.read(READ_BYTES), b"")


def pages_of_unit(chunks: Iterable[bytes], source: str, tally: Tally, on_error: OnError) -> Iterator[Page]:
    """Pages of one reading unit (stages `inputs` and `pages`; see the module docstring)."""
    tally.inc(INPUT_STAGE, "in")
    elements = _page_elements(chunks)
    while True:
        try:
            elem = next(elements)
        except StopIteration:
            tally.kept(INPUT_STAGE)
            return
        except Exception as exc:  # the unit is unreadable from here on; its pages so far count
            tally.dropped(INPUT_STAGE, "error")
            on_error(source, exc)
            return
        tally.inc(PAGE_STAGE, "in")
        try:
            page = page_of(elem)
        except Exception as exc:
            tally.dropped(PAGE_STAGE, "error")
            on_error(f"{source} page {_child_text(elem, 'title')!r}", exc)
            continue
        tally.kept(PAGE_STAGE)
        yield page


def iter_pages(source: str | IO[bytes], tally: Tally, on_error: OnError) -> Iterator[Page]:
    """Every <page> of a whole dump file (any compression fsspec infers; bz2 multistream too)."""
    if isinstance(source, str):
        def chunks() -> Iterator[bytes]:
            with fsspec.open(source, "rb", compression="infer") as f:
                yield from _file_chunks(f)
        yield from pages_of_unit(chunks(), source, tally, on_error)
    else:
        yield from pages_of_unit(_file_chunks(source), "<stream>", tally, on_error)


def raise_error(source: str, exc: BaseException) -> None:
    """An on_error for one-process use: stop, naming the source."""
    raise RuntimeError(f"reading Wikipedia dump {source}: {type(exc).__name__}: {exc}") from exc


def article_text(page: Page, hidden: frozenset[str] = HIDDEN_NAMESPACES) -> tuple[str, str] | Drop:
    """(title, plain text) of an article, or why the page is not one (stage `articles`)."""
    if page.ns != 0:
        return Drop("non_article")
    if page.redirect:
        return Drop("redirect")
    return page.title, wikitext_to_text(page.text, hidden)


def phrases(text: str) -> Iterator[list[str]]:
    """Token lists of the text's phrases (the spans bigrams may not cross).

    Each span gets exactly `textnorm.tokens`; the matcher's batch normaliser does all spans
    of an article in a few passes (3x faster than one textnorm call per span).
    """
    for span in normalize_batch(PHRASE_BREAK.split(text)).split(_SEP):
        toks = span.split()
        if toks:
            yield toks


def count_ngrams(text: str, segmenter: Segmenter | None = None) -> tuple[Counter[str], Counter[str]]:
    """(unigram counts, bigram counts) of plain text; a bigram key is 'a b'. A language written
    without spaces gives its segmenter (queries.segment), which cuts the phrases into words."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for toks in (phrases(text) if segmenter is None else segmenter.phrases(text)):
        unigrams.update(toks)
        bigrams.update(f"{a} {b}" for a, b in zip(toks, toks[1:]))
    return unigrams, bigrams


def article_ngrams(page: Page, counting: Counting | None = None) -> tuple[Counter[str], Counter[str]] | Drop:
    """A page's n-gram counts when it is an article (the per-record function of `articles`)."""
    if counting is None:
        article = article_text(page)
        return article if isinstance(article, Drop) else count_ngrams(article[1])
    article = article_text(page, counting.hidden)
    return article if isinstance(article, Drop) else count_ngrams(article[1], counting.segmenter)


__all__ = ["Counting", "INPUT_STAGE", "PAGE_STAGE", "PHRASE_BREAK", "Page", "STAGE", "article_ngrams", "article_text",
           "count_ngrams", "iter_pages", "page_of", "pages_of_unit", "phrases", "raise_error", "wikitext_to_text"]
