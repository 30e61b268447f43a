"""`wit report`: the demo's page in a real headless Chromium (no console errors, no request leaves
the file, every image decodes, the funnel's numbers are stats.json's), bad input shown at the
top instead of a traceback, reproducible pages, opted-out records never shown, bounded size."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from wit_pipeline import cli
from wit_pipeline.core.outputs import STATS
from wit_pipeline.core.schema import QUERY_COUNTS
from wit_pipeline.report import balancing, examples, render
from wit_pipeline.stages.download import outcome_reason

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", '--host-resolver-rules=MAP * ~NOTFOUND',
                  "--hide-scrollbars", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"]
STATS_FOLDERS = ("harvest", "raw", "shards")  # the demo's jobs, as the report names them below
JOB_OF = {"harvest": "harvest", "raw": "download", "shards": "curate"}

# Loaded first in a test copy of the page (the page itself runs no script): records errors,
# CSP violations, every resource the page fetched and every image that failed to decode, and
# writes them into the DOM that --dump-dom prints.
CHECK_SCRIPT = """<script>
(function () {
  var errors = [], csp = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message || (e.target && e.target.tagName) || e.type)); }, true);
  document.addEventListener('securitypolicyviolation', function (e) { csp.push(e.violatedDirective + ' ' + e.blockedURI); });
  window.addEventListener('load', function () {
    var imgs = Array.prototype.slice.call(document.images);
    var out = {
      images: imgs.length,
      broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).map(function (i) { return i.alt; }),
      resources: performance.getEntriesByType('resource').map(function (r) { return r.name; }),
      errors: errors, csp: csp
    };
    var pre = document.createElement('pre');
    pre.id = 'wit-check';
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  });
})();
</script>"""


def _chromium() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.skip("no headless Chromium here (Debian: apt-get install chromium; .ci/run installs it as root)")


class _Cells(HTMLParser):
    """The funnel table's numbers (data-job/-stage/-field cells) and the #wit-check text."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], str] = {}
        self.check = ""
        self._cell: tuple[str, str, str] | None = None
        self._in_check = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td" and "data-field" in a:
            self._cell = (str(a["data-job"]), str(a["data-stage"]), str(a["data-field"]))
            self.cells[self._cell] = ""
        self._in_check = tag == "pre" and a.get("id") == "wit-check"

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        if tag == "pre":
            self._in_check = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self.cells[self._cell] += data
        if self._in_check:
            self.check += data


def _expected_cells(out: Path) -> dict[tuple[str, str, str], int]:
    want = {}
    for folder in STATS_FOLDERS:
        for s in json.loads((out / folder / STATS).read_text())["stages"]:
            job = JOB_OF[folder]
            want[(job, s["name"], "in")] = s["in"]
            want[(job, s["name"], "out")] = s["out"]
            for reason, n in s["dropped"].items():
                want[(job, s["name"], f"dropped.{reason}")] = n
    return want


