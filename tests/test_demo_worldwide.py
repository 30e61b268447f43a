"""`wit demo --worldwide`: per-language lists, a harvest that matches each caption against its
language's, and every later stage on shards that hold five languages in four scripts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from wit_pipeline import demo
from wit_pipeline.core.outputs import STATS
from wit_pipeline.core.stats import check_stages
from wit_pipeline.shards import iter_tar_samples


@pytest.mark.slow
def test_worldwide_demo_runs_every_stage(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "demo"
    assert demo.run(["--worldwide", "--out", str(out), "--pages", "40", "--steps", "5", "--batch-size", "16",
                     "--port", "0"]) == 0
    printed = capfd.readouterr().out
    assert "--languages all" in printed
    assert sorted(p.name for p in (out / "allowlists").glob("*.tsv")) == ["ar.tsv", "de.tsv", "en.tsv", "ja.tsv", "zh.tsv"]
    harvest = json.loads((out / "harvest" / STATS).read_text())
    check_stages(harvest["stages"])
    assert set(harvest["t_per_language"]) == {"ar", "de", "en", "ja", "zh"}
    languages = Counter(json.loads(s["json"])["language"] for tar in sorted((out / "shards").glob("*.tar"))
                        for s in iter_tar_samples(str(tar)))
    assert set(languages) == {"ar", "de", "en", "ja", "zh"}, languages
    assert "languages" in printed and "zh=" in printed  # wit inspect shows the mix
    assert (out / "train" / "metrics.json").is_file()
