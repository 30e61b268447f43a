"""The Dataflow graphs checked offline: harvest, download (--engine beam), curate and
build-queries translated by the real DataflowRunner with `--dry_run=True` (Beam's TestOptions),
from the CLI launchers, with a gs:// output and no credentials or network. Every GroupByKey of
every graph must shuffle on a deterministic key coder (Dataflow groups by the encoded key).

Needs the `gcp` extra (`pip install -e '.[gcp]'`); skips without it."""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("apache_beam.runners.dataflow.internal.apiclient", reason="needs the gcp extra")
pytest.importorskip("gcsfs", reason="needs the gcp extra")

from apache_beam.portability import common_urns  # noqa: E402
from apache_beam.runners import pipeline_context  # noqa: E402

from beam_jobs import build_queries, common, curate, download, harvest  # noqa: E402

DATAFLOW = ["--runner", "DataflowRunner", "--dry_run=True", "--project", "wit-dry-run", "--region", "us-central1",
            "--temp_location", "gs://wit-dry-run/tmp",  # a bucket name has >= 3 characters
            "--no_auth", "--sdk_location=container"]
GBK = common_urns.primitives.GROUP_BY_KEY.urn


@pytest.fixture
def translated(monkeypatch) -> list[Any]:
    """The pipelines the launchers build, to read their translated graphs after the dry run."""
    made: list[Any] = []
    real = common.make_pipeline

    def recording(args: list[str]) -> Any:
        made.append(real(args))
        return made[-1]

    for module in (common, harvest, curate, download):
        if hasattr(module, "make_pipeline"):
            monkeypatch.setattr(module, "make_pipeline", recording)
    return made


def group_by_keys(pipeline: Any) -> dict[str, Any]:
    """Every GroupByKey of the graph Dataflow would receive -> the coder of its keys."""
    proto = pipeline.runner.proto_pipeline
    context = pipeline_context.PipelineContext(proto.components)
    found = {}
    for transform in proto.components.transforms.values():
        if transform.spec.urn != GBK:
            continue
        (pcoll,) = transform.inputs.values()
        kv = proto.components.coders[proto.components.pcollections[pcoll].coder_id]
        assert kv.spec.urn == common_urns.coders.KV.urn, transform.unique_name
        found[transform.unique_name] = context.coders.get_by_id(kv.component_coder_ids[0])
    return found


def assert_translated(made: list[Any], at_least: int) -> None:
    assert len(made) == 1 and type(made[0].runner).__name__ == "DataflowRunner"
    groups = group_by_keys(made[0])
    assert len(groups) >= at_least, sorted(groups)
    loose = {name: repr(coder) for name, coder in groups.items() if not coder.is_deterministic()}
    assert not loose, f"GroupByKeys on non-deterministic key coders: {loose}"


def test_harvest_graph_translates_for_dataflow(tmp_path: Path, translated, capsys) -> None:
    wat = tmp_path / "wat"
    wat.mkdir()
    (wat / "a.warc.wat.gz").write_bytes(gzip.compress(b""))  # never read: nothing runs
    for balance in ("prob", "cap"):
        translated.clear()
        code = harvest.run(["--input", str(wat / "*.warc.wat.gz"), "--output", "gs://wit-dry-run/harvest",
                            "--balance", balance, *DATAFLOW])
        assert code == 0
        assert_translated(translated, at_least=4 if balance == "cap" else 3)
    assert "dry run" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wat"]  # nothing written


def test_download_graph_translates_for_dataflow(tmp_path: Path, translated) -> None:
    (tmp_path / "selected-00000-of-00001.parquet").write_bytes(b"")  # never read
    code = download.run(["--input", str(tmp_path / "selected-*.parquet"), "--output", "gs://wit-dry-run/raw",
                         "--engine", "beam", *DATAFLOW])
    assert code == 0
    assert_translated(translated, at_least=0)


def test_curate_graph_translates_for_dataflow(tmp_path: Path, translated) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    with tarfile.open(raw / "00000.tar", "w"):
        pass
    (raw / "00000_stats.json").write_text(json.dumps({"successes": 0}))
    allow = tmp_path / "allowlist.tsv"
    allow.write_text("query\tsource\tstat\nred fox\ttitle\t10\n")
    evals = tmp_path / "eval" / "cat"
    evals.mkdir(parents=True)
    (evals / "a.jpg").write_bytes(b"")
    for extra in ([], ["--rebalance"]):
        translated.clear()
        code = curate.run(["--input", str(raw), "--output", "gs://wit-dry-run/curated", "--allowlist", str(allow),
                           "--eval-images", str(tmp_path / "eval"), *extra, *DATAFLOW])
        assert code == 0
        assert_translated(translated, at_least=2)


def test_build_queries_graph_translates_for_dataflow(tmp_path: Path, translated) -> None:
    dump = tmp_path / "enwiki-20240101-pages-articles1.xml.bz2"
    dump.write_bytes(b"")  # never read
    code = build_queries.run(["--wikipedia", str(dump), "--wordnet", "none", "--output", "gs://wit-dry-run/queries",
                              *DATAFLOW])
    assert code == 0
    assert_translated(translated, at_least=2)


def test_the_check_catches_a_group_on_a_non_deterministic_key_coder(tmp_path: Path) -> None:
    """The assertion above can fail: keys of any type, allowed to group by pickled bytes."""
    import apache_beam as beam

    p = common.make_pipeline([*DATAFLOW, "--allow_non_deterministic_key_coders"])
    _ = p | beam.Create([({0.5}, 1)]).with_output_types(tuple[Any, int]) | "Group" >> beam.GroupByKey()
    p.run().wait_until_finish()
    with pytest.raises(AssertionError, match="Group"):
        assert_translated([p], at_least=1)
