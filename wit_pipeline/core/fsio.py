"""Paths are URLs: local paths, file://, gs://, s3:// through fsspec.

Outputs are written under a temporary name beside the target and renamed, so a reader
never sees half a file and a re-run after a crash overwrites instead of duplicating.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import uuid
from collections.abc import Iterator
from typing import IO, Any

import fsspec


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def join(base: str, *parts: str) -> str:
    base = base.rstrip("/")
    return "/".join([base, *[p.strip("/") for p in parts]])


def makedirs(url: str) -> None:
    fs, path = filesystem(url)
    fs.makedirs(path, exist_ok=True)


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return bool(fs.exists(path))


def isdir(url: str) -> bool:
    fs, path = filesystem(url)
    return bool(fs.isdir(path))


def size(url: str) -> int:
    fs, path = filesystem(url)
    return int(fs.size(path))


def rm(url: str) -> None:
    """Remove one file."""
    fs, path = filesystem(url)
    fs.rm(path)


def names(url: str) -> list[str]:
    """The base names of a folder's entries, sorted; [] when there is no folder."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return []
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))


def ls(url: str) -> list[str]:
    """The URLs of a folder's entries, sorted."""
    fs, path = filesystem(url)
    paths = sorted(p.rstrip("/") for p in fs.ls(path, detail=False))
    return [fs.unstrip_protocol(p) if "://" in url else p for p in paths]


def find(url: str) -> list[str]:
    """The URLs of every file under a folder, sorted."""
    fs, path = filesystem(url)
    return [fs.unstrip_protocol(p) if "://" in url else p for p in sorted(fs.find(path))]


def is_local(url: str) -> bool:
    """Whether `url` is on this machine's file system (a path or file://)."""
    return "file" in filesystem(url)[0].protocol


def _special_kind(url: str) -> str | None:
    """'a FIFO', 'a socket' or 'a device' for a local path that is one, else None."""
    if url.startswith(("http://", "https://")) or not is_local(url):
        return None
    path = filesystem(url)[1]
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"


def not_a_regular_file(url: str) -> str | None:
    """Why a local path cannot be read as a file (a FIFO blocks its reader until someone writes,
    a device such as /dev/zero never ends), or None: a regular file, a missing one (its open
    says so) or a remote URL."""
    kind = _special_kind(url)
    return None if kind is None else f"{url} is {kind}, not a regular file"


def check_regular_file(url: str) -> None:
    """Raise OSError (EINVAL) for a local path that is not a regular file (`not_a_regular_file`)."""
    if kind := _special_kind(url):
        raise OSError(errno.EINVAL, f"{kind}, not a regular file", url)


def open(url: str, mode: str = "rb") -> IO[Any]:  # noqa: A001 - fsio.open, as fsspec.open
    """Open a file for reading (write through atomic_open); a local FIFO or device is refused
    instead of blocking or never ending."""
    if "w" in mode or "a" in mode:
        raise ValueError("fsio.open is for reading; write through atomic_open")
    check_regular_file(url)
    fs, path = filesystem(url)
    return fs.open(path, mode)


def expand(pattern: str) -> list[str]:
    """Sorted file URLs matching a glob (or the path itself when it has no wildcard)."""
    fs, path = filesystem(pattern)
    paths = sorted(fs.glob(path)) if any(c in path for c in "*?[") else ([path] if fs.exists(path) else [])
    return [fs.unstrip_protocol(p) if "://" in pattern else p for p in paths]


@contextlib.contextmanager
def atomic_open(url: str, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open `url` for writing under a temporary name; rename into place on success only."""
    if "w" not in mode:
        raise ValueError("atomic_open is for writing")
    fs, path = filesystem(url)
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    fs.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        with fs.open(tmp, mode) as f:
            yield f
        fs.mv(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            fs.rm(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
            # a write() or close() that failed (a full disk) names no file: name it
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), url) from exc
        raise


def write_bytes(url: str, data: bytes) -> None:
    with atomic_open(url, "wb") as f:
        f.write(data)


def write_json(url: str, doc: Any) -> None:
    write_bytes(url, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))


def read_text(url: str) -> str:
    """A whole text file, gunzipped when its name ends in .gz (a crawl's paths list)."""
    with fsspec.open(url, "rt", encoding="utf-8", compression="infer") as f:
        return f.read()


def read_json(url: str) -> Any:
    with fsspec.open(url, "rb") as f:
        return json.loads(f.read())
