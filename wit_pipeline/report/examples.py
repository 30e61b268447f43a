"""Real records for the drop reasons of harvest and download, from the files they leave:
dead letters, the candidates that balancing did not select (and repeated keys), and
img2dataset's per-shard parquet of every attempted sample. Examples are the records of
smallest salted key hash, so a seed picks the same ones whatever the file order.

Opted-out and blocklisted records are never shown, only counted (`never_shown`).
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from wit_pipeline.core import fsio, keys, outputs, parquet_io
from wit_pipeline.stages import download as dl

EXAMPLES = 6
SALT = "report"
Examples = dict[tuple[str, str], list[dict[str, Any]]]  # (stage, reason) -> records


def never_shown(reason: str) -> bool:
    """Reasons whose records (image, text and URL) the report never shows: a site said no, or the
    image is on a blocklist. A dead letter's error may follow the reason: "opted_out.x (at fetch)"."""
    head = reason.split(" ", 1)[0]
    return any(part.startswith("opted_out") or part == "blocklisted" for part in head.split("."))


def _u64(hex_keys: list[str]) -> np.ndarray:
    return np.array([int(k, 16) if keys.is_key(k) else 0 for k in hex_keys], np.uint64)


def _coins(hex_keys: list[str], seed: int) -> np.ndarray:
    return keys.uniforms(_u64(hex_keys), np.zeros(len(hex_keys), np.int64), seed)


def _read(url: str, columns: list[str] | None = None) -> pa.Table:
    return parquet_io.read_parquet(url, columns)


def dead_letters(folder: str, problems: list[str]) -> Examples:
    """(stage, "dead letters") -> rows of a job's dead letters (harvest, curate, build-queries:
    dead_letter/; download: its files' dead letters; its refusals are shown by download_examples)."""
    out: Examples = {}
    for name in (outputs.DEAD_LETTERS, outputs.DOWNLOAD_FILES_DEAD_LETTERS):
        for url in fsio.expand(fsio.join(folder, name)):
            try:
                rows = _read(url).to_pylist()
            except (OSError, ValueError, pa.ArrowException) as exc:
                problems.append(f"{url} cannot be read ({exc})")
                continue
            for row in rows:
                if not {"stage", "source", "error"} <= row.keys() or never_shown(str(row["error"])):
                    continue
                bucket = out.setdefault((str(row["stage"]), "dead letters"), [])
                if len(bucket) < EXAMPLES:
                    bucket.append({"source": row["source"], "error": row["error"]})
    return out


def _key_words(table: pa.Table) -> np.ndarray:
    """A key column as uint64 words (0 for anything that is not a 16-hex-digit key)."""
    col = pc.fill_null(table.column("key").combine_chunks(), "")
    ok = pc.match_substring_regex(col, "^[0-9a-f]{16}$").to_numpy(zero_copy_only=False)
    text = np.array(col.to_pylist(), dtype=object)
    text[~ok] = "0" * 16
    return np.frombuffer(bytes.fromhex("".join(text.tolist())), ">u8").astype(np.uint64)


