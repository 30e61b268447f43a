"""`wit download --engine beam` asks each origin once per job, however many input files and
workers share it: the origins' request logs after a job on two worker processes, and after
the job is run again."""

import contextlib
import os

import pyarrow as pa
import pyarrow.parquet as pq

from beam_jobs import download as beam_download
from wit_pipeline.core import keys, schema
from wit_pipeline.core.outputs import STATS
from wit_pipeline.stages import consent
from wit_pipeline.synthetic.concepts import all_concepts
from wit_pipeline.synthetic.images import encode, render
from wit_pipeline.synthetic.origins import Origin, Route

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

FILES = 2
ORIGINS = 4


def _origin(n):
    routes = {"/robots.txt": Route(200, b"User-agent: *\nDisallow: /private/\n")}
    for f in range(FILES):
        routes[f"/img/{f}.jpg"] = Route(200, encode(render(all_concepts()[n * 5 + f], (96, 96), seed=f)),
                                        {"Content-Type": "image/jpeg"})
    return Origin(routes)


def _write_files(tmp, origins):
    paths = []
    for f in range(FILES):  # every file has images of every origin
        rows = []
        for n, origin in enumerate(origins):
            for path in (f"/img/{f}.jpg", f"/private/{f}.jpg"):
                url, caption = origin.url(path), f"origin {n} file {f} {path}"
                rows.append({"url": url, "caption": caption, "key": keys.sample_key(url, caption),
                             "page_url": origin.url("/"), "language": "en", "lang_score": 0.9,
                             "query_ids": [1], "queries": ["q"]})
        paths.append(str(tmp / f"part-{f}.parquet"))
        pq.write_table(pa.Table.from_pylist(rows, schema=schema.SELECTED), paths[-1])
    return paths


def _run(paths, out):
    args = [a for p in paths for a in ("--input", p)]
    return beam_download.run([*args, "--output", out, "--engine", "beam", "--allow-loopback", "--threads", "4",
                              "--number-sample-per-shard", "50", "--timeout", "5",
                              "--direct_num_workers=2", "--direct_running_mode=multi_processing"])


def test_each_origin_is_asked_once_per_job_and_not_again_on_resume(tmp_path):
    with contextlib.ExitStack() as stack:
        origins = [stack.enter_context(_origin(n)) for n in range(ORIGINS)]
        paths = _write_files(tmp_path, origins)
        out = str(tmp_path / "raw")
        assert _run(paths, out) == 0
        for origin in origins:
            log = origin.paths()
            assert log["/robots.txt"] == 1 and log["/.well-known/tdmrep.json"] == 1, log
            assert all(log[f"/img/{f}.jpg"] == 1 for f in range(FILES)), log
            assert not any(p.startswith("/private/") for p in log), log
        before = [origin.paths() for origin in origins]
        assert _run(paths, out) == 0
        assert [origin.paths() for origin in origins] == before  # resumed: nobody asked again
    import json
    stats = json.loads((tmp_path / "raw" / STATS).read_text())
    download = {s["name"]: s for s in stats["stages"]}["download"]
    assert download["out"] == FILES * ORIGINS
    assert download["dropped"] == {consent.OPTED_OUT_ROBOTS: FILES * ORIGINS}
    assert stats["consent"]["origins"] == ORIGINS
    assert stats["consent"]["requests_this_run"] == {"robots.txt": 0, "tdmrep.json": 0}
