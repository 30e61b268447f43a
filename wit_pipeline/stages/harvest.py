"""Harvest, the per-file half: one crawl file -> its matched candidates, in one pass.

read -> extract -> filter (text rules, language) -> match happen here, per file, so the
only thing a crawl file leaves behind is a part: the parquet of its matched candidates
(schema.CANDIDATES, in extraction order) whose metadata holds the file's counts and dead
letters. A part is written atomically, named from its input file, and stamped with the
fingerprint of everything that decides its contents, so a rerun of the same command skips
every file whose part is complete and a changed setting redoes them all. The global half
(dedup across files, per-query counts, balancing) reads only keys and query ids back.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from wit_pipeline import __version__
from wit_pipeline.core import fsio, keys, schema
from wit_pipeline.core.ownership import claim_output
from wit_pipeline.core.stats import ERROR, DictTally, Drop, Tally, error_text
from wit_pipeline.text.textfilter import drop_reason
from wit_pipeline.web.extract import iter_pairs

FILTER, MATCH = "filter", "match"
PER_FILE_STAGES = ("read", "extract", FILTER, MATCH)
META_STATS, META_DEAD, META_FINGERPRINT = b"wit.stats", b"wit.dead_letters", b"wit.fingerprint"
META_INPUT = b"wit.input"  # the version of the crawl file the part was made from
# what a store says about a file that changes when its bytes do (local, gcsfs, s3fs, http)
VERSION_FIELDS = ("size", "mtime", "generation", "etag", "ETag", "LastModified", "Last-Modified")
RETRY = "retry"  # the fingerprint of a part whose file failed: never complete
BALANCE_MODES = ("prob", "cap")
MAX_DEAD_LETTERS = 1000  # per crawl file, listed in its part


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
    balance: str = "prob"
    t: int = 20000
    seed: int = 0
    num_shards: int = 8
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
        per_file = {k: v for k, v in asdict(self).items() if k not in ("balance", "t", "seed", "num_shards")}
        doc = json.dumps({"wit": __version__, **per_file}, sort_keys=True)
        return hashlib.sha256(doc.encode()).hexdigest()[:16]


def part_name(file_url: str) -> str:
    """The part of an input file: its base name made safe, plus a hash of the whole URL
    (two crawls' files may share a base name)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", file_url.rstrip("/").rsplit("/", 1)[-1])[-120:]
    digest = hashlib.blake2b(file_url.encode("utf-8"), digest_size=6).hexdigest()
    return f"{base}-{digest}.parquet"


class Models:
    """What the per-file pass needs besides its config: the language identifier and the
    allowlist matcher, built once per worker process (they are large)."""

    def __init__(self, lid: Any, matcher: Any) -> None:
        self.lid, self.matcher = lid, matcher


def harvest_file(file_url: str, config: HarvestConfig, models: Models) -> tuple[pa.Table, dict[str, int], list[dict]]:
    """One crawl file -> (its matched candidates, its counts, its dead letters).

    The text rules, language ID and matching are functions of the text alone, and the same
    alt text recurs across a site's pages: each distinct text of the file is judged once,
    each pair counted by its text's verdict."""
    tally = DictTally()
    dead: list[dict] = []

    def on_error(source: str, error: str) -> None:
        dead.append({"stage": "read", "source": source, "error": error})

    pairs = list(iter_pairs(file_url, tally, on_error))
    texts = [pair["text"] for pair in pairs]
    verdicts = judge_texts(dict.fromkeys(texts), config, models)
    filtered = Counter()  # per text, not per pair: a text's pairs share its verdict
    for text, n in Counter(texts).items():
        if isinstance(verdict := verdicts[text], Drop):
            filtered[verdict.reason] += n
    if verdicts.errors:
        dead.extend({"stage": FILTER, "source": pair["page_url"], "error": verdicts.errors[pair["text"]]}
                    for pair in pairs if pair["text"] in verdicts.errors)
    candidates = [(pair, verdict) for pair, verdict in zip(pairs, map(verdicts.__getitem__, texts))
                  if type(verdict) is tuple and verdict[2]]  # matched some query
    matched = len(pairs) - filtered.total()
    _count(tally, FILTER, len(pairs), matched, filtered)
    _count(tally, MATCH, matched, len(candidates), Counter({"no_match": matched - len(candidates)}))
    return candidate_table(candidates), tally.as_dict(), capped(dead)


def candidate_table(candidates: list[tuple[dict, tuple]]) -> pa.Table:
    """schema.CANDIDATES of (pair, (language, score, query ids)), in order, built column by
    column: a dict per row and Table.from_pylist cost more than the row's hash."""
    urls = [pair["url"] for pair, _ in candidates]
    texts = [pair["text"] for pair, _ in candidates]
    columns = [keys.sample_keys(urls, texts), urls, texts, [pair["page_url"] for pair, _ in candidates],
               *([verdict[i] for _, verdict in candidates] for i in range(3))]
    arrays = [pa.array(column, type=f.type) for column, f in zip(columns, schema.CANDIDATES)]
    return pa.Table.from_arrays(arrays, schema=schema.CANDIDATES)


def capped(dead: list[dict]) -> list[dict]:
    """At most MAX_DEAD_LETTERS of a file's dead letters, then one that says how many more:
    a crafted file of a million broken records must not make a part of gigabytes (its counts
    stay exact)."""
    if len(dead) <= MAX_DEAD_LETTERS:
        return dead
    more = len(dead) - MAX_DEAD_LETTERS
    return [*dead[:MAX_DEAD_LETTERS], {"stage": dead[-1]["stage"], "source": dead[-1]["source"],
                                       "error": f"... and {more} more dead letters in this file, not listed"}]


def file_failed(file_url: str, dead: list[dict]) -> bool:
    """Whether the file itself failed (not one of its records): its part is written, so this
    run accounts for it, but marked to be read again by the next run (throttling, a flaky
    store or a file not there yet must not become a permanent loss)."""
    return any(d["source"] == file_url for d in dead)


class Verdicts(dict):
    """text -> Drop(reason) or (language, score, query ids); `errors` holds why a text raised."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[str, str] = {}


def judge_texts(texts: Iterable[str], config: HarvestConfig, models: Models) -> Verdicts:
    """The filter stage's rules (text rules, then language ID) and the allowlist match, for
    each distinct text; a text the model cannot take costs only itself (a dead letter)."""
    verdicts = Verdicts()
    languages = frozenset(config.languages)
    passed = []
    for text in texts:
        reason = drop_reason(text, config.min_chars, config.max_chars)
        if reason is None:
            try:
                language, score = models.lid.predict(text)
            except Exception as exc:
                verdicts.errors[text] = error_text(exc)
                reason = ERROR
            else:
                if language not in languages:
                    reason = "wrong_language"
                elif score < config.min_lang_score:
                    reason = "low_lang_score"
        if reason is None:
            passed.append((text, language, score))
        else:
            verdicts[text] = Drop(reason)
    for (text, language, score), query_ids in zip(passed, models.matcher.match_many([t for t, _, _ in passed])):
        verdicts[text] = (language, score, list(query_ids))
    return verdicts


def _count(tally: Tally, stage: str, n_in: int, n_out: int, dropped: Counter[str]) -> None:
    """One stage's counts for a whole file at once (a Tally call per pair costs more than the rule)."""
    tally.inc(stage, "in", n_in)
    tally.kept(stage, n_out)
    for reason, n in dropped.items():
        if n:
            tally.dropped(stage, reason, n)


def write_part(url: str, table: pa.Table, counts: dict[str, int], dead: list[dict], fingerprint: str,
               version: str = "") -> None:
    """The part, atomically: rows plus the file's counts, dead letters, fingerprint and the
    version of the input file it was made from."""
    meta = {META_STATS: json.dumps(counts, sort_keys=True), META_DEAD: json.dumps(dead, sort_keys=True),
            META_FINGERPRINT: fingerprint, META_INPUT: version}
    table = table.replace_schema_metadata(meta)
    with fsio.atomic_open(url, "wb") as f:
        pq.write_table(table, f, compression="zstd")


def read_part_meta(url: str) -> dict[bytes, bytes] | None:
    """A part's metadata, or None when there is no readable part at `url`."""
    try:
        with fsio.open(url, "rb") as f:
            return pq.read_schema(f).metadata or {}
    except (FileNotFoundError, OSError, pa.ArrowInvalid):
        return None


def part_is_complete(url: str, fingerprint: str, version: str = "") -> bool:
    """Whether the part at `url` was made with these settings from this version of its input
    (a version that cannot be told, "", does not redo a part)."""
    meta = read_part_meta(url)
    if meta is None or meta.get(META_FINGERPRINT) != fingerprint.encode():
        return False
    return not version or meta.get(META_INPUT, b"") == version.encode()


def input_version(file_url: str) -> str:
    """A digest of what the store says about a crawl file that changes with its bytes (size
    and mtime, a GCS generation, an ETag), so a file replaced or grown since its part was made
    (a download that finished) is read again; "" when the store says nothing."""
    try:
        fs, path = fsio.filesystem(file_url)
        info = fs.info(path)
    except Exception:  # missing, throttled: the read itself will say
        return ""
    fields = {k: str(info[k]) for k in VERSION_FIELDS if info.get(k) is not None}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16] if fields else ""


