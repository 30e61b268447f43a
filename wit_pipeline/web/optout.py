"""Opt-outs that a response or a page states about itself: `X-Robots-Tag`, `<meta name="robots">`
(and the product-token form `<meta name="wit">`), and TDMRep's `tdm-reservation` header and meta.

Pure functions over header values and (name, content) meta pairs, shared by download (an image
response's headers) and harvest (a page's headers and metas, from a WARC page or a WAT envelope).

X-Robots-Tag follows the form search engines document: a value is a comma-separated list of
directives, optionally led by a product token and a colon (`wit: noai, noimageai`); a token
applies to the directives after it until the next token. Directives that carry a value of their
own after a colon (`max-snippet: 20`, `unavailable_after: ...`) are not tokens. A directive
for all agents or for our product token counts; one for another crawler's token does not.

Reasons are named for what said no: `x_robots_tag`, `meta_robots`, `tdm_reservation`
(callers count them as `opted_out.<reason>`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

DEFAULT_AGENT = "wit"
# What keeps a page's pairs out (the AI-training opt-outs).
PAGE_DIRECTIVES = frozenset({"noai", "noimageai"})
# What keeps an image out at download: the AI opt-outs, and the search-index opt-outs that
# img2dataset honours by default (an image its owner keeps out of indexes is not collected either),
# and `none`, which search engines read as `noindex, nofollow`.
IMAGE_DIRECTIVES = frozenset({"noai", "noimageai", "noindex", "noimageindex", "none"})

X_ROBOTS_TAG = "x_robots_tag"
META_ROBOTS = "meta_robots"
TDM_RESERVATION = "tdm_reservation"

# Directives written `name: value`; the part before their colon is not a product token.
_VALUED = frozenset({"max-snippet", "max-image-preview", "max-video-preview", "unavailable_after",
                     "unavailable-after", "indexifembedded"})
_TOKEN = re.compile(r"[A-Za-z0-9_\-]+")


def directives_for(values: Iterable[str], agent: str = DEFAULT_AGENT) -> set[str]:
    """The lower-cased directives in X-Robots-Tag values (or a robots meta content) that apply
    to `agent`: those without a product token and those under `agent`'s token."""
    agent = agent.strip().lower()
    found: set[str] = set()
    for value in values:
        token: str | None = None  # None: for every agent
        for part in str(value).split(","):
            head, sep, rest = part.partition(":")
            name = head.strip().lower()
            if sep and name not in _VALUED and _TOKEN.fullmatch(name):
                token, part = name, rest
            directive = part.strip().lower().split(":", 1)[0].strip()
            if directive and (token is None or token == agent):
                found.add(directive)
    return found


def x_robots_opt_out(values: Iterable[str], agent: str = DEFAULT_AGENT,
                     directives: frozenset[str] = PAGE_DIRECTIVES) -> bool:
    """Whether X-Robots-Tag header values opt out for `agent`."""
    return bool(directives_for(values, agent) & directives)


def tdm_reserved(values: Iterable[str]) -> bool:
    """Whether `tdm-reservation` values (a header, or a meta's content) reserve TDM rights: `1`."""
    return any(str(v).strip() == "1" for v in values)


def meta_opt_out(metas: Iterable[tuple[str, str]], agent: str = DEFAULT_AGENT) -> str | None:
    """The reason a page's metas opt it out (`meta_robots`, `tdm_reservation`), else None.
    `<meta name="robots">` speaks to every crawler, `<meta name="wit">` to ours."""
    agent = agent.strip().lower()
    robots: list[str] = []
    tdm: list[str] = []
    for name, content in metas:
        name = (name or "").strip().lower()
        if name in ("robots", agent):
            robots.append(content or "")
        elif name == "tdm-reservation":
            tdm.append(content or "")
    if robots and directives_for(robots, agent) & PAGE_DIRECTIVES:
        return META_ROBOTS
    if tdm and tdm_reserved(tdm):  # most pages have no such meta: no generator for them
        return TDM_RESERVATION
    return None


def header_values(headers: Mapping[str, object], name: str) -> list[str]:
    """All values of header `name` (any case) from a mapping whose values are a string or a
    list of strings (a WAT envelope keeps a repeated header as a list)."""
    name = name.lower()
    out: list[str] = []
    for key, value in headers.items():
        if str(key).lower() != name:
            continue
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out += [v for v in value if isinstance(v, str)]
    return out


def page_opt_out(headers: Mapping[str, object], metas: Iterable[tuple[str, str]],
                 agent: str = DEFAULT_AGENT) -> str | None:
    """Why a page contributes no pairs (`x_robots_tag`, `meta_robots`, `tdm_reservation`), or None."""
    if x_robots_opt_out(header_values(headers, "x-robots-tag"), agent, PAGE_DIRECTIVES):
        return X_ROBOTS_TAG
    if tdm_reserved(header_values(headers, "tdm-reservation")):
        return TDM_RESERVATION
    return meta_opt_out(metas, agent)


