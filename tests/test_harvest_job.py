"""The harvest Beam job: a TestPipeline test of balancing, and end-to-end runs on the generated crawl."""

from __future__ import annotations

import collections
import hashlib
import json
import random
import shutil
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that

from beam_jobs import harvest
from beam_jobs.harvest_global import Balance
from wit_pipeline.core import keys, parquet_io, schema, stats
from wit_pipeline.core.outputs import STATS
from wit_pipeline.stages.balance import cap_rank, keeping_queries, select_cap, select_prob
from wit_pipeline.stages.harvest import outputs, select
from wit_pipeline.stages.harvest.inputs import source_files


def _skewed_records(n: int, n_queries: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    weights = [1.0 / (q + 1) for q in range(n_queries)]
    records = []
    for i in range(n):
        qids = sorted(set(rng.choices(range(n_queries), weights=weights, k=rng.choice((1, 1, 2)))))
        records.append({"key": keys.sample_key(f"http://x/{i}.jpg", "t"), "query_ids": qids})
    return records


def _lights(records: list[dict]) -> select.Lights:
    qstart = np.cumsum([0] + [len(r["query_ids"]) for r in records])
    n = len(records)
    return select.Lights(np.array([int(r["key"], 16) for r in records], np.uint64), np.arange(n, dtype=np.int64),
                          np.zeros(n, np.int64), np.arange(n, dtype=np.int64), qstart.astype(np.int64),
                          np.array([q for r in records for q in r["query_ids"]], np.int32))


@pytest.mark.parametrize("mode", ["prob", "cap"])
def test_balance_in_a_pipeline_equals_the_reference(mode):
    """Both modes through Beam, over key buckets, select exactly what balance.select_prob /
    select_cap select on one list."""
    records = _skewed_records(3000, 40)
    t = 25
    pairs = [(r["key"], r["query_ids"]) for r in records]
    expected = select_cap(pairs, t, 0) if mode == "cap" else select_prob(pairs, t, 0)
    by_key = {r["key"]: r["query_ids"] for r in records}

    def check(balanced):
        chosen = [key for (lights, _), kept in balanced
                  for key, picked in zip(lights.keys_hex(), select.selected_mask(lights, kept)) if picked]
        assert len(chosen) == len(set(chosen))  # no record twice
        assert set(chosen) == expected
        assert len(chosen) < len(records) / 2  # the frequent queries (hundreds of pairs) were capped
        if mode == "cap":  # each query's own picks are its t lowest ranks
            kept_by = {key: {q for q, k in zip(ids, keeps) if k} for (lights, _), kept in balanced
                       for key, ids, keeps in zip(lights.keys_hex(), lights.query_ids(),
                                                  np.split(kept, lights.qstart[1:-1]))}
            for q in (0, 1, 39):
                ranked = sorted((cap_rank(k, q, 0), k) for k, ids in by_key.items() if q in ids)
                assert {k for _, k in ranked[:t]} == {k for k, kept in kept_by.items() if q in kept}

    buckets = list(select.by_bucket(_lights(records)))
    assert len(buckets) > 100  # spread over many buckets, as a crawl's candidates are
    with test_pipeline.TestPipeline(runner=FnApiRunner()) as p:
        pcoll = p | beam.Create([(b, (lights, len(lights))) for b, lights in buckets])
        matched = pcoll | beam.Map(lambda item: select.query_counts(item[1][0])) | beam.CombineGlobally(select.add_counts)
        assert_that(pcoll | Balance(mode, t, 0, matched), check)


def test_columnar_balancing_equals_the_per_candidate_rule():
    """keep_by_probability (one mask over all query-id entries) keeps what balance.keeping_queries
    keeps candidate by candidate; the report and the rows read back follow from it."""
    records = _skewed_records(2000, 30)
    lights = _lights(records)
    counts, t = select.query_counts(lights), 20
    kept = select.keep_by_probability(lights, counts, t, 7)
    expected = [keeping_queries(r["key"], r["query_ids"], counts.as_dict(), t, 7) for r in records]
    assert [[q for q, k in zip(r["query_ids"], ks) if k]
            for r, ks in zip(records, np.split(kept, lights.qstart[1:-1]))] == expected
    assert 0 < sum(map(bool, expected)) < len(records)
    report = select.selection_report(lights, kept, len(lights))
    assert report["selected"] == sum(map(bool, expected))
    assert report["kept_by_query"].as_dict() == dict(collections.Counter(q for ks in expected for q in ks))
    assert report["selected_by_query"].as_dict() == dict(collections.Counter(
        q for r, ks in zip(records, expected) if ks for q in r["query_ids"]))
    assert {part: rows.tolist() for part, rows in select.selected_rows_by_part(lights, kept)} == {
        0: [i for i, ks in enumerate(expected) if ks]}
    with pytest.raises(ValueError, match="count is 0"):
        select.keep_by_probability(lights, {**counts.as_dict(), records[0]["query_ids"][0]: 0}, t, 7)


def test_dedup_keeps_the_lowest_page_hash_and_its_query_ids():
    a = select.Lights(np.array([5, 7, 5, 9], np.uint64), np.array([3, 1, 2, 4], np.int64),
                       np.array([0, 0, 1, 1], np.int64), np.array([0, 1, 0, 1], np.int64),
                       np.array([0, 2, 3, 5, 6], np.int64), np.array([1, 2, 3, 1, 2, 4], np.int32))
    first, second = select.take(a, np.array([0, 1])), select.take(a, np.array([2, 3]))
    kept, n = select.dedup([second, first])
    assert n == 4 and kept.key.tolist() == [5, 7, 9]  # key order, key 5 once: from the lower page hash
    assert kept.page.tolist() == [2, 1, 4] and kept.query_ids() == [[1, 2], [3], [4]]


def _run_harvest(crawl, out: Path, *extra: str, input_glob: str | None = None) -> dict:
    argv = [
        "--input", input_glob or crawl.wat_glob,
        "--output", str(out),
        "--balance", "cap", "--t", "3", "--num-shards", "2",
        *extra,
    ]
    assert harvest.run(argv) == 0
    return json.loads((out / STATS).read_text())


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.parquet"))
    }


