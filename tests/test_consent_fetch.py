"""Fetching one policy file: outcomes of statuses, redirects, sizes and a server that drips."""

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


def test_a_server_that_drips_is_unreachable_at_the_deadline():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def drip():
        conn, _ = server.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b"#")
            except OSError:
                break
            time.sleep(0.2)
        conn.close()

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        got = _get(f"http://127.0.0.1:{port}/robots.txt", timeout=0.5)  # each byte comes in time
        assert (got.state, got.note) == (robots.UNREACHABLE, "deadline")
    finally:
        stop.set()
        server.close()
        thread.join(5)
