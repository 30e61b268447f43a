"""Wikimedia hourly pageview files -> English Wikipedia article titles with their views.

Format (https://dumps.wikimedia.org/other/pageviews/), one line per (project, page):
`domain_code page_title count_views total_response_size`, e.g. `en Albert_Einstein 123 0`,
gz-compressed or plain. Only English Wikipedia counts: `en` (desktop) and `en.m` (mobile);
`en.d` (Wiktionary), `de`, ... are other projects. Titles are URL paths: `_` is a space
and some are percent-encoded, so both are decoded before the views of a title are summed.

Two rules (TITLE_RULES): `wit` (the default) sums every hour's views of a title over
`en` and `en.m` and leaves out only real namespaces, so "Star Wars: A New Hope" stays;
`metaclip` is MetaCLIP's script: only `en` lines with >= 50 views in that hour count, and
any title with a ':' is dropped.

Accounting: stage `inputs` (each file read to its end, or dropped.error with a dead letter
naming it), stage `pageviews` (every line: kept, or dropped as `other_domain`, `malformed`,
`below_line_views` or `error`) and stage `titles` (every distinct title: kept when its summed
views reach the threshold, else `below_views`, `non_article` (Special:, Talk:, ... pages and
the Main Page) or `empty` (nothing left after textnorm, e.g. "-")).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote

import fsspec

from wit_pipeline.core.stats import Drop, Tally
from wit_pipeline.text import textnorm

INPUT_STAGE = "inputs"
LINE_STAGE = "pageviews"
TITLE_STAGE = "titles"
DOMAINS = frozenset({"en", "en.m"})


# English Wikipedia's namespace prefixes (and their talk pages): not articles. Every wiki also
# answers to these canonical names.
NAMESPACES = frozenset({
    "media", "special", "talk", "user", "wikipedia", "wp", "project", "file", "image", "mediawiki",
    "template", "help", "category", "portal", "draft", "timedtext", "module", "book", "education program",
    "gadget", "gadget definition", "topic",
})


@dataclass(frozen=True)
class TitleRule:
    domains: frozenset[str] = DOMAINS
    min_line_views: int = 0  # views one line (one hour) needs before it counts at all
    any_colon: bool = False  # drop every title with a ':' (else only real namespaces)
    namespaces: frozenset[str] = NAMESPACES  # lower-case prefixes that are not articles


TITLE_RULES = {"wit": TitleRule(), "metaclip": TitleRule(frozenset({"en"}), 50, True)}


def rule_for(name: str, language: str = "en", local_namespaces: frozenset[str] = frozenset()) -> TitleRule:
    """The title rule `name` for one Wikipedia language. English: TITLE_RULES as they are.
    Another language `xx`: the projects `xx` and `xx.m` (pageview files spell `zh_yue` as
    `zh-yue`), its own namespace names (lower case, from its dump) beside the canonical ones;
    `metaclip` is then MetaCLIP 2's build_title.py: every line with views, any title with a ':'
    out (its merge of the language's other projects, `xx.d` Wiktionary and the like, is not
    taken: they are not Wikipedia articles)."""
    if language == "en":
        return TITLE_RULES[name]
    domain = language.replace("_", "-")
    names = NAMESPACES | frozenset(n.lower() for n in local_namespaces)
    return TitleRule(frozenset({domain, f"{domain}.m"}), 0, name == "metaclip", names)
NOT_ARTICLES = frozenset({"main page", "-", "undefined"})


def parse_line(line: str) -> tuple[str, str, int] | None:
    """(domain, title, views) of one line, or None when it is not four well-formed fields."""
    fields = line.rstrip("\r\n").split(" ")
    if len(fields) != 4 or not fields[0] or not fields[1]:
        return None
    domain, title, views = fields[0], fields[1], fields[2]
    if not (views.isascii() and views.isdigit()):  # '²'.isdigit() is True, int('²') raises
        return None
    return domain, title, int(views)


def decode_title(raw: str) -> str:
    """URL title -> article title: percent-decoding, `_` -> space, outer spaces trimmed."""
    if "%" in raw:
        raw = unquote(raw, errors="replace")
    return raw.replace("_", " ").strip()


def is_article_title(title: str, namespaces: frozenset[str] = NAMESPACES) -> bool:
    """False for pages outside the article namespace (Special:Search, User talk:X, ...)."""
    if title.lower() in NOT_ARTICLES:
        return False
    prefix, sep, _ = title.partition(":")
    if not sep:
        return True
    prefix = prefix.strip().lower()
    return prefix not in namespaces and prefix.removesuffix(" talk") not in namespaces


def iter_views(source: str | Iterable[str], tally: Tally, rule: TitleRule = TitleRule(),
               on_error: Callable[[str, BaseException], None] | None = None) -> Iterator[tuple[str, int]]:
    """(decoded title, views) of every counted line of a pageview file (see the module docstring).

    A line whose handling raises is `error`; a file that stops reading (corrupt gzip) ends
    there, `inputs:dropped.error`. Both go to `on_error(source, exc)`, or raise naming the file.
    """
    name = source if isinstance(source, str) else "<lines>"
    on_error = on_error or _raise
    tally.inc(INPUT_STAGE, "in")
    try:
        if isinstance(source, str):
            with fsspec.open(source, "rt", compression="infer", encoding="utf-8", errors="replace") as f:
                yield from _views(f, name, tally, rule, on_error)
        else:
            yield from _views(source, name, tally, rule, on_error)
    except ReadError:
        raise
    except Exception as exc:
        tally.dropped(INPUT_STAGE, "error")
        on_error(name, exc)
        return
    tally.kept(INPUT_STAGE)


class ReadError(RuntimeError):
    """A reading error that names its file (what one-process builds stop with)."""


def _raise(source: str, exc: BaseException) -> None:
    raise ReadError(f"reading pageviews {source}: {type(exc).__name__}: {exc}") from exc


def line_views(line: str, rule: TitleRule) -> tuple[str, int] | str:
    """(title, views) of a line, or the reason it does not count."""
    parsed = parse_line(line)
    if parsed is None:
        return "malformed"
    domain, raw, views = parsed
    if domain not in rule.domains:
        return "other_domain"
    if views < rule.min_line_views:
        return "below_line_views"
    return decode_title(raw), views


def _views(lines: Iterable[str], name: str, tally: Tally, rule: TitleRule,
           on_error: Callable[[str, BaseException], None]) -> Iterator[tuple[str, int]]:
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        tally.inc(LINE_STAGE, "in")
        try:
            got = line_views(line, rule)
        except Exception as exc:  # one line costs only itself
            tally.dropped(LINE_STAGE, "error")
            on_error(f"{name}:{line_no}", exc)
            continue
        if isinstance(got, str):
            tally.dropped(LINE_STAGE, got)
            continue
        tally.kept(LINE_STAGE)
        yield got


def title_drop_reason(title: str, views: int, min_views: int, rule: TitleRule = TitleRule()) -> str | None:
    """Why a title (with its summed views) is not a query, or None to keep it."""
    if not textnorm.normalize(title):
        return "empty"
    if not is_article_title(title, rule.namespaces) or (rule.any_colon and ":" in title):
        return "non_article"
    if views < min_views:
        return "below_views"
    return None


def keep_title(item: tuple[str, int], min_views: int, rule: TitleRule) -> tuple[str, int] | Drop:
    """(title, summed views) kept, or why not (the distributed path's per-record step)."""
    reason = title_drop_reason(item[0], item[1], min_views, rule)
    return Drop(reason) if reason else item


def select_titles(views: Iterable[tuple[str, int]], min_views: int, tally: Tally,
                  rule: TitleRule = TitleRule()) -> dict[str, int]:
    """Sum views per title and keep the titles that pass title_drop_reason (in-memory path)."""
    totals: Counter[str] = Counter()
    for title, n in views:
        totals[title] += n
    kept: dict[str, int] = {}
    for title in sorted(totals):
        tally.inc(TITLE_STAGE, "in")
        reason = title_drop_reason(title, totals[title], min_views, rule)
        if reason:
            tally.dropped(TITLE_STAGE, reason)
        else:
            tally.kept(TITLE_STAGE)
            kept[title] = totals[title]
    return kept


__all__ = ["DOMAINS", "TITLE_RULES", "ReadError", "TitleRule", "decode_title", "is_article_title", "iter_views", "keep_title",
           "line_views", "parse_line", "rule_for", "select_titles", "title_drop_reason"]
