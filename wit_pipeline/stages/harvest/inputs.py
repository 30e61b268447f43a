"""Which crawl files a harvest reads: globs (`--input`) and path lists (`--input-list`).

Lists are expanded on the workers (a crawl lists ~100k files; the job graph stays small) and
checked in the launcher first, so a typo stops the job before it starts.
"""

from __future__ import annotations

import os

from wit_pipeline.core import fsio

COMMON_CRAWL_PREFIX = "https://data.commoncrawl.org/"


def _one_name(url: str) -> str:
    """One name per local file, whatever way it was given (`file://`, `./`, `..`): its part is
    named from it, and two names would read it twice and count its pairs as duplicates.
    Absolute, as a glob expands: a list's relative --input-prefix names the same files."""
    url = url.removeprefix("file://")
    return url if "://" in url else os.path.abspath(url)


def _listed_url(line: str, prefix: str) -> str:
    """A line of a paths list as a URL: URLs as they are, absolute local paths normalised,
    relative paths (Common Crawl's `crawl-data/...`) under `prefix`."""
    if "://" in line or line.startswith("/"):
        return _one_name(line)
    return _one_name(prefix.rstrip("/") + "/" + line)


def _glob_files(pattern: str) -> list[str]:
    """fsio.expand without the folders a wildcard matches (`crawl/*` over crawl/wat/): a folder
    is no crawl file. One listing, no call per match (a crawl's 64k files on GCS)."""
    fs, path = fsio.filesystem(pattern)
    if not any(c in path for c in "*?["):
        return fsio.expand(pattern)  # a folder named as such: check_sources says so
    found = fs.glob(path, detail=True)
    return sorted(fs.unstrip_protocol(p) if "://" in pattern else p
                  for p, info in found.items() if info.get("type") != "directory")


def source_files(kind: str, url: str, prefix: str = COMMON_CRAWL_PREFIX, max_files: int = 0) -> list[str]:
    """The crawl files of one --input glob ("glob") or --input-list file ("list"), sorted;
    the first `max_files` of them when it is positive. Listed files are not checked one by
    one: a missing one becomes its own dead letter."""
    if kind == "glob":
        files = [url] if url.startswith(("http://", "https://")) else _glob_files(url)
        files = [_one_name(f) for f in files]  # wat/../wat/x and file://.../wat/x are wat/x: read once
    else:
        listed = (line.strip() for line in fsio.read_text(url).splitlines())
        files = sorted({_listed_url(line, prefix) for line in listed if line and not line.startswith("#")})
    return files[:max_files] if max_files > 0 else files


def check_sources(sources: list[tuple[str, str]], prefix: str) -> None:
    """Raise a one-line error for a source that names no crawl file (or names a folder)."""
    for kind, url in sources:
        flag = "--input" if kind == "glob" else "--input-list"
        if kind == "glob" and not url.startswith(("http://", "https://")) and fsio.isdir(url):
            raise ValueError(f"{flag} {url!r} is a folder: give its files, e.g. '{url.rstrip('/')}/*.warc.wat.gz' or '{url.rstrip('/')}/*.warc.gz'")
        if not source_files(kind, url, prefix, max_files=1):
            raise FileNotFoundError(f"{flag} {url!r} " + ("matches no files" if kind == "glob" else "lists no files"))
        if kind == "glob" and fsio.is_local(url):  # a FIFO or device would hang a worker: refuse it now
            for problem in filter(None, map(fsio.not_a_regular_file, source_files(kind, url, prefix))):
                raise ValueError(f"{flag} {url!r}: {problem}")

