"""Turn an `<img src>` into the absolute URL a browser would fetch, or a reason it is unusable.

Resolution and serialisation follow the WHATWG URL Standard, through ada-url (the parser
Node.js uses): the URL is the one the page and a browser fetch, so sample keys
(keys.sample_key(url, text)) are stable across tools. In order:

1. Leading/trailing C0 controls and spaces are stripped, tabs and newlines inside removed, a
   backslash is a slash (all as browsers do).
2. Relative sources resolve against the document base: `<base href>` (itself resolved against
   the page URL) when the page has one, else the page URL; dot segments (`..`, `%2e%2e`) go.
3. The scheme decides: `data:` -> `data_url`, `javascript:` -> `javascript_url`, anything but
   http(s) -> `not_http`; a URL the standard cannot parse -> `bad_url`.
4. What the standard serialises: scheme and host lower-cased, internationalised hosts as IDNA
   (`bücher.example` -> `xn--bcher-kva.example`), IPv4 in dotted decimal, default port
   dropped, an empty path as `/`, and percent-encoding of exactly the characters each
   component's percent-encode set names (`[`, `]`, `|`, `^` stay as written; a space is
   `%20`; existing escapes are kept as written). The fragment is dropped: it never reaches
   the server.
5. Limits no fetch can use: over MAX_URL_CHARS -> `url_too_long`; a host label over 63
   characters, a host over 253 or an empty label -> `bad_host` (DNS cannot hold them).

`PageUrls(page_url, base_href)` computes the document base once per page and gives the common
shapes (an absolute URL already in its serialised form, a simple root- or path-relative
source) a pure-string fast path that yields exactly what the parser would.
"""

from __future__ import annotations

import re

import ada_url

EMPTY_SRC = "empty_src"
DATA_URL = "data_url"
JAVASCRIPT_URL = "javascript_url"
NOT_HTTP = "not_http"
BAD_URL = "bad_url"
URL_TOO_LONG = "url_too_long"
BAD_HOST = "bad_host"

MAX_URL_CHARS = 2048  # the sitemaps limit and what every browser and CDN accepts
MAX_HOST_CHARS = 253
MAX_LABEL_CHARS = 63

# Characters the WHATWG serialiser leaves alone in a path segment / a special URL's query.
# Repeats are possessive (`*+`) where giving characters back could never lead to a match
# (a segment stops at "/", "?" or the end): the same matches, without backtracking.
_SEG = r"[A-Za-z0-9\-._~!$&'()*+,;=:@%\[\]|]"
_QUERY = r"(?:\?[A-Za-z0-9\-._~!$&()*+,;=:@%/?\[\]|^{}`]*+)?"
# Path segments that cannot be dot segments (no leading "." or "%2e").
_PATH = rf"(?:/(?![.]|%2[eE]){_SEG}*+)++"
# A lower-case DNS name whose last label starts with a letter (so it is not parsed as IPv4),
# within DNS limits; or a dotted-decimal IPv4 address. Punycode is left to ada (it validates
# it): `_serialised` refuses "xn--" with a substring test, far cheaper than a lookahead.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HOST = (rf"(?=[a-z0-9.-]{{1,253}}[:/])(?:(?:[a-z0-9-]{{1,63}}+\.)*+[a-z][a-z0-9-]{{0,62}}+"
         rf"|(?:{_OCTET}\.){{3}}{_OCTET})")
_PORT = r"(?::(?!(?:80|443)/)(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}))?"  # not a default one, < 60000
_SERIALISED = re.compile(rf"https?://{_HOST}{_PORT}{_PATH}{_QUERY}")
_ROOT_RELATIVE = re.compile(rf"(?!//){_PATH}{_QUERY}")
# Path-relative: the first segment holds no ":" (that would be a scheme) and is not a dot segment.
_PATH_RELATIVE = re.compile(rf"(?![.]|%2[eE])[A-Za-z0-9\-._~!$&'()*+,;=@%\[\]|]++(?:{_PATH})?{_QUERY}")
# Leading "./" and "../" segments (group 1), then a path-relative source.
_DOTTED = re.compile(rf"((?:\.\.?/)++){_PATH_RELATIVE.pattern}")


def _serialised(url: str) -> bool:
    """Whether an absolute http(s) URL is already what the parser would serialise it as."""
    return "xn--" not in url and _SERIALISED.fullmatch(url) is not None


