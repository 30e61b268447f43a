"""One run per output folder: a lock that a second run into the same `--output` cannot take.

Two runs writing one folder at once overwrite each other's files and stats. Every command
that writes an `--output` holds `.wit-lock` in it while it runs:

- local folders: an exclusive `fcntl.flock` on `.wit-lock` (the file holds the holder's pid
  and command). The kernel drops the lock when the holder exits, however it exits (SIGKILL
  included), so a killed run never blocks the next one. The file is removed on release.
- remote folders (gs://, s3://, ...): `.wit-lock` is created with fsspec's exclusive mode
  (`open(..., "xb")`: gcsfs sends `ifGenerationMatch=0`, s3fs `If-None-Match`), removed on
  release. A run killed without a chance to remove it (SIGKILL, a lost VM) leaves it behind:
  the next run is refused with a message naming the object to delete once no run uses it.
  Where a filesystem has no exclusive create, the lock is a check-then-write (not atomic).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import json
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from wit_pipeline.core import fsio
from wit_pipeline.core.faults import environment_fault

LOCK_NAME = ".wit-lock"
P = ParamSpec("P")
R = TypeVar("R")


class OutputLocked(OSError):
    """Another run holds the output folder's lock (its message is one line for the user)."""


def _holder(text: str) -> str:
    try:
        doc = json.loads(text)
        return f"wit {doc['command']} (pid {doc['pid']} on {doc['host']})"
    except (ValueError, KeyError, TypeError):
        return "another run"


def _describe(command: str) -> bytes:
    return (json.dumps({"command": command, "pid": os.getpid(), "host": socket.gethostname()}) + "\n").encode()


class _LocalLock:
    def __init__(self, output: str, command: str) -> None:
        fs, path = fsio.filesystem(output)
        self.path = os.path.join(path, LOCK_NAME)
        self.output, self.command = output, command
        self.fd = -1

    def acquire(self) -> None:
        import fcntl

        fsio.makedirs(self.output)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                with open(fd, "r", closefd=True) as f:
                    held_by = _holder(f.read())
                raise OutputLocked(f"{self.output} is in use by {held_by}: wait for it to finish, "
                                   "or give another --output") from None
            # the holder may have removed the file between our open and our flock: lock the file at the path
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, _describe(self.command))
        self.fd = fd

    def release(self) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still locked: a waiter then finds the path gone and retries
        os.close(self.fd)
        self.fd = -1


class _RemoteLock:
    def __init__(self, output: str, command: str) -> None:
        self.url = fsio.join(output, LOCK_NAME)
        self.output, self.command = output, command
        self.held = False

    def acquire(self) -> None:
        fs, path = fsio.filesystem(self.url)
        fsio.makedirs(self.output)
        try:
            with fs.open(path, "xb") as f:
                f.write(_describe(self.command))
        except FileExistsError:
            try:
                with fs.open(path, "rb") as f:
                    held_by = _holder(f.read().decode("utf-8", "replace"))
            except OSError:
                held_by = "another run"
            raise OutputLocked(f"{self.output} is in use by {held_by}: wait for it to finish, or if no run "
                               f"is using it (a killed run leaves its lock), delete {self.url}") from None
        except (NotImplementedError, ValueError):  # no exclusive create here: check, then write
            if fs.exists(path):
                raise OutputLocked(f"{self.output} is in use by another run (or a killed one: delete {self.url})") from None
            with fs.open(path, "wb") as f:
                f.write(_describe(self.command))
        self.held = True

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(OSError):
                fsio.rm(self.url)
            self.held = False


def _make(output: str, command: str) -> Any:
    if fsio.exists(output) and not fsio.isdir(output):
        raise ValueError(f"--output {output} is a file, not a folder")
    fs, _ = fsio.filesystem(output)
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    return _LocalLock(output, command) if local and os.name == "posix" else _RemoteLock(output, command)


@contextlib.contextmanager
def output_lock(output: str, command: str) -> Iterator[None]:
    """Hold `output`'s lock meanwhile (OutputLocked if another run holds it). Creates the
    folder if needed, and nothing else."""
    lock = _make(output, command)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


_scope: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("wit_output_locks", default=None)


def output_run(command: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a launcher's `run`: locks it takes with `hold_output_lock` are released when it
    returns or raises (tests and the CLI call `run` many times in one process), and a fault of
    the machine (`core.faults`: a full disk, a read-only filesystem, a denied permission) ends
    it with one line naming the path, else the locked folder (SystemExit, exit 1)."""

    def decorate(run: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(run)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            token = _scope.set({})
            try:
                return run(*args, **kwargs)
            except Exception as exc:
                if line := environment_fault(exc, next(iter(_scope.get() or {}), None)):
                    raise SystemExit(f"wit {command}: {line}") from None
                raise
            finally:
                for lock in reversed((_scope.get() or {}).values()):
                    lock.release()
                _scope.reset(token)

        return wrapper

    return decorate


def hold_output_lock(output: str, command: str) -> None:
    """Take `output`'s lock (OutputLocked if another run holds it) until the enclosing
    `output_run` call ends, or else until this process exits. Taking a lock this
    call already holds is a no-op."""
    held = _scope.get()
    key = output.rstrip("/")
    if held is not None and key in held:
        return
    lock = _make(output, command)
    lock.acquire()
    if held is not None:
        held[key] = lock
    else:
        atexit.register(lock.release)
