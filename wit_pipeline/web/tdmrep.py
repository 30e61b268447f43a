"""TDM reservations from an origin's `/.well-known/tdmrep.json` (W3C TDMRep, final report 2024).

The file is a JSON array of rules `{"location": pattern, "tdm-reservation": 0|1, "tdm-policy": url}`;
a location is a path pattern in robots.txt syntax (`*` matches any run of characters, a final
`$` anchors the end, otherwise a prefix). The first rule whose location matches a resource's
path (and query) decides it; no matching rule means no reservation.

What wit does with the fetch (the same outcomes as robots.txt, `robots.outcome_of_status`):
a 4xx (the usual 404) means no reservations; a 5xx, a time-out or an unreachable host reserve
everything for the run. A 2xx body that is not a JSON array of rules (many sites answer any
path with an HTML page) reserves nothing, and is recorded as `unparsable` so the choice can
be audited. Rules with an unparsable location or a reservation that is not 0 or 1 are skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from wit_pipeline.web import robots

WELL_KNOWN = "/.well-known/tdmrep.json"
MAX_RULES = 10_000  # a real file has a handful; more is not a policy file


@dataclass(frozen=True)
class Rule:
    location: str
    reserved: bool
    policy: str | None = None


def parse(body: bytes) -> list[Rule] | None:
    """The rules of a tdmrep.json body, or None when it is not a JSON array."""
    try:
        doc = json.loads(robots.decode(body))
    except ValueError:
        return None
    if not isinstance(doc, list):
        return None
    rules = []
    for item in doc[:MAX_RULES]:
        if not isinstance(item, dict):
            continue
        location, reservation = item.get("location"), item.get("tdm-reservation")
        if not isinstance(location, str) or not location.startswith("/") or reservation not in (0, 1):
            continue
        if isinstance(reservation, bool):  # json true/false are not the protocol's 0/1
            continue
        policy = item.get("tdm-policy")
        rules.append(Rule(location, reservation == 1, policy if isinstance(policy, str) else None))
    return rules


def _pattern(location: str) -> re.Pattern[str]:
    anchored = location.endswith("$")
    body = quote(location[:-1] if anchored else location, safe="/*?=&;:@+,!$'()~%-._")
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in body) + (r"\Z" if anchored else ""))


def _target(url: str) -> str:
    parts = urlsplit(url)
    path = quote(parts.path or "/", safe="/*?=&;:@+,!$'()~%-._")
    return path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class TdmRep:
    """One origin's tdmrep.json: its fetch outcome and rules."""

    outcome: str
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", [(_pattern(r.location), r) for r in self.rules])

    def rule_for(self, url: str) -> Rule | None:
        target = _target(url)
        for pattern, rule in self._compiled:  # type: ignore[attr-defined]
            if pattern.match(target):
                return rule
        return None

    def reserved(self, url: str) -> bool:
        """Whether TDM rights on `url` are reserved (so it is not fetched)."""
        if self.outcome == robots.UNREACHABLE:
            return True
        rule = self.rule_for(url)
        return rule is not None and rule.reserved


def from_fetch(outcome: str, body: bytes) -> tuple[TdmRep, str]:
    """The TdmRep of a fetch and the state to record (`ok`, `unavailable`, `unreachable`, `unparsable`)."""
    if outcome != robots.OK:
        return TdmRep(outcome), outcome
    rules = parse(body)
    if rules is None:
        return TdmRep(robots.UNAVAILABLE), "unparsable"
    return TdmRep(robots.OK, tuple(rules)), robots.OK
