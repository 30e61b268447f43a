"""Turn an `<img src>` into one canonical absolute image URL, or a reason it is unusable.

The same image is written many ways across the web; one canonical spelling lets the sample
key (keys.sample_key(url, text)) and the downloader see it once. Normalisation, in order:

1. Strip leading/trailing whitespace and drop tabs/newlines inside the value (as browsers do).
2. Reject `data:` (inline bytes, not fetchable) and `javascript:` sources by scheme.
3. Resolve against the document base: `<base href>` (itself resolved against the page URL)
   when the page has one, else the page URL. This handles relative (`a.png`, `/a.png`,
   `../a.png`) and protocol-relative (`//cdn.example/a.png`) sources and dot segments.
4. Keep only http and https.
5. Lower-case the scheme and host; encode an internationalised host with IDNA (UTS #46),
   e.g. `bücher.example` -> `xn--bcher-kva.example`; drop a trailing dot; drop the port when it
   is the scheme's default (80, 443). A port that is not a number, or a host with characters a
   hostname cannot hold, is `bad_url`.
6. Make percent-encoding canonical in path and query: escapes upper-case (`%c3` -> `%C3`),
   escaped unreserved characters decoded (`%7E` -> `~`), non-ASCII and other unsafe
   characters UTF-8 percent-encoded, a stray `%` becomes `%25`. Reserved characters are
   left as they are, because decoding them could change what the server sees. Dot segments
   that decoding revealed (`%2e%2e`) are resolved too. A backslash in the source is a slash.
7. An empty path becomes `/`; the fragment is dropped (it never reaches the server).
   The query string keeps its order (reordering can change the resource).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import idna

EMPTY_SRC = "empty_src"
DATA_URL = "data_url"
JAVASCRIPT_URL = "javascript_url"
NOT_HTTP = "not_http"
BAD_URL = "bad_url"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_INNER_WS = re.compile(r"[\t\n\r]")
_ESCAPE_SPLIT = re.compile(r"(%[0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = "/:@!$&'()*+,;="
_QUERY_SAFE = _PATH_SAFE + "?"
_HOST_OK = re.compile(r"^[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?$")
_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*):")


def _canonical_escapes(part: str, safe: str) -> str:
    out = []
    for piece in _ESCAPE_SPLIT.split(part):
        if not piece:
            continue
        if len(piece) == 3 and piece[0] == "%" and _ESCAPE_SPLIT.fullmatch(piece):
            char = chr(int(piece[1:], 16))
            out.append(char if char in _UNRESERVED else piece.upper())
        else:
            out.append(quote(piece, safe=safe))
    return "".join(out)


def _canonical_host(host: str) -> str | None:
    if host.startswith("["):  # IPv6 literal: keep as written, lower-cased
        return host.lower() if host.endswith("]") and len(host) > 2 else None
    host = host.rstrip(".")
    if not host:
        return None
    if host.isascii():
        host = host.lower()
    else:
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    return host if _HOST_OK.match(host) and ".." not in host else None


def normalize_url(url: str) -> tuple[str | None, str | None]:
    """Canonical form of an absolute http(s) URL: (url, None) or (None, reason)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None, BAD_URL
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return None, NOT_HTTP
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):
        host, _, rest = hostport.partition("]")
        host += "]"
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    else:
        host, _, port_text = hostport.partition(":")
    if port_text is None:
        return None, BAD_URL
    host = _canonical_host(host)
    if host is None:
        return None, BAD_URL
    netloc = host
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
            return None, BAD_URL
        port = int(port_text)
        if port != _DEFAULT_PORTS[scheme]:
            netloc = f"{host}:{port}"
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    path = _remove_dot_segments(_canonical_escapes(parts.path, _PATH_SAFE)) or "/"
    query = _canonical_escapes(parts.query, _QUERY_SAFE)
    return urlunsplit((scheme, netloc, path, query, "")), None


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 again after escapes are decoded: `/a/%2e%2e/b` is `/b`, as browsers see it."""
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/".join(out)


def document_base(page_url: str, base_href: str | None = None) -> str:
    """The URL relative sources resolve against: `<base href>` (resolved) or the page URL."""
    if base_href:
        base_href = _INNER_WS.sub("", base_href.strip())
        if base_href:
            try:
                return urljoin(page_url, base_href)
            except ValueError:
                return page_url
    return page_url


def resolve_image_url(page_url: str, src: str | None, base_href: str | None = None) -> tuple[str | None, str | None]:
    """(normalised absolute URL, None) or (None, reason); reasons are the module constants."""
    if src is None:
        return None, EMPTY_SRC
    src = _INNER_WS.sub("", src.strip())
    if not src:
        return None, EMPTY_SRC
    m = _SCHEME.match(src)
    if m:
        scheme = m.group(1).lower()
        if scheme == "data":
            return None, DATA_URL
        if scheme == "javascript":
            return None, JAVASCRIPT_URL
    src = src.replace("\\", "/")  # browsers read a backslash as a slash in http(s) URLs
    try:
        absolute = urljoin(document_base(page_url, base_href), src)
    except ValueError:
        return None, BAD_URL
    return normalize_url(absolute)
