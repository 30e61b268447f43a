"""Keys, text normalisation, stats accounting, schemas, parquet IO and the CLI table."""

from __future__ import annotations

import importlib.util

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wit_pipeline import cli
from wit_pipeline.core import keys, parquet_io, schema, stats
from wit_pipeline.text import textnorm


def test_sample_key_is_stable_and_separates_fields():
    assert keys.sample_key("http://a/x.jpg", "a red circle") == keys.sample_key("http://a/x.jpg", "a red circle")
    assert len(keys.sample_key("u", "t")) == keys.KEY_HEX_CHARS
    assert keys.sample_key("ab", "c") != keys.sample_key("a", "bc")
    # Pinned value: changing the key function silently would reshuffle every dataset.
    assert keys.sample_key("http://example.com/a.jpg", "a red circle") == "c9bfaceed43c30b9"


def test_uniform_draws_are_deterministic_and_spread():
    draws = [keys.uniform(f"{i:016x}", 3, 0) for i in range(20000)]
    assert draws == [keys.uniform(f"{i:016x}", 3, 0) for i in range(20000)]
    assert all(0.0 <= d < 1.0 for d in draws)
    assert abs(sum(draws) / len(draws) - 0.5) < 0.01
    assert keys.uniform("00", 3, 0) != keys.uniform("00", 3, 1)


def test_coins_of_one_pair_for_two_queries_or_seeds_are_independent():
    """prob balancing flips one coin per (pair, query): a pair's coins for two queries (or two
    seeds) must not move together, or a pair kept by one query would be kept by all."""
    import numpy as np

    pair_keys = np.frombuffer(np.random.default_rng(0).bytes(8 * 40000), np.uint64)
    def coins(q: int, seed: int = 0) -> np.ndarray:
        return keys.uniforms(pair_keys, np.full(len(pair_keys), q), seed)
    for a, b in ((coins(1), coins(2)), (coins(7), coins(7, seed=1)), (coins(0), coins(1 << 20))):
        assert abs(np.mean((a < 0.5) & (b < 0.5)) - 0.25) < 0.01
        assert abs(np.corrcoef(a, b)[0, 1]) < 0.02
    assert abs(np.mean(coins(3) < 0.1) - 0.1) < 0.005


def test_shard_of_rejects_bad_count_and_covers_all_shards():
    with pytest.raises(ValueError):
        keys.shard_of("ab", 0)
    assert {keys.shard_of(f"{i:x}", 4) for i in range(200)} == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("text", "expected", "expected_cs"),
    [
        ("A Red-Circle, with_stripes!", "a red circle with stripes", "A Red Circle with stripes"),
        ("Don't 'quote' me", "don't quote me", "Don't quote me"),
        ("IMG_2031.JPG", "img 2031 jpg", "IMG 2031 JPG"),
        ("Ｆｕｌｌ width", "full width", "Full width"),
        ("  \n\t ", "", ""),
    ],
)
def test_normalize(text, expected, expected_cs):
    assert textnorm.normalize(text) == expected
    assert textnorm.normalize(text, case_sensitive=True) == expected_cs
    assert textnorm.padded(text) == f" {expected} "


def test_stats_from_counters_and_checks():
    tally = stats.DictTally()
    tally.inc("extract", "in", 10)
    tally.kept("extract", 7)
    tally.dropped("extract", "no_text", 3)
    tally.inc("filter", "in", 7)
    tally.kept("filter", 5)
    tally.dropped("filter", "junk", 2)
    stages = stats.stages_from_counters(tally.counts, ["extract", "filter"])
    assert stages == [
        {"name": "extract", "in": 10, "out": 7, "dropped": {"no_text": 3}},
        {"name": "filter", "in": 7, "out": 5, "dropped": {"junk": 2}},
    ]
    stats.check_stages(stages, [("extract", "filter")])
    tally.inc("filter", "in", 1)  # one record that was never accounted for
    broken = stats.stages_from_counters(tally.counts, ["extract", "filter"])
    with pytest.raises(ValueError, match="unaccounted"):
        stats.check_stages(broken)


def test_schema_validate_names_every_problem():
    table = pa.table({"url": ["u"], "caption": [1]})
    with pytest.raises(schema.SchemaError) as err:
        schema.validate(table, schema.SELECTED, "selected")
    assert "missing column 'key'" in str(err.value)
    assert "column 'caption' is int64, expected string" in str(err.value)


def test_parquet_rows_are_sorted_and_bytes_are_reproducible(tmp_path):
    rows = [
        {"query_id": q, "query": f"q{q}", "count": q * 10, "selected": q, "kept": q}
        for q in (5, 1, 3)
    ]
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    parquet_io.write_rows(str(a), rows, schema.QUERY_COUNTS, "query_id")
    parquet_io.write_rows(str(b), list(reversed(rows)), schema.QUERY_COUNTS, "query_id")
    assert a.read_bytes() == b.read_bytes()
    table = parquet_io.read_table(str(tmp_path / "*.parquet"), schema.QUERY_COUNTS)
    assert table.column("query_id").to_pylist() == [1, 3, 5, 1, 3, 5]
    assert not list(tmp_path.glob("*.tmp-*"))


