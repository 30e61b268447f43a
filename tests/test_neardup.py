"""Near-duplicate search: MIH equals brute force, survives hot buckets, and the dedup rule."""

from __future__ import annotations

import random
import tracemalloc

import numpy as np
import pytest

from wit_pipeline.image.neardup import (
    EvalIndex,
    as_hashes,
    band_keys,
    bands,
    brute_force_pairs,
    dedup_rank,
    near_duplicates,
    near_pairs,
)
from wit_pipeline.image.phash import hamming, phash64_bytes
from wit_pipeline.synthetic.concepts import all_concepts
from wit_pipeline.synthetic.images import encode, render


def _pairs(hashes: np.ndarray, d: int) -> np.ndarray:
    return near_pairs(hashes, d).expand()


def _flip(h: int, k: int, rng: random.Random) -> int:
    for b in rng.sample(range(64), k):
        h ^= 1 << b
    return h


def _planted(n: int, d: int, per_k: int, seed: int) -> tuple[np.ndarray, int]:
    """n random hashes plus, for each k in 0..d+1, per_k copies of distinct bases with exactly
    k bits flipped; returns (hashes, number of pairs within d)."""
    rng = random.Random(seed)
    base = [rng.getrandbits(64) for _ in range(n)]
    bases = rng.sample(range(n), (d + 2) * per_k)
    extra = []
    for k in range(d + 2):
        for b in bases[k * per_k : (k + 1) * per_k]:
            extra.append(_flip(base[b], k, rng))
    hashes = base + extra
    order = list(range(len(hashes)))
    rng.shuffle(order)
    return np.array([hashes[i] for i in order], dtype=np.uint64), (d + 1) * per_k


def test_bands_cover_64_bits_once():
    for d in range(64):
        bs = bands(d)
        assert len(bs) == d + 1
        covered = 0
        for shift, width in bs:
            m = ((1 << width) - 1) << shift
            assert covered & m == 0
            covered |= m
        assert covered == (1 << 64) - 1
        assert max(w for _, w in bs) - min(w for _, w in bs) <= 1
    assert bands(4) == [(51, 13), (38, 13), (25, 13), (12, 13), (0, 12)]
    with pytest.raises(ValueError):
        bands(64)
    with pytest.raises(ValueError):
        bands(-1)


def test_band_keys_share_a_band_within_d():
    rng = random.Random(3)
    for d in (0, 1, 4, 9):
        for _ in range(200):
            a = rng.getrandbits(64)
            keys = band_keys(a, d)
            assert [i for i, _ in keys] == list(range(d + 1))
            assert sum(v << s for (_, v), (s, _) in zip(keys, bands(d))) == a
            b = _flip(a, rng.randint(0, d), rng)
            assert set(keys) & set(band_keys(b, d))  # pigeonhole
    assert not set(band_keys(0, 4)) & set(band_keys((1 << 64) - 1, 4))


@pytest.mark.parametrize("d", [0, 1, 4, 8])
def test_pairs_equal_brute_force_with_planted_duplicates(d):
    hashes, expected = _planted(4000, d, per_k=25, seed=d)
    got = _pairs(hashes, d)
    assert len(got) == expected  # flips 0..d are found, exactly d+1 are not
    assert np.array_equal(got, brute_force_pairs(hashes, d))
    assert got.dtype == np.int64 and got.shape[1] == 2
    assert np.all(got[:, 0] < got[:, 1])
    assert all(hamming(int(hashes[i]), int(hashes[j])) <= d for i, j in got)


def test_pairs_with_many_copies_and_large_distance():
    rng = random.Random(11)
    base = [rng.getrandbits(64) for _ in range(300)]
    hashes = base + [base[0]] * 5 + [_flip(base[0], 3, rng) for _ in range(4)] + [_flip(base[1], 20, rng)]
    h = np.array(hashes, dtype=np.uint64)
    for d in (3, 20, 40):
        assert np.array_equal(_pairs(h, d), brute_force_pairs(h, d))
    # 6 copies of base[0] -> 15 pairs, each of the 4 near copies with each copy -> 24 more,
    # plus near copies within 3 of each other (brute force decides those).
    got = _pairs(h, 3)
    among = sum(hamming(a, b) <= 3 for k, a in enumerate(hashes[305:309]) for b in hashes[306 + k : 309])
    assert len(got) == 15 + 24 + among