@pytest.mark.slow
def test_demo_report_in_headless_chromium(demo_run, tmp_path: Path) -> None:
    browser = _chromium()
    page = (demo_run.out / "report.html").read_text(encoding="utf-8")
    # The page as written: nothing but data: URIs and in-page anchors, and a CSP forbidding the rest.
    assert "default-src 'none'" in page and "<script" not in page
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and all(u.startswith(("data:image/", "#")) for u in links), {u[:40] for u in links}

    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    assert csp in page
    probe = tmp_path / "probe.html"  # the same page, plus the checking script (allowed by its CSP)
    probe.write_text(page.replace(csp, csp + "; script-src 'unsafe-inline'", 1).replace("</title>", "</title>" + CHECK_SCRIPT, 1),
                     encoding="utf-8")
    profile = tmp_path / "profile"
    run = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    parsed = _Cells()
    parsed.feed(run.stdout)
    check = json.loads(parsed.check)
    assert check["errors"] == [] and check["csp"] == [], check
    assert check["resources"] == [], check["resources"]  # data: URIs are not fetched; nothing else is
    assert check["images"] >= 24 + 10 and check["broken"] == [], check  # contact sheet + drop examples
    assert not [line for line in run.stderr.splitlines() if "CONSOLE" in line], run.stderr[-2000:]

    # The funnel's numbers are stats.json's, every one of them and nothing else.
    shown = {k: int(v.replace(",", "")) for k, v in parsed.cells.items()}
    assert shown == _expected_cells(demo_run.out)

    shot = tmp_path / "report.png"
    run = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,2000",
                          f"--screenshot={shot}", (demo_run.out / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    with Image.open(shot) as img:
        assert img.size == (1280, 2000)
        assert len(img.convert("L").getcolors(1 << 16) or ()) > 50  # a rendered page, not a blank one


@pytest.mark.slow
def test_report_is_reproducible_and_never_shows_opted_out_records(demo_run, tmp_path: Path) -> None:
    out = demo_run.out
    assert cli.main(["report", str(out), "--out", str(tmp_path / "a.html")]) == 0
    again = tmp_path / "b.html"
    assert cli.main(["report", str(out), "--out", str(again)]) == 0
    first = (tmp_path / "a.html").read_bytes()
    assert first == again.read_bytes() == (out / "report.html").read_bytes()  # the demo's own, same seed
    assert cli.main(["report", str(out), "--out", str(tmp_path / "c.html"), "--seed", "1"]) == 0
    assert (tmp_path / "c.html").read_bytes() != first  # another seed, other samples

    html = first.decode("utf-8")
    raw = pa.concat_tables([pq.read_table(p) for p in sorted((out / "raw").glob("[0-9]*.parquet"))])
    opted = [r for r in raw.to_pylist() if examples.never_shown(outcome_reason(r["status"], r["error_message"]) or "")]
    assert opted, "the demo plants images whose responses opt out"
    for row in opted:
        assert row["url"] not in html and row["sample_key"] not in html
    # and the ones robots.txt kept from being requested at all
    truth = json.loads((out / "web" / "truth.json").read_text())
    noai = [link["url"] for link in truth["links"] if link["expect"] == "noai"]
    assert noai and not [u for u in noai if u in html]
    assert "opted_out" in html  # counted, though
    assert len(first) < 2_000_000


@pytest.mark.slow
def test_bad_input_is_shown_at_the_top(demo_run, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "run"
    for name in ("harvest", "raw", "shards"):
        shutil.copytree(demo_run.out / name, run_dir / name)
    stats = run_dir / "harvest" / STATS
    stats.write_bytes(stats.read_bytes()[:150])  # truncated mid-file
    (run_dir / "shards" / "wit-000000.tar").unlink()
    next((run_dir / "harvest" / "candidates").glob("*.parquet")).write_bytes(b"not parquet")
    out = tmp_path / "report.html"
    assert cli.main(["report", str(run_dir), "--out", str(out)]) == 0
    assert "problem(s) listed at the top" in capsys.readouterr().out
    html = out.read_text(encoding="utf-8")
    problems = html.index('id="problems"')
    assert problems < html.index('id="funnel"')
    top = html[problems:html.index("</section>", problems)]
    assert "harvest/stats.json cannot be read" in top and "wit-000000.tar is listed in manifest.json but missing" in top
    assert "candidates or selected pairs cannot be read" in top
    assert 'data-job="download"' in html and 'data-job="harvest"' not in html  # what could be read still shows

    # One stage's folder on its own works too.
    assert cli.main(["report", str(demo_run.out / "shards"), "--out", str(tmp_path / "curate.html")]) == 0
    assert 'data-job="curate"' in (tmp_path / "curate.html").read_text(encoding="utf-8")
    assert cli.main(["report", str(tmp_path / "nothing")]) == 2


def test_never_shown_reasons() -> None:
    for reason in ("opted_out", "opted_out.robots_txt", "opted_out.tdm_reservation", "blocklisted", "unsafe_host.blocklisted",
                   "opted_out.x_robots_tag (at fetch)"):
        assert examples.never_shown(reason), reason
    for reason in ("near_duplicate", "failed_to_download.http_404", "not_opted_out_here", "blocklist_size"):
        assert not examples.never_shown(reason), reason


def test_a_large_run_gives_a_small_page(tmp_path: Path) -> None:
    """500k allowlist entries over 4 languages and 100k logged steps: charts are aggregated, so
    the page stays small (a 10^6-sample run adds a bounded number of examples and thumbnails)."""
    rng = np.random.default_rng(0)
    n = 500_000
    count = (rng.zipf(1.3, n) % 10_000_000).astype(np.int64)
    selected = np.minimum(count, 20_000 + count // 10)
    table = pa.table({"query_id": pa.array(np.arange(n, dtype=np.int32)), "query": [f"q{i}" for i in range(n)],
                      "count": count, "selected": selected, "kept": np.minimum(count, 20_000),
                      "language": pa.array(np.array(["en", "de", "ja", "sw"])[np.arange(n) % 4])})
    harvest = tmp_path / "run" / "harvest"
    harvest.mkdir(parents=True)
    pq.write_table(table, harvest / "query_counts.parquet")
    assert QUERY_COUNTS.names == table.column_names
    stages = [{"name": "read", "in": 10**9, "out": 4 * 10**7, "dropped": {"not_response": 96 * 10**7}},
              {"name": "extract", "in": 4 * 10**8, "out": 3 * 10**8, "dropped": {"no_text": 10**8}},
              {"name": "filter", "in": 3 * 10**8, "out": 3 * 10**8, "dropped": {}},
              {"name": "match", "in": 3 * 10**8, "out": 2 * 10**8, "dropped": {"no_match": 10**8}},
              {"name": "dedup", "in": 2 * 10**8, "out": 2 * 10**8, "dropped": {}},
              {"name": "balance", "in": 2 * 10**8, "out": 10**6, "dropped": {"over_cap": 199 * 10**6}}]
    per_language = {"en": 20_000, "de": 9_000, "ja": 7_000, "sw": 500}  # MetaCLIP 2's t per language, and its p
    (harvest / STATS).write_text(json.dumps({"stages": stages, "job": "harvest", "config": {"t": 20_000, "seed": 0},
                                                    "t_per_language": per_language, "p": 0.2}))
    train = tmp_path / "run" / "train"
    train.mkdir()
    with (train / "log.jsonl").open("w") as f:
        for step in range(1, 100_001):
            f.write(json.dumps({"step": step, "loss": 5.0 / step**0.1, "lr": 1e-3, "temperature": 0.07,
                                "samples_per_s": 1000.0}) + "\n")
    ctx = render.build(str(tmp_path / "run"))
    assert ctx["problems"] == []
    assert len(ctx["balancing"]["before"]) <= balancing.CURVE_POINTS and len(ctx["balancing"]["languages"]) == 4
    assert {lang["language"]: lang["t"] for lang in ctx["balancing"]["languages"]} == per_language
    assert [r["label"] for r in ctx["funnel_chart"]["rows"]][0] == "harvest · read"  # from crawl records on
    html = render.render(ctx)
    assert len(html.encode()) < 500_000


@pytest.mark.slow
def test_report_of_a_remote_folder(demo_run) -> None:
    """Folders are read through fsspec: the same run in memory:// gives the same page but for its paths."""
    import fsspec

    fs = fsspec.filesystem("memory")
    for name in ("harvest", "raw", "shards", "train"):
        for path in (demo_run.out / name).rglob("*"):
            if path.is_file() and path.suffix != ".pt":
                fs.pipe(f"/remote-run/{path.relative_to(demo_run.out)}", path.read_bytes())
    try:
        remote = render.build("memory://remote-run")
        local = render.build(str(demo_run.out))
    finally:
        fs.rm("/remote-run", recursive=True)
    assert remote["problems"] == [] and remote["funnel"]["checks"] == local["funnel"]["checks"]
    assert [s["key"] for s in remote["sheet"]] == [s["key"] for s in local["sheet"]]
    assert [len(d["examples"]) for g in remote["drops"] for d in g["shown"]] == \
        [len(d["examples"]) for g in local["drops"] for d in g["shown"]]


@pytest.mark.slow
def test_curate_opt_outs_withhold_its_dropped_images(demo_run, tmp_path: Path) -> None:
    """Where curate itself drops opted-out or blocklisted records, its drops are shown without images:
    the report tells them apart by their pHashes only, which cannot say which was opted out."""
    run_dir = tmp_path / "run"
    for name in ("raw", "shards"):
        shutil.copytree(demo_run.out / name, run_dir / name)
    before = render.render(render.build(str(run_dir)))
    assert 'alt="dropped image"' in before
    stats_path = run_dir / "shards" / STATS
    doc = json.loads(stats_path.read_text())
    dedup = next(s for s in doc["stages"] if s["name"] == "dedup")
    dedup["dropped"]["blocklisted"] = 1
    dedup["in"] += 1
    next(s for s in doc["stages"] if s["name"] == "read")["in"] += 1
    next(s for s in doc["stages"] if s["name"] == "read")["out"] += 1
    next(s for s in doc["stages"] if s["name"] == "decode")["in"] += 1
    next(s for s in doc["stages"] if s["name"] == "decode")["out"] += 1
    stats_path.write_text(json.dumps(doc))
    ctx = render.build(str(run_dir))
    html = render.render(ctx)
    assert 'alt="dropped image"' not in html and "none of curate&#39;s dropped images is shown" in html
    assert 'data-field="dropped.blocklisted">1<' in html  # counted


@pytest.mark.slow
def test_curate_blocklisted_images_are_found_and_never_shown(demo_run, tmp_path: Path) -> None:
    """With curate's blocklist at hand, the report finds the blocklisted drops again (by curate's
    own decode) and counts them only; the other drops keep their images."""
    import hashlib

    from wit_pipeline import shards

    run_dir = tmp_path / "run"
    for name in ("raw", "shards"):
        shutil.copytree(demo_run.out / name, run_dir / name)
    ctx = render.build(str(run_dir))
    shown = [e for g in ctx["drops"] if g["job"] == "curate" for d in g["shown"] for e in d["examples"] if e.get("thumb")]
    assert len(shown) >= 2
    victim = shown[0]
    image = next(shards.image_of(s)[1] for tar in sorted((run_dir / "raw").glob("*.tar"))
                 for s in shards.iter_tar_samples(str(tar)) if json.loads(s["json"]).get("sample_key") == victim["key"])
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text(f"sha256 {hashlib.sha256(image).hexdigest()}\n")
    stats_path = run_dir / "shards" / STATS
    doc = json.loads(stats_path.read_text())
    doc["config"]["blocklist"] = str(blocklist)
    decode = next(s for s in doc["stages"] if s["name"] == "decode")
    decode["dropped"]["blocklisted"] = 1  # as curate with that blocklist would have counted it
    stats_path.write_text(json.dumps(doc))

    html = render.render(render.build(str(run_dir)))
    assert victim["url"] not in html and victim["key"] not in html
    assert 'alt="dropped image"' in html and "none of curate" not in html
    assert 'data-field="dropped.blocklisted">1<' in html


@pytest.mark.parametrize("count", [10**300, -3, True, 1.5, "7"], ids=["huge", "negative", "bool", "float", "string"])
def test_a_stats_json_with_counts_no_job_writes_is_a_problem_line(tmp_path: Path, count, capsys) -> None:
    """A count too large to divide as a float, negative, a bool, a float or a string: the stage is
    left out of the funnel with a line at the top, and markup in its names is shown as text."""
    harvest = tmp_path / "run" / "harvest"
    harvest.mkdir(parents=True)
    stages = [{"name": "read<script>alert(1)</script>", "in": 1, "out": 0, "dropped": {"x</text><svg onload=y>": count}}]
    (harvest / STATS).write_text(json.dumps({"job": "harvest", "stages": stages}))
    out = tmp_path / "report.html"
    assert cli.main(["report", str(tmp_path / "run"), "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    top = html[html.index('id="problems"'):html.index("</section>", html.index('id="problems"'))]
    assert "harvest/stats.json stage entry" in top and 'data-job="harvest"' not in html
    assert "<script>alert" not in html and "<svg onload" not in html