# <meta ...> tags anywhere in a document, scanned as bytes (names and the values that matter
# are ASCII). A tag inside a comment or a script also counts: a false opt-out costs a page, a
# missed one would break a promise. A "<meta" with no ">" after it ends the scan: linear in the page.
_META_OPEN = re.compile(rb"<meta[\t\n\f\r /]", re.IGNORECASE)
_ATTR = re.compile(rb"""([^\t\n\f\r /=>"']++)(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:"([^"]*+)"|'([^']*+)'|([^\t\n\f\r >]*+)))?+""")


# A tag's end: the first ">" outside quoted values, looked for within MAX_TAG bytes (else, as
# for an unclosed quote, the first ">"), so each tag costs a bounded scan.
_TAG_REST = re.compile(rb"""(?:[^>"']++|"[^"]*+"|'[^']*+')*+>""")
MAX_TAG = 8192


def html_metas(body: bytes) -> list[tuple[str, str]]:
    """(name, content) of each `<meta name=... content=...>` in an HTML document."""
    metas = []
    pos = 0
    while m := _META_OPEN.search(body, pos):
        tag = _TAG_REST.match(body, m.end(), m.end() + MAX_TAG)
        end = tag.end() - 1 if tag else body.find(b">", m.end())
        if end < 0:
            break
        attrs: dict[bytes, bytes] = {}
        for a in _ATTR.finditer(body, m.end(), end):
            key = a.group(1).lower()
            if key not in attrs:  # the first of a repeated attribute wins, as in HTML
                value = a.group(2) or a.group(3) or a.group(4) or b""
                if a.group(4) and a.end() == end and value.endswith(b"/"):
                    value = value[:-1]  # `content=noai/>`: the self-closing slash, not the value
                attrs[key] = value
        if b"name" in attrs:
            metas.append((attrs[b"name"].decode("latin-1"), attrs.get(b"content", b"").decode("latin-1")))
        pos = end + 1
    return metas


def wat_metas(head: object) -> list[tuple[str, str]]:
    """(name, content) of a WAT envelope's `HTML-Metadata.Head.Metas` entries."""
    metas = head.get("Metas") if isinstance(head, dict) else None
    if not isinstance(metas, list):
        return []
    return [(m.get("name"), m.get("content") or "") for m in metas
            if isinstance(m, dict) and isinstance(m.get("name"), str) and isinstance(m.get("content", ""), str)]


def http_head_values(head: bytes, name: bytes) -> list[str]:
    """Every value of header `name` (lower-case bytes) in a raw HTTP response head (lines end
    in CRLF or a bare LF; a repeated header gives each of its values; a line that starts with
    a space or tab continues the one before, RFC 7230's obsolete folding)."""
    out: list[str] = []
    mine = False
    for line in head.split(b"\n")[1:]:
        if line[:1] in (b" ", b"\t"):
            if mine:
                out[-1] = f"{out[-1]} {line.strip().decode('latin-1')}"
            continue
        key, sep, value = line.partition(b":")
        mine = bool(sep) and key.strip().lower() == name
        if mine:
            out.append(value.strip().decode("latin-1"))
    return out


def _scannable(head: bytes, body: bytes) -> bytes:
    """The body as ASCII-compatible bytes: a UTF-16 page (its BOM, or its declared charset, as
    the image scan decodes it) would hide its metas from a byte scan while its images are read."""
    content_type = ", ".join(http_head_values(head, b"content-type")).lower()
    if body.startswith((b"\xff\xfe", b"\xfe\xff")) or "utf-16" in content_type:
        from wit_pipeline.web.charset import decode_html

        return decode_html(body, content_type).encode("utf-8", "replace")
    return body


def warc_page_opt_out(head: bytes, body: bytes, agent: str = DEFAULT_AGENT) -> str | None:
    """Why a WARC response (its raw HTTP head and decoded HTML body) contributes no pairs, or None."""
    headers = {"x-robots-tag": http_head_values(head, b"x-robots-tag"),
               "tdm-reservation": http_head_values(head, b"tdm-reservation")}
    return page_opt_out(headers, html_metas(_scannable(head, body)), agent)


def wat_page_opt_out(response: Mapping[str, object], html_meta: Mapping[str, object],
                     agent: str = DEFAULT_AGENT) -> str | None:
    """Why a WAT envelope's page (its `HTTP-Response-Metadata` and `HTML-Metadata`) contributes
    no pairs, or None."""
    headers = response.get("Headers")
    metas = wat_metas(html_meta.get("Head"))
    # Most pages send neither opt-out header: one pass over the names spares two searches.
    if isinstance(headers, Mapping) and not _PAGE_HEADERS.isdisjoint(str(key).lower() for key in headers):
        return page_opt_out(headers, metas, agent)
    return meta_opt_out(metas, agent)


_PAGE_HEADERS = frozenset({"x-robots-tag", "tdm-reservation"})  # the headers page_opt_out reads
