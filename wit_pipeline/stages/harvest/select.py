"""Harvest, the global half, as pure functions over columns: dedup, query counts, balancing.

The production forms of `wit_pipeline.stages.balance`'s rules (which are the readable
reference the tests compare these with).

Candidates travel in `Lights`, columns of one key bucket (the key's top bits: as many
buckets as the run's size needs, `bucket_bits`), not one Beam element each: a shuffle moves
a few numpy arrays per (part, bucket), and the per-candidate work is numpy or a tight loop.
Each candidate weighs tens of bytes: its 64-bit key, the hash of its page URL (dedup keeps
the occurrence of lowest page hash, a property of the record), its part and row (where the
record itself is read back), and its query ids. Counts per query travel as numpy columns
too (`ByQuery`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

import numpy as np

from wit_pipeline.core import parquet_io
from wit_pipeline.core.keys import salted_hashes, uniforms
from wit_pipeline.stages.harvest.parts import hash63, part_id

BUCKET_BITS = 8  # at most 256 buckets: at a crawl's billions of candidates, a few million per bucket
BUCKET_TARGET = 1 << 20  # candidates a bucket holds at most, below 2**BUCKET_BITS buckets


class Lights(NamedTuple):
    """Candidates as columns; query ids are ragged: row i's are qids[qstart[i]:qstart[i+1]]."""

    key: np.ndarray  # uint64
    page: np.ndarray  # int64: hash of the page URL
    part: np.ndarray  # int64: part_id of the part holding the record
    row: np.ndarray  # int64: its row there
    qstart: np.ndarray  # int64, len n + 1
    qids: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.key)

    def query_ids(self) -> list[list[int]]:
        """Every candidate's query ids, as lists (one conversion, not one per candidate)."""
        flat, starts = self.qids.tolist(), self.qstart.tolist()
        return [flat[a:b] for a, b in zip(starts, starts[1:])]

    def keys_hex(self) -> list[str]:
        return [f"{k:016x}" for k in self.key.tolist()]


def bucket_bits(candidates: int) -> int:
    """How many top key bits name a bucket for a run with this many candidates: enough that a
    bucket holds about BUCKET_TARGET at most, up to BUCKET_BITS. Fewer buckets than the most
    only make fewer, larger shuffle elements (a part of a small run is not cut into 256
    slivers); nothing a run writes depends on the bucketing."""
    return min(BUCKET_BITS, max(0, (candidates - 1) // BUCKET_TARGET).bit_length())


def bucket_of(key: str, bits: int = BUCKET_BITS) -> int:
    """The bucket of a hex key: its top `bits` bits, as `by_bucket` computes them."""
    return int(key, 16) >> (64 - bits)


def read_lights(url: str) -> Lights:
    """A part's candidates as Lights, in row order."""
    table = parquet_io.read_parquet(url, columns=["key", "page_url", "query_ids"])
    n = table.num_rows
    qids = table.column("query_ids").combine_chunks()
    key = np.frombuffer(bytes.fromhex("".join(table.column("key").to_pylist())), ">u8").astype(np.uint64)
    pages = table.column("page_url").combine_chunks().dictionary_encode()  # a page's images share its URL
    page_hashes = np.fromiter(map(hash63, pages.dictionary.to_pylist()), np.int64, len(pages.dictionary))
    page = page_hashes[pages.indices.to_numpy(zero_copy_only=False).astype(np.int64)] if n else np.zeros(0, np.int64)
    offsets = np.asarray(qids.offsets, dtype=np.int64) if n else np.zeros(1, np.int64)
    values = np.asarray(qids.values, dtype=np.int32) if n else np.zeros(0, np.int32)
    return Lights(key, page, np.full(n, part_id(url), np.int64), np.arange(n, dtype=np.int64),
                  offsets - offsets[0], values[offsets[0]:offsets[-1]])


def take(lights: Lights, idx: np.ndarray) -> Lights:
    """The rows `idx` of `lights`, query ids included."""
    lens = np.diff(lights.qstart)[idx]
    qstart = np.zeros(len(idx) + 1, np.int64)
    np.cumsum(lens, out=qstart[1:])
    within = np.arange(qstart[-1], dtype=np.int64) - np.repeat(qstart[:-1], lens)
    qids = lights.qids[np.repeat(lights.qstart[:-1][idx], lens) + within]
    return Lights(lights.key[idx], lights.page[idx], lights.part[idx], lights.row[idx], qstart, qids)


def concat(blocks: Iterable[Lights]) -> Lights:
    blocks = [b for b in blocks if len(b)]
    if not blocks:
        return Lights(*(np.zeros(0, t) for t in (np.uint64, np.int64, np.int64, np.int64)), np.zeros(1, np.int64),
                      np.zeros(0, np.int32))
    starts = np.cumsum([0] + [len(b.qids) for b in blocks[:-1]])
    qstart = np.concatenate([b.qstart[:-1] + s for b, s in zip(blocks, starts)] + [[starts[-1] + len(blocks[-1].qids)]])
    return Lights(*(np.concatenate([getattr(b, f) for b in blocks]) for f in ("key", "page", "part", "row")),
                  qstart.astype(np.int64), np.concatenate([b.qids for b in blocks]))


def by_bucket(lights: Lights, bits: int = BUCKET_BITS) -> Iterator[tuple[int, Lights]]:
    """(bucket, its candidates) for every bucket (top `bits` bits of the key) the part has candidates in."""
    if bits == 0:
        if len(lights):
            yield 0, lights
        return
    buckets = (lights.key >> np.uint64(64 - bits)).astype(np.int64)
    order = np.argsort(buckets, kind="stable")  # one sort, then a slice per bucket, in row order
    sorted_buckets = buckets[order]
    starts = np.flatnonzero(np.r_[True, sorted_buckets[1:] != sorted_buckets[:-1]]) if len(order) else order
    for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(order)]):
        yield int(sorted_buckets[a]), take(lights, order[a:b])


