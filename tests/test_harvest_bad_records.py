"""Harvest on crafted bad input: broken records, damaged compression, files that fail to open.

Every crafted input is a few good records around one bad one; what must hold is the charter's:
one record costs only itself, the job exits 0, the good records are kept, a rerun of the same
command completes what a transient failure left undone.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from beam_jobs import harvest
from wit_pipeline.core import stats
from wit_pipeline.core.outputs import STATS
from wit_pipeline.core.stats import DictTally
from wit_pipeline.web.extract import iter_pairs

REPO = Path(__file__).resolve().parents[1]


def _warc(uri: str, block: bytes) -> bytes:
    head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {uri}\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n").encode()
    return head + block + b"\r\n\r\n"


def _page(uri: str, html: bytes, extra_headers: bytes = b"") -> bytes:
    return _warc(uri, b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n" + extra_headers + b"\r\n" + html)


def _good(i: int) -> bytes:
    return _page(f"http://good{i}.example/",
                 f'<html><body><img src="/a{i}.jpg" alt="a photo of a red star number {i}"></body></html>'.encode())


def _members(*records: bytes) -> bytes:
    return b"".join(gzip.compress(r, mtime=0) for r in records)


def _texts(path: Path) -> tuple[list[str], DictTally]:
    tally = DictTally()
    pairs = list(iter_pairs(str(path), tally, lambda source, error: None))
    return [p["text"] for p in pairs], tally


def test_negative_chunk_size_does_not_hang_the_worker(tmp_path: Path) -> None:
    """A `Transfer-Encoding: chunked` body whose chunk size is "-6" sends `_dechunk` back to
    where it started: an endless loop whose list grows without bound (one record, a hung job)."""
    bad = _page("http://bad.example/", b"-6\r\nxx", b"Transfer-Encoding: chunked\r\n")
    path = tmp_path / "chunked.warc.gz"
    path.write_bytes(_members(_good(1), bad, _good(2)))
    code = ("import sys; from wit_pipeline.core.stats import DictTally; from wit_pipeline.web.extract import iter_pairs; "
            "print(len(list(iter_pairs(sys.argv[1], DictTally(), lambda s, e: None))))")
    try:
        done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True,
                              timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError("one chunked record with a negative chunk size hung the reader (20 s)") from None
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"


def test_a_bad_record_in_a_plain_warc_costs_only_itself(tmp_path: Path) -> None:
    """In a plain (uncompressed) WARC, a record with an unusable Content-Length ends the file:
    every later record is lost, neither read nor counted nor dead-lettered."""
    bad = _good(9).replace(b"Content-Length: ", b"Content-Length: x", 1)
    path = tmp_path / "plain.warc"
    path.write_bytes(_good(1) + bad + _good(2) + _good(3))
    texts, tally = _texts(path)
    stats.check_stages(stats.stages_from_counters(tally.counts, ("read", "extract")))
    assert tally.counts["read:in"] == 4
    assert [t[-1] for t in texts] == ["1", "2", "3"]


def test_a_bad_record_in_a_whole_file_gzip_warc_costs_only_itself(tmp_path: Path) -> None:
    """`gzip file.warc` (one member for the whole file) is read like a plain WARC: same loss."""
    bad = _good(9).replace(b"Content-Length: ", b"Content-Length: x", 1)
    path = tmp_path / "whole.warc.gz"
    path.write_bytes(gzip.compress(_good(1) + bad + _good(2) + _good(3), mtime=0))
    texts, tally = _texts(path)
    assert tally.counts["read:in"] == 4
    assert [t[-1] for t in texts] == ["1", "2", "3"]


def test_many_tiny_broken_members_do_not_kill_the_job(tmp_path: Path) -> None:
    """2 MiB of 4-byte fake gzip headers become 524k dead letters in the part's parquet
    metadata (189 MB for a 2 MiB input); pyarrow then refuses the footer ("Couldn't
    deserialize thrift: TProtocolException: Exceeded size limit") in ReadLights and the whole
    job exits 1, on every rerun. The file's good records must survive and the job exit 0."""
    path = tmp_path / "tiny.warc.gz"
    path.write_bytes(gzip.compress(_good(1), mtime=0) + b"\x1f\x8b\x08\xe0" * (1 << 19)
                     + gzip.compress(_good(2), mtime=0))
    out = tmp_path / "out"
    assert harvest.run(["--input", str(path), "--output", str(out), "--no-progress"]) == 0
    selected = pq.read_table(out / "selected").column("caption").to_pylist()
    assert sorted(selected) == ["a photo of a red star number 1", "a photo of a red star number 2"]
    part = next((out / "candidates").glob("*.parquet"))
    assert part.stat().st_size < 20 * path.stat().st_size  # one bad byte must not cost 90 bytes of output


def test_a_file_that_failed_to_open_is_retried_on_rerun(crawl, tmp_path: Path) -> None:
    """A listed file that cannot be opened (missing, or an HTTP 503 from the crawl's server)
    is written as a complete part with the run's fingerprint, so a rerun of the same command
    skips it forever: a transient failure is cached as 'done, no records'."""
    wat = sorted(Path(crawl.wat_glob).parent.glob("*.warc.wat.gz"))
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.wat.gz").write_bytes(wat[0].read_bytes())
    listing = tmp_path / "list.txt"
    listing.write_text(f"{inputs / 'a.wat.gz'}\n{inputs / 'b.wat.gz'}\n")
    out = tmp_path / "out"
    argv = ["--input-list", str(listing), "--output", str(out), "--no-progress"]
    assert harvest.run(argv) == 0
    (inputs / "b.wat.gz").write_bytes(wat[1].read_bytes())  # the file is back (the 503 is over)
    assert harvest.run(argv) == 0

    fresh = tmp_path / "fresh"
    assert harvest.run(["--input-list", str(listing), "--output", str(fresh), "--no-progress"]) == 0
    resumed = json.loads((out / STATS).read_text())["stages"]
    uninterrupted = json.loads((fresh / STATS).read_text())["stages"]
    assert resumed == uninterrupted


def test_a_tiny_compressed_page_cannot_cost_gigabytes(tmp_path: Path) -> None:
    """A response with `Content-Encoding: gzip` is inflated up to 256 MiB and every `<img>`
    of it kept: 64 MiB of one repeated tag is ~1 kB on disk (gzip inside a gzip member) and
    yields 1.46M pairs, 870 MiB of RSS in `iter_pairs` (four such records in one 3.8 kB file:
    5.8M candidates, 8 GB RSS, 176 s for `wit harvest`). A page must cost about what its
    bytes cost: cap the decoded body or the images per page (a counted drop)."""
    html = b"<html><body>" + b'<img src="/x.jpg" alt="a photo of a red star">' * ((64 << 20) // 46) + b"</body></html>"
    bomb = _page("http://bomb.example/", gzip.compress(html, 9, mtime=0), b"Content-Encoding: gzip\r\n")
    path = tmp_path / "bomb.warc.gz"
    path.write_bytes(_members(_good(1), bomb, _good(2)))
    assert path.stat().st_size < 4096
    code = ("import sys; from wit_pipeline.core.stats import DictTally; "
            "from wit_pipeline.web.extract import iter_pairs; "
            "texts = [p['text'] for p in iter_pairs(sys.argv[1], DictTally(), lambda s, e: None)]; "
            "print(texts[0], '|', texts[-1], '|', int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))) >> 10)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    first, last, rss_mib = (s.strip() for s in done.stdout.split("|"))
    assert (first, last) == ("a photo of a red star number 1", "a photo of a red star number 2")
    assert int(rss_mib) < 300, f"peak RSS {rss_mib} MiB for a {path.stat().st_size}-byte file"
