"""Consent at download, end to end: real img2dataset runs against loopback origins (one server,
one port, one origin each), whose request logs show what wit asked for and what it never did."""

import contextlib
import json
import os
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wit_pipeline.core import keys, schema
from wit_pipeline.stages import consent
from wit_pipeline.stages import download as dl
from wit_pipeline.synthetic.concepts import all_concepts
from wit_pipeline.synthetic.images import encode, render
from wit_pipeline.synthetic.origins import Origin, Route
from wit_pipeline.web import robots

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

CONTACT = "https://example.org/wit-operator"
CONFIG = dl.DownloadConfig(allow_loopback=True, number_sample_per_shard=100, threads=4, processes=1, timeout=5,
                           retries=1, contact=CONTACT)
BIG_FILLER = b"# filler line to make this robots.txt long, long, long, long, long, long, long\n"


def _image(i):
    return encode(render(all_concepts()[i % 40], (96, 96), seed=i))


def _jpeg(i, **headers):
    return Route(200, _image(i), {"Content-Type": "image/jpeg", **headers})


def _robots(text):
    return Route(200, text.encode() if isinstance(text, str) else text, {"Content-Type": "text/plain"})


def _big_robots():
    """Over 600 KB: a rule near the top, one just under 500 KiB, one past the limit."""
    head = b"User-agent: *\nDisallow: /early/\n"
    filler = BIG_FILLER * ((490_000 - len(head)) // len(BIG_FILLER))
    mid = b"Disallow: /mid/\n"
    tail = BIG_FILLER * (130_000 // len(BIG_FILLER)) + b"Disallow: /late/\n"
    body = head + filler + mid + tail
    assert len(head + filler + mid) < robots.MAX_BYTES < len(body)
    return body


def _origins():
    """name -> (Origin, {path: expected drop reason or None (saved)})."""
    spec = {
        "folders": ({"/robots.txt": _robots("User-agent: *\nDisallow: /private/\nAllow: /private/public/\n")},
                    {"/img/a.jpg": None, "/private/b.jpg": consent.OPTED_OUT_ROBOTS, "/private/public/c.jpg": None}),
        "down": ({"/robots.txt": Route(503, b"busy")}, {"/img/x.jpg": consent.UNAVAILABLE_ROBOTS}),
        "none": ({}, {"/img/n.jpg": None}),  # robots.txt and tdmrep.json are 404s
        "token": ({"/robots.txt": _robots("User-agent: *\nAllow: /\n\nUser-agent: WIT\nDisallow: /img/\n\n"
                                          "User-agent: wi\nAllow: /\n")},
                  {"/img/t.jpg": consent.OPTED_OUT_ROBOTS, "/other/t.jpg": None}),
        "moved": ({"/robots.txt": Route(301, b"", {"Location": "/a"}), "/a": Route(302, b"", {"Location": "/b/robots"}),
                   "/b/robots": _robots("User-agent: *\nDisallow: /img/blocked\n")},
                  {"/img/blocked.jpg": consent.OPTED_OUT_ROBOTS, "/img/fine.jpg": None}),
        "loop": ({"/robots.txt": Route(302, b"", {"Location": "/r1"}),
                  **{f"/r{i}": Route(302, b"", {"Location": f"/r{i + 1}"}) for i in range(1, 10)}},
                 {"/img/l.jpg": consent.UNAVAILABLE_ROBOTS}),
        "big": ({"/robots.txt": _robots(_big_robots())},
                {"/early/e.jpg": consent.OPTED_OUT_ROBOTS, "/mid/m.jpg": consent.OPTED_OUT_ROBOTS, "/late/l.jpg": None}),
        "tdm": ({"/.well-known/tdmrep.json": Route(200, json.dumps([
                    {"location": "/reserved/*", "tdm-reservation": 1, "tdm-policy": "https://example.org/policy"},
                    {"location": "/", "tdm-reservation": 0}]).encode(), {"Content-Type": "application/json"})},
                {"/reserved/r.jpg": consent.OPTED_OUT_TDM, "/open/o.jpg": None}),
        "tdmdown": ({"/.well-known/tdmrep.json": Route(500, b"oops")}, {"/img/q.jpg": consent.UNAVAILABLE_TDM}),
        "headers": ({}, {"/h/noai.jpg": "opted_out.x_robots_tag", "/h/wit.jpg": "opted_out.x_robots_tag",
                         "/h/other.jpg": None, "/h/tdm.jpg": "opted_out.tdm_reservation",
                         "/h/index.jpg": "opted_out.x_robots_tag", "/h/plain.jpg": None}),
    }
    header_images = {"/h/noai.jpg": {"X-Robots-Tag": "noai"}, "/h/wit.jpg": {"X-Robots-Tag": "wit: noimageai"},
                     "/h/other.jpg": {"X-Robots-Tag": "otherbot: noai, noimageai"},
                     "/h/tdm.jpg": {"tdm-reservation": "1"}, "/h/index.jpg": {"X-Robots-Tag": "noindex"},
                     "/h/plain.jpg": {}}
    # an origin only redirects lead to: its robots.txt is asked by the worker that meets one
    target = Origin({"/robots.txt": _robots("User-agent: *\nDisallow: /private/\n"),
                     "/public/y.jpg": _jpeg(90), "/private/x.jpg": _jpeg(91)})
    spec["redirects"] = ({"/img/to-private.jpg": Route(302, b"", {"Location": target.url("/private/x.jpg")}),
                          "/img/to-public.jpg": Route(302, b"", {"Location": target.url("/public/y.jpg")}),
                          "/img/to-reserved.jpg": Route(301, b"", {"Location": "/reserved/z.jpg"}),
                          "/.well-known/tdmrep.json": Route(200, b'[{"location": "/reserved/", "tdm-reservation": 1}]'),
                          "/reserved/z.jpg": _jpeg(92)},
                         {"/img/to-private.jpg": consent.OPTED_OUT_ROBOTS, "/img/to-public.jpg": None,
                          "/img/to-reserved.jpg": consent.OPTED_OUT_TDM})
    built = {"target": (target, {})}
    for n, (name, (routes, images)) in enumerate(spec.items()):
        routes = dict(routes)
        for i, path in enumerate(images):
            routes.setdefault(path, _jpeg(n * 10 + i, **header_images.get(path, {})))
        built[name] = (Origin(routes), images)
    return built


def _selected(path, origins):
    rows = []
    for name, (origin, images) in origins.items():
        for image in images:
            url, caption = origin.url(image), f"{name} picture {image}"
            rows.append({"url": url, "caption": caption, "key": keys.sample_key(url, caption),
                         "page_url": origin.url("/page.html"), "language": "en", "lang_score": 0.9,
                         "query_ids": [1], "queries": ["picture"]})
    pq.write_table(pa.Table.from_pylist(rows, schema=schema.SELECTED), path)
    return rows


def _samples(folder):
    found = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".tar"):
            with tarfile.open(os.path.join(folder, name)) as tar:
                for m in tar.getmembers():
                    if m.name.endswith(".json"):
                        doc = json.loads(tar.extractfile(m).read())
                        found[doc["url"]] = doc
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one download (the second resumes), the origins' logs after each."""
    tmp = tmp_path_factory.mktemp("consent")
    origins = _origins()
    with contextlib.ExitStack() as stack:
        for origin, _ in origins.values():
            stack.enter_context(origin)
        rows = _selected(tmp / "selected.parquet", origins)
        out = str(tmp / "raw")
        first = dl.download(str(tmp / "selected.parquet"), out, CONFIG)
        after_first = {name: origin.paths() for name, (origin, _) in origins.items()}
        agents = {ua for origin, _ in origins.values() for _, ua in origin.log}
        second = dl.download(str(tmp / "selected.parquet"), out, CONFIG)
        after_second = {name: origin.paths() for name, (origin, _) in origins.items()}
        yield {"origins": origins, "rows": rows, "out": out, "first": first, "second": second,
               "after_first": after_first, "after_second": after_second, "agents": agents}


def _stage(doc):
    return {s["name"]: s for s in doc["stages"]}[dl.STAGE]


def test_each_url_meets_its_origins_policy(runs):
    saved = _samples(runs["out"])
    expected = {origin.url(p): reason for origin, images in runs["origins"].values() for p, reason in images.items()}
    assert {u for u, r in expected.items() if r is None} == set(saved)
    dropped = {}
    for reason in expected.values():
        if reason is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
    stage = _stage(runs["first"])
    assert stage["dropped"] == dropped
    assert stage["in"] == stage["out"] + sum(stage["dropped"].values()) == len(runs["rows"])
    assert _stage(runs["second"]) == stage  # the resumed run accounts for every pair the same way


def test_disallowed_and_reserved_images_are_never_requested(runs):
    for name, (_, images) in runs["origins"].items():
        log = runs["after_second"][name]
        for path, reason in images.items():
            requested = log.get(path, 0)
            if reason is None or name in ("headers", "redirects"):
                assert requested == 1, (name, path, log)  # an opt-out in the response is not retried
            else:
                assert requested == 0, (name, path, log)


def test_one_policy_request_per_origin_across_a_resumed_run(runs):
    target = runs["after_second"]["target"]
    assert target["/public/y.jpg"] == 1 and "/private/x.jpg" not in target  # a refused hop is never requested
    assert runs["after_second"]["redirects"].get("/reserved/z.jpg", 0) == 0
    for name, log in runs["after_second"].items():
        assert log["/robots.txt"] == 1, (name, log)
        needs_tdm = name not in ("down", "loop")  # robots.txt unreachable: nothing to ask about
        assert log.get("/.well-known/tdmrep.json", 0) == (1 if needs_tdm else 0), (name, log)
    assert runs["after_first"] == runs["after_second"]  # the resumed run asked nobody anything
    moved = runs["after_second"]["moved"]
    assert moved["/a"] == moved["/b/robots"] == 1
    assert sum(v for k, v in runs["after_second"]["loop"].items() if k.startswith("/r") and k != "/robots.txt") == robots.MAX_REDIRECTS


def test_every_request_names_the_crawler_and_its_contact(runs):
    assert runs["agents"] == {consent.user_agent("wit", CONTACT)}
    assert "wit/" in consent.user_agent("wit", CONTACT) and CONTACT in consent.user_agent("wit", CONTACT)


def test_saved_samples_record_the_checks_they_passed(runs):
    saved = _samples(runs["out"])
    note = saved[runs["origins"]["folders"][0].url("/private/public/c.jpg")]["consent"]
    assert note.startswith("agent=wit;robots_txt=allowed(ok,group=*);tdmrep=not_reserved(unavailable)")
    assert all(doc["consent"].startswith("agent=wit;") for doc in saved.values())


def test_stats_and_cache_say_what_each_origin_answered(runs):
    summary = runs["first"]["consent"]
    planned = len(runs["origins"]) - 1  # all but the origin only redirects lead to
    assert summary["origins"] == planned
    assert summary["requests_this_run"]["robots.txt"] == planned
    assert runs["second"]["consent"]["requests_this_run"] == {"robots.txt": 0, "tdmrep.json": 0}
    cache = pq.read_table(os.path.join(runs["out"], consent.CACHE_FILE)).to_pylist()
    by_port = {row["origin"]: row for row in cache}
    down = by_port[consent.origin_of(runs["origins"]["down"][0].base)]
    assert (down["robots_state"], down["robots_status"], down["robots_note"]) == ("unreachable", 503, "http_503")
    loop = by_port[consent.origin_of(runs["origins"]["loop"][0].base)]
    assert (loop["robots_state"], loop["robots_note"]) == ("unreachable", "too_many_redirects")
    big = by_port[consent.origin_of(runs["origins"]["big"][0].base)]
    assert len(big["robots_text"].encode()) <= robots.MAX_BYTES


def test_another_agent_reads_its_own_group(tmp_path):
    routes = {"/robots.txt": _robots("User-agent: *\nDisallow: /\n\nUser-agent: acme-bot\nAllow: /img/\nDisallow: /\n"),
              "/img/a.jpg": _jpeg(1), "/other/b.jpg": _jpeg(2)}
    with Origin(routes) as origin:
        _selected(tmp_path / "s.parquet", {"acme": (origin, {"/img/a.jpg": None, "/other/b.jpg": None})})
        doc = dl.download(str(tmp_path / "s.parquet"), str(tmp_path / "out"),
                          CONFIG.__class__(**{**CONFIG.__dict__, "robots_agent": "acme-bot"}))
        assert _stage(doc)["out"] == 1 and _stage(doc)["dropped"] == {consent.OPTED_OUT_ROBOTS: 1}
        assert {ua for _, ua in origin.log} == {consent.user_agent("acme-bot", CONTACT)}
        assert origin.requests("/other/b.jpg") == 0


@pytest.mark.parametrize("agent", ["", "wit bot", "wit/1.0", "wït"])
def test_robots_agent_must_be_a_product_token(agent):
    with pytest.raises(ValueError, match="--robots-agent"):
        dl.DownloadConfig(robots_agent=agent)


def test_contact_must_be_a_url():
    with pytest.raises(ValueError, match="--contact"):
        dl.DownloadConfig(contact="call me maybe")
    assert dl.DownloadConfig(contact="mailto:ops@example.org").contact


def test_inspect_shows_the_consent_counts(runs, capsys):
    from wit_pipeline.inspect import cli as inspect_cli

    assert inspect_cli.run([runs["out"], "--no-progress"]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.startswith("consent: "))
    assert "opted_out.robots_txt=6" in line and "consent_unavailable.robots_txt=2" in line
    assert "agent 'wit'" in text and "0 robots.txt" in text  # the resumed run asked nobody


def test_inspect_never_shows_a_blocklisted_image(runs, tmp_path, monkeypatch):
    import hashlib

    from wit_pipeline.inspect import cli as inspect_cli

    shown = []
    monkeypatch.setattr(inspect_cli.plots, "contact_sheet", lambda first: shown.append(first) or _blank())
    assert inspect_cli.run([runs["out"], "--no-progress", "--contact-sheet", str(tmp_path / "a.png")]) == 0
    everything = {caption for _, _, caption in shown[-1]}
    victim = "folders picture /img/a.jpg"
    stored = next(img for _, img, caption in shown[-1] if caption == victim)  # as img2dataset saved it
    (tmp_path / "bl.txt").write_text(f"sha256 {hashlib.sha256(stored).hexdigest()}\n")
    assert inspect_cli.run([runs["out"], "--no-progress", "--contact-sheet", str(tmp_path / "b.png"),
                            "--blocklist", str(tmp_path / "bl.txt")]) == 0
    assert {caption for _, _, caption in shown[-1]} == everything - {victim}


def _blank():
    from PIL import Image
    return Image.new("RGB", (8, 8))


def test_the_generated_web_has_a_robots_txt_for_wit(crawl):
    truth = json.loads((crawl.root / "truth.json").read_text())
    noai = sorted(x["url"] for x in truth["links"] if x["expect"] == "noai")
    text = (crawl.root / "robots.txt").read_text()
    wit, other = robots.Robots(robots.OK, text, "wit"), robots.Robots(robots.OK, text, "otherbot")
    assert [wit.allowed(u) for u in noai] == [i % 2 == 1 for i in range(len(noai))]
    assert all(other.allowed(u) for u in noai)


def test_final_shards_keep_each_samples_consent_note(runs, tmp_path):
    from beam_jobs import curate

    out = tmp_path / "final"
    assert curate.run(["--input", runs["out"], "--output", str(out), "--max-distance", "0"]) == 0
    notes = []
    for tar_path in sorted(out.glob("wit-*.tar")):
        with tarfile.open(tar_path) as tar:
            notes += [json.loads(tar.extractfile(m).read()).get("consent") for m in tar.getmembers()
                      if m.name.endswith(".json")]
    assert notes and all(n and n.startswith("agent=wit;robots_txt=allowed(") for n in notes)