def dedup(blocks: Iterable[Lights]) -> tuple[Lights, int]:
    """One candidate per key, the occurrence of lowest (page hash, part, row), in key order
    (whatever order a shuffle delivered the blocks in); and how many candidates there were."""
    lights = concat(blocks)
    order = np.lexsort((lights.row, lights.part, lights.page, lights.key))
    keys = lights.key[order]
    first = np.ones(len(keys), bool)
    first[1:] = keys[1:] != keys[:-1]
    return take(lights, order[first]), len(lights)


class ByQuery(NamedTuple):
    """An integer per query id (a count, a t), sparse: a report, a side input or a merge is a
    couple of numpy arrays and a few numpy calls, not a dict of 100k Python ints."""

    ids: np.ndarray  # int64, sorted, unique
    values: np.ndarray  # int64

    @staticmethod
    def of(mapping: Mapping[int, int]) -> ByQuery:
        ids = np.fromiter(mapping.keys(), np.int64, len(mapping))
        values = np.fromiter(mapping.values(), np.int64, len(mapping))
        order = np.argsort(ids)
        return ByQuery(ids[order], values[order])

    def as_dict(self) -> dict[int, int]:
        return dict(zip(self.ids.tolist(), self.values.tolist()))

    def lookup(self, qids: np.ndarray, missing: int) -> np.ndarray:
        """The value of each of `qids` (any order, repeats), `missing` for an id not here."""
        qids = np.asarray(qids, np.int64)
        if not len(self.ids) or not len(qids):
            return np.full(len(qids), missing, np.int64)
        top = int(self.ids[-1])
        if top < _DENSE * len(qids):  # a table indexed by id: one gather, no binary search
            table = np.full(top + 2, missing, np.int64)  # the last slot answers ids above top (or below 0)
            table[self.ids] = self.values
            return table[np.clip(qids, -1, top + 1)]
        pos = np.minimum(np.searchsorted(self.ids, qids), len(self.ids) - 1)
        return np.where(self.ids[pos] == qids, self.values[pos], missing)


_DENSE = 4  # an array indexed by query id pays while the largest id is below 4 per entry


