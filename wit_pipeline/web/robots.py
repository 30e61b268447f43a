"""robots.txt decisions (RFC 9309) with protego, Scrapy's parser, for one product token.

What RFC 9309 asks and where it is done:
- the group whose user-agent line is our product token (case-insensitive, exact: a group
  `wi` is not ours), else the `*` group, else no rules; groups for one token are merged;
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

from dataclasses import dataclass

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
    the limit dropped."""
    if len(body) > MAX_BYTES:
        body = body[:MAX_BYTES]
        cut = max(body.rfind(b"\n"), body.rfind(b"\r"))
        body = body[: cut + 1] if cut >= 0 else b""
    return body.decode("utf-8", errors="replace").removeprefix("\ufeff")


@dataclass(frozen=True)
class Robots:
    """One origin's robots.txt as seen by one product token."""

    outcome: str
    text: str = ""
    agent: str = "wit"

    def __post_init__(self) -> None:
        parser = Protego.parse(self.text) if self.outcome == OK and self.text else None
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
        """Whether `url` (on this origin) may be fetched."""
        if self.outcome == UNREACHABLE:
            return False
        rules = self._rules  # type: ignore[attr-defined]
        if rules is None:
            return True
        if _path(url) == "/robots.txt":
            return True
        return rules.can_fetch(url)


def _path(url: str) -> str:
    rest = url.split("://", 1)[-1]
    slash = rest.find("/")
    return "/" if slash < 0 else rest[slash:].split("?", 1)[0].split("#", 1)[0]