def harvest_examples(folder: str, names: list[str], seed: int, problems: list[str]) -> Examples:
    """balance.over_cap: candidates not selected; dedup.duplicate: a key met again. Keys travel
    as 64-bit words (a crawl's candidates number in the tens of millions); only the rows shown
    are read whole."""
    cand = sorted(fsio.expand(fsio.join(folder, outputs.CANDIDATES, "*.parquet")))
    parts_list = fsio.join(folder, outputs.PARTS_LIST)
    if fsio.exists(parts_list):  # candidates/ may also hold parts of an earlier run's files
        covered = set(fsio.read_text(parts_list).split())
        cand = [u for u in cand if u.rsplit("/", 1)[-1] in covered]
    sel = sorted(fsio.expand(fsio.join(folder, outputs.sharded_glob(outputs.SELECTED))))
    if not cand or not sel:
        return {}
    try:
        words = [_key_words(_read(u, ["key"])) for u in cand]
        selected = np.concatenate([_key_words(_read(u, ["key"])) for u in sel])
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        problems.append(f"{folder}: candidates or selected pairs cannot be read ({exc}): no harvest examples")
        return {}
    keys_all = np.concatenate(words)
    files = np.concatenate([np.full(len(w), f, np.int32) for f, w in enumerate(words)])
    _, first = np.unique(keys_all, return_index=True)
    is_first = np.zeros(len(keys_all), bool)
    is_first[first] = True
    coins = keys.uniforms(keys_all, np.zeros(len(keys_all), np.int64), seed)
    picked: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for reason, mask in ((("dedup", "duplicate"), ~is_first & (keys_all != 0)),
                         (("balance", "over_cap"), is_first & (keys_all != 0) & ~np.isin(keys_all, selected))):
        idx = np.flatnonzero(mask)
        idx = idx[np.lexsort((keys_all[idx], coins[idx]))]
        chosen, seen = [], set()
        for i in idx.tolist():  # one example per key (a key may repeat many times)
            if int(keys_all[i]) not in seen:
                seen.add(int(keys_all[i]))
                chosen.append((int(files[i]), int(keys_all[i])))
            if len(chosen) == EXAMPLES:
                break
        if chosen:
            picked[reason] = chosen
    wanted: dict[int, set[str]] = {}
    for items in picked.values():
        for f, k in items:
            wanted.setdefault(f, set()).add(f"{k:016x}")
    rows: dict[str, dict[str, Any]] = {}
    for f, ks in sorted(wanted.items()):
        table = _read(cand[f])
        for row in table.filter(pc.is_in(table.column("key"), pa.array(sorted(ks)))).to_pylist():
            qids = row.get("query_ids") or []
            rows.setdefault(row["key"], {"key": row["key"], "text": row["text"], "url": row["url"],
                                         "page_url": row.get("page_url"),
                                         "queries": [names[q] for q in qids if 0 <= q < len(names)]})
    return {reason: [rows[f"{k:016x}"] for _, k in items if f"{k:016x}" in rows] for reason, items in picked.items()}


def download_examples(folder: str, seed: int, problems: list[str]) -> Examples:
    """download.<reason> -> rows of img2dataset's NNNNN.parquet that were not saved, and the
    refusals the download's dead letters name (`source` is "key url", `error` the reason)."""
    heaps: dict[str, list[tuple[float, int, dict[str, Any]]]] = {}
    n = 0
    for url in sorted(fsio.expand(fsio.join(folder, "*.parquet"))):
        try:
            table = _read(url)
        except (OSError, ValueError, pa.ArrowException) as exc:
            problems.append(f"{url} cannot be read ({exc})")
            continue
        if "status" not in table.column_names:
            continue
        failed = table.filter(pc.not_equal(table.column("status"), "success")).to_pylist()
        key_col = dl.KEY_COLUMN if dl.KEY_COLUMN in table.column_names else "key"
        coins = _coins([str(r.get(key_col)) for r in failed], seed).tolist()
        for coin, row in zip(coins, failed):
            reason = dl.outcome_reason(row.get("status"), row.get("error_message"))
            if reason is None or never_shown(reason):
                continue
            n += 1
            heapq.heappush(heaps.setdefault(reason, []), (coin, n, {
                "key": row.get(key_col), "text": row.get("caption"), "url": row.get("url"),
                "error": row.get("error_message"), "queries": row.get("queries") or []}))
    dead = fsio.join(folder, outputs.DOWNLOAD_DEAD_LETTERS)
    if fsio.exists(dead):
        try:
            rows = _read(dead).to_pylist()
        except (OSError, ValueError, pa.ArrowException) as exc:
            problems.append(f"{dead} cannot be read ({exc})")
            rows = []
        for row in rows:
            reason, source = str(row.get("error")), str(row.get("source"))
            if never_shown(reason):
                continue
            key, _, link = source.partition(" ")
            n += 1
            heapq.heappush(heaps.setdefault(reason, []), (float(_coins([key], seed)[0]), n, {"key": key, "url": link}))
    return {("download", r): [item for _, _, item in heapq.nsmallest(EXAMPLES, h)] for r, h in heaps.items()}
