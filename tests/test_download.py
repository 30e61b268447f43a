"""Real img2dataset runs against a loopback server. Each run costs seconds (it spawns
processes), so one module-scoped run serves several tests; 4 img2dataset runs in all."""

import collections
import contextlib
import dataclasses
import errno
import json
import os
import shutil
import socket
import tarfile
from collections.abc import Callable

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from wit_pipeline.core import keys, ownership, schema
from wit_pipeline.core.outputs import STATS
from wit_pipeline.stages import download as dl
from wit_pipeline.synthetic.concepts import all_concepts
from wit_pipeline.synthetic.images import encode, render
from wit_pipeline.synthetic.server import serve

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

N_GOOD = 6
SHARD = 4  # samples per shard: 9 fetched pairs -> 3 shards
CONFIG = dl.DownloadConfig(allow_loopback=True, number_sample_per_shard=SHARD, threads=4, processes=1, timeout=5)


def _rows(urls):
    rows = []
    for i, url in enumerate(urls):
        caption = f"a picture number {i}"
        rows.append(
            {
                "url": url,
                "caption": caption,
                "key": keys.sample_key(url, caption),
                "page_url": f"http://pages.example.com/{i}.html",
                "language": "en",
                "lang_score": 0.5 + i / 100,
                "query_ids": [i, i + 100],
                "queries": [f"q{i}", f"q{i + 100}"],
            }
        )
    return rows


def _write(path, rows):
    pq.write_table(pa.Table.from_pylist(rows, schema=schema.SELECTED), path)
    return str(path)


