"""Wikimedia hourly pageview files -> English Wikipedia article titles with their views.

Format (https://dumps.wikimedia.org/other/pageviews/), one line per (project, page):
`domain_code page_title count_views total_response_size`, e.g. `en Albert_Einstein 123 0`,
gz-compressed or plain. Only English Wikipedia counts: `en` (desktop) and `en.m` (mobile);
`en.d` (Wiktionary), `de`, ... are other projects. Titles are URL paths: `_` is a space
and some are percent-encoded, so both are decoded before the views of a title are summed.

Accounting: stage `pageviews` (every line: kept, or dropped as `other_domain`/`malformed`)
and stage `titles` (every distinct title: kept when its summed views reach the threshold,
else `below_views`, `non_article` (Special:, Talk:, ... pages and the Main Page) or `empty`
(nothing left after textnorm, e.g. "-")).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from urllib.parse import unquote

import fsspec

from wit_pipeline.core.stats import Tally
from wit_pipeline.text import textnorm

LINE_STAGE = "pageviews"
TITLE_STAGE = "titles"
DOMAINS = frozenset({"en", "en.m"})

# English Wikipedia's namespace prefixes (and their talk pages): not articles.
NAMESPACES = frozenset({
    "media", "special", "talk", "user", "wikipedia", "wp", "project", "file", "image", "mediawiki",
    "template", "help", "category", "portal", "draft", "timedtext", "module", "book", "education program",
    "gadget", "gadget definition", "topic",
})
NOT_ARTICLES = frozenset({"main page", "-", "undefined"})


def parse_line(line: str) -> tuple[str, str, int] | None:
    """(domain, title, views) of one line, or None when it is not four well-formed fields."""
    fields = line.rstrip("\r\n").split(" ")
    if len(fields) != 4 or not fields[0] or not fields[1]:
        return None
    domain, title, views = fields[0], fields[1], fields[2]
    if not views.isdigit():
        return None
    return domain, title, int(views)


def decode_title(raw: str) -> str:
    """URL title -> article title: percent-decoding, `_` -> space, outer spaces trimmed."""
    if "%" in raw:
        raw = unquote(raw, errors="replace")
    return raw.replace("_", " ").strip()


def is_article_title(title: str) -> bool:
    """False for pages outside the article namespace (Special:Search, User talk:X, ...)."""
    if title.lower() in NOT_ARTICLES:
        return False
    prefix, sep, _ = title.partition(":")
    if not sep:
        return True
    prefix = prefix.strip().lower()
    return prefix not in NAMESPACES and prefix.removesuffix(" talk") not in NAMESPACES


def iter_views(source: str | Iterable[str], tally: Tally) -> Iterator[tuple[str, int]]:
    """(decoded title, views) of every English Wikipedia line of a pageview file, counted."""
    if isinstance(source, str):
        with fsspec.open(source, "rt", compression="infer", encoding="utf-8", errors="replace") as f:
            yield from iter_views(f, tally)
        return
    for line in source:
        if not line.strip():
            continue
        tally.inc(LINE_STAGE, "in")
        parsed = parse_line(line)
        if parsed is None:
            tally.inc(LINE_STAGE, "dropped.malformed")
            continue
        domain, raw, views = parsed
        if domain not in DOMAINS:
            tally.inc(LINE_STAGE, "dropped.other_domain")
            continue
        tally.inc(LINE_STAGE, "out")
        yield decode_title(raw), views


def title_drop_reason(title: str, views: int, min_views: int) -> str | None:
    """Why a title (with its summed views) is not a query, or None to keep it."""
    if not textnorm.normalize(title):
        return "empty"
    if not is_article_title(title):
        return "non_article"
    if views < min_views:
        return "below_views"
    return None


def select_titles(views: Iterable[tuple[str, int]], min_views: int, tally: Tally) -> dict[str, int]:
    """Sum views per title and keep the titles that pass title_drop_reason (in-memory path)."""
    totals: Counter[str] = Counter()
    for title, n in views:
        totals[title] += n
    kept: dict[str, int] = {}
    for title in sorted(totals):
        tally.inc(TITLE_STAGE, "in")
        reason = title_drop_reason(title, totals[title], min_views)
        if reason:
            tally.inc(TITLE_STAGE, f"dropped.{reason}")
        else:
            tally.inc(TITLE_STAGE, "out")
            kept[title] = totals[title]
    return kept


__all__ = ["DOMAINS", "decode_title", "is_article_title", "iter_views", "parse_line", "select_titles",
           "title_drop_reason"]
