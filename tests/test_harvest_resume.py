"""Harvest's resumability: reruns over changed inputs, a kill while the outputs are written,
output folders that are not harvest's, the progress line of a rerun, one file given under two
names, a glob that matches folders, a reused folder's candidates, a folder holding a user's file
after a killed rerun, and a rerun refused by its options keeping the earlier stats.json."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from beam_jobs import harvest
from wit_pipeline.core.outputs import STATS
from wit_pipeline.inspect.cli import run as inspect_run

REPO = Path(__file__).resolve().parents[1]
ARGS = ("--balance", "cap", "--t", "3", "--num-shards", "2", "--no-progress")


def _complete_wats(crawl) -> list[Path]:
    return sorted(crawl.root.glob("crawl/wat/*.wat.gz"))[:-1]  # the last one is truncated on purpose


def _inputs(crawl, folder: Path, n: int = 2) -> str:
    """n complete WAT files copied to `folder`; their glob."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, src in enumerate(_complete_wats(crawl)[:n]):
        shutil.copyfile(src, folder / f"in-{i}.warc.wat.gz")
    return str(folder / "*.wat.gz")


def _harvest(glob: str, out: Path, *extra: str) -> dict:
    assert harvest.run(["--input", glob, "--output", str(out), *ARGS, *extra]) == 0
    return json.loads((out / STATS).read_text())


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _stage(doc: dict, name: str) -> dict:
    return next(s for s in doc["stages"] if s["name"] == name)


def _rows(folder: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in folder.glob("*.parquet"))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "NO_ALBUMENTATIONS_UPDATE": "1"}