def tar_keys(folder):
    """Our sample keys of every sample in every tar under `folder`, duplicates kept."""
    found = []
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            if name.endswith(".tar"):
                with tarfile.open(os.path.join(root, name)) as tar:
                    for m in tar.getmembers():
                        if m.name.endswith(".json"):
                            found.append(json.loads(tar.extractfile(m).read())[dl.KEY_COLUMN])
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "img").mkdir()
    (root / "noai").mkdir()
    concepts = all_concepts()
    for i in range(N_GOOD):
        (root / "img" / f"{i}.jpg").write_bytes(encode(render(concepts[i * 7], (96, 96), seed=i)))
    (root / "noai" / "0.jpg").write_bytes(encode(render(concepts[1], (96, 96), seed=1)))
    (root / "img" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg at all")
    (root / "img" / "tiny.jpg").write_bytes(encode(render(concepts[2], (24, 24), seed=2)))
    with serve(root) as base:
        urls = [f"{base}/img/{i}.jpg" for i in range(N_GOOD)] + [
            f"{base}/noai/0.jpg",
            f"{base}/img/corrupt.jpg",
            f"{base}/img/missing.jpg",
            f"{base}/img/tiny.jpg",
            "http://169.254.169.254/latest/meta-data/iam/",  # refused even with allow_loopback
            "file:///etc/passwd",
        ]
        rows = _rows(urls)
        rows.append(dict(rows[0]))  # a repeated key: counted once as duplicate_key
        yield {"root": root, "base": base, "rows": rows}


EXPECTED = {
    "in": 13,
    "out": N_GOOD,
    "dropped": {
        "bad_url.scheme": 1,
        "duplicate_key": 1,
        "failed_to_download.http_404": 1,
        "failed_to_resize.too_small": 1,
        "failed_to_resize.undecodable": 1,
        "opted_out.x_robots_tag": 1,
        "unsafe_host.cloud_metadata": 1,
    },
}


@pytest.fixture(scope="module")
def first_run(site, tmp_path_factory):
    work = tmp_path_factory.mktemp("dl")
    selected = _write(work / "selected.parquet", site["rows"])
    out = str(work / "raw")
    doc = dl.download(selected, out, CONFIG)
    return {"work": work, "selected": selected, "out": out, "doc": doc}


def _stage(doc, name=dl.STAGE):
    (stage,) = [s for s in doc["stages"] if s["name"] == name]
    return {k: stage[k] for k in ("in", "out", "dropped")}


def test_download_counts_and_outputs(site, first_run):
    out, doc = first_run["out"], first_run["doc"]
    assert _stage(doc) == EXPECTED
    assert json.load(open(os.path.join(out, STATS))) == doc
    assert doc["shards"] == ["00000", "00001", "00002"]
    good = sorted(r["key"] for r in site["rows"][:N_GOOD])
    found = tar_keys(out)
    assert sorted(found) == good  # every image once, nothing else
    assert dl.saved_keys(out) == good
    # the sample json carries our columns through img2dataset
    with tarfile.open(os.path.join(out, "00000.tar")) as tar:
        names = tar.getnames()
        meta = next(json.loads(tar.extractfile(m).read()) for m in tar.getmembers() if m.name.endswith(".json"))
    assert {n.rsplit(".", 1)[1] for n in names} == {"jpg", "txt", "json"}
    row = next(r for r in site["rows"] if r["key"] == meta[dl.KEY_COLUMN])
    assert (meta["url"], meta["caption"], meta["page_url"], meta["query_ids"], meta["queries"]) == (
        row["url"], row["caption"], row["page_url"], row["query_ids"], row["queries"])
    assert meta["status"] == "success" and meta["width"] == 96
    # refusals are dead-lettered with their reasons; no leftovers
    dead = pq.read_table(os.path.join(out, dl.DEAD_LETTER_FILE)).to_pylist()
    assert sorted(d["error"] for d in dead) == ["bad_url.scheme", "unsafe_host.cloud_metadata"]
    assert not os.path.exists(os.path.join(out, "_tmp")) and not os.path.exists(os.path.join(out, dl.TODO_DIR))


def test_loopback_and_private_refused_by_default(site, tmp_path):
    """Nothing is fetched: every URL is refused before img2dataset starts."""
    rows = _rows([f"{site['base']}/img/0.jpg", "http://localhost:1/x.jpg", "http://images.intranet.example/x.jpg"])
    selected = _write(tmp_path / "s.parquet", rows)
    asked = []

    def resolve(host, port, type=0, **_):  # noqa: A002
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    doc = dl.download(selected, str(tmp_path / "raw"), resolve=resolve)
    assert _stage(doc) == {
        "in": 3,
        "out": 0,
        "dropped": {"unsafe_host.localhost": 1, "unsafe_host.loopback": 1, "unsafe_host.private": 1},
    }
    assert asked == ["images.intranet.example"]
    assert tar_keys(tmp_path / "raw") == []


def test_rerun_after_killed_run_has_no_duplicates(site, first_run, tmp_path):
    out = str(tmp_path / "raw")
    shutil.copytree(first_run["out"], out)
    # a run killed while writing shard 1: its stats file never came, its tar is cut short
    os.remove(os.path.join(out, "00001_stats.json"))
    with open(os.path.join(out, "00001.tar"), "r+b") as f:
        f.truncate(1024)
    lost = set(pq.read_table(os.path.join(first_run["out"], "00001.parquet")).column(dl.KEY_COLUMN).to_pylist())
    os.makedirs(os.path.join(out, "_tmp"))  # img2dataset's scratch left behind

    doc = dl.download(first_run["selected"], out, CONFIG)

    assert _stage(doc) == EXPECTED  # every pair once, by its latest outcome
    found = tar_keys(out)
    assert len(found) == len(set(found)) == N_GOOD
    assert sorted(found) == dl.saved_keys(first_run["out"])
    assert "00001" not in doc["shards"] and doc["shards"][:2] == ["00000", "00002"]
    # only what was lost or failed was fetched again, into shards numbered after the last one
    refetched = collections.Counter()
    for shard in doc["shards"][2:]:
        assert int(shard) >= 3
        t = pq.read_table(os.path.join(out, f"{shard}.parquet"))
        refetched.update(t.column(dl.KEY_COLUMN).to_pylist())
    saved_before = set(dl.saved_keys(first_run["out"])) - lost
    assert not saved_before & set(refetched)
    failed_before = {r["key"] for r in site["rows"][N_GOOD : N_GOOD + 4]}
    opted_out = {site["rows"][N_GOOD]["key"]}  # noai: its answer stands, unless its shard was lost
    assert set(refetched) == (lost & set(dl.saved_keys(first_run["out"]))) | (failed_before - opted_out) | (
        opted_out & lost)
    assert max(refetched.values()) == 1


def test_beam_engine_gives_same_saved_keys(site, first_run, tmp_path):
    from beam_jobs import download as job

    rows = site["rows"]
    a = _write(tmp_path / "selected-a.parquet", rows[:7])
    b = _write(tmp_path / "selected-b.parquet", rows[7:12])
    out = str(tmp_path / "raw")
    code = job.run(
        ["--input", str(tmp_path / "selected-*.parquet"), "--output", out, "--engine", "beam",
         "--allow-loopback", "--number-sample-per-shard", str(SHARD), "--threads", "4", "--timeout", "5",
         # bundles on worker threads, two files at once: what a Dataflow SDK harness does
         "--direct_num_workers=2", "--direct_running_mode=multi_threading"]
    )
    assert code == 0
    assert sorted(os.listdir(out)) == [".wit-download", "_consent", "selected-a", "selected-b", STATS]
    assert dl.saved_keys(out) == dl.saved_keys(first_run["out"])
    found = tar_keys(out)
    assert sorted(found) == dl.saved_keys(out)
    doc = json.load(open(os.path.join(out, STATS)))
    expected = dict(EXPECTED, **{"in": 12})
    expected["dropped"] = {k: v for k, v in EXPECTED["dropped"].items() if k != "duplicate_key"}
    assert _stage(doc) == expected
    assert _stage(doc, job.FILES_STAGE) == {"in": 2, "out": 2, "dropped": {}}
    assert a in doc["inputs"] and b in doc["inputs"]
    assert doc["config"] == dataclasses.asdict(dl.DownloadConfig(
        allow_loopback=True, number_sample_per_shard=SHARD, threads=4, timeout=5))


@pytest.mark.parametrize(
    "status, error, reason",
    [
        ("success", None, None),
        ("failed_to_download", "HTTP Error 404: File not found", "failed_to_download.http_404"),
        ("failed_to_download", "HTTP Error 503: Service Unavailable", "failed_to_download.http_503"),
        ("failed_to_download", "<urlopen error [Errno 111] Connection refused>", "failed_to_download.connection_refused"),
        ("failed_to_download", "The read operation timed out", "failed_to_download.timeout"),
        ("failed_to_download", "<urlopen error [Errno -2] Name or service not known>", "failed_to_download.dns"),
        ("failed_to_download", dl.OPT_OUT_MESSAGE, "opted_out.x_robots_tag"),
        ("failed_to_download", "something new", "failed_to_download.other"),
        ("failed_to_resize", "Image decoding error", "failed_to_resize.undecodable"),
        ("failed_to_resize", "image area too large", "failed_to_resize.too_many_pixels"),
        ("failed_to_resize", "aspect ratio too large", "failed_to_resize.aspect_ratio"),
    ],
)
def test_outcome_reason(status, error, reason):
    assert dl.outcome_reason(status, error) == reason


def test_tidy_removes_only_shards_the_marker_numbered(tmp_path):
    for name in ("00000.tar", "00000.parquet", "00001.tar", "00001.parquet", "00002.tar", "00007.tar", "2024.tar"):
        (tmp_path / name).write_bytes(b"x")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "00000.parquet")
    (tmp_path / "00000_stats.json").write_text("{}")
    (tmp_path / "00001_stats.json").write_text('{"count": ')  # cut off mid-write
    (tmp_path / "_fetch").mkdir()
    (tmp_path / "_tmp").mkdir()  # not the marker's scratch: someone else's
    (tmp_path / "keep-me.txt").write_text("not ours to delete")
    marker = ownership.write_marker(str(tmp_path), dl.STAGE, shards=[[0, 3]], scratch=[dl.STAGING_DIR, dl.TODO_DIR])
    assert dl.complete_shards(str(tmp_path)) == ["00000"]
    removed = dl.tidy(str(tmp_path), marker, keep=["00000"])
    assert removed == ["00001.parquet", "00001.tar", "00001_stats.json", "00002.tar", "_fetch"]
    assert sorted(os.listdir(tmp_path)) == [".wit-download", "00000.parquet", "00000.tar", "00000_stats.json",
                                            "00007.tar", "2024.tar", "_tmp", "keep-me.txt"]


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no selected-pairs parquet"):
        dl.download(str(tmp_path / "nothing-*.parquet"), str(tmp_path / "raw"))


