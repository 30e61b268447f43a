"""Python's cyclic garbage collector paused over work that makes many objects and no cycles.

A crawl file's pass makes hundreds of thousands of small containers (a dict per pair, a
tuple per verdict) that live until the file is done. Every few hundred allocations a young
collection scans them again, and every so often a full one scans the whole heap (Beam's,
pyarrow's, the allowlist's): about a tenth of harvest's CPU. They form no cycles, so
reference counting frees them without the collector; it is paused while such work runs and
resumes as it was when the last pauser is done (Beam may run several bundles in threads; while
others still pause, each one's end collects the youngest generation, so that bundles
overlapping without end do not keep cyclic garbage for good).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_pausers = 0
_was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The collector off for the block; back on after the last overlapping block if it was on."""
    global _pausers, _was_enabled
    with _lock:
        if _pausers == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _lock:
            _pausers -= 1
            if _pausers == 0 and _was_enabled:
                gc.enable()
            elif _pausers and _was_enabled:  # threads overlapping file after file would keep it off for good:
                gc.collect(0)  # each file's end still collects what is young (the runner's own cycles)