def test_an_input_that_changed_since_its_part_is_read_again(crawl, tmp_path: Path) -> None:
    """A crawl file still downloading (cut short) is harvested; once it is whole, the same
    command must read it again: its part stood for bytes that are no longer the file's."""
    glob = _inputs(crawl, tmp_path / "in")
    target = tmp_path / "in" / "in-0.warc.wat.gz"
    whole = target.read_bytes()
    target.write_bytes(whole[: len(whole) // 2])  # a download in progress
    out = tmp_path / "out"
    _harvest(glob, out)
    target.write_bytes(whole)  # the download finished
    resumed = _harvest(glob, out)
    fresh = _harvest(glob, tmp_path / "fresh")
    assert _stage(resumed, "read") == _stage(fresh, "read")
    assert _tree(out) == _tree(tmp_path / "fresh")


KILL_AFTER_FIRST_SHARD = """
import os, signal, sys
from beam_jobs import harvest
from wit_pipeline.stages.harvest import outputs
write = outputs.write_selected
def write_then_die(*args):
    write(*args)
    os.kill(os.getpid(), signal.SIGKILL)  # a pre-emption while the outputs are written
outputs.write_selected = write_then_die
harvest.run(sys.argv[1:])
"""


def test_a_rerun_killed_while_writing_outputs_leaves_no_stats_that_lie(crawl, tmp_path: Path) -> None:
    """A rerun with other balancing, killed after one selected shard: the folder must not keep
    the earlier run's stats.json beside a selection that is half the new run's."""
    glob = _inputs(crawl, tmp_path / "in")
    out = tmp_path / "out"
    _harvest(glob, out, "--t", "20000")
    cmd = [sys.executable, "-c", KILL_AFTER_FIRST_SHARD, "--input", glob, "--output", str(out), *ARGS, "--t", "1"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    if (out / STATS).exists():
        doc = json.loads((out / STATS).read_text())
        assert _stage(doc, "balance")["out"] == _rows(out / "selected"), "stats.json does not describe selected/"


def test_harvest_refuses_another_stages_output_folder(crawl, tmp_path: Path) -> None:
    """--output given a download's folder by mistake: harvest must not overwrite its stats.json."""
    glob = _inputs(crawl, tmp_path / "in")
    other = tmp_path / "raw"
    other.mkdir()
    theirs = json.dumps({"stages": [{"name": "download", "in": 2, "out": 2, "dropped": {}}]})
    (other / STATS).write_text(theirs)
    (other / "00000.tar").write_bytes(b"\0" * 1024)
    with pytest.raises(SystemExit, match="another stage's output"):
        harvest.run(["--input", glob, "--output", str(other), *ARGS])
    assert (other / STATS).read_text() == theirs
    assert sorted(p.name for p in other.iterdir()) == ["00000.tar", STATS]


def _on_a_terminal(cmd: list[str]) -> str:
    """What `cmd` prints on a terminal (tqdm draws its bar only there)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=_env())
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    return b"".join(chunks).decode("utf-8", "replace")


def test_progress_of_a_rerun_that_redoes_every_file_does_not_say_done(crawl, tmp_path: Path) -> None:
    """After a filter setting changes, every part is redone: the progress line must not open
    at 100% "already done" and then count nothing read."""
    glob = _inputs(crawl, tmp_path / "in")
    out = tmp_path / "out"
    _harvest(glob, out)
    shown = _on_a_terminal([sys.executable, "-m", "beam_jobs.harvest", "--input", glob, "--output", str(out),
                            *[a for a in ARGS if a != "--no-progress"], "--min-chars", "6"])
    assert "2 already done" not in shown
    assert re.search(r"2/2 \[.*[1-9][\d,]* candidates\]", shown), shown[-600:]


def test_one_file_given_under_two_names_is_read_once(crawl, tmp_path: Path) -> None:
    """`x` and `file://x` are the same file: reading it twice doubles read..match and turns
    every pair into a 'duplicate'."""
    _inputs(crawl, tmp_path / "in", n=1)
    path = str(tmp_path / "in" / "in-0.warc.wat.gz")
    once = _harvest(path, tmp_path / "once")
    out = tmp_path / "twice"
    assert harvest.run(["--input", path, "--input", f"file://{path}", "--output", str(out), *ARGS]) == 0
    twice = json.loads((out / STATS).read_text())
    assert twice["stages"] == once["stages"]
    assert len(list((out / "candidates").glob("*.parquet"))) == 1


def test_a_folder_rerun_over_other_files_agrees_with_its_stats(crawl, tmp_path: Path) -> None:
    """A trial run over two files, then the same output over one: `wit inspect --check` must
    find the folder consistent (candidates/ vs stats.json match.out)."""
    glob = _inputs(crawl, tmp_path / "in")
    out = tmp_path / "out"
    _harvest(glob, out)
    doc = _harvest(str(tmp_path / "in" / "in-0.warc.wat.gz"), out)
    assert inspect_run([str(out), "--check", "--no-progress"]) == 0
    listed = (out / "parts.txt").read_text().split()
    assert doc["parts"] == len(listed) == 1 and len(list((out / "candidates").glob("*.parquet"))) == 2
    (out / "candidates" / listed[0]).unlink()  # a part the counts cover, lost: a finding
    assert inspect_run([str(out), "--check", "--no-progress"]) != 0


def test_a_glob_that_matches_only_folders_fails_before_the_job(crawl, tmp_path: Path) -> None:
    """`--input 'crawl/*'` over crawl/wat/ and crawl/warc/ names no crawl file: one line, not a
    job that 'reads' two folders, dead-letters them and selects nothing with exit 0."""
    _inputs(crawl, tmp_path / "crawl" / "wat", n=1)
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="matches no files"):
        harvest.run(["--input", str(tmp_path / "crawl" / "*"), "--output", str(out), *ARGS])
    assert not out.exists()
    _inputs(crawl, tmp_path / "crawl", n=1)  # a file beside the folder: the folder is no input
    doc = _harvest(str(tmp_path / "crawl" / "*"), out)
    assert _stage(doc, "read")["dropped"].get("unreadable", 0) == 0
    assert len(list((out / "candidates").glob("*.parquet"))) == 1


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
    before = (out / STATS).read_bytes()
    with pytest.raises((ValueError, SystemExit)):
        harvest.run(["--input", glob, "--output", str(out), *ARGS, "--runner", "DataflowRunner"])
    assert (out / STATS).exists(), "a command that did nothing removed the earlier run's stats.json"
    assert (out / STATS).read_bytes() == before


def test_the_fingerprint_leaves_out_exactly_the_settings_of_the_global_half() -> None:
    """A part depends on every setting but balancing and sharding: changing those reuses every
    part, changing any other redoes them; a new field is per-file unless it is marked GLOBAL."""
    import dataclasses

    from wit_pipeline.stages.harvest.config import HarvestConfig, per_file_settings

    base = HarvestConfig()
    global_only = {f.name for f in dataclasses.fields(HarvestConfig) if f.metadata.get("global")}
    assert global_only == {"balance", "t", "seed", "num_shards"}
    assert set(per_file_settings(base)) == {f.name for f in dataclasses.fields(HarvestConfig)} - global_only
    rebalanced = dataclasses.replace(base, balance="cap", t=5, seed=3, num_shards=2)
    assert rebalanced.fingerprint() == base.fingerprint()
    for change in ({"min_chars": 6}, {"languages": ("en", "fr")}, {"allowlist_sha256": "0" * 64}):
        assert dataclasses.replace(base, **change).fingerprint() != base.fingerprint(), change


def test_a_rerun_whose_parts_are_complete_builds_no_models(crawl, tmp_path: Path, monkeypatch) -> None:
    """Building the matcher of a 500k-entry list takes seconds per worker: a rerun that has no
    file to read must not pay it, and writes the same outputs."""
    from wit_pipeline.stages.harvest import per_file

    glob, out = _inputs(crawl, tmp_path / "in"), tmp_path / "out"
    first = _harvest(glob, out)
    before = {name: digest for name, digest in _tree(out).items() if not name.startswith(".wit")}

    def refuse(config):
        raise AssertionError("a model was built for a run with nothing to read")

    monkeypatch.setattr(per_file, "load_matcher", refuse)
    monkeypatch.setattr(per_file, "load_lid", refuse)
    assert _harvest(glob, out) == first
    assert {name: digest for name, digest in _tree(out).items() if not name.startswith(".wit")} == before