def test_cli_lists_stages_and_every_stage_module_exists(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, (module, _) in cli.STAGES.items():
        assert name in out
        assert importlib.util.find_spec(module) is not None, module
    assert cli.main(["no-such-stage"]) == 2


def test_wit_without_a_stage_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert "usage: wit <stage>" in capsys.readouterr().err


def _busy_port():
    import socket

    s = socket.create_server(("127.0.0.1", 0))
    return s, str(s.getsockname()[1])


@pytest.mark.parametrize(
    ("module", "argv", "message"),
    [
        ("beam_jobs.harvest", ["--input", "x.wat.gz", "--output", "{tmp}/h", "-t", "5"], "unrecognised arguments: -t 5"),
        ("beam_jobs.harvest", ["--input", "x.wat.gz", "--output", "{tmp}/h", "--t", "5", "stray"],
         "unrecognised arguments: stray"),
        ("beam_jobs.curate", ["--input", "x", "--output", "{tmp}/c", "-s", "3"], "unrecognised arguments: -s 3"),
        ("beam_jobs.curate", ["--input", "x", "--output", "{tmp}/c", "--max-distance", "65"], "--max-distance must be in 0..63"),
        ("beam_jobs.download", ["--input", "x", "--output", "{tmp}/d", "--number-sample-per-shard", "0"],
         "--number-sample-per-shard must be at least 1, got 0"),
        ("beam_jobs.download", ["--input", "x", "--output", "{tmp}/d", "--processes", "0"],
         "--processes must be at least 1, got 0"),
        ("beam_jobs.download", ["--input", "x", "--output", "{tmp}/d", "--engine", "beam", "-t", "5"],
         "unrecognised arguments: -t 5"),
        ("beam_jobs.download", ["--input", "a.parquet", "b.parquet", "--output", "{tmp}/d"],
         "unrecognised arguments: b.parquet (repeat --input for each input)"),
        ("beam_jobs.build_queries", ["--wikipedia", "x", "--output", "{tmp}/q", "-m", "5"], "unrecognised arguments: -m 5"),
        ("wit_pipeline.demo", ["--out", "{tmp}/demo", "--port", "99999"], "a port is a number in 0..65535"),
        ("wit_pipeline.synthetic.server", ["{tmp}", "--port", "{busy}"], "cannot serve on 127.0.0.1:"),
        ("wit_pipeline.synthetic.generate", ["--out", "{tmp}/g", "--base-url", "x"], "base_url must be http(s)://"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(module, argv, message, tmp_path, capsys):
    """Each ends in argparse's usage error (exit 2, one `prog: error: ...` line), before
    anything runs or is written."""
    busy, port = _busy_port()
    with busy:
        argv = [a.format(tmp=tmp_path, busy=port) for a in argv]
        with pytest.raises(SystemExit) as exit_:
            importlib.import_module(module).run(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in err.strip().splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_process_that_read_parquet_exits_cleanly(tmp_path):
    """pq.read_table on a file object aborted about half the processes at exit
    (apache/arrow#50482); every parquet read goes through parquet_io.read_parquet, which does not."""
    import pathlib
    import subprocess
    import sys

    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"a": list(range(200_000)), "b": [str(i) for i in range(200_000)]}), path,
                           row_group_size=20_000)
    script = ("import fsspec; from wit_pipeline.core.parquet_io import read_parquet\n"
              f"assert read_parquet({str(path)!r}, columns=['b']).num_rows == 200_000\n"
              f"with fsspec.open({str(path)!r}, 'rb') as f: assert read_parquet(f).num_rows == 200_000\n")
    codes = [subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120).returncode
             for _ in range(12)]
    assert codes == [0] * 12
    root = pathlib.Path(__file__).resolve().parents[1]
    callers = [str(p.relative_to(root)) for d in ("wit_pipeline", "beam_jobs", "train")
               for p in (root / d).rglob("*.py") if "pq.read_table(" in p.read_text()]
    assert callers == []


def test_read_parquet_refuses_a_missing_column(tmp_path):
    """pq.ParquetFile(f).read(columns=[...]) silently leaves out a column the file lacks:
    read_parquet raises instead, so a caller does not get a table without it."""
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({"key": ["8000000000000005", "0000000000000007"]}), path)
    with pytest.raises(pa.ArrowInvalid):
        parquet_io.read_parquet(str(path), columns=["page_url"])


def test_a_parquet_string_that_is_not_utf8_is_refused_naming_the_file(tmp_path):
    """Parquet does not check UTF-8; an invalid string would fail later in a coder or a
    conversion that names nothing (a crafted selected-pairs file reaching download)."""
    import pyarrow.parquet as pq

    raw = pa.array([b"ok", b"bad\xff"], type=pa.binary())
    table = pa.table({"caption": pa.Array.from_buffers(pa.string(), 2, raw.buffers())})
    path = tmp_path / "sel.parquet"
    pq.write_table(table, path)
    with pytest.raises(pa.ArrowInvalid, match=r"sel\.parquet: .*Invalid UTF8"):
        parquet_io.read_parquet(str(path))