def count_ids(ids: np.ndarray) -> ByQuery:
    """How many times each id occurs (ids are non-negative: allowlist rows)."""
    if len(ids) and 0 <= int(ids.min()) and int(ids.max()) < _DENSE * len(ids):  # bincount: no sort
        counts = np.bincount(ids)
        present = np.flatnonzero(counts)
        return ByQuery(present.astype(np.int64), counts[present].astype(np.int64))
    values, counts = np.unique(ids, return_counts=True)
    return ByQuery(values.astype(np.int64), counts.astype(np.int64))


def add_counts(counts: Iterable[ByQuery]) -> ByQuery:
    """The sum of counts per query id (ids summing to 0 are left out). Query ids are allowlist
    rows, so a dense array up to the largest id sums them at a few ns an entry (a sort, or a
    dict, costs tens of times that)."""
    counts = [c for c in counts if len(c.ids)]
    if not counts:
        return ByQuery(np.zeros(0, np.int64), np.zeros(0, np.int64))
    dense = np.zeros(max(int(c.ids[-1]) for c in counts) + 1, np.int64)
    for c in counts:
        dense[c.ids] += c.values  # ids are unique within one ByQuery: fancy-index += is exact
    ids = np.flatnonzero(dense)
    return ByQuery(ids.astype(np.int64), dense[ids])


def query_counts(lights: Lights) -> ByQuery:
    """Candidates per query id."""
    return count_ids(lights.qids)


def owners(lights: Lights) -> np.ndarray:
    """The candidate of each query-id entry: row i's entries are lights.qids[qstart[i]:qstart[i+1]]."""
    return np.repeat(np.arange(len(lights), dtype=np.int64), np.diff(lights.qstart))


_MISSING = np.iinfo(np.int64).min  # a query id absent from the counts


def _by_query(values: ByQuery | Mapping[int, int]) -> ByQuery:
    return values if isinstance(values, ByQuery) else ByQuery.of(values)


def per_entry_t(lights: Lights, t: int | ByQuery | Mapping[int, int]) -> int | np.ndarray:
    """t, or with per-query thresholds (one per language, `language_t`) each query-id entry's."""
    if not isinstance(t, (ByQuery, Mapping)):
        return t
    per_entry = _by_query(t).lookup(lights.qids, _MISSING)
    if (per_entry == _MISSING).any():
        raise KeyError(int(lights.qids[np.flatnonzero(per_entry == _MISSING)[0]]))
    return per_entry


def keep_by_probability(lights: Lights, counts: ByQuery | Mapping[int, int], t: int | ByQuery | Mapping[int, int],
                        seed: int) -> np.ndarray:
    """Per query-id entry (aligned with lights.qids), whether that query's own coin keeps the
    candidate: MetaCLIP's min(1, t/count), `balance.keeping_queries`' rule and draws, with a
    coin (keys.uniforms, one numpy call for the bucket) only where a query has more than t candidates.
    `t` may give each query id its own (its language's) t."""
    count = _by_query(counts).lookup(lights.qids, _MISSING)
    if (count <= 0).any():  # the first bad entry decides, as the per-candidate rule's loop
        bad = int(np.flatnonzero(count <= 0)[0])
        qid = int(lights.qids[bad])
        if count[bad] == _MISSING:
            raise KeyError(qid)
        key = f"{int(lights.key[owners(lights)[bad]]):016x}"
        raise ValueError(f"query {qid} matched pair {key} but its count is {int(count[bad])}")
    t = per_entry_t(lights, t)
    kept = count <= t
    over = np.flatnonzero(~kept)
    coins = uniforms(lights.key[owners(lights)[over]], lights.qids[over], seed)
    t_over = t[over] if isinstance(t, np.ndarray) else t
    kept[over] = coins < t_over / count[over]  # float64 as Python's: t / count correctly rounded
    return kept