def _host_reason(url: str) -> str | None:
    """`bad_host` when the (serialised http(s)) URL's host breaks DNS limits, else None."""
    authority = url[url.index("//") + 2:].split("/", 1)[0]
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        return None
    host = host.rsplit(":", 1)[0] if ":" in host else host
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > MAX_HOST_CHARS or any(not 0 < len(label) <= MAX_LABEL_CHARS for label in labels):
        return BAD_HOST
    return None


def _checked(url: str) -> tuple[str | None, str | None]:
    """The parser's href of an absolute URL, with the scheme and the limits applied."""
    if not url.startswith(("http://", "https://")):
        if url.startswith("data:"):
            return None, DATA_URL
        if url.startswith("javascript:"):
            return None, JAVASCRIPT_URL
        return None, NOT_HTTP
    url = url.split("#", 1)[0]  # serialised: a "#" can only start the fragment
    if len(url) > MAX_URL_CHARS:
        return None, URL_TOO_LONG
    return (None, reason) if (reason := _host_reason(url)) else (url, None)


def _parse(src: str, base: str | None) -> tuple[str | None, str | None]:
    try:
        href = ada_url.join_url(base, src) if base else ada_url.URL(src).href
    except ValueError:
        return None, BAD_URL
    return _checked(href)


class PageUrls:
    """Resolves one page's image sources: the document base is parsed once, and only as far
    as the page's sources need (a page of absolute sources never splits its path)."""

    __slots__ = ("base", "scheme", "origin", "_directories")

    def __init__(self, page_url: str, base_href: str | None = None) -> None:
        # Most pages have no <base> and a URL already in serialised form: the parser would
        # return it as is, with a host within DNS limits (what _SERIALISED means).
        serialised = not base_href and _serialised(page_url)
        self.base = base = page_url if serialised else document_base(page_url, base_href)
        self.scheme = self.origin = self._directories = None
        if base and base.startswith(("http://", "https://")) and (serialised or _host_reason(base) is None):
            slashes = base.index("//")
            self.scheme = base[:slashes]
            self.origin = base[: base.find("/", slashes + 2)]

    def directories(self) -> list[str]:
        """The base's directory, then each parent up to "/" (made on a page's first
        path-relative source). The query and the fragment are not part of the path: a
        fragment may hold "/" ("/a/b#/c/d" is in "/a/")."""
        if self._directories is None:
            path = self.base[len(self.origin):].split("#", 1)[0].split("?", 1)[0]
            segments = path[: path.rfind("/")].split("/")  # "/a/b/c.html" -> ["", "a", "b"]
            self._directories = [self.origin + "/".join(segments[:k]) + "/" for k in range(len(segments), 0, -1)]
        return self._directories

    def resolve(self, src: str | None) -> tuple[str | None, str | None]:
        """(absolute URL, None) or (None, reason); reasons are the module constants."""
        if not src:
            return None, EMPTY_SRC
        if len(src) <= MAX_URL_CHARS:
            if src[0] == "h" and _serialised(src):  # the most common source (it starts "http")
                return src, None
            if self.origin is not None and (url := self._relative(src)) is not None and len(url) <= MAX_URL_CHARS:
                return url, None
        if src.isspace():
            return None, EMPTY_SRC
        return _parse(src, self.base)

    def _relative(self, src: str) -> str | None:
        """What the parser would give for a simple relative source, by string operations; else None."""
        if src[0] == "/":
            if src.startswith("//"):
                url = self.scheme + src
                return url if _serialised(url) else None
            return self.origin + src if _ROOT_RELATIVE.fullmatch(src) else None
        if src[0] == ".":
            m = _DOTTED.fullmatch(src)
            if m is None:
                return None
            directories = self.directories()
            return directories[min(m.group(1).count("../"), len(directories) - 1)] + src[m.end(1):]
        return self.directories()[0] + src if _PATH_RELATIVE.fullmatch(src) else None


def document_base(page_url: str, base_href: str | None = None) -> str | None:
    """The URL relative sources resolve against: `<base href>` resolved against the page URL
    (when it parses), else the page URL; None when not even the page URL parses."""
    try:
        page = ada_url.URL(page_url).href
    except ValueError:
        page = None
    if base_href and base_href.strip():
        try:
            return ada_url.join_url(page, base_href) if page else ada_url.URL(base_href).href
        except ValueError:
            pass
    return page