def _candidate_rows(folder: Path) -> list[tuple]:
    table = parquet_io.read_table(str(folder / "candidates" / "*.parquet"), schema.CANDIDATES)
    return sorted(tuple(str(v) for v in row.values()) for row in table.to_pylist())


@pytest.fixture(scope="module")
def wat_run(crawl, tmp_path_factory):
    out = tmp_path_factory.mktemp("harvest_wat")
    return out, _run_harvest(crawl, out)


def test_harvest_accounts_for_every_record(crawl, wat_run):
    out, doc = wat_run
    stages = doc["stages"]
    assert [s["name"] for s in stages] == list(outputs.STAGES)
    stats.check_stages(stages, outputs.CHAINED)
    by = {s["name"]: s for s in stages}
    assert by["read"]["in"] > 0 and by["extract"]["in"] > by["extract"]["out"] > 0
    assert by["filter"]["dropped"].get("wrong_language", 0) > 0
    assert by["filter"]["dropped"].get("junk", 0) > 0
    assert by["dedup"]["dropped"].get("duplicate", 0) > 0
    # English alt text about other things: found, kept by the filters, matched by no query.
    assert by["match"]["dropped"] == {"no_match": crawl.truth["counts"]["by_category"]["off_topic"]}
    assert by["balance"]["dropped"].get("over_cap", 0) > 0


def test_harvest_outputs_are_consistent(wat_run):
    out, doc = wat_run
    by = {s["name"]: s for s in doc["stages"]}
    candidates = parquet_io.read_table(str(out / "candidates" / "*.parquet"), schema.CANDIDATES)
    selected = parquet_io.read_table(str(out / "selected" / "*.parquet"), schema.SELECTED)
    counts = parquet_io.read_table(str(out / "query_counts.parquet"), schema.QUERY_COUNTS)
    assert candidates.num_rows == by["match"]["out"]  # one part per crawl file, before dedup across them
    assert selected.num_rows == by["balance"]["out"]
    cand_keys = candidates.column("key").to_pylist()
    assert len(set(cand_keys)) == by["dedup"]["out"]
    selected_keys = selected.column("key").to_pylist()
    assert len(set(selected_keys)) == len(selected_keys) and set(selected_keys) <= set(cand_keys)
    for row in candidates.to_pylist():
        assert row["key"] == keys.sample_key(row["url"], row["text"])
        assert row["query_ids"] and row["url"].startswith("http")
        assert row["language"] == "en"
    unique = {r["key"]: r["query_ids"] for r in candidates.to_pylist()}
    per_query = collections.Counter(q for ids in unique.values() for q in ids)
    assert dict(zip(counts.column("query_id").to_pylist(), counts.column("count").to_pylist())) == dict(per_query)
    sel_per_query = collections.Counter(q for ids in selected.column("query_ids").to_pylist() for q in ids)
    assert dict(zip(counts.column("query_id").to_pylist(), counts.column("selected").to_pylist())) == {
        q: sel_per_query.get(q, 0) for q in per_query
    }
    # img2dataset reads the selection as it is: url and caption columns.
    assert pq.read_schema(next((out / "selected").glob("*.parquet"))).names[:2] == ["url", "caption"]


