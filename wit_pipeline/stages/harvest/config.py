"""A harvest's settings: one frozen dataclass, validated once, recorded in stats.json.

A field marked `GLOBAL` is read only by the global half (balancing, sharding): changing it
must not redo the per-file parts, so the parts' fingerprint leaves exactly those fields out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from wit_pipeline import __version__
from wit_pipeline.core import fsio

BALANCE_MODES = ("prob", "cap")
GLOBAL = {"global": True}  # field metadata: a setting of the global half only


@dataclass(frozen=True)
class HarvestConfig:
    """Every setting of a harvest, validated once; stats.json records it with asdict()."""

    allowlist: str = "demo"
    case_sensitive: bool = False
    lid_model: str | None = None
    languages: tuple[str, ...] = ("en",)
    min_lang_score: float = 0.3
    min_chars: int = 5
    max_chars: int = 1000
    balance: str = field(default="prob", metadata=GLOBAL)
    t: int = field(default=20000, metadata=GLOBAL)
    seed: int = field(default=0, metadata=GLOBAL)
    num_shards: int = field(default=8, metadata=GLOBAL)
    # what went into the per-file parts besides the settings: the allowlist's and the model's bytes
    allowlist_sha256: str = field(default="", compare=False)
    lid_model_sha256: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        problems = []
        if self.t <= 0:
            problems.append("--t must be positive")
        if self.num_shards <= 0:
            problems.append("--num-shards must be positive")
        if not 0.0 <= self.min_lang_score <= 1.0:
            problems.append("--min-lang-score is a probability in [0, 1]")
        if self.min_chars < 0 or self.max_chars < self.min_chars:
            problems.append("--min-chars and --max-chars must satisfy 0 <= min <= max")
        if self.balance not in BALANCE_MODES:
            problems.append(f"--balance must be one of {', '.join(BALANCE_MODES)}")
        if not self.languages:
            problems.append("--languages names no language")
        if problems:
            raise ValueError("; ".join(problems))

    def fingerprint(self) -> str:
        """What a part depends on: the per-file settings, the allowlist's bytes, the code."""
        doc = json.dumps({"wit": __version__, **per_file_settings(self)}, sort_keys=True)
        return hashlib.sha256(doc.encode()).hexdigest()[:16]


def per_file_settings(config: HarvestConfig) -> dict[str, Any]:
    """The settings the per-file parts depend on: every field not marked GLOBAL."""
    global_only = {f.name for f in fields(config) if f.metadata.get("global")}
    return {k: v for k, v in asdict(config).items() if k not in global_only}


def file_sha256(url: str) -> str:
    """The sha256 of a file's bytes (the allowlist: its contents decide the parts')."""
    digest = hashlib.sha256()
    with fsio.open(url, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def with_digests(config: HarvestConfig) -> HarvestConfig:
    """The config with the sha256 of its allowlist and language model filled in, after checking
    that the allowlist loads (fail in the launcher, not on every worker): a list or model
    swapped in place redoes the parts."""
    from wit_pipeline.text.allowlist import load_allowlist, resolve
    from wit_pipeline.text.langid import default_model_path

    load_allowlist(config.allowlist, case_sensitive=config.case_sensitive)
    return replace(config, allowlist_sha256=file_sha256(resolve(config.allowlist)),
                   lid_model_sha256=file_sha256(config.lid_model or default_model_path()))
