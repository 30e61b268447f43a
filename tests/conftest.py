"""Shared fixtures: one generated crawl served over loopback per test session, and the real
Common Crawl WARC sample.

`crawl` is session-scoped: generating it takes a second or two, and every stage's tests read
the same files (never write into `crawl.root`: copy what you need to modify).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wit_pipeline.synthetic.generate import generate_crawl
from wit_pipeline.synthetic.server import LoopbackServer

REPO = Path(__file__).resolve().parents[1]
REAL_WARC_NAME = "cc-main-2024-22-wikipedia-1page.warc.gz"


@dataclass(frozen=True)
class Crawl:
    root: Path  # served directory: crawl/, images/, noai/, site-*/, truth.json
    base_url: str  # http://127.0.0.1:PORT
    warc_glob: str  # root/crawl/warc/*.warc.gz
    wat_glob: str  # root/crawl/wat/*.warc.wat.gz
    truth: dict[str, Any]  # truth.json: what was planted, with counts

    def __getitem__(self, name: str) -> Any:  # crawl["truth"] works as well as crawl.truth
        return getattr(self, name)


@pytest.fixture(scope="session")
def crawl(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("crawl")
    server = LoopbackServer(root).start()
    try:
        truth = generate_crawl(root, server.base_url, seed=0)
        yield Crawl(
            root=root,
            base_url=server.base_url,
            warc_glob=str(root / "crawl" / "warc" / "*.warc.gz"),
            wat_glob=str(root / "crawl" / "wat" / "*.warc.wat.gz"),
            truth=truth,
        )
    finally:
        server.stop()


@pytest.fixture(scope="session")
def real_warc() -> Path:
    """The one-page CC-MAIN-2024-22 WARC in `shared/fixtures` beside the repo (CI clones it there)."""
    candidates = [REPO.parent / "shared" / "fixtures" / REAL_WARC_NAME, REPO / "shared" / "fixtures" / REAL_WARC_NAME]
    for path in candidates:
        if path.is_file():
            return path
    pytest.skip(f"real Common Crawl sample not found (looked in {', '.join(map(str, candidates))})")


@dataclass(frozen=True)
class DemoRun:
    out: Path  # the demo's --out: harvest/, raw/, shards/, train/, report.html, ...
    code: int  # demo.run's exit code
    printed: str  # what the demo printed (its own lines; the stages' processes print to the terminal)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One small `wit demo` per test session (about a minute of CPU), shared by the tests that
    read its outputs: never write into it (copy what you need to modify)."""
    from wit_pipeline import demo

    out = tmp_path_factory.mktemp("demo") / "demo"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = demo.run(["--out", str(out), "--pages", "60", "--steps", "10", "--batch-size", "16", "--port", "0"])
    return DemoRun(out=out, code=code, printed=buf.getvalue())