def test_warc_and_wat_give_the_same_candidates(crawl, wat_run, tmp_path):
    out_wat, _ = wat_run
    out_warc = tmp_path / "warc"
    _run_harvest(crawl, out_warc, input_glob=crawl.warc_glob)

    def pairs(folder):
        table = parquet_io.read_table(str(folder / "candidates" / "*.parquet"), schema.CANDIDATES)
        return set(zip(table.column("url").to_pylist(), table.column("text").to_pylist()))

    assert pairs(out_warc) == pairs(out_wat)


def test_reruns_and_multiprocess_runs_are_byte_identical(crawl, wat_run, tmp_path):
    out, _ = wat_run
    again = tmp_path / "multi"
    _run_harvest(crawl, again, "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    assert _digest(again) == _digest(out)


def test_real_common_crawl_warc_parses(real_warc, tmp_path):
    out = tmp_path / "cc"
    argv = ["--input", str(real_warc), "--output", str(out), "--num-shards", "1"]
    assert harvest.run(argv) == 0
    doc = json.loads((out / STATS).read_text())
    by = {s["name"]: s for s in doc["stages"]}
    assert by["extract"]["in"] == 13  # <img> tags on the page
    stats.check_stages(doc["stages"], outputs.CHAINED)


def test_unreadable_input_goes_to_dead_letter(tmp_path):
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    out = tmp_path / "out"
    assert harvest.run(["--input", str(bad), "--output", str(out), "--num-shards", "1"]) == 0
    dead = parquet_io.read_table(str(out / "dead_letter" / "*.parquet"), schema.DEAD_LETTER)
    assert dead.num_rows >= 1
    assert str(bad) in dead.column("source").to_pylist()[0]


def test_heavy_objects_are_built_once_per_process_across_dofns():
    """Two heavy objects set up alternately (as a harness does for FilterPairs and MatchQueries
    on several threads) are each built once: Shared alone keeps only the last one alive."""
    import gc

    from apache_beam.utils import shared

    from beam_jobs.common import shared_load

    builds = collections.Counter()

    class Heavy:
        def __init__(self, name: str) -> None:
            builds[name] += 1

    lid, matcher = shared.Shared(), shared.Shared()
    for _ in range(4):  # four DoFn setups of each, interleaved
        assert isinstance(shared_load(lid, "lid:test", lambda: Heavy("lid")), Heavy)
        gc.collect()
        assert isinstance(shared_load(matcher, "matcher:test", lambda: Heavy("matcher")), Heavy)
        gc.collect()
    assert builds == {"lid": 1, "matcher": 1}


def test_cap_kept_column_is_exactly_min_count_t(wat_run):
    """query_counts.kept: what each query kept itself; with --balance cap exactly min(count, t)."""
    out, _ = wat_run
    rows = parquet_io.read_table(str(out / "query_counts.parquet"), schema.QUERY_COUNTS).to_pylist()
    assert rows and all(r["kept"] == min(r["count"], 3) for r in rows)
    assert any(r["selected"] > r["kept"] for r in rows)  # frequent queries ride along in others' picks
    from wit_pipeline import inspect as wi

    assert wi.run([str(out), "--check", "--no-progress"]) == 0


def test_input_list_over_http_equals_local_files(crawl, wat_run, tmp_path):
    """Common Crawl's way in: a paths list (gzipped) of relative paths under an https:// prefix."""
    import gzip

    out_local, _ = wat_run
    paths = sorted(str(p.relative_to(crawl.root)) for p in crawl.root.glob("crawl/wat/*.wat.gz"))
    listing = tmp_path / "wat.paths.gz"
    listing.write_bytes(gzip.compress("".join(f"{p}\n" for p in paths).encode()))
    out = tmp_path / "remote"
    argv = ["--input-list", str(listing), "--input-prefix", crawl.base_url + "/", "--output", str(out),
            "--balance", "cap", "--t", "3", "--num-shards", "2"]
    assert harvest.run(argv) == 0
    # The same records are selected wherever the crawl is read from; parts are named from
    # their file's URL (and carry its dead letters), so compare their rows.
    same = {k: v for k, v in _digest(out).items() if not k.startswith(("dead_letter", "candidates"))}
    assert same == {k: v for k, v in _digest(out_local).items() if not k.startswith(("dead_letter", "candidates"))}
    assert _candidate_rows(out) == _candidate_rows(out_local)
    dead = parquet_io.read_table(str(out / "dead_letter" / "*.parquet"), schema.DEAD_LETTER)
    assert dead.column("source").to_pylist()[0].startswith(crawl.base_url)  # the truncated file, by URL
    assert source_files("list", str(listing), "https://data.commoncrawl.org/", max_files=2) == [
        f"https://data.commoncrawl.org/{p}" for p in paths[:2]]
    trial = tmp_path / "trial"
    assert harvest.run([*argv[:-2], "--num-shards", "1", "--output", str(trial), "--max-files", "1"]) == 0
    read = {s["name"]: s for s in json.loads((trial / STATS).read_text())["stages"]}["read"]
    assert 0 < read["in"] < {s["name"]: s for s in json.loads((out / STATS).read_text())["stages"]}["read"]["in"]


def test_bad_invocations_fail_before_the_pipeline(crawl, tmp_path, capsys):
    out = tmp_path / "never"
    for argv, message in (
        (["--input", str(tmp_path / "nothing-*.wat.gz")], "matches no files"),
        (["--input", crawl.wat_glob, "--balanse", "cap"], "unrecognised arguments: --balanse"),
        (["--input", crawl.wat_glob, "--num-shards", "0"], "--num-shards must be positive"),
        (["--input", crawl.wat_glob, "--output-only"], "unrecognised arguments: --output-only"),
    ):
        with pytest.raises(SystemExit) as exc:
            harvest.run([*argv, "--output", str(out)])
        assert exc.value.code != 0, argv
        said = str(exc.value.code) + capsys.readouterr().err
        assert message in said, (argv, said)
    assert not out.exists()
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    for argv, message in (
        (["--input", crawl.wat_glob, "--output", str(a_file)], "is a file, not a folder"),
        (["--input", str(Path(crawl.wat_glob).parent), "--output", str(out)], "is a folder: give its files"),
        (["--input", crawl.wat_glob, "--output", str(out), "-t", "5"], "-t"),
    ):
        with pytest.raises(SystemExit) as exc:
            harvest.run(argv)
        said = str(exc.value.code) + capsys.readouterr().err
        assert exc.value.code != 0 and message in said, (argv, said)
    assert a_file.read_text() == "mine" and not out.exists()
    with pytest.raises(SystemExit, match="matches no files"):
        harvest.run(["--input", str(tmp_path / "nothing-*.wat.gz"), "--output", str(out)])


def test_case_sensitive_allowlist_with_case_variants(crawl, tmp_path):
    """MetaCLIP's case-sensitive matching: "red" and "Red" are two queries, both valid."""
    allow = tmp_path / "cs.tsv"
    allow.write_text("query\tsource\tstat\nred\tunigram\t1\nRed\tunigram\t1\nstar\tunigram\t1\n")
    out = tmp_path / "cs"
    assert harvest.run(["--input", crawl.wat_glob, "--output", str(out), "--allowlist", str(allow),
                        "--case-sensitive", "--num-shards", "1", "--t", "1000"]) == 0
    counts = {r["query"]: r["count"] for r in
              parquet_io.read_table(str(out / "query_counts.parquet"), schema.QUERY_COUNTS).to_pylist()}
    assert counts["red"] > 0 and counts["star"] > 0  # the generated captions are lower case


def test_rerun_with_fewer_shards_leaves_no_stale_parts(crawl, wat_run, tmp_path):
    import shutil

    out_two, _ = wat_run
    out = tmp_path / "rerun"
    shutil.copytree(out_two, out)
    _run_harvest(crawl, out, "--num-shards", "1")  # argparse: the last --num-shards wins
    assert sorted(p.name for p in (out / "selected").glob("*.parquet")) == ["part-00000-of-00001.parquet"]
    assert sorted(p.name for p in (out / "candidates").glob("*.parquet")) == sorted(
        p.name for p in (out_two / "candidates").glob("*.parquet"))  # one per crawl file, whatever the shards



@pytest.mark.parametrize("mode", ["prob", "cap"])
def test_outputs_do_not_depend_on_the_bucket_count(crawl, wat_run, tmp_path, monkeypatch, mode):
    """A run's candidates are cut into as many key buckets as its size needs; the same parts
    balanced in one bucket and in many write the same bytes (reruns: only the global half)."""
    out = tmp_path / "out"
    shutil.copytree(wat_run[0], out)
    doc = _run_harvest(crawl, out, "--balance", mode)
    one_bucket = _digest(out), (out / STATS).read_bytes()
    candidates = {s["name"]: s for s in doc["stages"]}["dedup"]["in"]
    assert select.bucket_bits(candidates) == 0
    monkeypatch.setattr(select, "BUCKET_TARGET", 16)
    assert select.bucket_bits(candidates) >= 4
    _run_harvest(crawl, out, "--balance", mode)
    assert (_digest(out), (out / STATS).read_bytes()) == one_bucket
