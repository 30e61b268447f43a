"""The sample key, and every random draw derived from it.

One key names a sample in every stage, seeds every choice about it and decides its shard.
Draws are functions of the key (a hash of it, or a keyed mix of it), not RNG state, so they
are identical on every runner, worker count and rerun (a Beam bundle may be retried on
another worker; a hash does not care).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable

import numpy as np

KEY_HEX_CHARS = 16  # 64-bit key
_KEY = re.compile(rf"[0-9a-f]{{{KEY_HEX_CHARS}}}")


def sample_key(url: str, text: str) -> str:
    """64-bit hex key of an (image URL, text) pair; the NUL separator keeps ("ab","c") != ("a","bc")."""
    return hashlib.blake2b(f"{url}\0{text}".encode("utf-8"), digest_size=8).hexdigest()


def sample_keys(urls: Iterable[str], texts: Iterable[str]) -> list[str]:
    """sample_key of each (url, text), for a column of them (harvest keys every candidate:
    one comprehension, no call per row besides the hash)."""
    blake2b = hashlib.blake2b
    return [blake2b(f"{url}\0{text}".encode("utf-8"), digest_size=8).hexdigest() for url, text in zip(urls, texts)]


def is_key(value: object) -> bool:
    """True for a key `sample_key` can produce: 16 lower-case hex chars. Keys read back from
    files are checked with it before they name anything (a tar member, a file)."""
    return isinstance(value, str) and _KEY.fullmatch(value) is not None


def salted_hash(key: str, salt: object, seed: int) -> int:
    """A 64-bit integer that orders samples reproducibly per (salt, seed), e.g. salt = query id:
    blake2b of "key NUL salt NUL seed" (called per candidate and query: one f-string, no join)."""
    payload = f"{key}\0{salt}\0{seed}".encode("utf-8")
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big")


def salted_hashes(keys: np.ndarray, salts: np.ndarray | str, seed: int) -> np.ndarray:
    """`salted_hash` of each (64-bit key, salt) pair as uint64, for a column of them (balancing
    hashes every candidate of a frequent query: one comprehension, the digests joined into
    one array); one str salt salts them all. The bytes hashed are salted_hash's: the key as
    its 16 hex characters."""
    blake2b = hashlib.blake2b
    keys = np.asarray(keys).tolist()
    salts = itertools.repeat(salts, len(keys)) if isinstance(salts, str) else np.asarray(salts).tolist()
    digests = b"".join([blake2b(f"{k:016x}\0{s}\0{seed}".encode("utf-8"), digest_size=8).digest()
                        for k, s in zip(keys, salts)])
    return np.frombuffer(digests, ">u8").astype(np.uint64)


_MIX1, _MIX2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of 64-bit words in which every input bit flips about
    half the output bits (uint64 arithmetic wraps, as it must)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def uniforms(keys: np.ndarray, salts: np.ndarray, seed: int) -> np.ndarray:
    """A draw in [0, 1) per (64-bit key, integer salt such as a query id, seed): the coin of
    `--balance prob`, one per (candidate, query). The key is already a blake2b hash, so a
    keyed mix of it is as good a coin as hashing again, and numpy draws a column of millions
    at once where a hash per pair in Python cost ~1 us each."""
    salt_words = np.asarray(salts).astype(np.uint64) * _GOLDEN
    seed_word = _mix64(np.array([seed % (1 << 64)], np.uint64) + _GOLDEN)
    words = _mix64(np.asarray(keys, np.uint64) ^ _mix64(salt_words ^ seed_word))
    return (words >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def uniform(key: str, salt: int, seed: int) -> float:
    """`uniforms` for one hex key (the rule's reference, per pair)."""
    return float(uniforms(np.array([int(key, 16)], np.uint64), np.array([salt]), seed)[0])


def shard_of(key: str, num_shards: int, seed: int = 0) -> int:
    """The shard a key belongs to: shuffles samples across shards without global state."""
    if num_shards <= 0:
        raise ValueError(f"num_shards must be positive, got {num_shards}")
    return salted_hash(key, "shard", seed) % num_shards


def shards_of(keys: Iterable[str], num_shards: int, seed: int = 0) -> np.ndarray:
    """`shard_of` of each key (16 hex characters, as `sample_key` makes), for a column of
    them: salted_hash's bytes made from the key as it is, one hash call per key and no
    other Python work (the writer of the selected pairs shards every one of them)."""
    if num_shards <= 0:
        raise ValueError(f"num_shards must be positive, got {num_shards}")
    blake2b, tail = hashlib.blake2b, f"\0shard\0{seed}"
    digests = b"".join([blake2b(f"{key}{tail}".encode(), digest_size=8).digest() for key in keys])
    return (np.frombuffer(digests, ">u8") % np.uint64(num_shards)).astype(np.int64)
