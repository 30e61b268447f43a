"""`wit demo`, the README's first command: every stage runs, each in its own process, and
the outputs it lists exist and check out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wit_pipeline import demo
from wit_pipeline import inspect as wi
from wit_pipeline.core.outputs import STATS
from wit_pipeline.core.stats import check_stages


@pytest.mark.slow
def test_small_demo_runs_every_stage(demo_run) -> None:
    out = demo_run.out
    assert demo_run.code == 0
    printed = demo_run.printed
    for stage in ("harvest", "download", "curate", "inspect", "train", "eval", "report"):
        assert f"=== wit {stage} " in printed
    harvest = json.loads((out / "harvest" / STATS).read_text())
    check_stages(harvest["stages"])
    assert {s["name"]: s for s in harvest["stages"]}["match"]["dropped"] == {"no_match": 6}
    raw = json.loads((out / "raw" / STATS).read_text())["stages"][0]
    curate = json.loads((out / "shards" / STATS).read_text())["stages"]
    assert raw["out"] == curate[0]["in"] > 0  # download's saved images are what curate reads
    assert wi.run([str(out / "shards"), "--check", "--no-progress"]) == 0
    assert (out / "contact-sheet.png").stat().st_size > 0 and (out / "queries.png").stat().st_size > 0
    assert (out / "report.html").stat().st_size > 0
    metrics = json.loads((out / "train" / "metrics.json").read_text())
    assert metrics["zero_shot"]["n"] == 384 - metrics["decontamination"]["removed"] and 0.0 <= metrics["zero_shot"]["top1"] <= 1.0


def test_demo_out_deletes_only_its_own_outputs(tmp_path: Path) -> None:
    """`--out` is new, empty, or an earlier demo's: there, only the demo's named outputs go."""
    checkout = tmp_path / "checkout"
    (checkout / "src").mkdir(parents=True)
    (checkout / "src" / "a.py").write_text("keep")
    (checkout / "web").mkdir()  # a demo output's name, but this folder never held a demo run
    with pytest.raises(SystemExit, match="not empty and holds no earlier demo run"):
        demo.prepare_out(checkout)
    assert sorted(p.name for p in checkout.iterdir()) == ["src", "web"]
    with pytest.raises(SystemExit, match="is a file"):
        demo.prepare_out(checkout / "src" / "a.py")

    out = tmp_path / "demo"
    demo.prepare_out(out)  # new: created, and marked
    for name in ("web", "harvest", "train"):
        (out / name / "x").mkdir(parents=True)
    (out / "queries.png").write_bytes(b"png")
    (out / "my-notes.txt").write_text("mine")
    demo.prepare_out(out)  # an earlier run's: its outputs go, the user's file stays
    assert sorted(p.name for p in out.iterdir()) == [demo.MARKER, "my-notes.txt"]

    empty = tmp_path / "empty"
    empty.mkdir()
    demo.prepare_out(empty)
    assert [p.name for p in empty.iterdir()] == [demo.MARKER]