def part_counts(meta: dict[bytes, bytes]) -> tuple[dict[str, int], list[dict]]:
    return json.loads(meta[META_STATS]), json.loads(meta[META_DEAD])


def failed_file(file_url: str, exc: BaseException) -> tuple[pa.Table, dict[str, int], list[dict]]:
    """What a file whose pass raised (a bug, or a model that failed) leaves: no rows, one
    counted read error, one dead letter; so the run goes on and says what happened."""
    counts = {"read:in": 1, "read:dropped.error": 1}
    dead = [{"stage": "read", "source": file_url, "error": error_text(exc)}]
    return schema.CANDIDATES.empty_table(), counts, dead


def file_sha256(url: str) -> str:
    """The sha256 of a file's bytes (the allowlist: its contents decide the parts')."""
    digest = hashlib.sha256()
    with fsio.open(url, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# what a harvest writes in its --output (and the temporary names of a killed write)
_OURS = re.compile(r"(candidates|selected|dead_letter|query_counts\.parquet|parts\.txt|stats\.json)(\.tmp-[0-9a-f]+)?")


def check_output(url: str) -> None:
    """Refuse an --output that is an existing file or another command's folder (a rerun
    rewrites stats.json and removes stale selected/ files), before any work is done."""
    if fsio.exists(url) and not fsio.isdir(url):
        raise ValueError(f"--output {url!r} is a file, not a folder")
    claim_output(url, "harvest", lambda doc: doc.get("job") == "harvest",
                     lambda names: all(_OURS.fullmatch(name) for name in names) or _holds_parts(url, names))


def _holds_parts(url: str, names: list[str]) -> bool:
    """Whether candidates/ holds a harvest part (a rerun killed after removing stats.json,
    beside a file the user put there while stats.json said the folder was harvest's)."""
    parts = fsio.expand(fsio.join(url, "candidates", "*.parquet")) if "candidates" in names else []
    meta = read_part_meta(parts[0]) if parts else None
    return meta is not None and META_FINGERPRINT in meta
