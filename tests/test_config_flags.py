"""Every stage's flags come from its config: each default is written once, flags are never
abbreviated, and a value the config refuses is a usage error (exit 2, one line)."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest

from wit_pipeline.core.config_flags import GENERATED, is_flag

ROOT = Path(__file__).resolve().parents[1]


def _parsers():
    from beam_jobs import curate, download, harvest
    from queries import config as queries_config
    from queries.build import Recipe
    from wit_pipeline.stages.curate import CurateConfig
    from wit_pipeline.stages.download import DownloadConfig
    from wit_pipeline.stages.harvest.config import HarvestConfig

    curate_parser = curate.WitParser(prog="wit curate")
    curate.add_config_flags(curate_parser, CurateConfig)
    return [("harvest", harvest.build_parser(), [HarvestConfig]),
            ("curate", curate_parser, [CurateConfig]),
            ("download", download.build_parser(), [DownloadConfig]),
            ("build-queries", queries_config.build_parser(), [queries_config.BuildQueriesConfig, Recipe])]


@pytest.mark.parametrize("job", ["harvest", "curate", "download", "build-queries"])
def test_every_config_field_is_a_generated_flag_and_no_flag_restates_a_default(job):
    _, parser, configs = next(p for p in _parsers() if p[0] == job)
    fields = {f.name: (cls, f) for cls in configs for f in dataclasses.fields(cls) if is_flag(f)}
    actions = {a.dest: a for a in parser._actions}
    for name, (cls, f) in fields.items():
        action = actions.get(name)
        assert action is not None, f"{job}: {cls.__name__}.{name} has no flag"
        assert getattr(action, GENERATED, None) == (cls, name), f"{job}: the flag of {name} is written by hand"
        if f.default is not dataclasses.MISSING and action.nargs != 0:
            assert action.default == f.default
    config_names = {f.name for cls in configs for f in dataclasses.fields(cls)}
    for action in parser._actions:  # a hand-written flag with a config field's name would restate it
        assert action.dest not in config_names or getattr(action, GENERATED, None), action.dest
    assert not parser.allow_abbrev


def _literal_defaults(names: set[str]):
    """(file, line, name) of every parameter or class field among `names` whose default is a
    number written out, in the package's code."""
    for folder in ("wit_pipeline", "beam_jobs", "queries", "train"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                pairs = []
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    args = node.args.args + node.args.kwonlyargs
                    defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
                    pairs = list(zip(args, defaults + node.args.kw_defaults))
                    pairs = [(a.arg, d) for a, d in pairs]
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    pairs = [(node.target.id, node.value)]
                for name, default in pairs:
                    if name in names and isinstance(default, ast.Constant) and isinstance(default.value, (int, float)):
                        yield f"{path.relative_to(ROOT)}:{default.lineno} {name}={default.value}"
                    if (name in names and isinstance(default, ast.Call) and default.args
                            and isinstance(default.args[0], ast.Constant)):
                        yield f"{path.relative_to(ROOT)}:{default.lineno} {name}={default.args[0].value}"


def test_the_balance_target_and_the_near_duplicate_distance_are_written_once():
    """t and max_distance default to balance.DEFAULT_T and neardup.DEFAULT_MAX_DISTANCE wherever
    they have a default (configs, functions), never to a number written again."""
    assert list(_literal_defaults({"t", "max_distance"})) == []


@pytest.mark.parametrize(("module", "argv", "message"), [
    ("beam_jobs.harvest", ["--t", "0"], "--t must be positive"),
    ("beam_jobs.harvest", ["--num-shards", "0"], "--num-shards must be positive"),
    ("beam_jobs.harvest", ["--min-lang-score", "2"], "--min-lang-score is a probability in [0, 1]"),
    ("beam_jobs.harvest", ["--max-files", "-1"], "--max-files must be >= 0"),
    ("beam_jobs.harvest", ["--num-shard", "3"], "unrecognised arguments: --num-shard 3"),
    ("beam_jobs.curate", ["--max-dist", "3"], "unrecognised arguments: --max-dist 3"),
    ("beam_jobs.curate", ["--t", "0"], "--t must be positive"),
    ("beam_jobs.build_queries", ["--max-queries", "-1"], "--max-queries must be >= 0"),
    ("beam_jobs.build_queries", ["--min-pmi", "-1"], "--min-pmi is a ratio"),
    ("beam_jobs.build_queries", ["--source-quotas", "x=1"], "--source-quotas: bad quota 'x=1'"),
    ("beam_jobs.download", ["--thread", "3"], "unrecognised arguments: --thread 3"),
])
def test_a_refused_value_is_a_one_line_usage_error(module, argv, message, tmp_path, capsys):
    required = {"beam_jobs.harvest": ["--input", "x.wat.gz", "--output", str(tmp_path / "o")],
                "beam_jobs.curate": ["--input", "x", "--output", str(tmp_path / "o")],
                "beam_jobs.build_queries": ["--wikipedia", "x", "--output", str(tmp_path / "o")],
                "beam_jobs.download": ["--input", "x", "--output", str(tmp_path / "o")]}[module]
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(module).run(required + argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", ["beam_jobs.harvest", "beam_jobs.curate", "beam_jobs.download",
                                    "beam_jobs.build_queries"])
def test_help_shows_no_default_for_a_switch(module, capsys):
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(module).run(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "(default: True)" not in out and "(default: False)" not in out