def local_cap(lights: Lights, t: int | ByQuery | Mapping[int, int], seed: int) -> Iterator[tuple[int, tuple[str, str]]]:
    """(query, (rank, key)) for each query's t smallest here: the global t smallest of a
    query are among the union of the buckets' own. `t` may give each query id its own."""
    key = lights.key[owners(lights)]
    rank = salted_hashes(key, lights.qids, seed)  # balance.cap_rank's, as integers
    order = np.lexsort((key, rank, lights.qids))  # per query, by (rank, key) as cap_order sorts
    qids = lights.qids[order]
    first = np.searchsorted(qids, qids, side="left")  # where each entry's query starts
    t = per_entry_t(lights, t)
    smallest = order[np.arange(len(order)) - first < (t[order] if isinstance(t, np.ndarray) else t)]
    for q, r, k in zip(lights.qids[smallest].tolist(), rank[smallest].tolist(), key[smallest].tolist()):
        yield q, (f"{r:016x}", f"{k:016x}")


def keep_picked(lights: Lights, picks: Iterable[tuple[str, int]]) -> np.ndarray:
    """Per query-id entry, whether that query picked the candidate (cap balancing's global
    (key, query) picks): one entry per pick, should a part's row list a query twice."""
    picks = list(picks)
    kept = np.zeros(len(lights.qids), bool)
    if not picks or not len(lights.qids):
        return kept
    # a (key, query) pair as one integer: the key's index among the bucket's keys, and the query
    keys = np.unique(lights.key)
    pick_keys = np.array([int(key, 16) for key, _ in picks], np.uint64)
    at = np.minimum(np.searchsorted(keys, pick_keys), len(keys) - 1)
    found = keys[at] == pick_keys
    pick_qids = np.array([q for _, q in picks], np.int64)
    width = max(int(lights.qids.max()), int(pick_qids.max())) + 1
    wanted = at[found] * width + pick_qids[found]
    pairs = np.searchsorted(keys, lights.key[owners(lights)]) * width + lights.qids.astype(np.int64)
    unique, first = np.unique(pairs, return_index=True)  # a pair's first entry takes the pick
    kept[first[np.isin(unique, wanted)]] = True
    return kept


def selected_mask(lights: Lights, kept: np.ndarray) -> np.ndarray:
    """Per candidate, whether any of its queries keeps it (it is selected)."""
    out = np.zeros(len(lights), bool)
    out[owners(lights)[kept]] = True
    return out


def selection_report(lights: Lights, kept: np.ndarray, total: int) -> dict[str, object]:
    """What a bucket contributes to stats.json and query_counts.parquet (its matches per query
    are `query_counts`, counted once for balancing)."""
    selected = selected_mask(lights, kept)
    return {"dedup_in": total, "dedup_out": len(lights), "selected": int(selected.sum()),
            "selected_by_query": count_ids(lights.qids[selected[owners(lights)]]),
            "kept_by_query": count_ids(lights.qids[kept])}


def selected_rows_by_part(lights: Lights, kept: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(part, rows) of the selected candidates: where the writer reads them back."""
    selected = selected_mask(lights, kept)
    parts, rows = lights.part[selected], lights.row[selected]
    order = np.argsort(parts, kind="stable")
    parts, rows = parts[order], rows[order]
    starts = np.flatnonzero(np.r_[True, parts[1:] != parts[:-1]]) if len(parts) else np.zeros(0, np.int64)
    for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(parts)]):
        yield int(parts[a]), rows[a:b]


def merge_reports(reports: Iterable[dict[str, object]]) -> dict[str, object]:
    """Sum of bucket reports (a Beam CombineGlobally function: associative, commutative)."""
    reports = list(reports)
    total: dict[str, object] = {"dedup_in": 0, "dedup_out": 0, "selected": 0}
    for report in reports:
        for name in total:
            total[name] += report[name]  # type: ignore[operator]
    for name in ("selected_by_query", "kept_by_query"):
        total[name] = add_counts(report[name] for report in reports)  # type: ignore[misc]
    return total


def merge_counts(dicts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Sum of the parts' counter dicts (a Beam CombineGlobally function)."""
    total: dict[str, int] = {}
    for d in dicts:
        for name, n in d.items():
            total[name] = total.get(name, 0) + n
    return total
