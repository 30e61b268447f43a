"""Which folders download, harvest and curate may write and tidy: the ones their marker proves
are theirs; one run per folder at a time; a full disk or read-only filesystem in one line."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wit_pipeline.core import faults, keys, lock, ownership, schema
from wit_pipeline.core.outputs import STATS
from wit_pipeline.stages import curate as curate_stage
from wit_pipeline.stages import download as dl
from wit_pipeline.stages.harvest import outputs as harvest_stage
from wit_pipeline.synthetic.concepts import all_concepts
from wit_pipeline.synthetic.images import encode, render
from wit_pipeline.synthetic.server import serve

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
CONFIG = dl.DownloadConfig(allow_loopback=True, number_sample_per_shard=4, threads=4, timeout=5)
DOWNLOAD_STATS = {"stages": [{"name": "download", "in": 1, "out": 1, "dropped": {}}]}


def _rows(urls):
    out = []
    for i, url in enumerate(urls):
        caption = f"a picture number {i}"
        out.append({"url": url, "caption": caption, "key": keys.sample_key(url, caption), "page_url": "http://p/",
                    "language": "en", "lang_score": 0.9, "query_ids": [i], "queries": [f"q{i}"]})
    return out


def _selected(path, urls):
    pq.write_table(pa.Table.from_pylist(_rows(urls), schema=schema.SELECTED), path)
    return str(path)


def _files(folder):
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "wit_pipeline.cli", "download", *args], capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", **(env or {})))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    for i in range(40):
        (root / f"{i}.jpg").write_bytes(encode(render(all_concepts()[i % 20], (96, 96), seed=i)))
    with serve(root) as base:
        yield base


@pytest.fixture(scope="module")
def finished(site, tmp_path_factory):
    """A finished download: two images saved, one URL refused (a dead letter)."""
    work = tmp_path_factory.mktemp("finished")
    selected = _selected(work / "s.parquet", [f"{site}/0.jpg", f"{site}/1.jpg", "file:///etc/passwd"])
    doc = dl.download(selected, str(work / "raw"), CONFIG)
    assert doc["stages"][0]["out"] == 2
    return {"selected": selected, "out": work / "raw", "doc": doc}


# --- ownership ------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda d: (d / "2024.tar").write_bytes(b"my archive"),
    lambda d: (d / "2023.parquet").write_bytes(b"my table"),
    lambda d: ((d / "_tmp").mkdir(), (d / "_tmp" / "draft.txt").write_text("mine")),
    lambda d: ((d / STATS).write_text(json.dumps(DOWNLOAD_STATS)), (d / "2024.tar").write_bytes(b"mine")),
], ids=["2024.tar", "2023.parquet", "_tmp", "download-stats-beside-2024.tar"])
def test_a_users_folder_is_refused_untouched(tmp_path, make):
    mine = tmp_path / "mine"
    mine.mkdir()
    make(mine)
    before = _files(mine)
    selected = _selected(tmp_path / "s.parquet", ["file:///etc/passwd"])
    with pytest.raises(ValueError, match="not a wit download output|another"):
        dl.download(selected, str(mine))
    done = _cli("--input", selected, "--output", str(mine))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert _files(mine) == before


def test_a_marked_folder_keeps_files_that_only_look_like_shards(finished, tmp_path):
    out = tmp_path / "raw"
    shutil.copytree(finished["out"], out)
    marker = json.loads((out / ".wit-download").read_text())
    assert marker["command"] == "download" and marker["shards"] == [[0, 1]] and marker["written_by"].startswith("wit ")
    (out / "2024.tar").write_bytes(b"mine")
    (out / "00099.tar").write_bytes(b"mine too: no run numbered it")
    (out / "00099.parquet").write_bytes(b"mine too")
    (out / "_tmp").mkdir()
    (out / "_tmp" / "x").write_text("mine")
    doc = dl.download(finished["selected"], str(out), CONFIG)
    assert doc["stages"] == finished["doc"]["stages"] and doc["shards"] == ["00000"]
    for name in ("2024.tar", "00099.tar", "00099.parquet", "_tmp/x"):
        assert (out / name).exists(), name


def test_an_earlier_versions_download_is_adopted_once(finished, tmp_path):
    out = tmp_path / "raw"
    shutil.copytree(finished["out"], out)
    (out / ".wit-download").unlink()  # as written before markers existed
    (out / "_tmp").mkdir()  # img2dataset's scratch, which that version left in the folder
    doc = dl.download(finished["selected"], str(out), CONFIG)
    assert doc["stages"] == finished["doc"]["stages"]
    assert json.loads((out / ".wit-download").read_text())["shards"] == [[0, 1]]
    assert not (out / "_tmp").exists()


def test_harvest_and_curate_need_their_marker_not_their_names(tmp_path):
    """Names alone once made a folder harvest's or curate's, and their reruns delete there."""
    users = tmp_path / "users"
    (users / "selected").mkdir(parents=True)
    (users / "selected" / "part-00000-of-00001.parquet").write_bytes(b"my file")
    with pytest.raises(ValueError, match="not a wit harvest output"):
        harvest_stage.check_output(str(users))
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "wit-000001.tar").write_bytes(b"my tar")
    with pytest.raises(ValueError, match="not a wit curate output"):
        curate_stage.check_output(str(shards))
    assert (users / "selected" / "part-00000-of-00001.parquet").read_bytes() == b"my file"
    # a new folder is claimed with the marker, and then is the command's
    harvest_stage.check_output(str(tmp_path / "new"))
    assert ownership.read_marker(str(tmp_path / "new"), "harvest")["command"] == "harvest"
    with pytest.raises(ValueError, match="another stage's output"):
        curate_stage.check_output(str(tmp_path / "new"))


# --- a damaged shard on resume ------------------------------------------------------------------


def test_a_truncated_shard_parquet_is_redone(finished, tmp_path):
    out = tmp_path / "raw"
    shutil.copytree(finished["out"], out)
    parquet = out / "00000.parquet"
    parquet.write_bytes(parquet.read_bytes()[:100])
    doc = dl.download(finished["selected"], str(out), CONFIG)
    assert doc["stages"] == finished["doc"]["stages"]
    assert doc["shards"] == ["00001"] and not parquet.exists()
    assert dl.saved_keys(str(out)) == dl.saved_keys(str(finished["out"]))


def test_a_rerun_that_fails_deletes_nothing_first(finished, tmp_path, monkeypatch):
    from wit_pipeline.stages import fetch

    out = tmp_path / "raw"
    shutil.copytree(finished["out"], out)
    parquet = out / "00000.parquet"
    parquet.write_bytes(parquet.read_bytes()[:100])
    before = _files(out)

    def fail(*args, **kwargs):
        raise RuntimeError("img2dataset failed")

    monkeypatch.setattr(fetch, "run_img2dataset", fail)
    with pytest.raises(RuntimeError):
        dl.download(finished["selected"], str(out), CONFIG)
    after = _files(out)
    for name in (STATS, dl.DEAD_LETTER_FILE, "00000.tar", "00000.parquet", "00000_stats.json"):
        assert after[name] == before[name], name


# --- one run per folder -------------------------------------------------------------------------


def test_a_second_run_into_a_locked_folder_is_refused_in_one_line(tmp_path):
    selected = _selected(tmp_path / "s.parquet", ["file:///etc/passwd"])
    out = tmp_path / "raw"
    with lock.output_lock(str(out), "download"):
        done = _cli("--input", selected, "--output", str(out))
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "is in use by wit download (pid" in done.stderr
    assert not (out / STATS).exists()
    assert _cli("--input", selected, "--output", str(out)).returncode == 1  # lock released: runs (saves nothing)
    assert (out / STATS).exists() and not (out / lock.LOCK_NAME).exists()


def test_harvest_refuses_a_folder_another_run_holds(tmp_path):
    from beam_jobs import harvest

    wat = tmp_path / "a.wat.gz"
    wat.write_bytes(b"")
    with lock.output_lock(str(tmp_path / "out"), "harvest"), pytest.raises(SystemExit, match="is in use by wit harvest"):
        harvest.run(["--input", str(wat), "--output", str(tmp_path / "out"), "--allowlist", "demo"])


def test_a_remote_lock_is_an_exclusive_create():
    out = "memory://wit-lock-test/raw"
    with lock.output_lock(out, "download"):
        with pytest.raises(lock.OutputLocked, match="delete memory://wit-lock-test/raw/.wit-lock"):
            with lock.output_lock(out, "download"):
                pass
    with lock.output_lock(out, "download"):  # released
        pass


# --- full disk, read-only filesystem ------------------------------------------------------------


@contextlib.contextmanager
def _mounted(target: Path, *args: str):
    target.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount here (needs root): {exc}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def _fault_line(done):
    lines = [line for line in done.stderr.splitlines() if line.startswith("wit download:")]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    return lines


def test_a_full_disk_is_one_line_naming_the_path(site, tmp_path):
    selected = _selected(tmp_path / "s.parquet", [f"{site}/{i}.jpg" for i in range(40)])
    with _mounted(tmp_path / "disk", "-t", "tmpfs", "-o", "size=96k", "tmpfs") as disk:
        done = _cli("--input", selected, "--output", str(disk / "raw"), "--allow-loopback", "--threads", "4",
                    "--number-sample-per-shard", "40")
        lines = _fault_line(done)
    assert done.returncode == 1, done.stderr[-2000:]
    assert len(lines) == 1 and "No space left on device" in lines[0] and str(disk / "raw") in lines[0], lines


def test_a_read_only_filesystem_is_one_line_naming_the_path(finished, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(finished["out"], src / "raw")
    before = _files(src / "raw")
    with _mounted(tmp_path / "ro", "--bind", "-o", "ro", str(src)) as ro:
        done = _cli("--input", finished["selected"], "--output", str(ro / "raw"), "--allow-loopback")
    assert done.returncode == 1
    lines = _fault_line(done)
    assert len(lines) == 1 and "Read-only file system" in lines[0] and str(ro / "raw") in lines[0], lines
    assert _files(src / "raw") == before


def test_harvest_on_a_read_only_filesystem_is_one_line(tmp_path):
    from beam_jobs import harvest

    wat = tmp_path / "a.wat.gz"
    wat.write_bytes(b"")
    (tmp_path / "src").mkdir()
    with _mounted(tmp_path / "ro", "--bind", "-o", "ro", str(tmp_path / "src")) as ro:
        with pytest.raises(SystemExit) as exit_:
            harvest.run(["--input", str(wat), "--output", str(ro / "out"), "--allowlist", "demo"])
    said = str(exit_.value.code)
    assert said.startswith("wit harvest: ") and "Read-only file system" in said and "\n" not in said


def test_a_full_disk_inside_a_beam_job_is_one_line_and_frees_the_lock(tmp_path):
    """Beam re-raises a worker's OSError as another type, its text inside the message."""

    @lock.output_run("curate")
    def run():
        lock.hold_output_lock(str(tmp_path / "out"), "curate")
        raise RuntimeError("Traceback (most recent call last):\n  ...\nOSError: [Errno 28] No space left on "
                           "device: '/x/wit-000001.tar' [while running 'WriteShards']")

    with pytest.raises(SystemExit) as exit_:
        run()
    assert exit_.value.code == "wit curate: No space left on device (errno ENOSPC): /x/wit-000001.tar"
    assert not (tmp_path / "out" / lock.LOCK_NAME).exists()
    assert faults.environment_fault(ValueError("no")) is None


