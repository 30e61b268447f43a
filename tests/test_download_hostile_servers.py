"""`wit download` against servers that attack it, from a loopback server: a decompression bomb
(25000x25000 PNG, 1.8 MB), a 1000 MB body, a server sending 1 byte every 2 s, redirects to
file:, data: and gopher:. One real `wit download` child process fetches them all; its peak RSS
comes from the rusage of the process that waited for it."""

import http.server
import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wit_pipeline.core import keys, schema
from wit_pipeline.stages import download as dl
from wit_pipeline.synthetic.concepts import all_concepts
from wit_pipeline.synthetic.images import encode, render

BOMB_SIDE = 25_000
HUGE_BYTES = 1000 * 1024 * 1024
SLOW_BYTES = 20  # 40 s at 1 byte per 2 s: far past the deadline below
GIB = 1024 * 1024 * 1024


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """An all-black RGB PNG of side x side pixels, compressed row by row (never held decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + 3 * side)  # filter byte 0, then black pixels
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class _Hostile(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    bomb = b""
    good = b""

    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_GET(self):  # noqa: N802 - stdlib name
        try:
            if self.path == "/good.jpg":
                self._send(self.good, "image/jpeg")
            elif self.path == "/bomb.png":
                self._send(self.bomb, "image/png")
            elif self.path == "/huge.jpg":  # no Content-Length: the body ends when the server closes
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.end_headers()
                block = bytes(1024 * 1024)
                for _ in range(HUGE_BYTES // len(block)):
                    self.wfile.write(block)
            elif self.path == "/slow.jpg":
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(SLOW_BYTES))
                self.end_headers()
                for _ in range(SLOW_BYTES):
                    self.wfile.write(b"\xff")
                    self.wfile.flush()
                    time.sleep(2)
            elif self.path.startswith("/to/"):
                target = {"file": "file:///etc/passwd", "data": "data:image/png;base64,iVBORw0KGgo=",
                          "gopher": "gopher://127.0.0.1:70/1"}[self.path[4:]]
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_error(404)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what a cap or a deadline does

    def _send(self, body, kind):
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _row(url, i):
    caption = f"hostile picture {i}"
    return {"url": url, "caption": caption, "key": keys.sample_key(url, caption), "page_url": "http://p.example/",
            "language": "en", "lang_score": 0.9, "query_ids": [i], "queries": [f"q{i}"]}


PATHS = ["/good.jpg", "/bomb.png", "/huge.jpg", "/slow.jpg", "/to/file", "/to/data", "/to/gopher"]
RSS_OF_CHILD = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile")
    _Hostile.bomb = bomb_png()
    _Hostile.good = encode(render(all_concepts()[0], (96, 96), seed=0))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rows = [_row(base + p, i) for i, p in enumerate(PATHS)]
    selected = work / "selected.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema.SELECTED), selected)
    out = work / "raw"
    cmd = [sys.executable, "-m", "wit_pipeline.cli", "download", "--input", str(selected), "--output", str(out),
           "--allow-loopback", "--threads", str(len(rows)), "--processes", "1", "--retries", "0",
           "--timeout", "5", "--fetch-deadline", "4"]
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", RSS_OF_CHILD, *cmd], capture_output=True, text=True,
                              env=env, timeout=600)
    finally:
        server.shutdown()
        server.server_close()
    code, max_rss_kib = map(int, done.stdout.split())
    doc = json.loads((out / "stats.json").read_text())
    dead = pq.read_table(out / dl.DEAD_LETTER_FILE).to_pylist() if (out / dl.DEAD_LETTER_FILE).exists() else []
    outcome = {base + p: None for p in PATHS}
    for shard in doc["shards"]:
        for r in pq.read_table(out / f"{shard}.parquet").to_pylist():
            outcome[r["url"]] = dl.outcome_reason(r["status"], r["error_message"])
    return {"code": code, "rss": max_rss_kib * 1024, "doc": doc, "dead": dead, "base": base,
            "outcome": {u[len(base):]: r for u, r in outcome.items()}, "seconds": time.monotonic() - started,
            "stderr": done.stderr}


def test_the_bomb_png_is_what_the_attack_sends():
    assert len(bomb_png()) < 2_000_000


def test_a_decompression_bomb_is_refused_from_its_header(hostile_run):
    assert hostile_run["outcome"]["/bomb.png"] == "failed_to_resize.too_many_pixels"
    assert hostile_run["outcome"]["/good.jpg"] is None  # the good image beside the attacks is saved


def test_a_huge_body_is_not_read_past_the_cap(hostile_run):
    assert hostile_run["outcome"]["/huge.jpg"] == "failed_to_download.too_large"


def test_peak_memory_of_the_whole_download_stays_under_a_gib(hostile_run):
    """Decoding the bomb alone takes 1.9 GB, reading the body whole 1 GB and more."""
    assert hostile_run["rss"] < GIB, f"peak RSS {hostile_run['rss'] / GIB:.2f} GiB"


def test_a_server_that_trickles_bytes_meets_the_deadline(hostile_run):
    assert hostile_run["outcome"]["/slow.jpg"] == "failed_to_download.deadline"


@pytest.mark.parametrize("scheme", ["file", "data", "gopher"])
def test_redirects_to_other_schemes_are_refused_and_dead_lettered(hostile_run, scheme):
    assert hostile_run["outcome"][f"/to/{scheme}"] == "bad_url.scheme"
    url = hostile_run["base"] + f"/to/{scheme}"
    assert [d["error"] for d in hostile_run["dead"] if d["source"].endswith(" " + url)] == ["bad_url.scheme (at fetch)"]


def test_every_pair_is_counted(hostile_run):
    (stage,) = hostile_run["doc"]["stages"]
    assert stage == {"name": "download", "in": 7, "out": 1, "dropped": {
        "bad_url.scheme": 3, "failed_to_download.deadline": 1, "failed_to_download.too_large": 1,
        "failed_to_resize.too_many_pixels": 1}}
    assert hostile_run["code"] == 0


def test_byte_cap_and_deadline_are_flags_with_limits(tmp_path):
    from beam_jobs import download as job

    for flags in (["--max-image-bytes", "0"], ["--fetch-deadline", "0"]):
        with pytest.raises(SystemExit) as exit_:
            job.run(["--input", "x", "--output", str(tmp_path / "o"), *flags])
        assert exit_.value.code == 2
    assert dl.DownloadConfig().max_image_bytes == 32 * 1024 * 1024
    assert not Path(tmp_path / "o").exists()



def test_an_image_with_transparency_gets_an_eighth_of_the_area():
    """img2dataset blends alpha in float64 (~56 bytes a pixel): at the opaque cap one RGBA image
    would cost ~4 GB, so transparency (an alpha band or a palette's transparent index) shares
    the cap by ALPHA_AREA_SHARE; an opaque image of the same size passes."""
    import io

    from PIL import Image

    from wit_pipeline.stages.fetch import ALPHA_AREA_SHARE, header_refusal

    def png(mode: str, **info) -> io.BytesIO:
        buf = io.BytesIO()
        Image.new(mode, (100, 100)).save(buf, "PNG", **info)
        return buf

    cap = 100 * 100 * ALPHA_AREA_SHARE - 1  # an opaque 100x100 fits; with alpha, 1/8 of this does not
    assert header_refusal(png("RGB"), cap) is None
    assert header_refusal(png("L"), cap) is None
    for image in (png("RGBA"), png("LA"), png("P", transparency=0)):
        assert header_refusal(image, cap) == "image area too large"
    assert header_refusal(png("RGBA"), cap + 1) is None