def test_real_image_hashes_equal_brute_force():
    hashes, group = [], []
    for i, concept in enumerate(all_concepts()[::6]):
        img = render(concept, (256, 192), seed=i)
        variants = [
            encode(img, "PNG"),
            encode(img, "JPEG", quality=70),
            encode(img.resize((200, 150)), "JPEG", quality=85),
            encode(img.crop((5, 4, 251, 188)).resize((256, 192)), "JPEG", quality=90),
        ]
        for data in variants:
            h, w, hh, reason = phash64_bytes(data)
            assert reason is None
            hashes.append(h)
            group.append(i)
    h = np.array(hashes, dtype=np.uint64)
    group = np.array(group)
    for d in (2, 4, 8):
        got = _pairs(h, d)
        assert np.array_equal(got, brute_force_pairs(h, d))
    got = _pairs(h, 4)
    same = group[got[:, 0]] == group[got[:, 1]]
    # Most variant pairs are found; synthetic concepts share a layout, so a few collide.
    assert same.sum() >= 0.8 * 6 * (group.max() + 1), (same.sum(), (~same).sum())
    assert (~same).sum() <= 0.15 * same.sum(), (same.sum(), (~same).sum())


def test_hot_buckets_stay_fast_and_small():
    rng = np.random.default_rng(5)
    identical = np.full(10_000, 0x0123456789ABCDEF, dtype=np.uint64)
    one_band = (np.uint64(0x1FFF) << np.uint64(51)) | rng.integers(0, 1 << 51, size=10_000, dtype=np.uint64)
    noise = rng.integers(0, 1 << 63, size=10_000, dtype=np.uint64)
    hashes = np.concatenate([identical, one_band, noise])
    tracemalloc.start()
    try:
        compact = near_pairs(hashes, 4)
        keys = [f"k{i:05d}" for i in range(len(hashes))]
        dropped = near_duplicates(_members(keys, hashes, [1] * len(keys)), 4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A pair list of the identical block alone would be 5e7 pairs, 800 MB.
    assert peak < 64 * 2**20, peak
    assert len(compact.unique) == 20_001
    assert np.bincount(compact.inverse).max() == 10_000
    assert len(compact.pairs) == len(brute_force_pairs(one_band, 4)) == 0
    assert len(dropped) == 9_999 and "k00000" not in dropped  # the best-ranked copy stays
    assert set(dropped.values()) == {0}


def test_dense_cluster_equals_brute_force():
    """3000 distinct hashes differing only in their low 12 bits: many true pairs."""
    rng = np.random.default_rng(8)
    low = rng.choice(1 << 12, size=3000, replace=False).astype(np.uint64)
    hashes = np.uint64(0xFFFF_0000_0000_0000) | low
    assert np.array_equal(_pairs(hashes, 4), brute_force_pairs(hashes, 4))


def _rule_by_definition(keys, hashes, areas, d):
    """{dropped: EXACT (0) or NEAR (1)} straight from the rule: a better-ranked sample within d."""
    rank = {k: dedup_rank(k, a) for k, a in zip(keys, areas)}
    out = {}
    for i, k in enumerate(keys):
        better = [j for j in range(len(keys)) if rank[keys[j]] < rank[k] and hamming(int(hashes[i]), int(hashes[j])) <= d]
        if better:
            out[k] = min(min(hamming(int(hashes[i]), int(hashes[j])), 1) for j in better)
    return out


def _members(keys, hashes, areas):
    return list(zip(keys, [int(h) for h in hashes], areas))


def test_near_duplicates_follows_the_rule_and_ignores_input_order():
    hashes, _ = _planted(300, 4, per_k=20, seed=42)
    hashes = np.concatenate([hashes, hashes[:10], hashes[:3]])  # exact copies too
    n = len(hashes)
    keys = [f"{i * 7919 % 100003:08d}" for i in range(n)]
    rng = random.Random(1)
    for areas in ([1] * n, [rng.choice([100, 200, 300]) * rng.choice([100, 200]) for _ in range(n)]):
        got = near_duplicates(_members(keys, hashes, areas), 4)
        assert got == _rule_by_definition(keys, hashes, areas, 4)
        assert len(got) == 20 * 5 + 13 and list(got.values()).count(0) >= 13
        kept = [i for i, k in enumerate(keys) if k not in got]
        assert len(brute_force_pairs(hashes[kept], 4)) == 0  # no two kept samples are near
        perm = list(range(n))
        rng.shuffle(perm)
        assert near_duplicates([_members(keys, hashes, areas)[i] for i in perm], 4) == got
        # exact=False (a band group other than band 0) leaves copies of a hash to band 0
        assert near_duplicates(_members(keys, hashes, areas), 4, exact=False) == {k: v for k, v in got.items() if v}


def test_chains_drop_both_and_largest_image_wins():
    a = 0
    b = 0b111  # 3 from a
    c = 0b111111  # 3 from b, 6 from a
    keys = ["a", "b", "c"]
    assert near_duplicates(_members(keys, [a, b, c], [1, 1, 1]), 3) == {"b": 1, "c": 1}
    # Rank by size: c is the largest, b is near it and dropped; a is not near c and is kept.
    assert near_duplicates(_members(keys, [a, b, c], [100, 100, 10_000]), 3) == {"b": 1}
    assert dedup_rank("c", 10_000) < dedup_rank("a", 100) < dedup_rank("b", 100)
    # One key under two near hashes is one sample, never its own near duplicate.
    assert near_duplicates([("K", 0x1234, 100), ("K", 0x1234 ^ 1, 50), ("L", 0x1234 ^ 3, 10)], 4) == {"L": 1}
    assert near_duplicates([("K", 5, 100), ("K", 5, 50), ("L", 5, 10)], 4) == {"L": 0}


def test_eval_index_matches_brute_force():
    rng = random.Random(9)
    evals = [rng.getrandbits(64) for _ in range(2000)]
    evals += [evals[0] ^ 0b11]  # a near pair inside the eval set
    index = EvalIndex(evals, 4)
    queries = [rng.getrandbits(64) for _ in range(300)]
    queries += [_flip(rng.choice(evals), k, rng) for k in range(6) for _ in range(30)]
    ev = np.array(evals, dtype=np.uint64)
    expected_hits = 0
    for q in queries:
        dist = np.bitwise_count(ev ^ np.uint64(q))
        best = min(((int(d), int(e)) for d, e in zip(dist, ev) if d <= 4), default=None)
        assert index.nearest(q) == (None if best is None else best[1])
        assert index.contains_near(q) == (best is not None)
        expected_hits += best is not None
    assert expected_hits == 5 * 30
    assert len(index) == 2001
    assert EvalIndex([], 4).nearest(123) is None


def test_as_hashes_and_determinism():
    big = (1 << 64) - 5
    assert as_hashes([big, 1]).tolist() == [big, 1]
    signed = np.array([big], dtype=np.uint64).view(np.int64)
    assert as_hashes(signed).tolist() == [big]
    with pytest.raises(ValueError):
        as_hashes(np.array([-1], dtype=np.int32))
    hashes, _ = _planted(2000, 4, per_k=10, seed=7)
    first = _pairs(hashes, 4)
    assert np.array_equal(first, _pairs(hashes.copy(), 4))
    assert np.array_equal(first, _pairs(hashes.view(np.int64), 4))


@pytest.mark.parametrize("d", [1, 3, 4, 6])
def test_every_mask_family_catches_every_pair_within_d(d):
    """Each family the search may pick (m = d+1 .. d+5 chunks) leaves no pair within d behind."""
    from wit_pipeline.image.neardup import _family

    rng = random.Random(d)
    bits = list(range(63, -1, -1))
    for parts in range(d + 1, d + 6):
        masks = _family(bits, d, parts)
        assert all(m for m in masks)
        for _ in range(300):
            a = rng.getrandbits(64)
            b = _flip(a, rng.randint(1, d), rng)
            assert any((a ^ b) & m == 0 for m in masks), (parts, hex(a), hex(b))
        # one more differing bit than d escapes some family: the slack is exactly d
        if parts == d + 1:
            a = rng.getrandbits(64)
            chunks = [m for m in masks]
            b = a ^ sum(1 << (max(i for i in range(64) if m >> i & 1)) for m in chunks)  # one bit per chunk
            assert not any((a ^ b) & m == 0 for m in masks)


@pytest.mark.parametrize("parts", [5, 6, 7])
def test_wider_families_equal_brute_force(monkeypatch, parts):
    import wit_pipeline.image.neardup as nd

    monkeypatch.setattr(nd, "_choose_parts", lambda n, d, nbits: min(parts, nbits))
    h, _ = _planted(3000, 4, 20, seed=parts)
    assert np.array_equal(_pairs(h, 4), brute_force_pairs(h, 4))


def _dense_cluster(n: int, radius: int, seed: int) -> np.ndarray:
    """n distinct hashes within `radius` bits of one centre: one logo at many sizes."""
    rng = random.Random(seed)
    centre = rng.getrandbits(64)
    out: set[int] = set()
    while len(out) < n:
        out.add(_flip(centre, rng.randint(1, radius), rng))
    return np.array(sorted(out), dtype=np.uint64)


def test_earliest_neighbour_agrees_with_brute_force_both_ways(monkeypatch):
    """The pair-listing path and the rank-order scan (what a dense cluster falls back to)
    give the same answer, and it is brute force's."""
    import wit_pipeline.image.neardup as nd

    rng = np.random.default_rng(5)
    h, _ = _planted(1500, 4, 15, seed=9)
    h = np.unique(h)
    h = np.concatenate((h, _dense_cluster(300, 3, seed=2)))
    h = np.unique(h)[rng.permutation(len(np.unique(h)))]  # some rank order
    expected = np.full(len(h), -1)
    for i, j in brute_force_pairs(h, 4).tolist():
        lo, hi = min(i, j), max(i, j)
        if expected[hi] < 0 or lo < expected[hi]:
            expected[hi] = lo
    assert (expected >= 0).sum() > 300
    assert np.array_equal(nd.earliest_neighbour(h, 4), expected)
    assert np.array_equal(nd._earliest_by_scan(h, 4), expected)
    with pytest.raises(nd.TooManyPairs):
        nd.near_pairs(h, 4, max_pairs=1000)


def test_dense_cluster_dedup_does_not_list_its_pairs(monkeypatch):
    """20k distinct hashes within 3 bits of one value have ~10^8 pairs within 4: dedup must
    decide every drop without materialising them (the scan path; its memory is linear)."""
    import wit_pipeline.image.neardup as nd

    h = _dense_cluster(20_000, 3, seed=4)
    keys = [f"{i:016x}" for i in range(len(h))]
    tracemalloc.start()
    dropped = nd.near_duplicates(zip(keys, h.tolist(), [1] * len(h)), 4)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200 * 2**20  # the pairs alone would be gigabytes
    kept = [k for k in keys if k not in dropped]
    assert keys[0] in kept and len(dropped) > 19_000
    kept_h = np.array([h[int(k, 16)] for k in kept], dtype=np.uint64)
    assert len(brute_force_pairs(kept_h, 4)) == 0  # no two kept samples are within d
    for k in list(dropped)[:500]:  # each drop has a better-ranked neighbour (equal areas: lower key)
        i = int(k, 16)
        assert dropped[k] == 1 and (np.bitwise_count(h[:i] ^ h[i]) <= 4).any()


def test_scan_cuts_bands_from_the_bits_that_vary():
    """A Beam band group shares its band's bits: the scan must not put every member in one bucket."""
    import wit_pipeline.image.neardup as nd

    rng = random.Random(8)
    top = rng.getrandbits(13) << 51  # one band value, random below: what a band group holds
    h = np.array(sorted({top | rng.getrandbits(51) for _ in range(3000)}), dtype=np.uint64)
    h = np.unique(np.concatenate((h, np.array([int(h[0]) ^ 1, int(h[1]) ^ 6], dtype=np.uint64))))
    expected = np.full(len(h), -1)
    for i, j in brute_force_pairs(h, 4).tolist():
        expected[max(i, j)] = min(i, j) if expected[max(i, j)] < 0 else min(expected[max(i, j)], min(i, j))
    assert (expected >= 0).sum() == 2
    assert np.array_equal(nd._earliest_by_scan(h, 4), expected)
    few = np.array([0b1, 0b10, 0b100], dtype=np.uint64)  # all within 2 of each other
    assert nd._earliest_by_scan(few, 2).tolist() == [-1, 0, 0]
