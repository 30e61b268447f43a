"""The set of dump files a build reads, checked before any work: no page may be counted twice.

A folder often holds the plain and the multistream dump of the same snapshot, or the whole
dump and its per-part files, and globs like `enwiki-*-pages-articles*.xml*.bz2` match them
all; counting them together would double (or quadruple) every count. So the files are
refused, with a message naming both, when
- the same file is matched twice;
- two files start with the same page (same wiki, same first page id: the plain and the
  multistream dump, or a whole dump and its first part), read from the files themselves;
- Wikimedia's file names show two snapshots of one wiki, or page ranges that overlap
  (`...articles1.xml-p1p41242.bz2` beside the whole `...articles.xml.bz2`).
Multistream index files matched by a glob are not dumps and are left out (they are found
next to their dump).
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
from typing import NamedTuple

import fsspec

from queries.multistream import is_index

_NAME = re.compile(r"(?P<wiki>[a-z_]+)-(?P<date>\d{8}|latest)-pages-articles(?:-multistream)?\d*\.xml"
                   r"(?:-p(?P<lo>\d+)p(?P<hi>\d+))?(?:\.bz2|\.gz)?$")


class Named(NamedTuple):
    wiki: str
    date: str
    lo: int
    hi: float


def parse_name(url: str) -> Named | None:
    """Wiki, snapshot date and page-id range from a Wikimedia dump file name (else None)."""
    m = _NAME.match(posixpath.basename(url))
    if not m:
        return None
    lo, hi = (int(m["lo"]), float(m["hi"])) if m["lo"] else (0, float("inf"))
    return Named(m["wiki"], m["date"], lo, hi)


def first_page(url: str) -> tuple[str, str] | None:
    """(dbname, id) of the file's first page, from its first few hundred kB; None when the
    start is unreadable (the job then reports the file as a dead letter)."""
    dbname = ""
    try:
        with fsspec.open(url, "rb", compression="infer") as f:
            for _, elem in ET.iterparse(f, events=("end",)):
                tag = elem.tag.rsplit("}", 1)[-1]
                if tag == "dbname":
                    dbname = elem.text or ""
                elif tag == "page":
                    ids = [c.text or "" for c in elem if c.tag.rsplit("}", 1)[-1] == "id"]
                    return dbname, ids[0] if ids else ""
    except (ET.ParseError, OSError, EOFError, ValueError):
        return None
    return None


def wiki_language(url: str) -> str | None:
    """The Wikipedia language of a dump (`jawiki` -> `ja`), from its file name or else its
    siteinfo's dbname; None when neither names a Wikipedia."""
    named = parse_name(url)
    wiki = named.wiki if named else (first_page(url) or ("", ""))[0]
    return wiki.removesuffix("wiki") if wiki.endswith("wiki") and len(wiki) > 4 else None


def site_namespaces(url: str) -> dict[int, str]:
    """The wiki's own namespace names (key -> name, the article namespace left out) from the
    dump's <siteinfo>; {} when it has none or its start is unreadable."""
    names: dict[int, str] = {}
    try:
        with fsspec.open(url, "rb", compression="infer") as f:
            for _, elem in ET.iterparse(f, events=("end",)):
                tag = elem.tag.rsplit("}", 1)[-1]
                if tag == "namespace" and (elem.get("key") or "").lstrip("-").isdigit() and (elem.text or "").strip():
                    if int(elem.get("key")) != 0:
                        names[int(elem.get("key"))] = elem.text.strip()
                elif tag in ("siteinfo", "page"):
                    break
    except (ET.ParseError, OSError, EOFError, ValueError):
        return names
    return names


def _name_conflict(a: str, b: str) -> str | None:
    na, nb = parse_name(a), parse_name(b)
    if na is None or nb is None or na.wiki != nb.wiki:
        return None
    if na.date != nb.date:
        return f"two snapshots of {na.wiki} ({na.date} and {nb.date})"
    if na.lo <= nb.hi and nb.lo <= na.hi:
        return "overlapping page ranges of the same dump"
    return None


def dump_files(files: list[str]) -> list[str]:
    """The dump files among `files` (index files left out), or ValueError when some pages
    would be read twice (see the module docstring)."""
    dumps = [f for f in files if not is_index(f)]
    seen: dict[str, str] = {}
    for i, url in enumerate(dumps):
        if url in dumps[:i]:
            raise ValueError(f"{url} is matched twice: give each dump file once")
        for other in dumps[:i]:
            why = _name_conflict(other, url)
            if why:
                raise ValueError(f"{other} and {url}: {why}; the same pages would be counted twice. "
                                 "Give one snapshot, as one whole dump or its parts (plain or multistream)")
        key = first_page(url)
        if key is not None:
            if key in seen:
                raise ValueError(f"{seen[key]} and {url} start with the same page (id {key[1]}): the same dump "
                                 "given twice (plain and multistream, or whole and part)? Give one of them")
            seen[key] = url
    return dumps


__all__ = ["dump_files", "first_page", "parse_name", "site_namespaces", "wiki_language"]
