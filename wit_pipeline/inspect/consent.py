"""What `wit inspect` says about consent: the opt-outs and blocklist drops a stats.json counts
(download's `opted_out.*` and `consent_unavailable.*`, harvest's read-stage page opt-outs,
curate's `blocklisted`), and the download's product token and policy-file requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PREFIXES = ("opted_out", "consent_unavailable.")
BLOCKLISTED = "blocklisted"


def consent_block(doc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """{"dropped": {reason: n}, and the download's "agent", "origins", "requests"}, or None when
    the stats.json records nothing about consent."""
    if not isinstance(doc, Mapping):
        return None
    dropped: dict[str, int] = {}
    for stage in doc.get("stages") or []:
        if not isinstance(stage, Mapping) or not isinstance(stage.get("dropped"), Mapping):
            continue
        for reason, n in stage["dropped"].items():
            if isinstance(n, int) and (str(reason).startswith(PREFIXES) or reason == BLOCKLISTED):
                dropped[reason] = dropped.get(reason, 0) + n
    block: dict[str, Any] = {"dropped": dict(sorted(dropped.items()))}
    summary = doc.get("consent")
    if isinstance(summary, Mapping):
        block.update(agent=summary.get("agent"), origins=summary.get("origins"),
                     requests=summary.get("requests_this_run"))
    elif not dropped:
        return None
    return block


def format_consent(block: Mapping[str, Any]) -> list[str]:
    """Text lines for `wit inspect`'s summary."""
    lines = ["consent: " + (", ".join(f"{k}={v:,}" for k, v in block["dropped"].items()) or "nothing opted out")]
    if block.get("agent"):
        requests = block.get("requests") or {}
        lines.append(f"  agent {block['agent']!r}; {block.get('origins') or 0:,} origins; this run fetched "
                     + ", ".join(f"{v:,} {k}" for k, v in requests.items()))
    return lines
