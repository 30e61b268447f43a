"""robots.txt decisions (RFC 9309) with protego, Scrapy's parser, for one product token.

What RFC 9309 asks and where it is done:
- the group whose user-agent line is our product token (case-insensitive, exact: a group
  `wi` is not ours; a version after a `/` is not part of the token), else the `*` group, else no rules; groups for one token are merged;
- the longest matching rule wins, Allow wins a tie; `*` and `$` in patterns; percent-encoding
  normalised; `/robots.txt` itself always allowed (protego, checked in tests/test_robots.py
  against the RFC's examples);
- at least the first 500 KiB parsed (`MAX_BYTES`; a cut last line is dropped);
- the fetch outcome decides when there is no file to read (`Outcome`): 2xx parses the body;
  4xx means "unavailable" and allows everything; 5xx, a time-out, an unreachable host, more
  than `MAX_REDIRECTS` redirects or a refusal by the egress guard mean "unreachable" and
  disallow everything. 429 (too many requests) counts as unreachable, as Google reads it.

protego picks a group by substring of the name it is given; exact token selection uses its
per-token rule sets (`_user_agents`, pinned protego version, covered by the tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from protego import Protego

MAX_BYTES = 512_000  # RFC 9309 2.5: parse at least the first 500 KiB
MAX_REDIRECTS = 5  # RFC 9309 2.3.1.2: follow at least five consecutive redirects

OK = "ok"  # a file was fetched (2xx) and is parsed
UNAVAILABLE = "unavailable"  # 4xx: no rules, everything allowed
UNREACHABLE = "unreachable"  # 5xx, time-out, no connection: everything disallowed


def outcome_of_status(status: int) -> str:
    """The RFC 9309 outcome of a final HTTP status (after redirects)."""
    if 200 <= status < 300:
        return OK
    if status == 429 or status >= 500:
        return UNREACHABLE
    if 400 <= status < 500:
        return UNAVAILABLE
    return UNREACHABLE  # a 1xx or an unfollowed 3xx: no answer to read


def decode(body: bytes) -> str:
    """robots.txt text: UTF-8 (RFC 9309 2.2), BOM dropped, at most MAX_BYTES, a line cut by
    the limit dropped. A file saved as UTF-16 (its BOM says so) is read as such: read as UTF-8
    its rules would vanish, and with them its Disallow lines."""
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = body[:MAX_BYTES].decode("utf-16", errors="replace")
        return decode(text.encode("utf-8"))
    if len(body) > MAX_BYTES:
        body = body[:MAX_BYTES]
        cut = max(body.rfind(b"\n"), body.rfind(b"\r"))
        body = body[: cut + 1] if cut >= 0 else b""
    return body.decode("utf-8", errors="replace").removeprefix("\ufeff")


# A user-agent line naming a product token with a version (`User-agent: wit/0.1`): the token
# is what is matched (as Google's parser reads it), so such a group is ours, merged with `wit`.
_VERSIONED_AGENT = re.compile(r"(?im)((?:^|\r)[ \t]*user-?agent[ \t]*:[ \t]*[a-z_-]+)/[^\s#]*")


@dataclass(frozen=True)
class Robots:
    """One origin's robots.txt as seen by one product token."""

    outcome: str
    text: str = ""
    agent: str = "wit"

    def __post_init__(self) -> None:
        parser = Protego.parse(_VERSIONED_AGENT.sub(r"\1", self.text)) if self.outcome == OK and self.text else None
        rules = None
        if parser is not None:
            groups = parser._user_agents  # token (lower-cased) -> merged rule set
            rules = groups.get(self.agent.strip().lower()) or groups.get("*")
        object.__setattr__(self, "_rules", rules)

    @property
    def group(self) -> str | None:
        """The user-agent of the group that applies (our token or `*`), None when none does."""
        rules = self._rules  # type: ignore[attr-defined]
        return None if rules is None else rules.user_agent

    def allowed(self, url: str) -> bool:
        """Whether `url` (on this origin) may be fetched: it, and the path a server makes of it
        (`served_forms`), are allowed."""
        if self.outcome == UNREACHABLE:
            return False
        rules = self._rules  # type: ignore[attr-defined]
        if rules is None:
            return True
        return all(_path(u) == "/robots.txt" or rules.can_fetch(u) for u in served_forms(url))


_DOT = re.compile(r"%2e", re.IGNORECASE)
_SLASHES = re.compile(r"/{2,}")


def served_forms(url: str) -> list[str]:
    """`url`, and the URL most servers serve for it when that differs: dot segments removed
    (`/img/../private/x.jpg`, also written `%2E%2E`) and repeated slashes merged (nginx's
    default). A rule for `/private/` must hold for every way of writing a path into it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    path = _SLASHES.sub("/", _DOT.sub(".", parts.path))
    served = urljoin(f"{parts.scheme}://{parts.netloc}/", path or "/")  # RFC 3986 5.2.4
    if parts.query:
        served += "?" + parts.query
    return [url] if served == url.split("#", 1)[0] else [url, served]


def _path(url: str) -> str:
    rest = url.split("://", 1)[-1]
    slash = rest.find("/")
    return "/" if slash < 0 else rest[slash:].split("?", 1)[0].split("#", 1)[0]
