"""Near-duplicate search over 64-bit perceptual hashes, and the dedup rule built on it.

Pigeonhole: split the 64 bits into d+1 bands; two hashes within Hamming distance d differ
in at most d bits, so at least one band holds none of them and agrees exactly.

The dedup rule, `near_duplicates`: a sample is dropped iff another sample within d ranks
before it (`dedup_rank`: the largest image first, ties by key). Identical hashes are
collapsed first (all but the best-ranked copy are exact duplicates); the distinct hashes are
then judged in rank order by `earliest_neighbour`, which never lists the quadratically many
pairs of a dense cluster. In a chain A~B~C with A!~C and A first, both B and C are dropped
(C is near B, which ranks before it) even though C has no kept neighbour; dropping is never
undone by another drop, which keeps the rule local: no two kept samples are within d, and
the kept set does not depend on the order of the input.

That locality is what lets `wit curate` run it at scale: every sample goes to each of its
d+1 `band_keys` groups, each group runs `near_duplicates` on its own members (exact copies
reported from band 0 only, since identical hashes meet in every band), and a sample's
reports are merged across bands (the smallest wins). Every pair within d shares a band, so
the groups together drop exactly what one `near_duplicates` over everything drops.

`near_pairs` is the local, vectorised search behind `earliest_neighbour`. Plain MIH at 10^6
hashes and d=4 has ~122 hashes per 13-bit bucket, 3*10^8 candidate pairs; this stays close
to linear:
* identical hashes are collapsed first (one sort); all copies of one hash are pairs of
  each other and are reported as a group, never as a quadratic list;
* the pigeonhole argument has slack to spare: cut the bits into m > d chunks and at least
  m - d of them agree, so every union of m - d chunks is a mask that some shared bucket
  must reveal. m = d + 1 is plain MIH; m is chosen from the number of hashes so that
  buckets stay small (d=4: 10^4 hashes, 5 masks of ~13 bits; 10^5-10^6, 15 masks of ~21);
* a bucket still larger than `_HOT` (thousands of logos sharing a band) is searched again
  on its own, with masks built only over the bits that vary inside it (bits constant in
  the bucket cannot tell its members apart). If that does not shrink it, it is compared
  block by block (memory bounded by `_BLOCK`^2, time quadratic only in that bucket).
Each mask is one sort of (compressed key, index) packed in a uint64; candidate pairs are
verified with a vectorised popcount (`np.bitwise_count`) and de-duplicated across masks
with one sort. Cost is C(m, m-d) sorts of n values with m growing slowly with n: x10-17
per 10x hashes (bench/dedup.py), 10^6 hashes in about a second and a half.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

BITS = 64
DEFAULT_MAX_DISTANCE = 4  # curate's --max-distance and train's decontamination: pHash bits that count as near
_HOT = 2048  # buckets above this are searched again on their own varying bits
_SMALL = 96  # at or below this, compare all pairs directly
_BLOCK = 2048  # tile side for blocked all-pairs comparison
_CHUNK = 1 << 22  # max candidate pairs materialised at once
_MAX_DEPTH = 6


def _check_distance(max_distance: int) -> int:
    if isinstance(max_distance, bool) or not isinstance(max_distance, (int, np.integer)):
        raise TypeError(f"max_distance must be an int, got {type(max_distance).__name__}")
    if not 0 <= max_distance < BITS:
        raise ValueError(f"max_distance must be in [0, {BITS - 1}], got {max_distance}")
    return int(max_distance)


@functools.lru_cache(maxsize=64)
def _bands(max_distance: int) -> tuple[tuple[int, int], ...]:
    parts = max_distance + 1
    base, extra = divmod(BITS, parts)
    out, top = [], BITS
    for b in range(parts):
        width = base + (1 if b < extra else 0)
        top -= width
        out.append((top, width))
    return tuple(out)


def bands(max_distance: int) -> list[tuple[int, int]]:
    """d+1 (shift, width) bands covering the 64 bits, band 0 the most significant;
    widths differ by at most one."""
    return list(_bands(_check_distance(max_distance)))


def band_keys(h: int, max_distance: int) -> list[tuple[int, int]]:
    """[(band index, band value)] of a hash: the grouping keys of the distributed search."""
    return [(b, (int(h) >> s) & ((1 << w) - 1)) for b, (s, w) in enumerate(_bands(_check_distance(max_distance)))]


def as_hashes(hashes: Iterable[int] | np.ndarray) -> np.ndarray:
    """A 1-D uint64 array; int64 input (parquet/arrow columns) is reinterpreted bit for bit."""
    if isinstance(hashes, np.ndarray):
        arr = hashes
    else:
        arr = np.fromiter((int(h) for h in hashes), dtype=np.uint64)
    if arr.ndim != 1:
        raise ValueError(f"hashes must be 1-D, got shape {arr.shape}")
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype == np.int64:
        return arr.view(np.uint64)
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
            raise ValueError("negative hashes are only accepted as int64 (two's complement)")
        return arr.astype(np.uint64)
    if arr.dtype == object:
        return np.fromiter((int(h) for h in arr), dtype=np.uint64, count=arr.size)
    raise TypeError(f"hashes must be integers, got dtype {arr.dtype}")


# ---------------------------------------------------------------- mask families


def _split(bits: Sequence[int], parts: int) -> list[list[int]]:
    base, extra = divmod(len(bits), parts)
    out, i = [], 0
    for p in range(parts):
        k = base + (1 if p < extra else 0)
        out.append(list(bits[i : i + k]))
        i += k
    return out


def _mask(bits: Iterable[int]) -> int:
    m = 0
    for b in bits:
        m |= 1 << b
    return m


def _family(bits: Sequence[int], d: int, parts: int) -> list[int]:
    """Masks such that any two hashes differing in <= d of `bits` agree on one whole mask.

    Pigeonhole with slack: of `parts` (> d) near-equal chunks of `bits`, at most d hold a
    differing bit, so at least parts - d chunks agree and every union of parts - d chunks
    is a mask. parts = d + 1 is plain multi-index hashing (d + 1 masks of 64/(d+1) bits);
    d + 2 gives C(d+2, 2) wider masks (d=4: 15 of ~21 bits), and so on.
    """
    chunks = _split(bits, parts)
    return [_mask(itertools.chain.from_iterable(c)) for c in itertools.combinations(chunks, parts - d)]


def _choose_parts(n: int, d: int, nbits: int) -> int:
    """The number of chunks minimising masks * (n + expected candidate pairs per mask)
    for n uniformly spread hashes: wider masks mean emptier buckets but more of them."""
    best, best_cost = d + 1, float("inf")
    for parts in range(d + 1, min(d + 6, nbits) + 1):
        width = nbits * (parts - d) // parts  # the narrowest mask of the family
        cost = math.comb(parts, parts - d) * (n + n * n / 2.0 ** (width + 1))
        if cost < best_cost * 0.999:
            best, best_cost = parts, cost
    return best


# ---------------------------------------------------------------- pair generation


def _pairs_in_groups(starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (p, q), p < q, of positions inside each [start, start + size) run, vectorised."""
    total = int(sizes.sum())
    first = np.repeat(starts, sizes)
    pos = first + (np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes))
    cnt = first + np.repeat(sizes, sizes) - pos - 1
    i_pos = np.repeat(pos, cnt)
    off = np.arange(i_pos.size, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return i_pos, i_pos + 1 + off


def _batches(sizes: np.ndarray) -> Iterable[slice]:
    """Slices of consecutive groups with at most ~_CHUNK pairs each."""
    work = sizes * (sizes - 1) // 2
    cum = np.cumsum(work)
    start, n = 0, len(sizes)
    while start < n:
        base = cum[start - 1] if start else 0
        stop = int(np.searchsorted(cum, base + _CHUNK, side="right"))
        stop = max(stop, start + 1)
        yield slice(start, stop)
        start = stop


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    # np.unique picks a hash table for some inputs in numpy 2.x, ~10x slower than sorting here.
    a = np.sort(a)
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if len(a) else a


def _emit(u: np.ndarray, i: np.ndarray, j: np.ndarray, d: int, nu: int, out: list[np.ndarray]) -> None:
    keep = np.bitwise_count(u[i] ^ u[j]) <= d
    a, b = i[keep], j[keep]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    out.append(lo * nu + hi)


def _all_pairs(u: np.ndarray, idx: np.ndarray, d: int, out: list[np.ndarray]) -> None:
    """Blocked comparison of every pair in idx: bounded memory, quadratic time."""
    nu = len(u)
    for a0 in range(0, len(idx), _BLOCK):
        ia = idx[a0 : a0 + _BLOCK]
        for b0 in range(a0, len(idx), _BLOCK):
            ib = idx[b0 : b0 + _BLOCK]
            dist = np.bitwise_count(u[ia][:, None] ^ u[ib][None, :])
            p, q = np.nonzero(dist <= d)
            if a0 == b0:
                upper = p < q
                p, q = p[upper], q[upper]
            lo, hi = np.minimum(ia[p], ib[q]), np.maximum(ia[p], ib[q])
            out.append(lo * nu + hi)


@functools.lru_cache(maxsize=4096)
def _runs(mask: int) -> tuple[tuple[int, int], ...]:
    """The mask as (shift, length) runs of consecutive set bits."""
    runs, b = [], 0
    while b < BITS:
        if mask >> b & 1:
            start = b
            while b < BITS and mask >> b & 1:
                b += 1
            runs.append((start, b - start))
        else:
            b += 1
    return tuple(runs)


def _group_order(sub: np.ndarray, mask: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, sorted keys) of sub & mask. When the mask's bits and an index fit in 64 bits,
    pack (compressed key, index) into one uint64 and sort values: several times faster than
    argsort. Ties come out in index order either way."""
    n = len(sub)
    runs = _runs(mask)
    width = sum(length for _, length in runs)
    ib = max(1, (n - 1).bit_length())
    if width + ib <= BITS and len(runs) <= 8:
        packed = np.zeros(n, dtype=np.uint64)
        off = 0
        for shift, length in runs:
            packed |= ((sub >> np.uint64(shift)) & np.uint64((1 << length) - 1)) << np.uint64(off + ib)
            off += length
        packed |= np.arange(n, dtype=np.uint64)
        packed.sort()
        return (packed & np.uint64((1 << ib) - 1)).view(np.int64), packed >> np.uint64(ib)
    keys = sub & np.uint64(mask)
    order = np.argsort(keys, kind="stable")
    return order, keys[order]


def _search(u: np.ndarray, idx: np.ndarray, d: int, depth: int, out: list[np.ndarray]) -> None:
    """Append (encoded) every pair of idx within d; u is unique so distance >= 1."""
    s = len(idx)
    if s < 2:
        return
    if s <= _SMALL:
        _all_pairs(u, idx, d, out)
        return
    sub = u[idx]
    varying = int(np.bitwise_or.reduce(sub ^ sub[0]))
    bits = [b for b in range(BITS - 1, -1, -1) if varying >> b & 1]
    if len(bits) <= d:  # every pair differs in <= d bits: all are near (the output is that big)
        _all_pairs(u, idx, d, out)
        return
    nu = len(u)
    for mask in _family(bits, d, _choose_parts(s, d, len(bits))):
        order, sk = _group_order(sub, mask)
        edge = np.flatnonzero(sk[1:] != sk[:-1]) + 1
        starts = np.concatenate(([0], edge)).astype(np.int64)
        sizes = np.diff(np.concatenate((starts, [s]))).astype(np.int64)
        hot = sizes > _HOT
        regular = (sizes >= 2) & ~hot
        r_starts, r_sizes = starts[regular], sizes[regular]
        for sl in _batches(r_sizes):
            p, q = _pairs_in_groups(r_starts[sl], r_sizes[sl])
            _emit(u, idx[order[p]], idx[order[q]], d, nu, out)
        for st, sz in zip(starts[hot].tolist(), sizes[hot].tolist()):
            group = idx[order[st : st + sz]]
            if depth < _MAX_DEPTH and sz <= 0.75 * s:
                _search(u, group, d, depth + 1, out)
            else:
                _all_pairs(u, group, d, out)


@dataclass(frozen=True)
class NearPairs:
    """Near pairs in compact form: identical hashes are one group, not a quadratic list.

    unique: sorted distinct hashes (uint64); inverse[i]: index in `unique` of input i;
    pairs: (k, 2) int64 rows (a, b), a < b, sorted, of distinct unique hashes within d."""

    unique: np.ndarray
    inverse: np.ndarray
    pairs: np.ndarray

    def expand(self) -> np.ndarray:
        """All input index pairs i < j within d, sorted (quadratic in copies of one hash)."""
        n = len(self.inverse)
        members = np.argsort(self.inverse, kind="stable").astype(np.int64)
        counts = np.bincount(self.inverse, minlength=len(self.unique)).astype(np.int64)
        first = np.cumsum(counts) - counts
        chunks = []
        multi = counts >= 2
        if multi.any():
            p, q = _pairs_in_groups(first[multi], counts[multi])
            chunks.append((members[p], members[q]))
        if len(self.pairs):
            a, b = self.pairs[:, 0], self.pairs[:, 1]
            ca, cb = counts[a], counts[b]
            per = ca * cb
            rows = np.repeat(np.arange(len(a)), per)
            k = np.arange(int(per.sum()), dtype=np.int64) - np.repeat(np.cumsum(per) - per, per)
            ia = members[first[a][rows] + k // cb[rows]]
            ib = members[first[b][rows] + k % cb[rows]]
            chunks.append((ia, ib))
        if not chunks:
            return np.empty((0, 2), dtype=np.int64)
        i = np.concatenate([c[0] for c in chunks])
        j = np.concatenate([c[1] for c in chunks])
        code = np.sort(np.minimum(i, j) * n + np.maximum(i, j))
        return np.stack((code // n, code % n), axis=1)


class TooManyPairs(RuntimeError):
    """near_pairs(max_pairs=...) would list more pairs than its budget (a dense cluster)."""


class _PairBudget(list):
    """The search's output list, refusing to grow past `limit` candidate pairs."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.size = limit, 0

    def append(self, codes: np.ndarray) -> None:
        self.size += len(codes)
        if self.size > self.limit:
            raise TooManyPairs(f"more than {self.limit:,} candidate pairs")
        super().append(codes)


def near_pairs(hashes: np.ndarray | Iterable[int], max_distance: int, max_pairs: int | None = None) -> NearPairs:
    """Every pair within max_distance, compactly (see NearPairs). With `max_pairs`, raise
    TooManyPairs rather than list more candidate pairs than that: thousands of distinct
    hashes within d of each other (one logo at many sizes) have quadratically many."""
    d = _check_distance(max_distance)
    h = as_hashes(hashes)
    order = np.argsort(h)  # ties need no order: inverse is the same either way
    sh = h[order]
    new = np.concatenate(([True], sh[1:] != sh[:-1])) if len(sh) else np.empty(0, dtype=bool)
    unique = sh[new]
    inverse = np.empty(len(h), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    out: list[np.ndarray] = [] if max_pairs is None else _PairBudget(max_pairs)
    if d > 0:
        _search(unique, np.arange(len(unique), dtype=np.int64), d, 0, out)
    code = _sorted_unique(np.concatenate(out)) if out else np.empty(0, dtype=np.int64)
    nu = max(len(unique), 1)
    pairs = np.stack((code // nu, code % nu), axis=1).astype(np.int64)
    return NearPairs(unique=unique, inverse=inverse, pairs=pairs)


def brute_force_pairs(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """Reference for near_pairs(...).expand(): every pair compared, in tiles (quadratic time)."""
    d = _check_distance(max_distance)
    h = as_hashes(hashes)
    n = len(h)
    out: list[np.ndarray] = []
    _all_pairs(h, np.arange(n, dtype=np.int64), d, out)
    code = np.sort(np.concatenate(out)) if out else np.empty(0, dtype=np.int64)
    return np.stack((code // max(n, 1), code % max(n, 1)), axis=1).astype(np.int64)


def earliest_neighbour(hashes_by_rank: np.ndarray | Iterable[int], max_distance: int) -> np.ndarray:
    """For distinct hashes listed best-ranked first: the position of the first earlier hash
    within max_distance, or -1. What dedup needs, without listing every pair: a dense
    cluster (quadratically many pairs) switches to a scan in rank order whose memory is
    linear and whose time is bounded by the cluster's buckets, not its pairs."""
    d = _check_distance(max_distance)
    h = as_hashes(hashes_by_rank)
    n = len(h)
    try:
        found = near_pairs(h, d, max_pairs=32 * n + 1_000_000)
    except TooManyPairs:
        return _earliest_by_scan(h, d)
    if len(found.unique) != n:
        raise ValueError("hashes must be distinct")
    pos = np.empty(n, dtype=np.int64)
    pos[found.inverse] = np.arange(n, dtype=np.int64)  # unique index -> position
    out = np.full(n, n, dtype=np.int64)
    if len(found.pairs):
        a, b = pos[found.pairs[:, 0]], pos[found.pairs[:, 1]]
        np.minimum.at(out, np.maximum(a, b), np.minimum(a, b))
    out[out == n] = -1
    return out


def _earliest_by_scan(h: np.ndarray, d: int) -> np.ndarray:
    """earliest_neighbour one hash at a time: look in the d+1 band buckets of the hashes
    before it (each bucket an array in rank order, so its first hit is its earliest). Bands
    are cut from the bits that vary in `h` (a Beam band group shares its band's bits)."""
    n = len(h)
    out = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return out
    if len(np.unique(h)) != n:
        raise ValueError("hashes must be distinct")
    varying = int(np.bitwise_or.reduce(h ^ h[0]))
    bits = [b for b in range(BITS - 1, -1, -1) if varying >> b & 1]
    if len(bits) <= d:  # every pair differs in <= d bits: the first hash is everyone's earliest
        out[1:] = 0
        return out
    masks = [np.uint64(m) for m in _family(bits, d, d + 1)]
    keys = [(h & mask).tolist() for mask in masks]
    buckets: list[dict[int, list]] = [{} for _ in masks]  # band value -> [hashes, positions, count]
    for i in range(n):
        best = n
        for b, table in enumerate(buckets):
            entry = table.get(keys[b][i])
            if entry is None:
                table[keys[b][i]] = [np.empty(4, np.uint64), np.empty(4, np.int64), 0]
                entry = table[keys[b][i]]
            else:
                hits = np.flatnonzero(np.bitwise_count(entry[0][: entry[2]] ^ h[i]) <= d)
                if len(hits):
                    best = min(best, int(entry[1][hits[0]]))
            if entry[2] == len(entry[0]):  # grow by doubling
                entry[0] = np.concatenate((entry[0], np.empty_like(entry[0])))
                entry[1] = np.concatenate((entry[1], np.empty_like(entry[1])))
            entry[0][entry[2]], entry[1][entry[2]] = h[i], i
            entry[2] += 1
        if best < n:
            out[i] = best
    return out


# ---------------------------------------------------------------- dedup rule

EXACT, NEAR = 0, 1  # why near_duplicates drops a sample: a copy of a better one's hash, or within d of it


def dedup_rank(key: str, area: int) -> tuple[int, str]:
    """Where a sample stands among its near duplicates, best first: the largest image
    (area = width * height), ties broken by key, so every runner and input order agrees."""
    return -int(area), key


def near_duplicates(members: Iterable[tuple[str, int, int]], max_distance: int,
                    exact: bool = True) -> dict[str, int]:
    """{dropped key: EXACT or NEAR} for the (key, hash, area) members that a better-ranked
    member (dedup_rank) within max_distance drops; the module docstring has the rule.

    `exact=False` leaves copies of one hash unreported (a band group other than band 0:
    identical hashes meet in every band). One key under two hashes (the same sample fetched
    twice) is one sample: judged by its best-ranked copy, never against itself; which copy
    it keeps is the caller's choice.
    """
    d = _check_distance(max_distance)
    by_hash: dict[int, list[tuple[int, str]]] = {}
    for key, h, area in members:
        by_hash.setdefault(int(h), []).append(dedup_rank(key, area))
    out: dict[str, int] = {}
    reps = []
    for h, copies in sorted(by_hash.items()):
        copies.sort()
        best = copies[0]
        if exact:
            out.update((rank[1], EXACT) for rank in copies[1:] if rank[1] != best[1])
        reps.append((best, h))
    reps.sort()  # best rank first
    seen: set[str] = set()
    reps = [r for r in reps if not (r[0][1] in seen or seen.add(r[0][1]))]
    if len(reps) >= 2:
        earlier = earliest_neighbour(np.array([h for _, h in reps], dtype=np.uint64), d)
        for (rank, _), first in zip(reps, earlier.tolist()):
            if first >= 0 and rank[1] not in out:
                out[rank[1]] = NEAR
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- decontamination


class EvalIndex:
    """MIH tables of evaluation-image hashes: is a training hash within d of any of them?

    One sorted array of band values per band (no Python dicts), so it is compact and
    pickles cheaply as a Beam side input or a Shared object."""

    def __init__(self, hashes: Iterable[int] | np.ndarray, max_distance: int):
        self.max_distance = _check_distance(max_distance)
        self.hashes = _sorted_unique(as_hashes(hashes))
        self._bands = _bands(self.max_distance)
        self._keys: list[np.ndarray] = []
        self._vals: list[np.ndarray] = []
        for s, w in self._bands:
            k = (self.hashes >> np.uint64(s)) & np.uint64((1 << w) - 1)
            order = np.argsort(k, kind="stable")
            self._keys.append(k[order])
            self._vals.append(self.hashes[order])

    def __len__(self) -> int:
        return len(self.hashes)

    def nearest(self, h: int) -> int | None:
        """The closest evaluation hash within d (smallest value on ties), or None."""
        h = int(h)
        hu = np.uint64(h)
        best: tuple[int, int] | None = None
        for (s, w), keys, vals in zip(self._bands, self._keys, self._vals):
            k = np.uint64((h >> s) & ((1 << w) - 1))
            lo, hi = np.searchsorted(keys, k, "left"), np.searchsorted(keys, k, "right")
            if lo == hi:
                continue
            cand = vals[lo:hi]
            dist = np.bitwise_count(cand ^ hu)
            i = int(np.lexsort((cand, dist))[0])
            found = (int(dist[i]), int(cand[i]))
            if found[0] <= self.max_distance and (best is None or found < best):
                best = found
        return None if best is None else best[1]

    def contains_near(self, h: int) -> bool:
        """True iff some evaluation hash is within d of h."""
        return self.nearest(h) is not None
