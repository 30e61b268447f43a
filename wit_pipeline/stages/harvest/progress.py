"""A progress line for a local harvest: files done / total, MB/s of crawl read, pairs, ETA.

The per-file parts are the progress: a thread watches the parts folder and counts the
parts of this run's files as they are renamed into place. Parts already there count as done
only when complete for this run's settings and input (the ones this run will skip): a part of
other settings is redone, and counted when its new file replaces it.
"""

from __future__ import annotations

import os
import threading
import time
from types import TracebackType

import pyarrow.parquet as pq
from tqdm import tqdm

from wit_pipeline.core import outputs
from wit_pipeline.stages.harvest.inputs import source_files
from wit_pipeline.stages.harvest.parts import input_version, part_is_complete, part_name

POLL_SECONDS = 1.0


class Progress:
    """Shows progress while its `with` block runs; silent when the inputs or the output are
    not local files (a Dataflow job has its own console) or when disabled."""

    def __init__(self, sources: list[tuple[str, str]], output: str, prefix: str, max_files: int,
                 fingerprint: str, enabled: bool = True) -> None:
        self.parts_dir, self.fingerprint = os.path.join(output, outputs.CANDIDATES), fingerprint
        self.files: dict[str, str] = {}
        if enabled and "://" not in output:
            files = [f for kind, url in sources for f in source_files(kind, url, prefix, max_files)]
            if all("://" not in f for f in files):
                self.files = {part_name(f): f for f in files}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.files:
            self._thread = threading.Thread(target=self._watch, name="harvest-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _present(self) -> dict[str, tuple[int, int]]:
        """This run's parts in the folder, each with (inode, mtime): a part renamed into place
        anew is another file."""
        try:
            with os.scandir(self.parts_dir) as entries:
                return {e.name: (e.inode(), e.stat().st_mtime_ns) for e in entries if e.name in self.files}
        except FileNotFoundError:
            return {}

    def _version(self, name: str) -> str:
        """A local crawl file's version; "" (not compared) for a remote one: the bar must not
        send a request per file of a 64k-file crawl before it shows anything."""
        file = self.files[name]
        return "" if "://" in file else input_version(file)

    def _watch(self) -> None:
        before = self._present()
        seen = {name for name in before  # done by an earlier run: resumed, not re-read
                if part_is_complete(os.path.join(self.parts_dir, name), self.fingerprint, self._version(name))}
        start, read_bytes, pairs = time.monotonic(), 0, 0
        bar = tqdm(total=len(self.files), initial=len(seen), unit="file", desc="harvest", dynamic_ncols=True,
                   disable=None)  # None: only on a terminal, not in logs
        bar.set_postfix_str(f"{len(seen)} already done")
        while True:
            stopping = self._stop.wait(POLL_SECONDS)
            new = {name for name, stamp in self._present().items() if name not in seen and before.get(name) != stamp}
            for name in new:
                try:
                    read_bytes += os.path.getsize(self.files[name])
                    pairs += pq.read_metadata(os.path.join(self.parts_dir, name)).num_rows
                except OSError:
                    pass
            seen |= new
            elapsed = max(time.monotonic() - start, 1e-9)
            bar.update(len(new))
            bar.set_postfix_str(f"{read_bytes / elapsed / 1e6:.1f} MB/s, {pairs:,} candidates")
            if stopping:
                bar.close()
                return
