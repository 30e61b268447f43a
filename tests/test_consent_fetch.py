"""Fetching one policy file: outcomes of statuses, redirects, sizes and a server that drips."""

import contextlib
import itertools
import socket
import threading
import time

from wit_pipeline.stages import consent
from wit_pipeline.synthetic.origins import Origin, Route
from wit_pipeline.web import robots


def _get(url, timeout=5.0):
    return consent.fetch_policy(url, consent.policy_opener(None), consent.user_agent("wit"), timeout)


def test_statuses_and_bodies():
    big = b"User-agent: *\n" + b"#" * (robots.MAX_BYTES + 100_000)
    routes = {"/ok": Route(200, b"User-agent: *\nDisallow: /x\n"), "/gone": Route(410, b""),
              "/busy": Route(503, b""), "/slowdown": Route(429, b""), "/big": Route(200, big),
              "/to-ftp": Route(302, b"", {"Location": "ftp://example.org/robots.txt"})}
    with Origin(routes) as origin:
        ok = _get(origin.url("/ok"))
        assert (ok.state, ok.status, ok.body) == (robots.OK, 200, b"User-agent: *\nDisallow: /x\n")
        gone = _get(origin.url("/gone"))
        assert (gone.state, gone.status) == (robots.UNAVAILABLE, 410)
        assert _get(origin.url("/busy")).state == _get(origin.url("/slowdown")).state == robots.UNREACHABLE
        got = _get(origin.url("/big"))
        assert got.state == robots.OK and len(got.body) == robots.MAX_BYTES + 1  # no more is read
        assert _get(origin.url("/to-ftp")).state == robots.UNREACHABLE
        assert all(ua == consent.user_agent("wit") for _, ua in origin.log)
    refused = _get("http://127.0.0.1:9/robots.txt")  # nothing listens on the discard port
    assert refused.state == robots.UNREACHABLE and refused.note


def test_redirects_are_followed_five_times_to_http_only():
    """RFC 9309 2.3.1.2: at least five consecutive redirects are followed (wit: exactly five);
    a redirect to any scheme but http(s) is never followed, whichever scheme it names."""
    chain = {f"/hop{i}": Route(302, b"", {"Location": f"/hop{i + 1}"}) for i in range(6)}
    chain["/hop6"] = Route(200, b"User-agent: *\nDisallow: /\n")
    schemes = ("ftp://example.org/robots.txt", "file:///etc/passwd", "data:text/plain,User-agent", "gopher://x/1")
    other = {f"/to-{i}": Route(301, b"", {"Location": target}) for i, target in enumerate(schemes)}
    with Origin({**chain, **other}) as origin:
        five = _get(origin.url("/hop1"))
        assert (five.state, five.status) == (robots.OK, 200)
        six = _get(origin.url("/hop0"))
        assert (six.state, six.status, six.note) == (robots.UNREACHABLE, 302, "too_many_redirects")
        for i, target in enumerate(schemes):
            got = _get(origin.url(f"/to-{i}"))
            assert (got.state, got.status, got.note) == (robots.UNREACHABLE, None, "redirect_scheme"), target
        assert origin.paths()["/hop6"] == 1


@contextlib.contextmanager
def _dripping_server(chunks, pause):
    """The port of a server that answers one request with `chunks`, `pause` seconds apart,
    until they run out, the client goes or the test ends."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip():
        conn, _ = server.accept()
        conn.recv(4096)
        for chunk in chunks:
            if stop.is_set():
                break
            try:
                conn.sendall(chunk)
            except OSError:
                break
            time.sleep(pause)
        conn.close()

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()
        thread.join(5)


def test_a_server_that_drips_is_unreachable_at_the_deadline():
    head = b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\n"
    with _dripping_server(itertools.chain([head], itertools.repeat(b"#")), 0.2) as port:
        got = _get(f"http://127.0.0.1:{port}/robots.txt", timeout=0.5)  # each byte comes in time
        assert (got.state, got.note) == (robots.UNREACHABLE, "deadline")


def test_a_server_that_drips_its_head_is_unreachable_at_the_deadline():
    """The status line and headers one byte at a time, each inside the per-read time-out:
    only a deadline on the whole fetch (not a check between body reads) ends it."""
    head = b"HTTP/1.0 200 OK\r\nX-Padding: " + b"#" * 60000
    with _dripping_server((bytes([byte]) for byte in head), 0.05) as port:
        start = time.monotonic()
        got = _get(f"http://127.0.0.1:{port}/robots.txt", timeout=0.3)
        assert (got.state, got.note, got.body) == (robots.UNREACHABLE, "deadline", b"")
        assert time.monotonic() - start < 0.3 * consent.DEADLINE_TIMEOUTS + 2


def test_a_policy_file_compressed_unasked_is_inflated_or_unreachable():
    """Some servers gzip whatever they send: read as text, a gzipped `Disallow: /` would be no
    rules at all. It is inflated; one that does not inflate, or a coding we cannot read, is no answer."""
    import gzip
    import zlib

    rules = b"User-agent: *\nDisallow: /\n"
    routes = {"/gz": Route(200, gzip.compress(rules), {"Content-Encoding": "gzip"}),
              "/deflate": Route(200, zlib.compress(rules), {"Content-Encoding": "deflate"}),
              "/raw-deflate": Route(200, zlib.compress(rules)[2:-4], {"Content-Encoding": "deflate"}),
              "/bomb": Route(200, gzip.compress(b"#" * (robots.MAX_BYTES * 40)), {"Content-Encoding": "gzip"}),
              "/broken": Route(200, b"not gzip at all", {"Content-Encoding": "gzip"}),
              "/br": Route(200, b"\x0b\x02\x80", {"Content-Encoding": "br"})}
    with Origin(routes) as origin:
        for path in ("/gz", "/deflate", "/raw-deflate"):
            got = _get(origin.url(path))
            assert (got.state, got.body) == (robots.OK, rules), path
        bomb = _get(origin.url("/bomb"))
        assert bomb.state == robots.OK and len(bomb.body) == robots.MAX_BYTES + 1
        for path in ("/broken", "/br"):
            assert _get(origin.url(path)).state == robots.UNREACHABLE, path
