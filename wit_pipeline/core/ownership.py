"""Which output folders a command may write into and tidy: the ones its marker proves are its own.

A command that rewrites or deletes files in its `--output` (download, harvest, curate) first
claims the folder: a new or empty folder gets the command's marker, `.wit-<command>` (a small
JSON file naming the command and the wit version that wrote it), before anything else is
written there. A rerun accepts a folder only when that marker is there; any other non-empty
folder is refused untouched. A file's name never proves anything: a user's `2024.tar` looks
like a shard, a user's `_tmp/` like scratch.

Folders written by wit versions that had no marker are adopted once, by the rule the older
versions used, narrowed: the folder's stats.json is the command's own and every name in it is
one the command writes. Adopting writes the marker, so the rule is never consulted again there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from wit_pipeline import __version__
from wit_pipeline.core import fsio
from wit_pipeline.core.outputs import STATS as STATS_FILE

log = logging.getLogger(__name__)


def marker_name(command: str) -> str:
    """The marker file of `command`'s output folders."""
    return f".wit-{command}"


def read_marker(output: str, command: str) -> dict[str, Any] | None:
    """The marker `command` wrote in `output`, or None when there is none (or it is not ours)."""
    url = fsio.join(output, marker_name(command))
    try:
        doc = fsio.read_json(url)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("command") == command else None


def write_marker(output: str, command: str, **fields: Any) -> dict[str, Any]:
    """Write (atomically) `command`'s marker into `output`; returns what was written."""
    doc = {"command": command, "written_by": f"wit {__version__}", **fields}
    fsio.write_json(fsio.join(output, marker_name(command)), doc)
    return doc


def _other_markers(names: list[str], command: str) -> list[str]:
    return [n for n in names if n.startswith(".wit-") and n != marker_name(command) and n != ".wit-lock"]


def check_own_output(output: str, command: str, stats_is_ours: Callable[[Any], bool],
                     names_are_ours: Callable[[list[str]], bool]) -> str:
    """Whether `command` may use `output`: "new" (missing or empty), "ours" (its marker is
    there) or "legacy" (an older wit's output, see the module docstring); anything else is
    refused with a ValueError, before anything there is touched."""
    if fsio.exists(output) and not fsio.isdir(output):
        raise ValueError(f"--output {output} is a file, not a folder")
    names = [n for n in fsio.names(output) if n != ".wit-lock"]
    if not names:
        return "new"
    if marker_name(command) in names:
        if read_marker(output, command) is None:
            raise ValueError(f"{fsio.join(output, marker_name(command))} is not a wit {command} marker: "
                             f"give wit {command} a new or empty --output")
        return "ours"
    if others := _other_markers(names, command):
        raise ValueError(f"{output} holds another stage's output ({others[0]}): "
                         f"give wit {command} a new or empty --output")
    if STATS_FILE in names:
        url = fsio.join(output, STATS_FILE)
        try:
            ours = bool(stats_is_ours(fsio.read_json(url)))
        except (OSError, ValueError, AttributeError, TypeError):
            ours = False
        if not ours:
            raise ValueError(f"{output} holds another stage's output ({url} is not a {command}'s): "
                             f"give wit {command} a new or empty --output")
        if names_are_ours(names):
            return "legacy"
    raise ValueError(f"{output} is not empty and is not a wit {command} output (no {marker_name(command)}): "
                     "give a new or empty --output")


def claim_output(output: str, command: str, stats_is_ours: Callable[[Any], bool],
                 names_are_ours: Callable[[list[str]], bool], **fields: Any) -> dict[str, Any]:
    """`check_own_output`, then make the folder `command`'s: create it and write the marker
    (with `fields`) unless it is already there. Returns the marker."""
    state = check_own_output(output, command, stats_is_ours, names_are_ours)
    if state == "ours":
        return read_marker(output, command) or {}
    fsio.makedirs(output)
    if state == "legacy":
        log.warning("%s: %s was written by an earlier wit without a marker; adopting it (writing %s)",
                    command, output, marker_name(command))
    return write_marker(output, command, **fields)
