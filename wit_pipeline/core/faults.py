"""Faults of the machine, not of the input or the code: a full disk, a read-only or
permission-denied folder. `wit` turns them into one line naming the path (exit 1) instead of a
traceback of hundreds of lines, wherever they are raised: in a stage, in a library it calls,
or in a Beam worker (Beam wraps a worker's exception in a RuntimeError, as a chained cause
in-process and only as text from a worker process)."""

from __future__ import annotations

import errno
import io
import logging
import os
import re
from types import TracebackType

STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})  # the disk refuses writes: no retry helps
ENVIRONMENT_ERRNOS = STORAGE_ERRNOS | {errno.EACCES, errno.EPERM}
# "OSError: [Errno 28] No space left on device: '/out/x.tar'" in a worker's traceback text
_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\] ([^\n:\[\]]+?)(?:: '([^'\n]+)')?(?: \[while running|\n|$)")
_PATH_NAMES = ("path", "url", "tmp", "filename", "output", "out")


def environment_fault(exc: BaseException, path: str | None = None) -> str | None:
    """'<what> (errno <NAME>): <path>' when `exc` is, or wraps, an environment OSError (or
    names one in its text: Beam re-raises a worker's error as another type); else None. The
    path is the error's own, else the file the failing frame was writing, else `path` (the
    caller's output folder)."""
    seen: set[int] = set()
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    errors = [e for e in reversed(chain) if isinstance(e, OSError) and e.errno in ENVIRONMENT_ERRNOS]
    if errors:  # innermost first, one that names its path before one that does not
        error = min(errors, key=lambda e: e.filename is None)
        where = error.filename or _path_in_frames(error.__traceback__) or path
        return _line(error.errno, error.strerror or os.strerror(error.errno), where)
    found = [m for error in chain for m in _ERRNO_TEXT.finditer(str(error)) if int(m.group(1)) in ENVIRONMENT_ERRNOS]
    if found:
        m = min(found, key=lambda m: m.group(3) is None)
        return _line(int(m.group(1)), m.group(2).strip(), m.group(3) or path)
    return None


def _line(code: int, what: str, path: object) -> str:
    where = f": {path}" if path else " (the path was not reported)"
    return f"{what} (errno {errno.errorcode.get(code, code)}){where}"


def _path_in_frames(tb: TracebackType | None) -> str | None:
    """The path a write was going to when the error carries none (a write() or flush() on an
    open file): the innermost frame holding an open file's name or a path-like local."""
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), str):
                return value.name
        for name in _PATH_NAMES:
            value = frame.f_locals.get(name)
            if isinstance(value, (str, os.PathLike)):
                return os.fspath(value)
    return None


class DropEnvironmentFaults(logging.Filter):
    """Drops log records of an environment fault (Beam logs a worker's exception with its whole
    traceback before raising it): the CLI says it in one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or environment_fault(exc) is None


BEAM_ERROR_LOGGERS = ("apache_beam.runners.common",)


def quiet_environment_faults() -> None:
    """Install DropEnvironmentFaults on the loggers that print a worker's traceback."""
    for name in BEAM_ERROR_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropEnvironmentFaults) for f in logger.filters):
            logger.addFilter(DropEnvironmentFaults())
