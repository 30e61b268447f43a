"""A stage's command line, made from its config dataclass: every default is written once, in
the config, and the flags, their defaults, their help and stats.json all come from it.

    @dataclass(frozen=True)
    class Config:
        t: int = option(20_000, "per-query target")
        rebalance: bool = option(False, "cap each query again")         # a switch: --rebalance
        guard: bool = option(True, "...", flag="--no-guard")             # on by default: --no-guard
        languages: tuple[str, ...] = option(("en",), "...", parse=split_commas, show="en")

    parser = WitParser(prog="wit x", description=...)
    add_config_flags(parser, Config)
    config = parse_config(parser, Config, parser.parse_args(argv))

A field without `help` is not a flag (e.g. digests the launcher fills in). `WitParser` holds
the conventions every stage's parser follows: no abbreviated flags, and a usage error (a bad
flag, or a value the config's `__post_init__` refuses) exits 2 with one line.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn, TypeVar

from wit_pipeline.core.cli_help import HelpFormatter

C = TypeVar("C")
_TYPES = {"int": int, "float": float, "str": str, "str | None": str, "int | None": int, "float | None": float,
          "tuple[str, ...]": str, "list[str]": str}  # the last two: an item of a repeatable flag (action="append")
GENERATED = "wit_config_field"  # set on every action add_config_flags makes: (config class, field name)


class WitParser(argparse.ArgumentParser):
    """argparse with wit's conventions: no abbreviations (`--num-shard` is not `--num-shards`),
    the shared --help layout, and a usage error as one line on stderr, exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def option(default: Any = dataclasses.MISSING, help: str = "", *,  # noqa: A002 - argparse's word
           default_factory: Callable[[], Any] | Any = dataclasses.MISSING, flag: str | None = None,
           parse: Callable[[str], Any] | None = None, show: str | None = None, tags: Mapping[str, Any] | None = None,
           **argparse_kwargs: Any) -> Any:
    """A config field that is also a flag. `parse` turns the flag's text into the field's value
    (for types argparse cannot name, e.g. a tuple); `show` is how --help shows the default
    when its repr would not read as a flag value; `tags` join the field's metadata (what the
    stage itself reads there); other keywords go to add_argument."""
    metadata = {**(tags or {}), "help": help, "flag": flag, "parse": parse, "show": show, "argparse": argparse_kwargs}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def is_flag(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("help"))


def flag_of(cls: type, name: str) -> str:
    """The command-line flag of a config field: its own, or --field-name."""
    meta = {f.name: f.metadata for f in dataclasses.fields(cls)}[name]
    return meta.get("flag") or "--" + name.replace("_", "-")


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def add_config_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                     exclude: Iterable[str] = ()) -> None:
    """One flag per field of `cls` that has help, in field order, with the field's default."""
    skip = set(exclude)
    for f in dataclasses.fields(cls):
        if not is_flag(f) or f.name in skip:
            continue
        meta, default = f.metadata, default_of(f)
        kwargs: dict[str, Any] = {"dest": f.name, "help": meta["help"], **meta["argparse"]}
        if f.type == "bool":
            kwargs["action"] = "store_false" if default else "store_true"
        else:
            kwargs["type"] = _usage_errors(meta["parse"]) if meta["parse"] else _TYPES[f.type]
            if default is dataclasses.MISSING:
                kwargs["required"] = True
            else:
                kwargs["default"] = default
            if meta["show"] is not None:
                kwargs["help"] += f" (default: {meta['show']})"
        action = parser.add_argument(flag_of(cls, f.name), **kwargs)
        setattr(action, GENERATED, (cls, f.name))


def _usage_errors(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse` with its ValueError as argparse's usage error, message kept (argparse would say
    only "invalid value")."""
    def typed(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    typed.__name__ = getattr(parse, "__name__", "value")
    return typed


def config_from_args(cls: type[C], args: argparse.Namespace, **overrides: Any) -> C:
    """The config of parsed flags (its __post_init__'s ValueError names a bad value)."""
    given = vars(args)
    values = {f.name: given[f.name] for f in dataclasses.fields(cls) if is_flag(f) and f.name in given}
    return cls(**{**values, **overrides})


def parse_config(parser: argparse.ArgumentParser, cls: type[C], args: argparse.Namespace, **overrides: Any) -> C:
    """config_from_args, with a value the config refuses as a usage error (exit 2, one line)."""
    try:
        return config_from_args(cls, args, **overrides)
    except ValueError as exc:
        parser.error(str(exc))


def split_commas(text: str) -> tuple[str, ...]:
    """A comma-separated flag value as a tuple of its non-empty items."""
    return tuple(item.strip() for item in text.split(",") if item.strip())