def test_wrong_schema_is_a_clear_error(tmp_path):
    import pyarrow as pa

    pq.write_table(pa.table({"url": ["http://x/a.jpg"]}), tmp_path / "bad.parquet")
    with pytest.raises(schema.SchemaError, match="missing column 'caption'"):
        dl.download(str(tmp_path / "bad.parquet"), str(tmp_path / "raw"))


def test_cli_takes_a_harvest_folder_and_explains_failures(site, first_run, tmp_path, capsys):
    from beam_jobs import download as job

    harvest = tmp_path / "harvest"
    (harvest / "selected").mkdir(parents=True)
    shutil.copy(first_run["selected"], harvest / "selected" / "part-00000-of-00001.parquet")
    assert dl.input_files(str(harvest)) == [str(harvest / "selected" / "part-00000-of-00001.parquet")]
    assert job.run(["--input", str(tmp_path / "nope-*.parquet"), "--output", str(tmp_path / "x")]) == 2
    assert "no selected-pairs parquet files match" in capsys.readouterr().err
    # loopback images without --allow-loopback: every pair refused, exit 1 with the hint
    assert job.run(["--input", str(harvest), "--output", str(tmp_path / "raw"), "--threads", "2"]) == 1
    assert "needs --allow-loopback" in capsys.readouterr().out