def test_a_fault_without_a_path_names_the_output_folder(tmp_path):
    @lock.output_run("curate")
    def run():
        lock.hold_output_lock(str(tmp_path / "out"), "curate")
        raise RuntimeError("OSError: [Errno 30] Read-only file system [while running 'WriteShards']")

    with pytest.raises(SystemExit) as exit_:
        run()
    assert exit_.value.code == f"wit curate: Read-only file system (errno EROFS): {tmp_path / 'out'}"


def test_a_fault_is_the_same_line_from_every_command(tmp_path, monkeypatch, capsys):
    """One wording, whichever of wit's entry points catches the fault: the CLI's, a Beam job's
    launcher, or download's own (which tells these from a usage error, exit 2)."""
    import types

    from beam_jobs import download as job
    from wit_pipeline import cli

    denied = PermissionError(13, "Permission denied", "/data/out/00000.tar")
    line = "Permission denied (errno EACCES): /data/out/00000.tar"

    def fail(*_, **__):
        raise denied

    @lock.output_run("curate")
    def run():
        fail()

    with pytest.raises(SystemExit) as exit_:
        run()
    assert exit_.value.code == f"wit curate: {line}"

    module = types.ModuleType("wit_failing_stage")
    module.run = fail
    monkeypatch.setitem(sys.modules, "wit_failing_stage", module)
    monkeypatch.setitem(cli.STAGES, "failing", ("wit_failing_stage", "a stage whose disk says no"))
    assert cli.main(["failing"]) == 1
    assert capsys.readouterr().err == f"wit failing: {line}\n"

    selected = _selected(tmp_path / "s.parquet", ["http://img.example/0.jpg"])
    monkeypatch.setattr(dl, "download", fail)
    assert job.run(["--input", selected, "--output", str(tmp_path / "raw")]) == 1
    assert capsys.readouterr().err == f"wit download: {line}\n"
