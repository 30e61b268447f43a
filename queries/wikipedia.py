"""English Wikipedia dumps -> article plain text -> unigram and bigram counts.

Reads `pages-articles` XML dumps (.xml, .xml.bz2 or .xml.gz; local or gs:// through fsspec)
with `xml.etree.ElementTree.iterparse`, one <page> at a time, whatever the export schema's
namespace URI. Accounting (stage `articles`): every <page> read is kept (an article: namespace
0, not a redirect) or dropped as `redirect` or `non_article`.

Wikitext is reduced to plain text by a small, ordered set of regexes (WIKITEXT_RULES below),
not a full MediaWiki parser: comments, <ref>s, tables, templates, file/category/interlanguage
links, external-link URLs, HTML tags, heading '=' marks, bold/italic quotes, list markers.
What survives in rare malformed markup is a stray token or two, harmless to counts at scale.
XML entity expansion is bounded by expat's own billion-laughs protection (expat >= 2.4).

Tokens are exactly `wit_pipeline.text.textnorm.tokens` (the allowlist's and the matcher's rule,
computed with the matcher's batch normaliser), so a word is counted in the form that a caption
will be matched in. Bigrams are adjacent tokens within
one phrase: text is cut at line breaks and clause punctuation (PHRASE_BREAK) first, so
"Paris. London" gives no bigram "paris london" (MetaCLIP also resets at punctuation).
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import fsspec

from wit_pipeline.core.stats import Tally
from wit_pipeline.text.matcher import normalize_batch

STAGE = "articles"
_SEP = "\x00"  # what normalize_batch joins its texts with

# Namespaced links that are not article text: media, categories, interlanguage/interwiki.
_DROP_LINK = re.compile(
    r"\[\[\s*:?\s*(?:file|image|media|category|[a-z]{2,3}(?:-[a-z]+)?)\s*:[^\[\]]*\]\]", re.IGNORECASE)
_PIPED_LINK = re.compile(r"\[\[[^\[\]|]*\|([^\[\]]*)\]\]")  # [[target|label]] -> label
_PLAIN_LINK = re.compile(r"\[\[([^\[\]|]*)\]\]")  # [[target]] -> target
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")  # innermost {{...}}; repeated until none is left
_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.DOTALL)  # innermost {| ... |}

# (name, pattern, replacement), applied in order; `templates`, `tables` and `links` repeat
# until the text stops changing, so nested constructs go innermost first.
WIKITEXT_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("comments", re.compile(r"<!--.*?(?:-->|$)", re.DOTALL), ""),
    ("refs", re.compile(r"<ref\b[^>]*/>|<ref\b[^>]*>.*?</ref\s*>", re.DOTALL | re.IGNORECASE), ""),
    ("dropped_blocks", re.compile(r"<(math|gallery|timeline|syntaxhighlight|source|score|nowiki)\b[^>]*>.*?</\1\s*>",
                                  re.DOTALL | re.IGNORECASE), " "),
    ("templates", _TEMPLATE, " "),
    ("tables", _TABLE, "\n"),
    ("external_links", re.compile(r"\[(?:https?:|ftp:)?//[^\s\]]*\s*([^\]]*)\]"), r"\1"),
    ("html_tags", re.compile(r"</?[A-Za-z][^>]*>"), " "),
    ("headings", re.compile(r"^\s*=+\s*(.*?)\s*=+\s*$", re.MULTILINE), r"\1"),
    ("bold_italic", re.compile(r"'{2,}"), ""),
    ("list_markers", re.compile(r"^[*#:;]+", re.MULTILINE), ""),
    ("rules_and_magic", re.compile(r"^-{4,}|__[A-Z]+__", re.MULTILINE), ""),
)

# Bigrams never span these: line breaks and clause/sentence punctuation.
PHRASE_BREAK = re.compile(r"[\n.!?,;:()\[\]{}<>\"“”«»|…–—=*#]+")


@dataclass(frozen=True)
class Page:
    title: str
    ns: int
    redirect: bool
    text: str


def _links(text: str) -> str:
    while True:
        new = _PLAIN_LINK.sub(r"\1", _PIPED_LINK.sub(r"\1", _DROP_LINK.sub("", text)))
        if new == text:
            return new
        text = new


def _repeat(pattern: re.Pattern[str], repl: str, text: str) -> str:
    while True:
        new = pattern.sub(repl, text)
        if new == text:
            return new
        text = new


def wikitext_to_text(wikitext: str) -> str:
    """Plain text of an article's wikitext (WIKITEXT_RULES, then links, then entities)."""
    text = wikitext
    for name, pattern, repl in WIKITEXT_RULES:
        if name in ("templates", "tables"):
            text = _repeat(pattern, repl, text)
        else:
            text = pattern.sub(repl, text)
        if name == "external_links":  # links after templates/tables, before tags
            text = _links(text)
    # Leftover unbalanced template/table braces from broken markup carry no words.
    text = re.sub(r"\{\{|\}\}|\{\||\|\}", " ", text)
    return html.unescape(text)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def _page_of(elem: ET.Element) -> Page:
    title = _child_text(elem, "title") or ""
    ns_text = _child_text(elem, "ns")
    ns = int(ns_text) if ns_text not in (None, "") else 0  # very old dumps carry no <ns>
    redirect = any(_local(c.tag) == "redirect" for c in elem)
    text = ""
    for child in elem:
        if _local(child.tag) == "revision":
            text = _child_text(child, "text") or ""  # the dump has one (the latest) revision
    return Page(title, ns, redirect, text)


def iter_pages(source: str | IO[bytes]) -> Iterator[Page]:
    """Every <page> of a dump, streamed: memory stays flat on a multi-GB file."""
    if isinstance(source, str):
        with fsspec.open(source, "rb", compression="infer") as f:
            yield from iter_pages(f)
        return
    root = None
    for event, elem in ET.iterparse(source, events=("start", "end")):
        if event == "start":
            if root is None:
                root = elem
            continue
        if _local(elem.tag) == "page":
            yield _page_of(elem)
            elem.clear()
            if root is not None:
                root.clear()  # drop finished pages from the tree


def iter_articles(source: str | IO[bytes], tally: Tally) -> Iterator[tuple[str, str]]:
    """(title, plain text) of every article (namespace 0, not a redirect), counted."""
    for page in iter_pages(source):
        tally.inc(STAGE, "in")
        if page.ns != 0:
            tally.inc(STAGE, "dropped.non_article")
        elif page.redirect:
            tally.inc(STAGE, "dropped.redirect")
        else:
            tally.inc(STAGE, "out")
            yield page.title, wikitext_to_text(page.text)


def phrases(text: str) -> Iterator[list[str]]:
    """Token lists of the text's phrases (the spans bigrams may not cross).

    Each span gets exactly `textnorm.tokens`; the matcher's batch normaliser does all spans
    of an article in a few passes (3x faster than one textnorm call per span).
    """
    for span in normalize_batch(PHRASE_BREAK.split(text)).split(_SEP):
        toks = span.split()
        if toks:
            yield toks


def count_ngrams(text: str) -> tuple[Counter[str], Counter[str]]:
    """(unigram counts, bigram counts) of plain text; a bigram key is 'a b'."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for toks in phrases(text):
        unigrams.update(toks)
        bigrams.update(f"{a} {b}" for a, b in zip(toks, toks[1:]))
    return unigrams, bigrams


__all__ = ["PHRASE_BREAK", "Page", "WIKITEXT_RULES", "count_ngrams", "iter_articles", "iter_pages",
           "phrases", "wikitext_to_text"]