def _state(pid):
    """(state letter, parent pid) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _state(int(entry))
            if st and st[1] == pid and st[0] != "Z":
                found.append(int(entry))
    return found


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_killed_download_takes_its_workers_with_it(tmp_path):
    """img2dataset's workers hang on a server that never answers; SIGKILL to `wit download`
    must end them too, not leave them fetching for the --timeout (120 s here)."""
    import signal
    import subprocess
    import sys
    import time

    held = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(60)
        port = server.getsockname()[1]
        selected = _write(tmp_path / "s.parquet", _rows([f"http://127.0.0.1:{port}/{i}.jpg" for i in range(8)]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "wit_pipeline.cli", "download", "--input", selected, "--output", str(tmp_path / "raw"),
             "--allow-loopback", "--no-egress-guard", "--timeout", "120", "--threads", "2", "--processes", "1",
             "--number-sample-per-shard", "4"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers = []
        try:
            while True:  # robots.txt and tdmrep.json get a 404 (no rules); an image request is held
                conn = server.accept()[0]
                line = conn.recv(4096).split(b"\r\n", 1)[0]
                if b"/robots.txt" in line or b"/.well-known/tdmrep.json" in line:
                    conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    conn.close()
                    continue
                held.append(conn)  # a worker is fetching and will wait for an answer
                break
            workers = _children(proc.pid)
            assert workers
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            deadline = time.monotonic() + 60  # a bound for a slow machine, far below the timeout
            while any(_state(p) and _state(p)[0] != "Z" for p in workers) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert [p for p in workers if _state(p) and _state(p)[0] != "Z"] == []
        finally:
            proc.kill()
            for p in workers:
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGKILL)
            for conn in held:
                conn.close()


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_output_that_is_not_a_download_is_refused_untouched(tmp_path, capsys):
    """A harvest folder or a user's folder as --output: refused before anything is written."""
    from beam_jobs import download as job

    harvest = tmp_path / "harvest"
    (harvest / "selected").mkdir(parents=True)
    (harvest / "dead_letter").mkdir()
    selected = _write(harvest / "selected" / "part-00000-of-00001.parquet", _rows(["file:///etc/passwd"]))
    (harvest / STATS).write_text(json.dumps({"stages": [{"name": "extract", "in": 1, "out": 1, "dropped": {}}]}))
    (harvest / "query_counts.parquet").write_bytes(b"counts")
    (harvest / "dead_letter" / "part-00000-of-00001.parquet").write_bytes(b"dead")
    before = _files(harvest)
    with pytest.raises(ValueError, match="another stage's output"):
        dl.download(str(harvest), str(harvest))
    assert _files(harvest) == before

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for engine in ("local", "beam"):
        assert job.run(["--input", str(harvest), "--output", str(mine), "--engine", engine]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is not a wit download output" in err
    assert _files(mine) == {"notes.txt": b"mine"}

    # a download's own folder with a user's file added: reruns keep the file
    raw = tmp_path / "raw"
    dl.download(selected, str(raw))
    (raw / "notes.txt").write_text("mine")
    doc = dl.download(selected, str(raw))
    assert _stage(doc) == {"in": 1, "out": 0, "dropped": {"bad_url.scheme": 1}}
    assert (raw / "notes.txt").read_text() == "mine"


def test_selected_pairs_missing_columns_exit_2_in_one_line(tmp_path):
    """A real process: the SchemaError in one line, exit 2, no abort of the interpreter."""
    import subprocess
    import sys

    import pyarrow as pa

    pq.write_table(pa.table({"url": ["http://x/a.jpg"]}), tmp_path / "bad.parquet")
    done = subprocess.run([sys.executable, "-m", "wit_pipeline.cli", "download", "--input", str(tmp_path / "bad.parquet"),
                           "--output", str(tmp_path / "raw")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.startswith("wit download: SchemaError: ") and done.stderr.count("\n") == 1
    assert "missing column 'caption'" in done.stderr
    assert not (tmp_path / "raw").exists()


def test_beam_engine_one_failing_file_costs_only_itself(tmp_path, monkeypatch, capsys):
    """Fault injection: one file's handling raises (monkeypatched), another is not selected
    pairs at all; both are dead letters, the third file's pairs are all accounted for."""
    import pyarrow as pa

    from beam_jobs import download as job

    inputs = tmp_path / "in"
    inputs.mkdir()
    good = _write(inputs / "a.parquet", _rows(["file:///etc/passwd", "http://169.254.169.254/latest/x.jpg"]))
    boom = _write(inputs / "b.parquet", _rows(["http://169.254.169.254/y.jpg"]))
    pq.write_table(pa.table({"url": ["http://x/a.jpg"]}), inputs / "c.parquet")
    real = dl.download

    def flaky(path, *args, **kwargs):
        if path == boom:
            raise RuntimeError("injected fault")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(dl, "download", flaky)
    out = tmp_path / "raw"
    code = job.run(["--input", str(inputs / "*.parquet"), "--output", str(out), "--engine", "beam"])
    assert code == 1  # the job finished; it saved no image (the good file's URLs are refused)
    assert "2 input file(s) failed" in capsys.readouterr().out
    doc = json.loads((out / STATS).read_text())
    assert _stage(doc, job.FILES_STAGE) == {"in": 3, "out": 1, "dropped": {"error": 2}}
    assert _stage(doc) == {"in": 2, "out": 0, "dropped": {"bad_url.scheme": 1, "unsafe_host.cloud_metadata": 1}}
    dead = pq.read_table(out / job.FILES_DEAD_LETTER).to_pylist()
    assert [(d["stage"], d["source"]) for d in dead] == [(job.FILES_STAGE, boom), (job.FILES_STAGE, str(inputs / "c.parquet"))]
    assert dead[0]["error"] == "RuntimeError: injected fault" and dead[1]["error"].startswith("SchemaError: ")
    assert good in doc["inputs"]


# --- damaged shards and shards that cannot be read ------------------------------------------------


def _footer_thrift(data: bytes) -> bytes:
    """The footer length's low byte flipped: pyarrow then parses the footer from the wrong
    place and raises a bare OSError ("Couldn't deserialize thrift")."""
    b = bytearray(data)
    b[-8] ^= 0xFF
    return bytes(b)


DAMAGE = {
    "empty": lambda d: b"",
    "cut_7": lambda d: d[:7],
    "cut_100": lambda d: d[:100],
    "cut_half": lambda d: d[: len(d) // 2],
    "cut_1": lambda d: d[:-1],
    "footer_thrift": _footer_thrift,
    "tail_magic": lambda d: d[:-4] + b"XXXX",
    "not_parquet": lambda d: b"<html>503 Service Unavailable</html>\n" * 40,
    "other_schema": lambda d: _parquet_bytes(pa.table({"x": [1, 2]})),
}


def _parquet_bytes(table):
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_shard_parquet_is_left_out_to_be_fetched_again(first_run, tmp_path, damage, caplog):
    out = tmp_path / "raw"
    shutil.copytree(first_run["out"], out)
    path = out / "00001.parquet"
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    if damage == "footer_thrift":  # the damage pyarrow reports as an OSError, not ArrowInvalid
        with pytest.raises(OSError, match="thrift") as raised:
            pq.ParquetFile(str(path)).read()
        assert type(raised.value) is OSError and raised.value.errno is None

    shards, outcomes = dl.read_outcomes(str(out))

    assert shards == [s for s in first_run["doc"]["shards"] if s != "00001"]
    lost = set(pq.read_table(os.path.join(first_run["out"], "00001.parquet")).column(dl.KEY_COLUMN).to_pylist())
    assert not lost & set(outcomes)  # its pairs are fetched again
    assert f"{path} is damaged" in caplog.text


def test_a_missing_shard_parquet_is_left_out_to_be_fetched_again(first_run, tmp_path, caplog):
    out = tmp_path / "raw"
    shutil.copytree(first_run["out"], out)
    os.remove(out / "00001.parquet")
    shards, _ = dl.read_outcomes(str(out))
    assert "00001" not in shards and "00000" in shards
    assert f"{out / '00001.parquet'} is missing" in caplog.text


class StoreUnavailable(Exception):
    """What a store's client raises after its retries, not an OSError (as gcsfs's HttpError)."""


FAULTS = {
    "eio": lambda p: OSError(errno.EIO, os.strerror(errno.EIO), p),
    "permission": lambda p: PermissionError(errno.EACCES, os.strerror(errno.EACCES), p),
    "timeout": lambda p: TimeoutError("read timed out"),
    "oserror_503": lambda p: OSError(f"503 Service Unavailable: {p}"),
    "http_503": lambda p: StoreUnavailable("503 Service Unavailable"),
}


class FlakyFileSystem(LocalFileSystem):
    """The local disk under `witflaky://`, whose `failing` files raise on open: a remote
    store's passing fault."""

    protocol = "witflaky"
    failing: dict[str, Callable[[str], Exception]] = {}

    def _open(self, path, mode="rb", **kwargs):
        fault = self.failing.get(os.path.basename(path))
        if fault is not None and "r" in mode:
            raise fault(path)
        return super()._open(path, mode, **kwargs)


@pytest.fixture
def flaky(monkeypatch):
    fsspec.register_implementation(FlakyFileSystem.protocol, FlakyFileSystem, clobber=True)
    monkeypatch.setattr(FlakyFileSystem, "failing", {})
    return FlakyFileSystem.failing


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("name", ["00001.parquet", "00001_stats.json"])
def test_a_shard_that_cannot_be_read_is_not_damage(first_run, tmp_path, flaky, fault, name):
    out = tmp_path / "raw"
    shutil.copytree(first_run["out"], out)
    flaky[name] = FAULTS[fault]
    with pytest.raises(dl.ShardUnreadable, match=f"cannot read witflaky://{out / name} .*nothing was deleted"):
        dl.read_outcomes(f"witflaky://{out}")
    flaky.clear()
    assert dl.read_outcomes(f"witflaky://{out}")[0] == first_run["doc"]["shards"]


def test_a_download_whose_shard_cannot_be_read_ends_in_one_line_and_deletes_nothing(first_run, tmp_path, flaky,
                                                                                   capsys):
    """The shard is good, its store failed for a moment: refetching its pairs (some gone from
    the web by now) and deleting it would lose them. The run ends; its rerun reads it."""
    from beam_jobs import download as job

    out = tmp_path / "raw"
    shutil.copytree(first_run["out"], out)
    before = _files(out)
    flaky["00001.parquet"] = FAULTS["eio"]
    code = job.run(["--input", first_run["selected"], "--output", f"witflaky://{out}", "--allow-loopback",
                    "--number-sample-per-shard", str(SHARD), "--threads", "4", "--timeout", "5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith(f"wit download: cannot read witflaky://{out / '00001.parquet'} (OSError: [Errno 5]")
    assert _files(out) == before


def test_curate_over_a_shard_that_cannot_be_read_ends_in_one_line(first_run, tmp_path, flaky):
    """curate counts a raw shard complete by its _stats.json: a store failing to answer for it
    ends curate with one line, as it ends download."""
    from beam_jobs import curate as job

    out = tmp_path / "raw"
    shutil.copytree(first_run["out"], out)
    flaky["00001_stats.json"] = FAULTS["http_503"]
    with pytest.raises(SystemExit) as exited:
        job.run(["--input", f"witflaky://{out}", "--output", str(tmp_path / "curated")])
    assert str(exited.value).startswith(f"wit curate: cannot read witflaky://{out / '00001_stats.json'} "
                                        "(StoreUnavailable: 503 Service Unavailable)")
    assert not (tmp_path / "curated").exists()
