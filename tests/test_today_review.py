"""A hostile review of 2026-12-02's harvest changes (65988c4..): zlib-ng reading, the URL fast
path, the junk shortcut, column-wise candidates and balancing, and the resume rules (input
versions, stats.json written last, parts.txt, the --output guard, one name per file)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from beam_jobs import harvest
from wit_pipeline.inspect.cli import run as inspect_run

REPO = Path(__file__).resolve().parents[1]
ARGS = ("--balance", "cap", "--t", "3", "--num-shards", "2", "--no-progress")


def _inputs(crawl, folder: Path, n: int = 2) -> str:
    """n complete WAT files copied to `folder`; their glob (the crawl's last WAT is truncated)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, src in enumerate(sorted(crawl.root.glob("crawl/wat/*.wat.gz"))[:-1][:n]):
        shutil.copyfile(src, folder / f"in-{i}.warc.wat.gz")
    return str(folder / "*.wat.gz")


def _harvest(glob: str, out: Path, *extra: str) -> dict:
    assert harvest.run(["--input", glob, "--output", str(out), *ARGS, *extra]) == 0
    return json.loads((out / "stats.json").read_text())


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "NO_ALBUMENTATIONS_UPDATE": "1"}


KILL_AFTER_FIRST_SHARD = """
import os, signal, sys
from beam_jobs import harvest, harvest_global as g
write = g.write_selected
def write_then_die(*args):
    write(*args)
    os.kill(os.getpid(), signal.SIGKILL)  # a pre-emption while the outputs are written
g.write_selected = write_then_die
harvest.run(sys.argv[1:])
"""


def test_a_harvest_folder_with_a_users_file_is_still_accepted_after_a_killed_rerun(crawl, tmp_path: Path) -> None:
    """A harvest folder holding the histogram `wit inspect` drew of it is accepted as harvest's
    (its stats.json says so); a rerun killed midway removed that stats.json, and the same
    command must then finish the job, not refuse its own folder as 'not a wit harvest output'."""
    glob = _inputs(crawl, tmp_path / "in")
    out = tmp_path / "out"
    _harvest(glob, out)
    assert inspect_run([str(out), "--histogram", str(out / "queries.png")]) == 0
    _harvest(glob, out)  # accepted: the folder's stats.json is harvest's
    cmd = [sys.executable, "-c", KILL_AFTER_FIRST_SHARD, "--input", glob, "--output", str(out), *ARGS, "--t", "1"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    doc = _harvest(glob, out, "--t", "1")  # the same command again, to finish the job
    assert doc["job"] == "harvest"
    assert (out / "queries.png").exists()


def test_a_rerun_that_fails_before_any_work_keeps_the_earlier_stats(crawl, tmp_path: Path) -> None:
    """A rerun whose pipeline options are invalid (Dataflow without --project) does nothing:
    the earlier complete run's stats.json, which still describes selected/, must stay."""
    glob = _inputs(crawl, tmp_path / "in")
    out = tmp_path / "out"
    _harvest(glob, out)
    before = (out / "stats.json").read_bytes()
    with pytest.raises((ValueError, SystemExit)):
        harvest.run(["--input", glob, "--output", str(out), *ARGS, "--runner", "DataflowRunner"])
    assert (out / "stats.json").exists(), "a command that did nothing removed the earlier run's stats.json"
    assert (out / "stats.json").read_bytes() == before
